"""The two training phases of a real sweep, each one batched computation with a verified
weight cache: the teachers (weak heads on ``train_gt``, ceilings on ``train_w2s``), then the
students on the weak labels (`weak_labels`)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ...config import ConfigError
from ...fingerprint import CacheWarning, digest, fingerprint, load_npz, save_npz
from ...kclass import truth
from ...protocol import corrupt_weak_labels
from .bank import FeatureBank
from .config import RealConfig
from .runs import Run, derive_seed, head_key, protocol_dict, split_coord

__all__ = ["train_teachers", "weak_labels", "train_students"]

#: Version of the cache envelope (`w2s_theory.fingerprint`) of the head weights
#: (``teachers.npz`` / ``students.npz``).
_HEADS_CACHE_FORMAT = 1


def _save_weights(path: Path, weights: dict, meta: dict, fp: dict) -> None:
    """Head weights + ``meta`` in a checksummed ``.npz`` with the fingerprint ``fp``."""

    keys = sorted(weights)
    save_npz(path, {"keys": np.array(keys), "meta": np.array(json.dumps(meta)),
                    **{f"w{i}": np.asarray(weights[k], dtype=np.float64)
                       for i, k in enumerate(keys)}}, fp)


def _load_weights(path: Path, fp: dict, what: str) -> tuple[dict, dict]:
    """``(weights, meta)`` of a verified weight cache; ``({}, {})`` when it is missing, or (with
    one `w2s_theory.fingerprint.CacheWarning`) unreadable, older, computed from other
    inputs than ``fp`` or corrupt."""

    z = load_npz(path, fp, what=what, stacklevel=3)
    if z is None:
        return {}, {}
    try:
        keys = [str(k) for k in z["keys"]]
        meta = json.loads(str(z["meta"]))
        return {k: z[f"w{i}"].copy() for i, k in enumerate(keys)}, meta
    except (KeyError, ValueError) as exc:

        warnings.warn(f"{what} {path}: malformed ({type(exc).__name__}: {exc}); recomputing",
                      CacheWarning, stacklevel=3)
        return {}, {}


def _heads_fingerprint(cfg: RealConfig, bank: FeatureBank, pairs, teachers: dict | None = None) -> dict:
    """What cached head weights are computed from: the protocol (training config included),
    the content of the features of each ``(dataset, model)`` in ``pairs`` and, for students,
    the teachers' weights."""

    parts = {"protocol": digest(protocol_dict(cfg)),
             "features": digest({f"{ds}|{m}": bank.fingerprint(ds, m) for ds, m in sorted(set(pairs))})}
    if teachers is not None:
        parts["teachers"] = digest({"|".join(map(str, k)): w for k, w in teachers.items()})
    return fingerprint(_HEADS_CACHE_FORMAT, **parts)



def _teacher_specs(cfg: RealConfig, runs: list[Run]) -> list[tuple]:
    """Unique weak and ceiling heads of the runs: ``[(key, role, dataset, model, seed)]``."""
    seen, out = set(), []
    for r in runs:
        for role, model in (("weak", r.weak), ("ceiling", r.strong)):
            t = (role, r.dataset, model, r.seed)
            if (r.split, t) not in seen:
                seen.add((r.split, t))
                out.append((head_key(cfg, r.seed, role=role, dataset=r.dataset, model=model,
                                      **split_coord(r.split)), *t))
    return out


def train_teachers(cfg: RealConfig, runs: list[Run], bank: FeatureBank, cache: Path,
                   progress: bool = True) -> tuple[dict, dict]:
    """Weak heads (on ``train_gt``) and ceilings (on ``train_w2s``), one batched computation.

    Returns ``({(role, dataset, model, seed): weights}, meta)``.
    """
    from ...training import HeadSpec, train_head_sets

    todo = _teacher_specs(cfg, runs)
    path = cache / "teachers.npz"
    fp = _heads_fingerprint(cfg, bank, [(ds, model) for _k, _r, ds, model, _s in todo])
    stored, meta = _load_weights(path, fp, "teacher cache")
    if all(k in stored for k, *_ in todo):
        return {tuple(t): stored[k] for k, *t in todo}, meta
    groups, specs, targets, gindex = [], [], [], {}
    for _k, role, ds, model, seed in todo:
        split = "train_gt" if role == "weak" else "train_w2s"
        gk = (ds, model, split, seed)
        if gk not in gindex:
            gindex[gk] = len(groups)
            groups.append(bank.rows(ds, model, split, seed))
        specs.append(HeadSpec("forward_ce", False, derive_seed(seed, role, ds, model), gindex[gk]))
        targets.append(truth(bank.labels(ds, split, seed), bank.n_classes(ds)))
    res = train_head_sets(groups, targets, specs, cfg.train, device=cfg.device,
                          progress=progress, num_threads=cfg.threads or None)
    meta = {"wall_s": res.wall_s, "n_heads": len(specs), "device": res.device}
    weights = {k: w for (k, *_), w in zip(todo, res.weights)}
    _save_weights(path, {**stored, **weights}, meta, fp)
    return {tuple(t): w for (k, *t), w in zip(todo, res.weights)}, meta


def weak_labels(cfg: RealConfig, bank: FeatureBank, teachers: dict, dataset: str, weak: str,
                seed: int, noise: float) -> np.ndarray:
    """The weak model's soft labels on ``train_w2s``, with a fraction ``noise`` corrupted
    (`w2s_theory.noise.corrupt_labels`: k-class rows are flipped to another class)."""
    w = teachers[("weak", dataset, weak, seed)]
    p = bank.probs(dataset, weak, "train_w2s", seed, w)
    if p.ndim == 2 and noise != 0.0 and cfg.noise_a != -1.0:
        raise ConfigError(f"noise_a: {dataset} has {p.shape[1]} classes, whose weak labels take "
                          f"only symmetric flips (noise_a = -1), got {cfg.noise_a!r}")
    return corrupt_weak_labels(p, noise, noise_a=cfg.noise_a,
                               rng=derive_seed(seed, "noise", dataset, weak, noise))


def train_students(cfg: RealConfig, runs: list[Run], bank: FeatureBank, teachers: dict,
                   cache: Path, progress: bool = True) -> tuple[dict, dict]:
    """Every student of the sweep in one batched computation; ``({run.key: weights}, meta)``."""
    from ...training import HeadSpec, train_head_sets

    path = cache / "students.npz"
    fp = _heads_fingerprint(cfg, bank, [(r.dataset, m) for r in runs for m in (r.weak, r.strong)],
                            teachers)
    stored, meta = _load_weights(path, fp, "student cache")
    if all(r.key in stored for r in runs):
        return {r.key: stored[r.key] for r in runs}, meta
    groups, gindex, specs, targets, tcache = [], {}, [], [], {}
    for r in runs:
        gk = (r.dataset, r.strong, r.seed)
        if gk not in gindex:
            gindex[gk] = len(groups)
            groups.append(bank.rows(r.dataset, r.strong, "train_w2s", r.seed))
        tk = (r.dataset, r.weak, r.seed, r.noise)
        if tk not in tcache:
            tcache[tk] = weak_labels(cfg, bank, teachers, *tk)
        specs.append(HeadSpec(r.loss, r.confidence, derive_seed(r.seed, "student", r.dataset),
                              gindex[gk]))
        targets.append(tcache[tk])
    res = train_head_sets(groups, targets, specs, cfg.train, device=cfg.device,
                          progress=progress, num_threads=cfg.threads or None)
    meta = {"wall_s": res.wall_s, "n_heads": len(specs), "device": res.device}
    weights = {r.key: w for r, w in zip(runs, res.weights)}
    _save_weights(path, weights, meta, fp)
    return weights, meta
