"""HH-RLHF single-turn pairs in the 4K/4K/4K layout, and pairs as a binary slot task."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .paths import N_ROWS, SPLITS, SUBSETS, DataError, DataNotFound, hh_rlhf_hint, hh_rlhf_root
from .records import PreferencePairs

__all__ = ["load_hh_rlhf", "preference_slots", "preference_task"]


def _check_choice(value: str, options: tuple[str, ...], name: str) -> str:
    if value not in options:
        raise ValueError(f"{name}: must be one of {options}, got {value!r}")
    return value


@functools.lru_cache(maxsize=16)
def _read_sums(path: Path, _mtime_ns: int) -> dict[str, str]:
    sums = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{lineno}: malformed SHA256SUMS line {line!r}")
        sums[parts[1].lstrip("*")] = parts[0]
    return sums


@functools.lru_cache(maxsize=32)
def _parse_jsonl(path: Path, _mtime_ns: int, _size: int) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    chosen, rejected = [], []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{path}:{lineno}: not valid UTF-8 (byte {raw[exc.start]:#04x} at column "
                        f"{col}); the file is corrupt or not the shared HH-RLHF copy") from None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("chosen"), str) \
                or not isinstance(obj.get("rejected"), str):
            raise DataError(f"{path}:{lineno}: expected an object with string fields "
                            f"'chosen' and 'rejected', got {str(obj)[:80]!r}")
        chosen.append(obj["chosen"])
        rejected.append(obj["rejected"])
    return tuple(chosen), tuple(rejected), digest


def load_hh_rlhf(subset: str, split: str, root: str | os.PathLike | None = None, *,
                 verify: str = "sha256") -> PreferencePairs:
    """Load one HH-RLHF split as `PreferencePairs` (row ``i`` = line ``i`` of the file).

    Args:
        subset: ``"harmless"`` or ``"helpful"``.
        split: ``"train_gt"``, ``"train_w2s"`` or ``"test"``.
        root: folder of the shared layout (see `hh_rlhf_root`).
        verify: ``"sha256"`` (digest must match ``<root>/SHA256SUMS``), ``"counts"``
            (exactly `N_ROWS` rows) or ``"none"``.

    Raises:
        DataNotFound: (a ``FileNotFoundError``) missing folder or file (says how to get the data).
        DataError: (a ``ValueError``) a malformed line or invalid UTF-8 (names file and line
            number), a digest or count mismatch.

    Examples:
        >>> p = load_hh_rlhf("helpful", "test")
        >>> len(p), p.identical[:1] != [], p.chosen[0].startswith("\\n\\nHuman:")
        (4000, True, True)
    """
    _check_choice(subset, SUBSETS, "subset")
    _check_choice(split, SPLITS, "split")
    _check_choice(verify, ("sha256", "counts", "none"), "verify")
    base = hh_rlhf_root(root)
    rel = f"{subset}/{split}.jsonl"
    path = (base / rel).resolve()
    if not path.is_file():
        raise DataNotFound(f"HH-RLHF file not found: {path}. " + hh_rlhf_hint())
    st = path.stat()
    chosen, rejected, digest = _parse_jsonl(path, st.st_mtime_ns, st.st_size)
    if verify == "sha256":
        sums_path = base / "SHA256SUMS"
        if not sums_path.is_file():
            raise DataNotFound(f"{sums_path} not found: cannot verify {path} "
                                    f"(use verify='counts' for a copy without digests)")
        want = _read_sums(sums_path.resolve(), sums_path.stat().st_mtime_ns).get(rel)
        if want is None:
            raise DataError(f"{sums_path}: no digest listed for {rel}")
        if want != digest:
            raise DataError(f"{path}: sha256 {digest} does not match {want} in {sums_path}; "
                             f"the file is corrupt or a different version. "
                             + hh_rlhf_hint())
    if verify in ("sha256", "counts") and len(chosen) != N_ROWS:
        raise DataError(f"{path}: {len(chosen)} rows, expected {N_ROWS}")
    identical = [i for i, (c, r) in enumerate(zip(chosen, rejected)) if c == r]
    return PreferencePairs(chosen=list(chosen), rejected=list(rejected), subset=subset,
                           split=split, path=path, sha256=digest, identical=identical)


def preference_slots(n: int, seed: int) -> np.ndarray:
    """Seeded slot order of ``n`` pairs: ``int8`` labels, 1 where slot A holds the chosen reply.

    Each label is an independent fair coin from ``numpy.random.default_rng(seed)``.

    Examples:
        >>> preference_slots(8, 0)
        array([1, 1, 1, 0, 0, 0, 0, 0], dtype=int8)
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n: must be a non-negative integer, got {n!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed: must be an integer, got {seed!r}")
    return np.random.default_rng(seed).integers(0, 2, size=int(n)).astype(np.int8)


def preference_task(pairs: PreferencePairs, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Turn pairs into a binary task ``(texts_a, texts_b, labels)`` by `preference_slots`.

    ``texts_a[i]`` is ``chosen[i]`` if ``labels[i] == 1`` else ``rejected[i]``; ``texts_b`` the other.

    Examples:
        >>> p = PreferencePairs(["c0", "c1"], ["r0", "r1"], "harmless", "test", Path("x"), "", [])
        >>> preference_task(p, 3)
        (['c0', 'r1'], ['r0', 'c1'], array([1, 0], dtype=int8))
    """
    labels = preference_slots(len(pairs.chosen), seed)
    a = [c if y else r for c, r, y in zip(pairs.chosen, pairs.rejected, labels)]
    b = [r if y else c for c, r, y in zip(pairs.chosen, pairs.rejected, labels)]
    return a, b, labels
