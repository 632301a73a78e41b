"""Content fingerprints and checksummed cache envelopes: a cache is used only when verified.

Every cache of the project (features, teacher and student heads, convex fits, fine-tuning
predictions) stores two things beside its content:

* a **fingerprint**: a flat ``{component: digest}`` dict of everything the content was
  computed from -- model files (``config.json``, tokenizer files and weights, hashed by
  content: `model_files_digest`), the data (`digest` of the arrays or texts), the config
  fields that change the numbers, and the code version (`code_version`: package version +
  the cache's own format constant);
* a **checksum**: ``sha256`` of its own content (`digest` of its arrays / JSON payload).

On read, a missing fingerprint (a cache written before this module), a fingerprint that
differs from the one of the inputs at hand, or a checksum that does not match the content
means the entry is recomputed, with one `CacheWarning` line naming the cache and why
(`mismatch_reason`).

`digest` of an array is ``sha256(tag | dtype | shape | bytes(x))``, so two arrays have the
same digest iff they have the same dtype, shape and bytes; dicts are hashed in sorted key
order. Envelopes: `save_npz` / `load_npz` (arrays + ``__fingerprint__`` + ``__checksum__``
members), `seal` / `unseal` (a JSON object + ``"__cache__": {"fingerprint", "checksum"}``)
and `save_records` / `load_records` (a JSON object of sealed records, each verified alone).

The caches and what their fingerprints hold (``code`` and ``format`` in every one):

* features, ``<cache>/features/<set>/<dataset>/<key>.npz`` + ``.json``: the key (spec,
  weights digest, dtype, data set, text digest) and ``model_files`` (every file of the model
  folder); token ids, ``<cache>/tokens/<key>.npz``: the tokenizer files and the texts;
* real pipeline, ``teachers.npz`` / ``students.npz``: the protocol (training config) and the
  content digest of the standardised features they are trained on (and, for students, the
  teachers' weights); convex fits, ``<cache>/real/convex/<key>.json``: the key, both feature
  digests and the weak teacher's weights;
* fine-tuning, ``<out>.preds.npz``: the bundle's arrays and meta data and every file of the
  strong model (`w2s_theory.pipelines.finetune.bundle_fingerprint`), with a checksum per
  run; ``<out>.weak.json`` and ``<out>.lr_select.json``: the model files (and the
  ``train_gt`` arrays), a checksum per record.

Examples:
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
    >>> fp = fingerprint(4, data=np.arange(3))
    >>> save_npz(p, {"w": np.ones(2)}, fp)
    >>> load_npz(p, fp, what="demo cache")["w"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._validation import check_int, check_path, check_str
from .atomic_io import atomic_write_bytes, atomic_write_text

__all__ = ["CacheWarning", "code_version", "digest", "file_digest", "model_files_digest",
           "fingerprint", "mismatch_reason", "save_npz", "load_npz", "seal", "unseal",
           "load_records", "save_records"]

#: Members of an `save_npz` archive that hold the envelope (not content).
FP_MEMBER, SUM_MEMBER = "__fingerprint__", "__checksum__"
#: Files hashed for a model folder: config, tokenizer, weights (any depth, no hidden / cache dirs).
MODEL_SUFFIXES = (".json", ".safetensors", ".bin", ".gguf", ".model", ".txt", ".tiktoken",
                  ".pt", ".msgpack", ".npy", ".npz", ".toml")
#: Files at least this large are hashed once per (path, size, mtime_ns); smaller ones every call.
BIG_FILE = 1 << 20


def _mapping(x: Any, name: str, *, allow_none: bool = False) -> Mapping | None:
    if x is None and allow_none:
        return None
    if not isinstance(x, Mapping):
        raise TypeError(f"{name}: must be a dict, got {type(x).__name__}")
    return x


class CacheWarning(UserWarning):
    """A cache entry was not used (old format, other inputs, bad checksum); it is recomputed."""


def code_version() -> str:
    """The package version, part of every fingerprint (``w2s_theory.__version__``).

    Examples:
        >>> import w2s_theory; code_version() == w2s_theory.__version__
        True
    """

    return str(__version__)


# ------------------------------------------------------------------------------ digests
def _feed(h, obj: Any) -> None:
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        a = np.asarray(obj)
        if a.dtype.hasobject:
            raise TypeError(f"objs: cannot digest an object array (dtype {a.dtype})")
        a = np.ascontiguousarray(a)
        h.update(b"A" + a.dtype.str.encode() + b"|" + repr(a.shape).encode() + b"|")
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        h.update(b"B" + len(b).to_bytes(8, "little") + b)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        h.update(b"S" + len(b).to_bytes(8, "little") + b)
    elif obj is None or isinstance(obj, (bool, int, float)):
        h.update(b"J" + json.dumps(obj).encode() + b";")
    elif isinstance(obj, Mapping):
        h.update(b"D" + len(obj).to_bytes(8, "little"))
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(b"L" + len(obj).to_bytes(8, "little"))
        for x in obj:
            _feed(h, x)
    else:
        raise TypeError(f"objs: cannot digest a {type(obj).__name__} (arrays, bytes, str, "
                        f"numbers, None and dicts / lists of them)")


def digest(*objs: Any) -> str:
    """Hex sha256 of arrays, bytes, strings, numbers and nested dicts / lists of them.

    Arrays are hashed with their dtype and shape; dict keys in sorted order, so the digest
    does not depend on insertion order.

    Examples:
        >>> import numpy as np
        >>> digest(np.zeros(2)) == digest(np.zeros(2)), digest(np.zeros(2)) == digest(np.zeros(3))
        (True, False)
        >>> digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
        True
    """
    h = hashlib.sha256()
    for o in objs:
        _feed(h, o)
    return h.hexdigest()


_MEMO: dict[tuple, str] = {}
_MEMO_LOCK = threading.Lock()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes.

    Files of at least ``BIG_FILE`` bytes (weights) are hashed once per process and
    ``(path, size, mtime_ns)``; smaller ones (``config.json``, tokenizer files) every call,
    so an edit that keeps the size and the mtime tick is still seen.

    Examples:
        >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "wb").write(b"abc")
        >>> file_digest(p)[:12]
        'ba7816bf8f01'
    """
    p = check_path(path, "path", must="file")
    st = p.stat()
    if st.st_size < BIG_FILE:
        return _sha256_file(p)
    k = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _MEMO_LOCK:
        hit = _MEMO.get(k)
    if hit is None:
        hit = _sha256_file(p)
        with _MEMO_LOCK:
            _MEMO[k] = hit
    return hit


def model_files_digest(folder: str | os.PathLike) -> str:
    """sha256 over a model folder's files: ``config.json``, tokenizer files and weights.

    Every file below ``folder`` whose suffix is in ``MODEL_SUFFIXES`` (hidden entries and
    ``__pycache__`` skipped), by relative path and `file_digest`, so a changed
    ``config.json`` or tokenizer gives another digest even when the weights are the same.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text("{}")
        >>> a = model_files_digest(d); _ = (d / "config.json").write_text('{"x": 1}')
        >>> a == model_files_digest(d)
        False
    """
    root = check_path(folder, "folder", must="dir")
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for f in filenames:
            if not f.startswith(".") and f.endswith(MODEL_SUFFIXES):
                files.append(Path(dirpath) / f)
    h = hashlib.sha256()
    for p in sorted(files, key=lambda q: q.relative_to(root).as_posix()):
        _feed(h, p.relative_to(root).as_posix())
        _feed(h, file_digest(p))
    return h.hexdigest()


# ------------------------------------------------------------------------------ fingerprints
def fingerprint(format: int, **parts: Any) -> dict[str, str]:
    """A flat fingerprint ``{"code": version, "format": n, part: digest-or-text, ...}``.

    ``format`` is the cache's own layout/computation version (bump it when the numbers
    change); string parts are kept as they are (already digests or names), anything else
    is reduced to its `digest`.

    Examples:
        >>> fp = fingerprint(3, model="0" * 64, config={"lr": 0.1})
        >>> sorted(fp), fp["format"]
        (['code', 'config', 'format', 'model'], '3')
    """
    out = {"code": code_version(), "format": str(check_int(format, "format", low=0))}
    for k, v in parts.items():
        if k in out:
            raise ValueError(f"{k}: reserved fingerprint component (code, format)")
        try:
            out[k] = v if isinstance(v, str) else digest(v)
        except TypeError as exc:
            raise TypeError(f"{k}: {str(exc).split(': ', 1)[-1]}") from None
    return out


def mismatch_reason(stored: Any, expected: Mapping[str, str]) -> str | None:
    """Why a stored fingerprint does not vouch for ``expected``; ``None`` when it does.

    Examples:
        >>> e = fingerprint(1, data="a")
        >>> mismatch_reason(None, e)
        'no fingerprint (written by an older version)'
        >>> mismatch_reason({**e, "data": "b"}, e)
        'computed from other inputs (changed: data)'
        >>> mismatch_reason(dict(e), e) is None
        True
    """
    _mapping(expected, "expected")
    if not isinstance(stored, Mapping):
        return "no fingerprint (written by an older version)"
    diff = sorted(k for k in set(stored) | set(expected) if stored.get(k) != expected.get(k))
    if not diff:
        return None
    return f"computed from other inputs (changed: {', '.join(diff)})"


def _warn(what: str, path: Path, why: str, category, stacklevel: int) -> None:
    warnings.warn(f"{what} {path}: {why}; recomputing", category, stacklevel=stacklevel + 1)


# ------------------------------------------------------------------------------ npz envelope
def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
             fp: Mapping[str, str]) -> None:
    """Write ``arrays`` + the fingerprint ``fp`` + their checksum to ``path`` atomically.

    Examples:
        >>> import numpy as np, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
        >>> save_npz(p, {"w": np.ones(2)}, fingerprint(1))
        >>> sorted(np.load(p).files)
        ['__checksum__', '__fingerprint__', 'w']
    """

    path = check_path(path, "path", must="out")
    arrays = {str(k): np.asarray(v) for k, v in _mapping(arrays, "arrays").items()}
    _mapping(fp, "fp")
    for k in arrays:
        if k in (FP_MEMBER, SUM_MEMBER):
            raise ValueError(f"arrays: {k!r} is reserved for the envelope")
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{FP_MEMBER: np.array(json.dumps(dict(fp), sort_keys=True)),
                               SUM_MEMBER: np.array(digest(arrays))})
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike, fp: Mapping[str, str] | None, *, what: str,
             category: type[Warning] = CacheWarning, stacklevel: int = 2) -> dict | None:
    """The arrays of a `save_npz` archive when verified, else ``None``.

    ``None`` silently when the file does not exist; ``None`` with one ``category`` warning
    (``"<what> <path>: <why>; recomputing"``) when it is unreadable, has no envelope (an
    older format), its checksum does not match its content, or (``fp`` given) its
    fingerprint differs from ``fp``.
    """
    p = check_path(path, "path")
    check_str(what, "what")
    _mapping(fp, "fp", allow_none=True)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            members = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - anything unreadable is recomputed
        _warn(what, p, f"unreadable ({type(exc).__name__}: {exc})", category, stacklevel + 1)
        return None
    if FP_MEMBER not in members or SUM_MEMBER not in members:
        _warn(what, p, "no fingerprint (written by an older version)", category, stacklevel + 1)
        return None
    stored_sum = str(members.pop(SUM_MEMBER))
    try:
        stored_fp = json.loads(str(members.pop(FP_MEMBER)))
    except ValueError:
        stored_fp = None
    if digest(members) != stored_sum:
        _warn(what, p, "content checksum mismatch (corrupted)", category, stacklevel + 1)
        return None
    if fp is not None:
        why = mismatch_reason(stored_fp, fp)
        if why is not None:
            _warn(what, p, why, category, stacklevel + 1)
            return None
    return members


# ------------------------------------------------------------------------------ JSON envelope
ENVELOPE_KEY = "__cache__"


def seal(payload: Mapping[str, Any], fp: Mapping[str, str]) -> dict:
    """A JSON object ``payload`` with its envelope: ``{**payload, "__cache__": {"fingerprint":
    fp, "checksum": digest(payload)}}`` (the checksum is of the payload as a reader sees it,
    after a JSON round trip).

    Examples:
        >>> rec = seal({"acc": 0.5}, fingerprint(1))
        >>> unseal(rec, fingerprint(1)) == ({"acc": 0.5}, None)
        True
    """
    if ENVELOPE_KEY in _mapping(payload, "payload"):
        raise ValueError(f"payload: {ENVELOPE_KEY!r} is reserved for the envelope")
    _mapping(fp, "fp")
    try:
        payload = json.loads(json.dumps(dict(payload), sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload: not JSON-serialisable ({exc})") from None
    return {**payload, ENVELOPE_KEY: {"fingerprint": dict(fp), "checksum": digest(payload)}}


def unseal(obj: Any, fp: Mapping[str, str] | None) -> tuple[dict | None, str | None]:
    """``(payload, None)`` for a verified `seal` object, else ``(None, why)``; ``fp=None``
    checks the checksum only.

    Examples:
        >>> rec = seal({"acc": 0.5}, fingerprint(1))
        >>> rec["acc"] = 0.6; unseal(rec, None)
        (None, 'content checksum mismatch (corrupted)')
        >>> unseal({"acc": 0.5}, None)
        (None, 'no fingerprint (written by an older version)')
        >>> unseal(seal({"acc": 0.5}, fingerprint(1, data="a")), fingerprint(1, data="b"))[1]
        'computed from other inputs (changed: data)'
    """
    _mapping(fp, "fp", allow_none=True)
    if not isinstance(obj, Mapping) or not isinstance(obj.get(ENVELOPE_KEY), Mapping):
        return None, "no fingerprint (written by an older version)"
    payload = {k: v for k, v in obj.items() if k != ENVELOPE_KEY}
    env = obj[ENVELOPE_KEY]
    try:
        ok = digest(payload) == env.get("checksum")
    except TypeError:
        ok = False
    if not ok:
        return None, "content checksum mismatch (corrupted)"
    if fp is not None:
        why = mismatch_reason(env.get("fingerprint"), fp)
        if why is not None:
            return None, why
    return payload, None


# ------------------------------------------------------------------------------ keyed records
def load_records(path: str | os.PathLike, fp: Mapping[str, str] | None, *, what: str,
                 stacklevel: int = 2) -> dict[str, dict]:
    """The verified records ``{key: payload}`` of a JSON file of sealed records (`seal`).

    A missing file is ``{}``; an unreadable one is ``{}`` with one `CacheWarning`; records
    that are older (no envelope), of other inputs than ``fp`` or corrupt are left out, with
    one `CacheWarning` line for all of them, so the caller recomputes exactly those.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.json"
        >>> save_records(p, {"k": {"lr": 0.1}}, fingerprint(1))
        >>> load_records(p, fingerprint(1), what="demo cache")
        {'k': {'lr': 0.1}}
    """
    p = check_path(path, "path")
    check_str(what, "what")
    _mapping(fp, "fp", allow_none=True)
    if not p.is_file():
        return {}
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
    except (OSError, ValueError) as exc:
        _warn(what, p, f"unreadable ({type(exc).__name__}: {exc})", CacheWarning, stacklevel + 1)
        return {}
    out, bad = {}, {}
    for k, rec in raw.items():
        payload, why = unseal(rec, fp)
        if payload is None:
            bad[k] = why
        else:
            out[k] = payload
    if bad:
        whys = sorted(set(bad.values()))
        _warn(what, p, f"{len(bad)} of {len(raw)} records not used ({'; '.join(whys)})",
              CacheWarning, stacklevel + 1)
    return out


def save_records(path: str | os.PathLike, records: Mapping[str, Mapping], fp: Mapping[str, str]) -> None:
    """Write ``{key: payload}``, each payload sealed with ``fp`` (`seal`; atomic, sorted keys)."""

    path = check_path(path, "path", must="out")
    records = _mapping(records, "records")
    atomic_write_text(path, json.dumps({str(k): seal(_mapping(v, f"records[{k!r}]"), fp)
                                        for k, v in records.items()}, indent=1, sort_keys=True))
