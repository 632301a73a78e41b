"""Any table (file, DataFrame or ``datasets.Dataset``) as the three splits, with a column mapping."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._validation import check_int, check_str
from ..data import SPLITS, DataError, LabelledTexts, PreferencePairs
from ..task_kinds import check_labels, check_task
from .columns import (
    check_columns,
    check_distinct,
    describe_cell,
    make_pairs,
    mapped_columns,
    preference_texts,
    read_table,
    text_cells,
)
from .splits import check_sizes, split_indices

__all__ = ["from_table"]


def from_table(data: Any, *, task: str = "pairwise",
               columns: Mapping[str, str | None] | None = None,
               sizes: Sequence[int] | None = None, seed: int = 0, split_column: str | None = None,
               name: str = "table") -> dict[str, PreferencePairs] | dict[str, LabelledTexts]:
    """Any table as the three splits: preference pairs or k-class classification.

    Args:
        data: a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` path, a ``pandas.DataFrame``
            or a ``datasets.Dataset``.
        task: a kind of `w2s_theory.task_kinds.TASKS`: ``pairwise`` (columns ``prompt``
            (used when present), ``chosen``, ``rejected``), ``binary`` (columns ``text``,
            ``label``; labels 0/1) or ``multiclass`` (columns ``text``, ``label``; labels
            integers ``0..k-1``, at least two classes). Old spellings: ``preference``,
            ``classification`` (= ``multiclass``).
        columns: maps those roles to the table's column names (default: the role names).
        sizes: rows of train_gt, train_w2s, test, drawn by `split_indices` (one pool);
            or ``split_column``: a column whose values are ``train_gt`` / ``train_w2s`` / ``test``
            (give one of the two).
        seed: the split's seed.
        name: the subset name recorded in the result.

    Every text cell must be a string (a missing cell, a number or a list is an error naming
    the column and row, never the text ``'None'`` or a sum of numbers), and every label an
    integer class index.

    Examples:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"q": ["a", "b", "c", "d"], "good": ["1", "2", "3", "4"],
        ...                    "bad": ["x", "y", "z", "w"]})
        >>> s = from_table(df, columns={"prompt": "q", "chosen": "good", "rejected": "bad"},
        ...                sizes=(1, 1, 2))
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [1, 1, 2]
    """
    task = check_task(task)
    roles = (("prompt", "chosen", "rejected") if task == "pairwise" else ("text", "label"))
    required = roles[1:] if task == "pairwise" else roles
    given = check_columns(columns, roles, required, task)
    if sizes is not None:
        sizes = check_sizes(sizes)
    seed = check_int(seed, "seed", low=0)
    split_column = check_str(split_column, "split_column", allow_none=True)
    name = check_str(name, "name")
    if split_column is not None and sizes is not None:
        raise ValueError("sizes: give either the split sizes or a split_column, not both")
    if split_column is None and sizes is None:
        raise ValueError("sizes: give the three split sizes (train_gt, train_w2s, test) or a "
                         "split_column")
    mapping: dict[str, str | None] = {r: r for r in roles}
    if task == "pairwise":
        mapping["prompt"] = None
    mapping.update(given)
    check_distinct(mapping)
    ds = read_table(data, "data")
    if task == "pairwise" and "prompt" not in given and "prompt" in ds.column_names:
        mapping["prompt"] = "prompt"   # a prompt column is used when the table has one
    where = str(data) if isinstance(data, (str, os.PathLike)) else "the table"
    cols = mapped_columns(ds, mapping, where, given, "data")
    n = len(ds)
    if n == 0:
        raise DataError(f"data: {where} has no rows")
    if split_column is not None:
        if split_column not in ds.column_names:
            raise ValueError(f"split_column: {where} has no column {split_column!r}; its columns "
                             f"are {list(ds.column_names)}")
        sc = list(ds[split_column])
        bad = sorted({str(v) for v in sc} - set(SPLITS))
        if bad:
            raise ValueError(f"split_column: values {bad[:5]} in {split_column!r}; use "
                             f"{list(SPLITS)}")
        idx = {s: np.array([i for i, v in enumerate(sc) if v == s], dtype=np.int64) for s in SPLITS}
        for s in SPLITS:
            if idx[s].size == 0:
                raise ValueError(f"split_column: no row of {where} is in split {s!r}")
    else:
        if n < sum(sizes):
            raise ValueError(f"sizes: {sizes} need {sum(sizes)} rows, the data have {n}")
        idx = split_indices(n, None, sizes, seed)
    src = f"{where}" if isinstance(data, (str, os.PathLike)) else f"<{type(data).__name__}>"
    out = {}
    if task == "pairwise":
        chosen, rejected = preference_texts(cols, mapping, where, "data")
        for s in SPLITS:
            ii = idx[s]
            out[s] = make_pairs([chosen[i] for i in ii], [rejected[i] for i in ii], name, s, src)
        return out
    texts = text_cells(cols["text"], "text", mapping["text"], where, "data")
    labels = cols["label"]
    col = mapping["label"]
    for i, v in enumerate(labels):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
            raise DataError(f"data: column {col!r} row {i} of {where}: the label column must "
                            f"hold integers 0..k-1 (class indices), got {describe_cell(v)}")
    lab = np.asarray(labels, dtype=np.int64)
    if int(lab.max()) < 1:
        raise DataError(f"data: column {col!r} of {where}: every label is 0; a {task} task "
                        f"needs at least two classes (labels 0..k-1)")
    try:
        check_labels(lab, task, f"data: column {col!r} of {where}")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    for s in SPLITS:
        ii = idx[s]
        out[s] = LabelledTexts([texts[i] for i in ii], lab[ii], s, src)
    return out
