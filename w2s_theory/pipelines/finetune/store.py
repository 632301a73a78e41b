"""The fine-tuning sweep's prediction store: every finished run's test logits and record.

`PredStore` is one ``.npz`` (``<out>.preds.npz``), rewritten atomically after every run and
validated on read against `bundle_fingerprint` (what its predictions were computed from) and a
checksum per run; result rows are derived from it (`w2s_theory.pipelines.finetune.rows`), so a
killed sweep resumes losing at most the run in flight. The GPU script writes the same store.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ...atomic_io import atomic_write_bytes
from ...fingerprint import CacheWarning, digest, fingerprint, mismatch_reason, model_files_digest
from .bundle import Bundle, task_arrays


class PredStoreWarning(CacheWarning):
    """A prediction store on disk was (partly) unusable: its bad runs are dropped and recomputed."""


#: Version of the prediction store's envelope (fingerprint + per-run checksums).
_PRED_CACHE_FORMAT = 1
#: Bundle meta entries that record cost, not inputs (left out of the fingerprint).
_BUNDLE_TIMINGS = ("weak_fit_s",)


def bundle_fingerprint(bundle: Bundle) -> dict:
    """What every prediction of a sweep is computed from besides its run config (which is in
    its key): the bundle's arrays (token ids, labels, weak probabilities), its meta data
    (data digests, weak model, slot seeds; timings left out), the content of every file of
    the strong model's folder (``config.json``, tokenizer, weights) and the code version
    (`w2s_theory.fingerprint`)."""
    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle: must be a Bundle (build_bundle / load_bundle), got "
                        f"{type(bundle).__name__}")
    arrays = {**task_arrays("train_", bundle.train), **task_arrays("test_", bundle.test),
              **(task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}),
              "weak_train": np.asarray(bundle.weak_train, np.float64),
              "weak_test": np.asarray(bundle.weak_test, np.float64)}
    meta = {k: v for k, v in bundle.meta.items() if k not in _BUNDLE_TIMINGS}
    return fingerprint(_PRED_CACHE_FORMAT, data=digest(arrays),
                       meta=digest(json.loads(json.dumps(meta, default=str))),
                       strong_model=model_files_digest(bundle.model_dir))


def _run_checksum(logits: np.ndarray, record: dict) -> str:
    return digest(np.asarray(logits, dtype=np.float32),
                  json.loads(json.dumps(record, sort_keys=True)))


#: fields of a stored run record that the rows are built from (`rows_from_store`)
_RECORD_FIELDS = ("regime", "role", "seed", "config")


class PredStore:
    """Test logits and run records of finished runs, in one ``.npz`` rewritten atomically.

    ``logits[key]`` is the ``(n_test,)`` float32 array ``z = r(A) - r(B)`` (or ``logit`` of
    ``P(label 1)``), or ``(n_test, k)`` log class probabilities of a k-class head (a
    multiclass table: `w2s_theory.pipelines.finetune.execute.stored_form`);
    ``records[key]`` a dict (run coordinates, config, cost, device).

    The file also holds ``fingerprint`` (what its predictions were computed from:
    `bundle_fingerprint`) and ``checksums`` (sha256 of each run's logits and record).

    The file is validated on read. An unreadable store (not a zip, truncated, a half-written
    member, missing ``keys`` / ``records`` / ``logits``, records that are not JSON, logits
    that do not line up with the keys) is dropped whole, and so is, when ``fingerprint``
    is given, a store without one (an older format) or with another one (other data, other
    model files, another version); a run whose record is missing or incomplete, whose logits
    are not finite, whose checksum does not match, or (with ``n_test``) whose logits do not
    have ``n_test`` entries is dropped alone. Either way a `PredStoreWarning` names the
    file and what was wrong, and the dropped runs are simply not ``has()``: the sweep
    recomputes them, and the next `add` rewrites the file without them.

    Examples:
        >>> import tempfile, pathlib, numpy as np
        >>> s = PredStore(pathlib.Path(tempfile.mkdtemp()) / "p.npz")
        >>> rec = {"regime": "full", "role": "ceiling", "seed": 0, "config": {}}
        >>> s.add({"k": (np.zeros(3), rec)}); PredStore(s.path, n_test=3).records["k"]["role"]
        'ceiling'
    """

    def __init__(self, path: str | os.PathLike, n_test: int | None = None,
                 fingerprint: dict | None = None):
        self.path = Path(path)
        self.n_test = None if n_test is None else int(n_test)
        self.fingerprint = None if fingerprint is None else dict(fingerprint)
        self.logits: dict[str, np.ndarray] = {}
        self.records: dict[str, dict] = {}
        self._envelope: dict = {}
        if self.path.exists():
            self._load()

    def _warn(self, what: str) -> None:
        warnings.warn(f"{self.path}: {what}", PredStoreWarning, stacklevel=4)

    def _read(self) -> tuple[list[str], dict, np.ndarray]:
        """``(keys, records, logits)`` of the file; ``ValueError`` saying why it cannot be used."""
        try:
            with open(self.path, "rb") as fh:    # our handle: closed on every error too
                z = np.load(fh, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise ValueError("a single array, not an .npz archive")
                with z:
                    arrays = {m: z[m] for m in ("keys", "records", "logits", "fingerprint",
                                                "checksums") if m in z.files}
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, ValueError) as exc:
            raise ValueError(f"not a readable .npz ({type(exc).__name__}: {exc})") from None
        missing = [m for m in ("keys", "records", "logits") if m not in arrays]
        if missing:
            raise ValueError(f"no {', '.join(map(repr, missing))} in the archive")
        keys, recs, lg = arrays["keys"], arrays["records"], arrays["logits"]
        if keys.ndim != 1 or (keys.size and keys.dtype.kind != "U"):
            raise ValueError(f"'keys' is not a 1-D array of strings (dtype {keys.dtype}, "
                             f"shape {keys.shape})")
        try:
            records = json.loads(str(recs))
        except ValueError as exc:
            raise ValueError(f"'records' is not JSON ({exc})") from None
        if not isinstance(records, dict):
            raise ValueError(f"'records' is a JSON {type(records).__name__}, not an object")
        if lg.dtype.kind != "f" or lg.ndim not in (2, 3) or lg.shape[0] != keys.size:
            raise ValueError(f"'logits' (dtype {lg.dtype}, shape {lg.shape}) is not a float "
                             f"array with one row per key ({keys.size} keys)")
        self._envelope = {}
        for m in ("fingerprint", "checksums"):     # absent in stores of older versions
            if m in arrays:
                try:
                    self._envelope[m] = json.loads(str(arrays[m]))
                except ValueError as exc:
                    raise ValueError(f"{m!r} is not JSON ({exc})") from None
        return [str(k) for k in keys], records, lg

    def _load(self) -> None:
        try:
            keys, records, lg = self._read()
        except ValueError as exc:
            self._warn(f"unreadable prediction store, dropped whole: {exc}; every run it held "
                       f"will be recomputed")
            return
        if self.fingerprint is not None:
            why = mismatch_reason(self._envelope.get("fingerprint"), self.fingerprint)
            if why is not None:
                self._warn(f"prediction store not used, dropped whole: {why}; every run it "
                           f"held will be recomputed")
                return
        sums = self._envelope.get("checksums")
        if sums is not None and not isinstance(sums, dict):
            self._warn("prediction store not used, dropped whole: 'checksums' is not a JSON "
                       "object; every run it held will be recomputed")
            return
        if keys and self.n_test is not None and lg.shape[1] != self.n_test:
            self._warn(f"stored logits have {lg.shape[1]} entries per run, the test split has "
                       f"{self.n_test} pairs (another data size?); all {len(keys)} stored runs "
                       f"dropped and will be recomputed")
            return
        bad: dict[str, str] = {}
        for i, k in enumerate(keys):
            rec = records.get(k)
            if not isinstance(rec, dict):
                bad[k] = "no record"
            elif any(f not in rec for f in _RECORD_FIELDS):
                bad[k] = f"record lacks {', '.join(f for f in _RECORD_FIELDS if f not in rec)}"
            elif not np.isfinite(lg[i]).all():
                bad[k] = f"{int((~np.isfinite(lg[i])).sum())} non-finite logits"
            elif sums is not None and sums.get(k) != _run_checksum(lg[i], rec):
                bad[k] = "checksum mismatch (corrupted)"
            else:
                self.logits[k] = lg[i].copy()
                self.records[k] = rec
        if bad:
            shown = "; ".join(f"{k[:12]}: {why}" for k, why in list(bad.items())[:5])
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            self._warn(f"dropped the stored predictions of {len(bad)} of {len(keys)} runs "
                       f"({shown}{more}); they will be recomputed")

    def has(self, key: str) -> bool:
        return key in self.logits

    def add(self, items: dict[str, tuple[np.ndarray, dict]]) -> None:
        """Add ``{key: (logits, record)}`` and rewrite the file atomically."""
        for k, (z, rec) in items.items():
            self.logits[k] = np.asarray(z, dtype=np.float32)
            self.records[k] = rec
        keys = list(self.logits)
        sums = {k: _run_checksum(self.logits[k], self.records[k]) for k in keys}
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), records=np.array(json.dumps(self.records, sort_keys=True)),
                 logits=np.stack([self.logits[k] for k in keys]) if keys else np.zeros((0, 0), np.float32),
                 fingerprint=np.array(json.dumps(self.fingerprint, sort_keys=True)),
                 checksums=np.array(json.dumps(sums, sort_keys=True)))
        atomic_write_bytes(self.path, buf.getvalue())


class InMemoryStore:
    """A prediction store's view for non-main processes: reads the file, never writes it."""

    def __init__(self, inner: PredStore):
        self._inner = inner

    def has(self, key: str) -> bool:
        return self._inner.has(key)

    def add(self, items: dict) -> None:
        for k, (z, rec) in items.items():
            self._inner.logits[k] = np.asarray(z, dtype=np.float32)
            self._inner.records[k] = rec
