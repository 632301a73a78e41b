"""Extraction with a verified cache: `extract` runs a model over texts, `features_for_texts`
keys, writes and re-reads its result (fingerprinted ``.npz`` + ``.json`` entries)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..atomic_io import atomic_write_bytes, atomic_write_text
from ..data import cache_dir, text_digest
from ..fingerprint import (
    CacheWarning,
    fingerprint,
    load_npz,
    mismatch_reason,
    model_files_digest,
    save_npz,
)
from ..hub import load, resolve_model
from ..models import file_sha256
from .spec import FeatureSpec, feature_set_name, feature_spec, resolve_spec
from .tokens import TokenIds, embed_token_ids, static_embed, tokenize

#: Version of the cache entries' layout and computation (part of an entry's path).
FORMAT = 1  # bump when the cache layout or the computation changes (part of the entry's path)
#: Version of the feature cache's fingerprint envelope (`w2s_theory.fingerprint`).
CACHE_FORMAT = 2


# ----------------------------------------------------------------------- extraction
def _tokens_cached(tokenizer, tok_digest: str, texts: list[str], spec: FeatureSpec,
                   cache: Path | None, add_special_tokens: bool = True) -> TokenIds:
    if cache is None:
        return tokenize(tokenizer, texts, max_length=spec.max_length,
                        truncation_side=spec.truncation_side, add_special_tokens=add_special_tokens)
    key = hashlib.sha256(json.dumps([FORMAT, tok_digest, spec.max_length, spec.truncation_side,
                                     add_special_tokens, text_digest(texts)]).encode()).hexdigest()
    path = cache / "tokens" / f"{key[:24]}.npz"
    fp = fingerprint(CACHE_FORMAT, key=key)
    z = load_npz(path, fp, what="token cache", stacklevel=3)
    if z is not None:
        try:
            ids, offsets = z["ids"], z["offsets"]
            if (offsets.ndim == 1 and offsets.size == len(texts) + 1 and offsets[0] == 0
                    and offsets[-1] == ids.size and not np.any(np.diff(offsets) < 0)):
                return TokenIds(ids, offsets)
        except KeyError:
            pass
        warnings.warn(f"token cache {path}: malformed token ids; recomputing",
                      CacheWarning, stacklevel=3)
    t = tokenize(tokenizer, texts, max_length=spec.max_length,
                 truncation_side=spec.truncation_side, add_special_tokens=add_special_tokens)
    try:
        save_npz(path, {"ids": t.ids, "offsets": t.offsets}, fp)
    except OSError:
        pass
    return t


def _tokenizer_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (folder / name).is_file():
            h.update(name.encode() + file_sha256(folder / name).encode())
    return h.hexdigest()


def extract(spec: str | FeatureSpec, texts: Sequence[str], *, device: Any = "auto",
            max_tokens: int | None = None, progress: bool = True,
            cache: str | os.PathLike | None = None, cache_tokens: bool = True) -> np.ndarray:
    """Features of ``texts`` under ``spec`` (no feature cache) -> float32 ``(n, hidden)``.

    Loads the model via `w2s_theory.models`, tokenizes once (ids cached under
    ``<cache>/tokens`` when ``cache_tokens``), embeds length-sorted buckets.

    Examples:
        >>> extract("wordllama", ["hello world", "hi"], progress=False).shape
        (2, 256)
    """
    spec = feature_spec(spec)
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: must be a list of str")
    tcache = cache_dir(cache) if cache_tokens else None
    if spec.model == "wordllama":
        wl = models.load_wordllama()
        tok_digest = "wordllama:" + hashlib.sha256(
            wl.tokenizer.to_str().encode()).hexdigest()
        tokens = _tokens_cached(wl.tokenizer, tok_digest, texts, spec, tcache, add_special_tokens=False)
        return static_embed(wl.embedding, tokens, spec.pooling)
    import torch

    dev = models.resolve_device(device)
    dtype = models.resolve_dtype(spec.dtype, dev)
    r = resolve_model(spec.model, cache=cache)
    if spec.pooling == "auto":
        spec = resolve_spec(spec, cache=cache)[0]
    _, tokenizer, _ = load(r, model=False)
    tokens = _tokens_cached(tokenizer, _tokenizer_digest(r.path), texts, spec, tcache)
    model = load(r, device=dev, dtype=dtype, tokenizer=False)[0]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    feats = embed_token_ids(model, tokens, layer=spec.layer, pooling=spec.pooling, device=dev,
                            max_tokens=max_tokens, pad_id=pad_id, progress=progress,
                            desc=f"{spec.model} features")
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return feats


# ----------------------------------------------------------------------- cache
def cache_key(spec: FeatureSpec, weights: str, dataset: str, digest: str, dtype: str) -> dict:
    """The fields that identify a cached feature array (all of them change the numbers).

    Examples:
        >>> sorted(cache_key(FeatureSpec("wordllama"), "w", "d", "t", "float32"))[:3]
        ['dataset', 'dtype', 'format']
    """
    return {"format": FORMAT, "model": spec.model, "weights_sha256": weights, "layer": spec.layer,
            "pooling": spec.pooling, "max_length": spec.max_length,
            "truncation_side": spec.truncation_side, "dtype": dtype, "dataset": dataset,
            "text_digest": digest}


def _entry_paths(root: Path, spec: FeatureSpec, dataset: str, key: dict) -> tuple[Path, Path]:
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    # hub ids ("org/name@rev") and folders become one path component
    name = "".join(c if c.isalnum() or c in "-_.@" else "--" if c == "/" else "_"
                   for c in feature_set_name(spec)).strip("-.") or "model"
    d = root / "features" / name / safe
    return d / f"{h}.npz", d / f"{h}.json"


def _entry_fingerprint(key: dict, folder: Path) -> dict:
    """What a feature entry was computed from: its key, every model file, the code version."""
    return fingerprint(CACHE_FORMAT, key=key, model_files=model_files_digest(folder))


def _read_entry(npz: Path, meta: Path, key: dict, n: int, fp: dict | None = None) -> np.ndarray | None:
    """The cached array, or ``None`` when missing, or (with one `CacheWarning` saying why) when
    written by an older version (no fingerprint), computed from other inputs (key or
    fingerprint ``fp``), corrupt (payload sha256) or malformed."""
    if not (npz.is_file() or meta.is_file()):
        return None

    def stale(why: str) -> None:
        warnings.warn(f"feature cache {npz}: {why}; recomputing", CacheWarning, stacklevel=3)

    if not (npz.is_file() and meta.is_file()):
        stale(f"incomplete entry (no {meta.name if npz.is_file() else npz.name})")
        return None
    try:
        info = json.loads(meta.read_text())
        raw = npz.read_bytes()
    except (OSError, ValueError) as exc:
        stale(f"unreadable ({type(exc).__name__}: {exc})")
        return None
    if not isinstance(info, dict) or "fingerprint" not in info:
        stale("no fingerprint (written by an older version)")
        return None
    if info.get("key") != key:
        stale("computed from other inputs (changed: key)")
        return None
    if fp is not None and (why := mismatch_reason(info["fingerprint"], fp)) is not None:
        stale(why)
        return None
    if hashlib.sha256(raw).hexdigest() != info.get("npz_sha256"):
        stale("content checksum mismatch (corrupted)")
        return None
    try:
        with np.load(io.BytesIO(raw)) as z:
            x = z["features"]
    except Exception as exc:  # noqa: BLE001 - anything unreadable is rebuilt
        stale(f"unreadable payload ({type(exc).__name__}: {exc})")
        return None
    if x.shape[0] != n or x.dtype != np.float32 or not np.isfinite(x).all():
        stale(f"array of shape {x.shape} and dtype {x.dtype} for {n} texts, or non-finite")
        return None
    return x


def _write_entry(npz: Path, meta: Path, key: dict, x: np.ndarray, extra: dict,
                 fp: dict | None = None) -> None:
    buf = io.BytesIO()
    np.savez(buf, features=x)
    raw = buf.getvalue()
    atomic_write_bytes(npz, raw)
    atomic_write_text(meta, json.dumps({"key": key, "fingerprint": fp,
                                        "npz_sha256": hashlib.sha256(raw).hexdigest(),
                                        "shape": list(x.shape), **extra}, indent=1))


def features_for_texts(spec: str | FeatureSpec, texts: Sequence[str], *, dataset: str = "custom",
                       cache: str | os.PathLike | None = None, use_cache: bool = True,
                       device: Any = "auto", max_tokens: int | None = None,
                       progress: bool = True) -> np.ndarray:
    """Cached features of ``texts`` -> float32 ``(n, hidden)``, row ``i`` = ``texts[i]``.

    The entry lives under ``<cache>/features/<set>/<dataset>/<key>.npz`` (+ ``.json``) with
    the key of `cache_key` and a fingerprint of the model folder's files (``config.json``,
    tokenizer, weights; `w2s_theory.fingerprint.model_files_digest`) and the code version;
    it is verified (fingerprint, key, payload sha256, shape, finiteness) on every read and
    recomputed, with one `w2s_theory.fingerprint.CacheWarning`, when anything is off.

    Examples:
        >>> import tempfile
        >>> features_for_texts("wordllama", ["good", "bad"], cache=tempfile.mkdtemp(),
        ...                    progress=False).shape
        (2, 256)
    """
    spec = feature_spec(spec)
    texts = list(texts)
    root = cache_dir(cache)
    dtype = "float32" if spec.model == "wordllama" else str(
        models.resolve_dtype(spec.dtype, models.resolve_device(device))).replace("torch.", "")
    spec, folder, weights = resolve_spec(spec, cache=cache)   # auto pooling resolved before the key
    key = cache_key(spec, weights, dataset, text_digest(texts), dtype)
    npz, meta = _entry_paths(root, spec, dataset, key)
    fp = _entry_fingerprint(key, folder) if use_cache else None
    if use_cache:
        x = _read_entry(npz, meta, key, len(texts), fp)
        if x is not None:
            return x
    t0 = time.perf_counter()
    x = extract(replace(spec, dtype=dtype), texts, device=device, max_tokens=max_tokens,
                progress=progress, cache=cache)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if use_cache:
        _write_entry(npz, meta, key, x, {
            "seconds": round(time.perf_counter() - t0, 3), "device": str(models.resolve_device(device)),
            "machine": platform.node(), "processor": platform.processor() or platform.machine()},
            fp)
    return x
