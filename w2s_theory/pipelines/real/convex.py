"""The convex (affine-probability) heads of Theorem 2 beside each student group: their fits,
bound checks and verified cache (`convex_results`)."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from ... import heads
from ...atomic_io import atomic_write_text
from ...bounds import lemma1, theorem2
from ...divergences import smooth
from ...fingerprint import CacheWarning, digest, fingerprint, seal, unseal
from ...kclass import auroc_any, truth
from ...metrics import accuracy
from ...misspecification import theorem2_misspecified
from .bank import FeatureBank
from .config import RealConfig
from .phases import weak_labels
from .runs import Run, head_key, split_coord

__all__ = ["into_box", "T2MIS_FIELDS", "read_convex_cache", "convex_results"]

#: Version of the cache envelope of the convex JSON entries.
_CONVEX_CACHE_FORMAT = 1


def _pca_basis(x: np.ndarray, r: int) -> np.ndarray:
    """Top-``r`` right singular vectors of the centred rows, ``(d, r)``; signs fixed so that
    the largest-magnitude entry of each vector is positive."""
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    v = vt[:r].T.copy()
    i = np.abs(v).argmax(axis=0)
    v *= np.sign(v[i, np.arange(v.shape[1])])
    return v


def into_box(p: np.ndarray, gamma: float) -> tuple[np.ndarray, float]:
    r"""Mix binary affine probabilities with the constant 1/2 just enough that all lie in
    ``[gamma, 1 - gamma]``; returns ``(mixed, violation)``. k-class rows ``(n, k)`` are mixed
    with the uniform ``1/k`` the same way (``m`` = the smallest coordinate).

    ``(1 - lam) p + lam / 2`` with ``lam = (gamma - m) / (1/2 - m)``, ``m = min(p, 1 - p)``,
    is again affine in the features, so it is a member of the mixture-convex class of
    Theorem 2 even when the solver's ``p`` leaves the box by its feasibility tolerance
    (``violation = max(gamma - m, 0)``, typically ~1e-11). Theorem 2 holds for every member.

    Examples:
        >>> q, v = into_box(np.array([0.0999, 0.5, 0.9]), 0.1)
        >>> q.round(6).tolist(), round(v, 6)
        ([0.1, 0.5, 0.8999], 0.0001)
        >>> q, v = into_box(np.array([[0.05, 0.15, 0.8], [0.3, 0.3, 0.4]]), 0.1)
        >>> q.round(6).tolist(), round(v, 6)
        ([[0.1, 0.182353, 0.717647], [0.305882, 0.305882, 0.388235]], 0.05)
    """
    if p.ndim == 2:
        m, k = float(p.min()), p.shape[1]
        if m >= gamma:
            return p, 0.0
        lam = (gamma - m) / (1.0 / k - m)
        return (1.0 - lam) * p + lam / k, gamma - m
    m = float(min(p.min(), 1.0 - p.max()))
    if m >= gamma:
        return p, 0.0
    lam = (gamma - m) / (0.5 - m)
    return (1.0 - lam) * p + 0.5 * lam, gamma - m


#: Columns of `theorem2_misspecified` stored per reverse-KL convex fit (prefix
#: ``cvx_rkl_t2mis_``).
T2MIS_FIELDS = ("epsilon", "guaranteed_gain", "slack", "holds", "gain_positive", "tol", "gain",
                "d_reverse", "tv_to_class", "max_log_ratio", "realizable_slack", "csiszar_term",
                "holder_term", "eps_status", "eps_duality_gap")


def _convex_inputs(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run) -> dict:
    """The arrays of a run group's convex fits (PCA-projected strong features, labels)."""

    g = cfg.gamma
    xs = bank.rows(run.dataset, run.strong, "train_w2s", run.seed)
    xt = bank.rows(run.dataset, run.strong, "test", run.seed)

    r = cfg.convex.pca_dim
    if r and r < xs.shape[1]:
        v = _pca_basis(xs, r)
        xs, xt = xs @ v, xt @ v
    k = bank.n_classes(run.dataset)
    return {
        "xs": xs, "xt": xt,
        "y_fit": truth(bank.labels(run.dataset, "train_w2s", run.seed), k),
        "y_test": truth(bank.labels(run.dataset, "test", run.seed), k),
        "yw": smooth(weak_labels(cfg, bank, teachers, run.dataset, run.weak, run.seed,
                                 run.noise), g),
        "pw_test": smooth(bank.probs(run.dataset, run.weak, "test", run.seed,
                                     teachers[("weak", run.dataset, run.weak, run.seed)]), g),
    }


def _misspecified_columns(a: dict, head, gamma: float) -> dict:
    """``cvx_rkl_t2mis_*``: Theorem 2 without realizability on the fit population, against
    the real (one-hot) labels; an LP failure is recorded in ``cvx_rkl_t2mis_eps_status``."""

    try:
        r = theorem2_misspecified(a["y_fit"], a["yw"], head.probs, a["xs"], gamma, head=head)
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        return {"cvx_rkl_t2mis_eps_status": f"error: {type(exc).__name__}: {exc}"[:200]}
    d = r.to_dict()
    return {f"cvx_rkl_t2mis_{k}": d[k] for k in T2MIS_FIELDS}


def _expected_convex_columns(cfg: RealConfig) -> tuple[list[str], list[str]]:
    """(numeric columns a complete convex cache entry must hold, status columns)."""
    num, status = ["cvx_dim"], ["cvx_ceiling_status"]
    for div in cfg.convex.divergences:
        tag = "cvx_rkl" if div == "reverse_kl" else "cvx_fkl"
        status.append(f"{tag}_status")
        num += [f"{tag}_{c}" for c in ("acc", "d_reverse_fit", "t2fit_truth_slack",
                                       "t2test_truth_slack", "l1test_gap")]
    return num, status


def read_convex_cache(path: Path, cfg: RealConfig, fp: dict | None = None) -> dict | None:
    """A convex cache entry, verified; ``None`` (with one warning naming the file and the
    defect) when it has no fingerprint (an older format), was computed from other inputs than
    ``fp`` (when given), fails its content checksum, is missing a column, holds a non-finite
    number or does not parse -- the caller then refits, so such an entry is never used.

    The entry is a JSON object of the columns plus ``"__cache__": {"fingerprint", "checksum"}``
    (`w2s_theory.fingerprint.seal`); the columns are returned without it."""

    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable convex cache entry ({exc}); refitting", CacheWarning,
                      stacklevel=2)
        return None
    num, status = _expected_convex_columns(cfg)
    problem = None
    if not isinstance(d, dict):
        problem = f"expected a JSON object, got {type(d).__name__}"
    else:
        d, problem = unseal(d, fp)
    if problem is None:
        for c in status:
            if not isinstance(d.get(c), str):
                problem = f"missing or non-text {c!r}"
                break
        else:
            failed = {c.split("_status")[0] for c in status if d[c].startswith("error")}
            for c in num:
                if any(c.startswith(f"{t}_") for t in failed):
                    continue
                v = d.get(c)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    problem = f"column {c!r} is {v!r}, not a finite number"
                    break
    if problem is not None:
        warnings.warn(f"{path}: convex cache entry not used ({problem}); refitting", CacheWarning,
                      stacklevel=2)
        return None
    return d


def _write_convex_cache(path: Path, cols: dict, fp: dict) -> None:
    """Write the convex columns with their fingerprint and checksum (atomic)."""

    atomic_write_text(path, json.dumps(seal(cols, fp), sort_keys=True))


def _convex_fingerprint(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run,
                        key: str) -> dict:
    """What a run group's convex fits are computed from: its key (protocol, coordinates),
    the content of the weak and strong features and the weak teacher's weights."""

    return fingerprint(_CONVEX_CACHE_FORMAT, key=key,
                       strong=bank.fingerprint(run.dataset, run.strong),
                       weak=bank.fingerprint(run.dataset, run.weak),
                       teacher=digest(teachers[("weak", run.dataset, run.weak, run.seed)]))


def convex_results(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run,
                   cache: Path) -> dict:
    """Convex-head columns for a run's group, cached as ``<cache>/<key>.json`` (the key holds
    everything that changes them, so sweeps share the cache).

    Fits, on the strong features of ``train_w2s`` (PCA-projected), the convex ceiling (forward
    KL to the ground truth; made a member of the class by `into_box`) and the convex
    students (reverse / forward KL to the smoothed weak labels); Theorem 2 on the fitting
    population with ``F* =`` the ceiling, tolerance from the solver
    (`w2s_theory.heads.ConvexHead.theorem2_tolerance`), and, for the reverse-KL fit,
    Theorem 2 without realizability against the real labels (``cvx_rkl_t2mis_*``,
    `T2MIS_FIELDS`; ``cfg.convex.misspecified``). A solver failure is recorded in the
    ``*_status`` column and leaves that head's columns empty. A cache entry is validated on
    read (`read_convex_cache`); one made before the misspecified columns existed is
    completed (the reverse-KL fit redone, the rest kept).
    """

    extra = {"source": cfg.sources[run.dataset]} if run.dataset in cfg.sources else {}
    key = head_key(cfg, run.seed, role="convex", dataset=run.dataset, weak=run.weak,
                    strong=run.strong, noise=run.noise, **split_coord(run.split), **extra)
    path = cache / f"{key}.json"
    g = cfg.gamma
    want_mis = cfg.convex.misspecified and "reverse_kl" in cfg.convex.divergences
    fp = _convex_fingerprint(cfg, bank, teachers, run, key)
    cached = read_convex_cache(path, cfg, fp)
    if cached is not None:
        if (not want_mis or "cvx_rkl_t2mis_eps_status" in cached
                or cached["cvx_rkl_status"].startswith("error")):
            return cached
        a = _convex_inputs(cfg, bank, teachers, run)            # complete an older entry
        t0 = time.perf_counter()
        h = heads.fit_convex_head(a["xs"], a["yw"], divergence="reverse_kl", gamma=g)
        cached.update(_misspecified_columns(a, h, g))
        cached["cvx_t2mis_wall_s"] = time.perf_counter() - t0
        cached = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in cached.items()}
        _write_convex_cache(path, cached, fp)
        return cached
    a = _convex_inputs(cfg, bank, teachers, run)
    xs, xt, y_fit, y_test, yw, pw_test = (a[k] for k in ("xs", "xt", "y_fit", "y_test", "yw",
                                                         "pw_test"))
    lab_test = bank.labels(run.dataset, "test", run.seed)
    t0 = time.perf_counter()
    out = {"cvx_dim": int(xs.shape[1])}
    try:
        try:
            ceil = heads.fit_convex_head(xs, y_fit, divergence="forward_kl", gamma=g)
            how = ""
        except Exception:  # noqa: BLE001 - Clarabel occasionally fails on one-hot targets:
            # F* only has to be *a member* of the class; fit the smoothed truth instead.

            ceil = heads.fit_convex_head(xs, smooth(y_fit, g), divergence="forward_kl", gamma=g)
            how = " (fitted to the smoothed truth)"
        ref, viol = into_box(ceil.probs, g)
        ceil_test = ceil.predict(xt)
        out.update({"cvx_ceiling_status": ceil.report.status + how, "cvx_ceiling_violation": viol,
                    "cvx_ceiling_acc": accuracy(lab_test, ceil_test)})
    except Exception as exc:  # noqa: BLE001 - a solver failure is recorded, not fatal
        ceil = ref = ceil_test = None
        out["cvx_ceiling_status"] = f"error: {type(exc).__name__}: {exc}"[:200]
    for div in cfg.convex.divergences:
        tag = "cvx_rkl" if div == "reverse_kl" else "cvx_fkl"
        try:
            h = heads.fit_convex_head(xs, yw, divergence=div, gamma=g)
        except Exception as exc:  # noqa: BLE001
            out[f"{tag}_status"] = f"error: {type(exc).__name__}: {exc}"[:200]
            continue
        ph = h.predict(xt)
        t_fit_t = theorem2(y_fit, yw, h.probs)
        t_test_t = theorem2(y_test, pw_test, ph)
        l1 = lemma1(y_test, pw_test, ph, g)
        out.update({
            f"{tag}_status": h.report.status,
            f"{tag}_duality_gap": h.report.duality_gap,
            f"{tag}_acc": accuracy(lab_test, ph),
            f"{tag}_auroc": auroc_any(lab_test, ph),
            f"{tag}_d_reverse_fit": t_fit_t.d_reverse,
            f"{tag}_t2fit_truth_slack": t_fit_t.slack,
            f"{tag}_t2test_truth_slack": t_test_t.slack,
            f"{tag}_l1test_gap": l1.gap,
            f"{tag}_l1test_holds": l1.holds,
            f"{tag}_test_outside": h.fraction_outside(xt),
        })
        if ceil is not None:
            tol = h.theorem2_tolerance(ref)
            t_fit_c = theorem2(ref, yw, h.probs, tol=tol)
            out.update({
                f"{tag}_t2fit_ceil_slack": t_fit_c.slack,
                f"{tag}_t2fit_ceil_tol": tol,
                f"{tag}_t2fit_ceil_holds": t_fit_c.holds,
                f"{tag}_t2test_ceil_slack": theorem2(ceil_test, pw_test, ph).slack,
            })
        if tag == "cvx_rkl" and want_mis:
            out.update(_misspecified_columns(a, h, g))
    out["cvx_wall_s"] = time.perf_counter() - t0
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}
    _write_convex_cache(path, out, fp)
    return out
