"""Lemma 1: the chain of bounds on ``|R(F_sw) - R(F_w)|``, every stage (numpy)."""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_gamma, n_classes
from ._blocks import binary_blocks, log_ratio, sums_or_checked, three
from .results import Lemma1Result

# Float round-off allowed when comparing mathematically ordered quantities:
# relative to the magnitudes involved, a few thousand ulps of float64.
_REL_ROUNDOFF = 1e-12
# ``1 - p`` is rounded in float64: a coordinate may sit this far (relative) below gamma.
_FLOOR_RTOL = 1e-12


def _lemma1_kernel(fs, fw, fsw, start, stop, floor):
    """Partial sums of Lemma 1 over rows ``start:stop`` (binary), or ``None`` if invalid.

    Per row, with ``l1 = log(F_w,1/F_sw,1)``, ``l0 = log(F_w,0/F_sw,0)`` and ``dl = l1 - l0``:
    ``sum_i F*_i log(F_w,i/F_sw,i) = l0 + F*_1 dl`` (the gap's summand), and the same with
    ``F_w`` (forward KL) and ``F_sw`` (minus the reverse KL) in place of ``F*``. Validation
    (``F*`` in [0, 1], every coordinate of ``F_w``, ``F_sw`` at least ``floor``; NaN fails)
    is fused into the block loop, before any log is taken.
    """
    s0 = sg = sf = sr = stv = sdd = 0.0
    for f, w, s, (a, b, m, t, u, one) in binary_blocks(fs, fw, fsw, start, stop):
        np.minimum(a, b, out=m)
        np.minimum(m, w, out=m)
        np.minimum(m, s, out=m)                        # m(x) = min_i min(F_w,i, F_sw,i)
        if not (m.min() >= floor and f.min() >= 0.0 and f.max() <= 1.0):
            return None
        np.divide(a, b, out=t)
        np.log(t, out=t)                               # l0
        np.divide(w, s, out=u)
        np.log(u, out=u)
        u -= t                                         # dl = l1 - l0
        s0 += float(t @ one)
        sg += float(f @ u)
        sf += float(w @ u)
        sr += float(s @ u)
        np.subtract(w, s, out=t)
        np.abs(t, out=t)                               # TV(x) = |F_w,1 - F_sw,1|
        stv += float(t @ one)
        t /= m
        sdd += float(t @ one)
    return s0, sg, sf, sr, stv, sdd


def lemma1(f_star, f_weak, f_strong, gamma: float = 1e-3) -> Lemma1Result:
    r"""Lemma 1's chain of bounds on ``|R(F_sw) - R(F_w)|``, every stage.

    ``|gap| <= E[TV(x)/m(x)] <= E TV / gamma <= sqrt(d/2) / gamma`` for both
    ``d = d_forward`` and ``d = d_reverse``, where
    ``gap = R(F_sw) - R(F_w) = E_x sum_i F*_i(x) log(F_w,i(x) / F_sw,i(x))`` and
    ``m(x) = min_i min(F_w,i(x), F_sw,i(x))``. Predictions are used as given: a
    coordinate of ``f_weak`` or ``f_strong`` below ``gamma`` is a ``ValueError``
    (use `w2s_theory.divergences.smooth` to meet the assumption).

    Cost: on the binary shorthand, a handful of fused passes over the rows in
    cache-sized blocks (``benchmarks/bench_bounds.py`` measures it).

    Args:
        f_star: truth, shape ``(n, k)`` or ``(n,)``; may be one-hot.
        f_weak: weak predictions, same shape, every coordinate ``>= gamma``.
        f_strong: strong predictions, same shape, every coordinate ``>= gamma``.
        gamma: in ``(0, 1/k]``.

    Returns:
        `Lemma1Result`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.bounds import lemma1
        >>> r = lemma1(np.array([1.0, 0.0]), np.array([0.7, 0.4]), np.array([0.8, 0.3]), gamma=0.1)
        >>> round(r.gap, 6), round(r.data_dependent_bound, 6), round(r.tv_bound, 6), r.holds
        (-0.143841, 0.416667, 1.0, True)
    """
    fs, fw, fsw = three(f_star, f_weak, f_strong, values=False)
    k = n_classes(fs)
    g = check_gamma(gamma, k)
    n = fs.shape[0]
    floor = g * (1.0 - _FLOOR_RTOL)

    def check(name, a):
        lo = float(a.min()) if a.ndim == 2 else min(float(a.min()), 1.0 - float(a.max()))
        _check_floor(name, lo, g, floor)

    sums, (fs, fw, fsw) = sums_or_checked(_lemma1_kernel, fs, fw, fsw, check, floor)
    if sums is not None:
        s0, sg, sf, sr, stv, sdd = sums
        gap, d_forward, d_reverse = (s0 + sg) / n, (s0 + sf) / n, -(s0 + sr) / n
        tv_mean, dd = stv / n, sdd / n
    else:
        logr = log_ratio(fw, fsw)                   # log(F_w,i / F_sw,i)
        gap = float(np.vdot(fs, logr)) / n
        d_forward = float(np.vdot(fw, logr)) / n
        d_reverse = -float(np.vdot(fsw, logr)) / n
        diff = np.abs(fw - fsw)
        tv = 0.5 * diff.sum(axis=1)
        tv_mean = float(tv.sum()) / n
        m = np.minimum(fw, fsw).min(axis=1)
        dd = float((tv / m).sum()) / n
    # KL is non-negative; clip float round-off below zero before the square root.
    d_forward, d_reverse = max(d_forward, 0.0), max(d_reverse, 0.0)
    tv_bound = tv_mean / g
    sq_f = math.sqrt(d_forward / 2.0) / g
    sq_r = math.sqrt(d_reverse / 2.0) / g
    # Round-off allowances scale with the magnitudes involved. A KL of nearly equal rows is
    # a difference of first-order terms: its absolute error is a few ulps of
    # sum_i (F_w,i + F_sw,i) |log(F_w,i/F_sw,i)| <= 4 TV(x)/m(x), i.e. of 4 dd, which the
    # square root amplifies when d itself is that small.
    slack = _REL_ROUNDOFF * (1.0 + abs(gap) + dd)
    err_d = _REL_ROUNDOFF * (1.0 + 4.0 * dd)
    a = abs(gap) - slack
    holds = bool(dd >= a and tv_bound >= a
                 and math.sqrt((d_forward + err_d) / 2.0) / g >= a
                 and math.sqrt((d_reverse + err_d) / 2.0) / g >= a)
    return Lemma1Result(
        gap=float(gap), d_forward=float(d_forward), d_reverse=float(d_reverse),
        data_dependent_bound=float(dd), tv_bound=float(tv_bound),
        sqrt_bound_forward=float(sq_f), sqrt_bound_reverse=float(sq_r),
        gamma=g, n=int(n), holds=holds,
    )


def _check_floor(name: str, lo: float, gamma: float, floor: float) -> None:
    if not lo >= floor:
        raise ValueError(
            f"{name}: smallest probability {lo:.6g} is below gamma={gamma:g}; Lemma 1 needs every "
            f"coordinate >= gamma (smooth the predictions with w2s_theory.divergences.smooth, "
            f"or pass a smaller gamma)"
        )
