"""Preference pairs from three split files (the 4K/4K/4K folder layout or the authors' prefix naming)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from .._validation import PathNotFound, check_choice, check_path, check_str
from ..data import SPLITS, DataError, DataNotFound, PreferencePairs
from .columns import (
    check_columns,
    check_distinct,
    make_pairs,
    mapped_columns,
    preference_texts,
    read_table,
)

__all__ = ["from_split_files"]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_sums(sums_file: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    try:
        text = sums_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"root: {sums_file} is not UTF-8 text; expected lines "
                        f"'<sha256>  <file>'") from None
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64 or \
                    any(c not in "0123456789abcdefABCDEF" for c in parts[0]):
                raise DataError(f"root: {sums_file}:{i}: expected '<sha256>  <file>', got "
                                f"{line!r:.80}")
            sums[parts[1].strip().lstrip("*")] = parts[0].lower()
    return sums


def from_split_files(root: str | os.PathLike, name: str, *, naming: str = "folder",
                     columns: Mapping[str, str | None] | None = None,
                     verify: str = "auto") -> dict[str, PreferencePairs]:
    """Preference pairs from three split files.

    Args:
        root: the folder.
        name: ``naming="folder"``: the subset folder (``<root>/<name>/<split>.jsonl``, the
            4K/4K/4K layout); ``naming="prefix"``: the file prefix
            (``<root>/<name>_<split>.jsonl``, the authors' CAI-Harmless files).
        columns: ``{"chosen": ..., "rejected": ..., "prompt": ...}`` (default the
            ``chosen`` / ``rejected`` columns, and ``prompt`` when the file has it; the
            prompt is prepended to both replies).
        verify: ``auto`` (check ``<root>/SHA256SUMS`` when present), ``sha256`` (required)
            or ``none``; the file's sha256 is recorded in every case.

    Raises:
        ValueError, TypeError: a bad argument, or a file whose rows are not all text pairs
            (a ``null``, a number or a list where a reply should be; the message names the
            file, column and row); `w2s_theory.data.DataNotFound`: a missing folder or file.

    Examples:
        >>> from w2s_theory.data import hh_rlhf_root
        >>> s = from_split_files(hh_rlhf_root(), "harmless")
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")]
        [4000, 4000, 4000]
    """
    naming = check_choice(naming, "naming", ("folder", "prefix"))
    verify = check_choice(verify, "verify", ("auto", "sha256", "none"))
    name = check_str(name, "name")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"name: a subset folder or file prefix inside root, got {name!r}")
    given = check_columns(columns, ("chosen", "rejected", "prompt"), ("chosen", "rejected"),
                           "preference")
    try:
        root = check_path(root, "root", must="dir")
    except PathNotFound as e:
        raise DataNotFound(str(e)) from None
    mapping: dict[str, str | None] = {"chosen": "chosen", "rejected": "rejected", "prompt": None}
    mapping.update(given)
    check_distinct(mapping)
    sums_file = root / "SHA256SUMS"
    if verify == "sha256" and not sums_file.is_file():
        raise DataNotFound(f"verify: 'sha256' needs {sums_file}, which does not exist; use "
                           f"verify='auto' or 'none' to read files without listed digests")
    sums = _read_sums(sums_file) if verify != "none" and sums_file.is_file() else {}
    rels = {sp: (f"{name}/{sp}.jsonl" if naming == "folder" else f"{name}_{sp}.jsonl")
            for sp in SPLITS}
    if not any((root / r).exists() for r in rels.values()):
        raise DataNotFound(f"name: no split files {rels['train_gt']!r}, ... under {root} "
                           f"(naming={naming!r} expects {list(rels.values())})")
    out = {}
    for split in SPLITS:
        rel = rels[split]
        path = root / rel
        if not path.exists():
            raise DataNotFound(f"root: {path} not found (naming={naming!r} expects {rel!r} "
                               f"under {root}, beside the other split files)")
        if not path.is_file():
            raise DataError(f"root: {path} is a folder, not a split file")
        sha = _file_sha256(path)
        if rel in sums and sums[rel] != sha:
            raise DataError(f"root: {path}: sha256 {sha} does not match {sums[rel]} in "
                            f"{sums_file}")
        if verify == "sha256" and rel not in sums:
            raise DataError(f"root: {sums_file}: no digest listed for {rel}")
        ds = read_table(path, "root")
        if len(ds) == 0:
            raise DataError(f"root: {path} has no rows")
        m = dict(mapping)
        if "prompt" not in given and "prompt" in ds.column_names:
            m["prompt"] = "prompt"   # a prompt column is used when the file has one
        cols = mapped_columns(ds, m, str(path), given, "root")
        chosen, rejected = preference_texts(cols, m, str(path), "root")
        out[split] = make_pairs(chosen, rejected, name, split, str(path), sha)
    return out
