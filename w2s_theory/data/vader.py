"""VADER sentiment (binary): the sdist fetched once, deduplicated, balanced seeded splits."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

from ..atomic_io import atomic_write_text
from .paths import N_ROWS, SPLITS, cache_dir
from .records import LabelledTexts

__all__ = ["VADER_SDIST", "VADER_SDIST_SHA256", "fetch_vader", "load_vader"]

#: The sdist that carries the VADER ground truth, and its sha256 (from PyPI).
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_PIP = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2"


def fetch_vader(cache: str | os.PathLike | None = None) -> Path:
    """Return the cached VADER sdist, downloading it with pip (from the registry) if missing.

    Runs ``python -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2``
    once into ``<cache>/vader/`` and checks the archive's sha256.
    """
    folder = cache_dir(cache) / "vader"
    path = folder / VADER_SDIST
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
               "--no-deps", "--no-binary", ":all:", "vaderSentiment==3.3.2", "-d", str(folder)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not path.is_file():
            raise RuntimeError(
                f"could not fetch the VADER ground truth ({' '.join(cmd)} failed: "
                f"{res.stderr.strip()[-400:]}). Download it by hand with `{_VADER_PIP} -d {folder}`."
            )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != VADER_SDIST_SHA256:
        raise ValueError(f"{path}: sha256 {digest} != {VADER_SDIST_SHA256}; delete it and retry")
    return path


def _vader_rows(sdist: Path) -> list[tuple[str, float, str]]:
    """(source file, mean rating, text) of every ``*_GroundTruth.txt`` row, in file order."""
    with tarfile.open(sdist, "r:gz") as outer:
        inner_bytes = outer.extractfile(_VADER_INNER).read()
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        names = sorted(m.name for m in inner.getmembers() if m.name.endswith("_GroundTruth.txt"))
        if not names:
            raise ValueError(f"{sdist}: no *_GroundTruth.txt files inside {_VADER_INNER}")
        for name in names:
            text = inner.extractfile(name).read().decode("latin-1")
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) != 3:
                    raise ValueError(f"{sdist}!{name}:{lineno}: expected 3 tab-separated fields "
                                     f"(id, rating, text), got {len(parts)}")
                try:
                    rating = float(parts[1])
                except ValueError:
                    raise ValueError(f"{sdist}!{name}:{lineno}: rating {parts[1]!r} is not a number") from None
                rows.append((Path(name).name, rating, parts[2].strip()))
    return rows


def _vader_extracted(sdist: Path, cache: Path) -> list[tuple[str, float, str]]:
    """The archive's rows, extracted once into ``<cache>/vader/groundtruth-<digest>.json``."""
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    out = cache / "vader" / f"groundtruth-{digest[:16]}.json"
    if out.is_file():
        try:
            obj = json.loads(out.read_text())
            if obj.get("sdist_sha256") == digest:
                return [tuple(r) for r in obj["rows"]]
        except (ValueError, KeyError, TypeError):
            pass  # corrupt cache entry: extract again
    rows = _vader_rows(sdist)
    atomic_write_text(out, json.dumps({"sdist": sdist.name, "sdist_sha256": digest, "rows": rows}))
    return rows


@functools.lru_cache(maxsize=8)
def _vader_pool(sdist: str, _mtime_ns: int, cache: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Deduplicated non-zero rows: (texts, labels), texts in first-occurrence order.

    A text is kept when all its ratings are non-zero and of one sign (duplicates with a
    zero or with both signs are ambiguous and dropped entirely).
    """
    rows = _vader_extracted(Path(sdist), Path(cache))
    signs: dict[str, set[int]] = {}
    order: list[str] = []
    for _, rating, text in rows:
        if not text:
            continue
        if text not in signs:
            signs[text] = set()
            order.append(text)
        signs[text].add(1 if rating > 0 else (0 if rating < 0 else -1))
    texts = tuple(t for t in order if len(signs[t]) == 1 and -1 not in signs[t])
    labels = np.array([next(iter(signs[t])) for t in texts], dtype=np.int8)
    return texts, labels


def load_vader(*, seed: int = 0, n_per_split: int = N_ROWS, cache: str | os.PathLike | None = None,
               sdist: str | os.PathLike | None = None) -> dict[str, LabelledTexts]:
    """VADER sentiment as balanced binary splits ``{"train_gt", "train_w2s", "test"}``.

    Label ``y = 1`` when the mean human rating is > 0, ``y = 0`` when < 0; zero ratings are
    dropped, texts deduplicated (a duplicated text rated zero or with both signs is dropped). Each split holds
    ``n_per_split / 2`` positives and as many negatives, drawn without replacement by
    ``numpy.random.default_rng(seed)``; splits are disjoint; order within a split is shuffled.

    Args:
        seed: the split seed (same seed, same splits).
        n_per_split: even, at most 3 * n_per_split / 2 <= number of negatives.
        cache: cache folder (see `cache_dir`); the sdist is fetched there on first use.
        sdist: an explicit path to ``vaderSentiment-3.3.2.tar.gz`` (skips the fetch and digest).

    Examples:
        >>> import tempfile, pathlib
        >>> s = _fake_vader_sdist(pathlib.Path(tempfile.mkdtemp()), n=40)
        >>> d = load_vader(seed=0, n_per_split=4, sdist=s, cache=s.parent)
        >>> sorted(d), [int(d[k].labels.sum()) for k in sorted(d)]
        (['test', 'train_gt', 'train_w2s'], [2, 2, 2])
    """
    if not isinstance(n_per_split, int) or n_per_split < 2 or n_per_split % 2:
        raise ValueError(f"n_per_split: must be a positive even integer, got {n_per_split!r}")
    path = Path(sdist) if sdist is not None else fetch_vader(cache)
    texts, labels = _vader_pool(str(path.resolve()), path.stat().st_mtime_ns,
                                str(cache_dir(cache)))
    half = n_per_split // 2
    rng = np.random.default_rng(seed)
    pos = rng.permutation(np.flatnonzero(labels == 1))
    neg = rng.permutation(np.flatnonzero(labels == 0))
    need = len(SPLITS) * half
    if len(pos) < need or len(neg) < need:
        raise ValueError(f"n_per_split: {n_per_split} needs {need} of each class; the data have "
                         f"{len(pos)} positive, {len(neg)} negative")
    out = {}
    for k, split in enumerate(SPLITS):
        idx = np.concatenate([pos[k * half:(k + 1) * half], neg[k * half:(k + 1) * half]])
        idx = idx[rng.permutation(idx.size)]
        out[split] = LabelledTexts(texts=[texts[i] for i in idx], labels=labels[idx].copy(),
                                   split=split, source=f"vader:{path.name}")
    return out


def _fake_vader_sdist(folder: Path, n: int = 40, seed: int = 0) -> Path:
    """Write a small archive of the VADER sdist layout (for tests and doctests)."""
    rng = np.random.default_rng(seed)

    def tar_bytes(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    lines = []
    for i in range(n):
        rating = (1 if i % 2 else -1) * float(rng.uniform(0.1, 3.0))
        lines.append(f"{i}\t{rating:.3f}\tsnippet number {i}\r\n")
    lines.append(f"{n}\t0\tneutral snippet\r\n")
    gt = "".join(lines).encode("latin-1")
    inner = tar_bytes({"hutto_ICWSM_2014/fake_GroundTruth.txt": gt})
    out = Path(folder) / VADER_SDIST
    out.write_bytes(tar_bytes({_VADER_INNER: inner}))
    return out
