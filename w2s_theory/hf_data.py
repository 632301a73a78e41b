"""Hugging Face data sets for weak-to-strong training: hub data by id, weak soft labels in one call.

* `load_hub_dataset` -- ``datasets.load_dataset`` (a hub id ``org/name``, a local folder of
  CSV / JSON / Parquet files, or a folder written by ``Dataset.save_to_disk``) for one split,
  with a column mapping to the names the trainers read (``chosen`` / ``rejected`` for
  preference pairs, ``text`` / ``label`` for classification). A mapped column the data set
  lacks is refused naming it and the columns it has.
* `weak_soft_labels` -- runs a weak model over a ``datasets.Dataset`` and returns it with a
  soft-label column: P(class 1) ``(n,)`` or class probabilities ``(n, k)`` for a classifier
  over ``text_column``; for preference pairs (``pair_columns=("chosen", "rejected")``) the
  Bradley--Terry probability ``sigmoid(r(chosen) - r(rejected))`` of a one-output reward
  model. The column feeds `w2s_theory.trainers.SoftLabelTrainer` (``labels``) or
  `w2s_theory.trainers.WeakRewardTrainer` (``weak_label``).

Examples:
    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"pos": ["a good answer"], "neg": ["a bad one"]})
    >>> rename_columns(ds, {"chosen": "pos", "rejected": "neg"}).column_names
    ['chosen', 'rejected']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._validation import ArgumentTypeError, check_int, check_str
from .hf_metrics import logits_to_probs
from .hub import load
from .runtime import resolve_device

__all__ = ["load_hub_dataset", "rename_columns", "weak_soft_labels"]


def rename_columns(dataset, columns: Mapping[str, str] | None, *, what: str = "dataset"):
    """``dataset`` with ``columns = {new name: column in the data}`` renamed.

    Args:
        dataset: a ``datasets.Dataset``.
        columns: ``{"chosen": "pos", ...}``; ``None`` or ``{}`` leaves the data set as is.
        what: how messages name the data set.

    Raises:
        ValueError: a mapped column is missing (naming it and the columns there are), or a
            new name clashes with another column.
    """
    if not columns:
        return dataset
    if not isinstance(columns, Mapping):
        raise ArgumentTypeError(f"columns: a mapping {{new name: column in the data}}, got "
                                f"{type(columns).__name__}")
    have = list(dataset.column_names)
    for new, old in columns.items():
        check_str(new, "columns")
        check_str(old, f"columns[{new!r}]")
        if old not in have:
            raise ValueError(f"columns: {new!r} maps to column {old!r}, which {what} lacks; "
                             f"its columns are {have}")
        if new != old and new in have and new not in columns.values():
            raise ValueError(f"columns: {new!r} is already a column of {what} (mapped from "
                             f"{old!r}); map it too or drop it first")
    mapping = {old: new for new, old in columns.items() if old != new}
    return dataset.rename_columns(mapping) if mapping else dataset


def load_hub_dataset(path: str | os.PathLike, *, split: str = "train",
                     columns: Mapping[str, str] | None = None, name: str | None = None,
                     revision: str | None = None, **kwargs):
    """One split of a hub data set (``org/name``) or a local folder, columns renamed.

    Args:
        path: a hub id (read from the hub cache when offline), a local folder of data files
            (``datasets.load_dataset``) or a folder written by ``Dataset.save_to_disk``.
        split: the split, e.g. ``"train"``, ``"test"`` or ``"train[:4000]"``.
        columns: ``{new name: column in the data}`` (`rename_columns`), e.g.
            ``{"chosen": "response_good", "rejected": "response_bad"}``.
        name: the data set's configuration (``datasets.load_dataset(path, name)``).
        revision: a hub revision (a commit, a branch or a tag).
        **kwargs: passed to ``datasets.load_dataset`` (``data_dir``, ``data_files``, ...).

    Returns:
        a ``datasets.Dataset``.
    """
    import datasets

    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    path = check_str(path, "path")
    split = check_str(split, "split")
    folder = Path(path)
    what = f"data set {path!r} (split {split!r})"
    if folder.is_dir() and any((folder / f).is_file() for f in ("state.json",
                                                                "dataset_dict.json")):
        # a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk
        if name is not None or revision is not None or kwargs:
            raise ValueError("name: a save_to_disk folder takes no name, revision or options")
        loaded = datasets.load_from_disk(str(folder))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"split: {what} has splits {list(loaded)}")
            loaded = loaded[split]
        return rename_columns(loaded, columns, what=what)
    try:
        ds = datasets.load_dataset(path, name, split=split, revision=revision, **kwargs)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"path: cannot find the data set {path!r} (not a local folder, "
                                f"and not in the hub cache while offline): {e}") from None
    except ValueError as e:
        raise ValueError(f"split: cannot load {what}: {str(e).splitlines()[0][:300]}") from None
    return rename_columns(ds, columns, what=what)


def _load_weak(model, tokenizer, device, dtype):
    import torch

    if isinstance(model, (str, os.PathLike)):
        net, tok, _ = load(model, auto_class="AutoModelForSequenceClassification", dtype=dtype,
                           device=device, quiet=True)
        return net, tokenizer if tokenizer is not None else tok
    if not isinstance(model, torch.nn.Module):
        raise ArgumentTypeError(f"model: a model spec (preset, folder or hub id) or a "
                                f"transformers classifier (torch.nn.Module), got "
                                f"{type(model).__name__}")
    if tokenizer is None:
        raise ValueError("tokenizer: needed with a model object (pass the weak model's tokenizer)")
    if device is not None:
        model = model.to(resolve_device(device))
    return model, tokenizer


def _logits(model, tokenizer, texts: list[str], max_length: int):
    import torch

    dev = next(model.parameters()).device
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
    enc = {k: v.to(dev) for k, v in enc.items()}
    with torch.no_grad():
        out = model(**enc)
    z = out.logits if hasattr(out, "logits") else out[0]
    return z.float().cpu().numpy().astype(np.float64)


def _texts(dataset, column: str, arg: str) -> list[str]:
    if column not in dataset.column_names:
        raise ValueError(f"{arg}: no column {column!r}; the data set's columns are "
                         f"{list(dataset.column_names)}")
    texts = dataset[column]
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ArgumentTypeError(f"{arg}: column {column!r}, row {i}: expected a text (str), "
                                    f"got {type(t).__name__}")
    return list(texts)


def weak_soft_labels(model, dataset, *, tokenizer=None, text_column: str = "text",
                     pair_columns: Sequence[str] | None = None, label_column: str | None = None,
                     batch_size: int = 32, max_length: int = 512, device=None,
                     dtype: str = "float32"):
    """The weak model's soft labels over ``dataset``, added as a column (one call).

    Classification (``pair_columns=None``): logits ``(n, 1)`` give ``sigmoid`` = P(class 1),
    ``(n, 2)`` give ``softmax[:, 1]``, ``(n, k)`` give the ``softmax`` row (a list per example).
    Preference pairs (``pair_columns=("chosen", "rejected")``): a one-output reward model ``r``
    gives ``P(chosen > rejected) = sigmoid(r(chosen) - r(rejected))``.

    Args:
        model: a spec (preset, folder or hub id ``org/name[@rev]``, loaded with
            ``AutoModelForSequenceClassification`` by `w2s_theory.hub.load`) or a loaded
            transformers classifier / reward model.
        dataset: a ``datasets.Dataset``.
        tokenizer: the model's tokenizer (required with a model object; a spec brings its own).
        text_column: the text column (classification).
        pair_columns: ``(chosen, rejected)`` column names for preference pairs.
        label_column: the new column's name (default ``labels`` for classification, which
            `SoftLabelTrainer` reads; ``weak_label`` for pairs, which `WeakRewardTrainer` reads).
        batch_size: texts per forward pass.
        max_length: tokens kept per text (the tokenizer's truncation side).
        device: where the model runs (``None``: where it is; a spec loads on the CPU).
        dtype: a spec's compute dtype (`w2s_theory.presets.resolve_dtype`).

    Returns:
        ``dataset`` with ``label_column`` added (float64 values in ``[0, 1]``).
    """
    import torch

    batch_size = check_int(batch_size, "batch_size", low=1)
    max_length = check_int(max_length, "max_length", low=1)
    if pair_columns is not None:
        if isinstance(pair_columns, str) or len(pair_columns) != 2:
            raise ValueError(f"pair_columns: two column names (chosen, rejected), got "
                             f"{pair_columns!r}")
        chosen, rejected = (_texts(dataset, c, "pair_columns") for c in pair_columns)
    else:
        texts = _texts(dataset, check_str(text_column, "text_column"), "text_column")
    if label_column is None:
        label_column = "weak_label" if pair_columns is not None else "labels"
    label_column = check_str(label_column, "label_column")
    if label_column in dataset.column_names:
        raise ValueError(f"label_column: {label_column!r} is already a column; name another or "
                         f"drop it first")
    net, tok = _load_weak(model, tokenizer, device, dtype)
    was_training = net.training
    net.eval()
    try:
        if pair_columns is not None:
            zc, zr = [np.concatenate([_logits(net, tok, xs[i:i + batch_size], max_length)
                                      for i in range(0, len(xs), batch_size)] or [np.zeros((0, 1))])
                      for xs in (chosen, rejected)]
            if zc.ndim != 2 or zc.shape[1] != 1:
                raise ValueError(f"model: a reward model with one output (num_labels=1) scores "
                                 f"pairs, got {zc.shape[1]} outputs")
            values = torch.sigmoid(torch.from_numpy(zc[:, 0] - zr[:, 0])).numpy().tolist()
        else:
            z = np.concatenate([_logits(net, tok, texts[i:i + batch_size], max_length)
                                for i in range(0, len(texts), batch_size)] or [np.zeros((0, 1))])
            p = logits_to_probs(z) if len(z) else np.zeros(0)
            values = p.tolist()
    finally:
        net.train(was_training)
    return dataset.add_column(label_column, values)
