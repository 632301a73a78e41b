"""Features of the HH-RLHF splits: the read-only prebuilt folders first (manifest-checked), then
extraction (`load_features`), and why a feature set is unavailable."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import models
from ..data import SPLITS, SUBSETS, DataNotFound, cache_dir, load_hh_rlhf, project_root
from ..datasets import feature_cache_tag
from ..fingerprint import file_digest
from .extraction import features_for_texts
from .spec import ENV_FEATURES, FEATURE_SETS, FeatureSpec, feature_set_name, feature_spec


# ----------------------------------------------------------------------- HH-RLHF features
def prebuilt_roots(root: str | os.PathLike | None = None, *,
                   cache: str | os.PathLike | None = None) -> list[Path]:
    """Read-only prebuilt folders, searched in order.

    ``root`` (must exist) > ``$W2S_FEATURES_DIR`` (one or more folders separated by
    ``os.pathsep``; each must exist) > the defaults that exist:
    ``<project>/../shared/features`` and ``<cache>/prebuilt`` (where GPU-extracted
    features in the same layout can be dropped, e.g. the output of
    ``experiments/gpu/extract_features.py``).

    Examples:
        >>> all((p / "hh_rlhf").is_dir() for p in prebuilt_roots()) or prebuilt_roots() == []
        True
    """
    if root is not None:
        paths, how = [Path(root).expanduser()], "the root argument"
    elif os.environ.get(ENV_FEATURES):
        paths = [Path(p).expanduser() for p in os.environ[ENV_FEATURES].split(os.pathsep) if p]
        how = "$" + ENV_FEATURES
    else:
        cands = [project_root().parent / "shared" / "features", cache_dir(cache) / "prebuilt"]
        return [p for p in cands if (p / "hh_rlhf").is_dir()]
    for p in paths:
        if not p.is_dir():
            raise DataNotFound(f"prebuilt features folder not found: {p} (from {how})")
    return paths


def prebuilt_root(root: str | os.PathLike | None = None) -> Path | None:
    """The first of `prebuilt_roots`, or ``None`` when there is none.

    Examples:
        >>> p = prebuilt_root(); p is None or (p / "hh_rlhf").is_dir()
        True
    """
    roots = prebuilt_roots(root)
    return roots[0] if roots else None


def load_prebuilt(name: str, subset: str, split: str, *, root: str | os.PathLike | None = None,
                  data_root: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """Prebuilt HH-RLHF features of a named set, or ``None`` when absent or not matching the data.

    Looks in each of `prebuilt_roots` for ``hh_rlhf/<name>/<subset>/<split>.npz``.
    Checks the manifest's ``sources`` sha256 of ``<subset>/<split>.jsonl`` against the data
    file actually loaded (a mismatch warns and skips that folder), the file's own sha256
    when the manifest records it (``files: {"<subset>/<split>.npz": sha256}``), the shapes
    (n, hidden) for both arrays and finiteness. Arrays are returned as float32.

    Examples:
        >>> load_prebuilt("no-such-model", "harmless", "test") is None
        True
    """
    for base in prebuilt_roots(root, cache=cache):
        out = _read_prebuilt(base / "hh_rlhf" / name, subset, split, data_root)
        if out is not None:
            return out
    return None


def _read_prebuilt(folder: Path, subset: str, split: str, data_root) -> dict[str, np.ndarray] | None:
    f = folder / subset / f"{split}.npz"
    if not f.is_file():
        return None
    pairs = load_hh_rlhf(subset, split, data_root)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        want = manifest["sources"][f"{subset}/{split}.jsonl"]
        files = manifest.get("files") or {}
        want_file = files.get(f"{subset}/{split}.npz") if isinstance(files, dict) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"{folder}/manifest.json unreadable or lacks the source digest ({exc!r}); "
                      f"not using the prebuilt features", stacklevel=3)
        return None
    if want != pairs.sha256:
        warnings.warn(f"{f}: built from a different {subset}/{split}.jsonl (sha256 {want[:12]}... vs "
                      f"{pairs.sha256[:12]}...); not using it", stacklevel=3)
        return None
    if want_file is not None:     # the manifest records the file's own checksum: verify it
        have = file_digest(f)
        if have != want_file:
            warnings.warn(f"{f}: sha256 {have[:12]}... differs from the manifest's "
                          f"{str(want_file)[:12]}... (corrupted or replaced); not using it",
                          stacklevel=3)
            return None
    try:
        with np.load(f) as z:
            out = {k: z[k].astype(np.float32) for k in ("chosen", "rejected")}
    except Exception as exc:  # noqa: BLE001 - a broken file is skipped, not fatal
        warnings.warn(f"{f}: unreadable ({exc!r}); not using it", stacklevel=3)
        return None
    n = len(pairs)
    shapes = {x.shape for x in out.values()}
    for k, x in out.items():
        if x.ndim != 2 or x.shape[0] != n or len(shapes) != 1 or not np.isfinite(x).all():
            warnings.warn(f"{f}: {k} has shape {x.shape} or non-finite values; not using it",
                          stacklevel=3)
            return None
    return out


def unavailable_reason(name: str, subsets: Sequence[str] = (), splits: Sequence[str] = SPLITS, *,
                       texts: bool = False, root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None) -> str | None:
    """Why feature set ``name`` cannot be had here, or ``None`` when it can (nothing is loaded).

    HH-RLHF features of ``subsets`` x ``splits`` are available when the model's weights are
    installed (`w2s_theory.models.is_installed`) or every one of those files exists in
    a prebuilt folder (`prebuilt_roots`; their digests are checked when read). With
    ``texts=True`` features of other texts (VADER, a first-rows cut) are needed too, which
    only the weights can compute. A cheap check of files, for a command to run before any work.

    Example:
        >>> unavailable_reason("no-such-set")[:33]
        "unknown feature set 'no-such-set'"
    """
    if name not in FEATURE_SETS:
        # not a preset feature set: a local model folder, or a hub id the pipeline resolves
        # through the Hugging Face cache before any work (hub ids: ``org/name[@rev]``)
        p = Path(str(name)).expanduser()
        if p.is_dir():
            return None
        if str(name).startswith(("/", ".", "~")):
            return f"no such model folder {str(name)!r}, and not a feature set (known: " \
                   f"{', '.join(FEATURE_SETS)})"
        if "/" in str(name):
            return None
        return f"unknown feature set {name!r} (known: {', '.join(FEATURE_SETS)}; or give a " \
               f"model folder or a hub id org/name)"
    model = FEATURE_SETS[name].model
    if models.is_installed(model):
        return None
    if texts:
        return f"the weights of {model} are not installed (needed to compute its features)"
    roots = prebuilt_roots(root, cache=cache)
    absent = [f"{sub}/{sp}" for sub in subsets for sp in splits
              if not any((r / "hh_rlhf" / name / sub / f"{sp}.npz").is_file() for r in roots)]
    if not absent:
        return None
    where = ", ".join(map(str, roots)) or "no prebuilt folder found"
    return (f"the weights of {model} are not installed and no prebuilt features hold "
            f"{', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''} ({where})")


def load_features(model: str | FeatureSpec, subset: str, split: str, *,
                  root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                  cache: str | os.PathLike | None = None, compute: bool = True,
                  device: Any = "auto", progress: bool = True) -> dict[str, np.ndarray]:
    """HH-RLHF features ``{"chosen": (4000, H), "rejected": (4000, H)}`` (float32).

    Order: (1) the prebuilt read-only folders (`prebuilt_roots`, verified by
    `load_prebuilt`), (2) the project's cache, (3) computed now (when ``compute``)
    and cached. Row ``i`` belongs to line ``i`` of ``<subset>/<split>.jsonl``.

    Args:
        model: a `FEATURE_SETS` name (``"all-MiniLM-L6-v2"``, ``"SmolLM2-135M-layer15"``,
            ``"wordllama"``, ``"all-mpnet-base-v2"``, ...) or a `FeatureSpec`.
        root: prebuilt folder; data_root: HH-RLHF folder (see `w2s_theory.data.hh_rlhf_root`).

    Examples:
        >>> f = load_features("all-MiniLM-L6-v2", "harmless", "test")
        >>> f["chosen"].shape, f["rejected"].dtype
        ((4000, 384), dtype('float32'))
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset: must be one of {SUBSETS}, got {subset!r}")
    if split not in SPLITS:
        raise ValueError(f"split: must be one of {SPLITS}, got {split!r}")
    spec = feature_spec(model)
    name = model if isinstance(model, str) else feature_set_name(spec)
    if isinstance(model, str) or name in FEATURE_SETS:
        pre = load_prebuilt(name, subset, split, root=root, data_root=data_root, cache=cache)
        if pre is not None:
            return pre
    pairs = load_hh_rlhf(subset, split, data_root)
    texts = pairs.chosen + pairs.rejected
    if not compute:
        raise FileNotFoundError(f"no prebuilt features for {name} {subset}/{split} and compute=False")
    x = features_for_texts(spec, texts, dataset=feature_cache_tag(subset, split), cache=cache,
                           device=device, progress=progress)
    n = len(pairs)
    return {"chosen": x[:n], "rejected": x[n:]}
