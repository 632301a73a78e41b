"""Reading a table and its mapped columns (roles -> column names), with errors naming the column and row."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .._validation import ArgumentTypeError, PathNotFound, check_path, check_str
from ..data import DataError, DataNotFound, PreferencePairs, text_digest

__all__ = ["make_pairs", "require_datasets", "check_columns", "check_distinct", "mapped_columns",
           "describe_cell", "text_cells", "preference_texts", "read_table"]


def make_pairs(chosen: list[str], rejected: list[str], subset: str, split: str, source: str,
           sha: str | None = None) -> PreferencePairs:
    ident = [i for i, (c, r) in enumerate(zip(chosen, rejected)) if c == r]
    digest = sha or text_digest(list(chosen) + list(rejected))
    return PreferencePairs(list(chosen), list(rejected), subset, split, Path(source), digest, ident)


def require_datasets():
    try:
        import datasets
    except ImportError as e:  # pragma: no cover
        raise ImportError("this data source needs the datasets library: "
                          "pip install 'w2s-theory[hf]'") from e
    return datasets


def check_columns(columns: Any, roles: tuple[str, ...], required: tuple[str, ...],
                   task: str) -> dict[str, str | None]:
    """``columns``: ``None`` or a mapping of roles to column names (``None`` = unused, for
    optional roles only); refuses unknown roles, non-string names and one column for two roles."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise ArgumentTypeError(f"columns: a mapping of roles {list(roles)} to column names, "
                                f"got {columns!r:.60} ({type(columns).__name__})")
    bad = sorted(str(r) for r in columns if r not in roles)
    if bad:
        raise ValueError(f"columns: unknown role(s) {bad} for task={task!r}; roles: {list(roles)}")
    out: dict[str, str | None] = {}
    for role, col in columns.items():
        if col is None and role not in required:
            out[role] = None
            continue
        out[role] = check_str(col, f"columns.{role}")
    return out


def check_distinct(mapping: Mapping[str, str | None]) -> None:
    used = [c for c in mapping.values() if c is not None]
    dup = sorted({c for c in used if used.count(c) > 1})
    if dup:
        roles = [r for r, c in mapping.items() if c == dup[0]]
        raise ValueError(f"columns: column {dup[0]!r} is mapped to the roles {roles}; each role "
                         f"needs its own column")


def mapped_columns(ds, mapping: Mapping[str, str | None], where: str, given: Mapping,
             arg: str) -> dict[str, list]:
    """The mapped columns of a table; a missing column is blamed on ``columns`` when the user
    mapped that role, on the data (``arg``) otherwise."""
    have = list(ds.column_names)
    out = {}
    for role, col in mapping.items():
        if col is None:
            continue
        if col not in have:
            blame = "columns" if role in given else arg
            raise DataError(f"{blame}: {role!r} maps to column {col!r}, which {where} does not "
                            f"have; its columns are {have} (map the roles with columns=...)")
        out[role] = list(ds[col])
    return out


def describe_cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return f"a missing value ({v!r})"
    return f"{v!r:.40} ({type(v).__name__})"


def text_cells(values: list, role: str, col: str, where: str, arg: str, *,
           allow_empty: bool = False) -> list[str]:
    """Check that every cell of a text column is a (non-empty) string; name the first bad one."""
    for i, v in enumerate(values):
        if not isinstance(v, str):
            cls = ValueError if v is None or (isinstance(v, float) and v != v) else TypeError
            raise cls(f"{arg}: column {col!r} row {i} of {where}: expected text for "
                      f"{role!r}, got {describe_cell(v)}")
        if not v and not allow_empty:
            raise ValueError(f"{arg}: column {col!r} row {i} of {where}: empty text for "
                             f"{role!r}")
    return list(values)


def preference_texts(cols: dict, mapping: Mapping, where: str, arg: str
                ) -> tuple[list[str], list[str]]:
    chosen = text_cells(cols["chosen"], "chosen", mapping["chosen"], where, arg)
    rejected = text_cells(cols["rejected"], "rejected", mapping["rejected"], where, arg)
    if "prompt" in cols:
        prompt = text_cells(cols["prompt"], "prompt", mapping["prompt"], where, arg,
                        allow_empty=True)
        chosen = [p + c for p, c in zip(prompt, chosen)]
        rejected = [p + r for p, r in zip(prompt, rejected)]
    return chosen, rejected


def read_table(data: Any, arg: str):
    """A ``datasets.Dataset`` from a path (.jsonl/.json/.csv/.parquet), a DataFrame or a Dataset."""
    datasets = require_datasets()
    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            raise ValueError(f"{arg}: duplicate column names {list(data.columns)}")
        try:
            return datasets.Dataset.from_pandas(data, preserve_index=False)
        except Exception as e:  # noqa: BLE001 -- pyarrow: mixed kinds in one column
            raise TypeError(f"{arg}: the DataFrame cannot be read as a table ({type(e).__name__}: "
                            f"{str(e)[:200]}); every column must hold one kind of value") from None
    if not isinstance(data, (str, os.PathLike)) or isinstance(data, (bytes, bytearray)):
        raise ArgumentTypeError(f"{arg}: a file path, a pandas DataFrame or a datasets.Dataset, "
                                f"got {type(data).__name__}")
    try:
        p = check_path(data, arg, must="file")
    except PathNotFound as e:
        raise DataNotFound(str(e)) from None
    kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(
        p.suffix.lower())
    if kind is None:
        raise ValueError(f"{arg}: {p.name}: use a .jsonl, .json, .csv or .parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{arg}: {p} is empty (0 bytes)")
    if kind != "parquet":
        try:
            with open(p, encoding="utf-8") as fh:
                for _ in fh:
                    pass
        except UnicodeDecodeError as e:
            raise DataError(f"{arg}: {p} is not UTF-8 text (byte {e.object[e.start]:#04x} at "
                            f"offset {e.start}); re-save it as UTF-8") from None
    try:
        return datasets.load_dataset(kind, data_files=str(p), split="train")
    except Exception as e:  # noqa: BLE001 -- re-raised with the file named
        msg = str(e).split("\n")[0][:300]
        cause = e.__cause__ or e.__context__
        if cause is not None:
            msg += f" ({type(cause).__name__}: {str(cause).splitlines()[0][:200] if str(cause) else ''})"
        raise DataError(f"{arg}: cannot read {p} as {kind}: {msg}") from e
