"""Theorem 2: ``R(F_sw) <= R(F_w) - d_reverse`` for the reverse-KL projection (numpy)."""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from .._validation import check_number
from ._blocks import binary_blocks, log_ratio, sums_or_checked, three
from .results import Theorem2Result

_TINY = np.finfo(np.float64).tiny


def _theorem2_kernel(fs, fw, fsw, start, stop):
    """Partial sums of Theorem 2 over rows ``start:stop`` (binary), or ``None`` if invalid.

    With ``l0 = log(F_sw,0/F_w,0)`` and ``dl = logit F_sw - logit F_w`` per row:
    ``KL(F_sw||F_w) = l0 + F_sw,1 dl``, the slack's summand is ``(F*_1 - F_sw,1) dl``,
    and ``R(F_sw) - R(F_w) = -(l0 + F*_1 dl)``. ``KL(F*||F_w)`` is summed directly
    (``0 log 0 = 0``: ``F*`` is floored at the smallest normal float inside the log, which
    changes a term by less than ``1e-305``).
    """
    s0 = sf = ss = rw = 0.0
    for f, w, s, (a, b, t, u, _, one) in binary_blocks(fs, fw, fsw, start, stop):
        if not (f.min() >= 0.0 and f.max() <= 1.0 and w.min() > 0.0 and a.min() > 0.0
                and s.min() > 0.0 and b.min() > 0.0):
            return None
        np.divide(b, a, out=t)
        np.log(t, out=t)                               # l0
        np.divide(s, w, out=u)
        np.log(u, out=u)
        u -= t                                         # dl
        s0 += float(t @ one)
        sf += float(f @ u)
        ss += float(s @ u)
        np.subtract(1.0, f, out=u)                     # F*_0
        if float(f @ u) == 0.0:
            # One-hot block (F*_1 F*_0 = 0 on every row; a sum of non-negative products
            # is 0 only if each is): KL(F*||F_w) = -log F_w,y, one log instead of two.
            # F_w,y = F*_1 F_w,1 + F*_0 F_w,0 exactly (one product is 0, the other exact).
            np.multiply(f, w, out=t)
            np.multiply(u, a, out=b)
            t += b
            np.log(t, out=t)
            rw -= float(t @ one)
            continue
        np.maximum(f, _TINY, out=t)
        t /= w
        np.log(t, out=t)
        rw += float(f @ t)                             # sum F*_1 log(F*_1 / F_w,1)
        np.maximum(u, _TINY, out=b)
        b /= a
        np.log(b, out=b)
        rw += float(u @ b)                             # sum F*_0 log(F*_0 / F_w,0)
    return s0, sf, ss, rw


def _check_positive(name: str, a) -> None:
    if not (float(a.min()) > 0.0 and (a.ndim == 2 or float(a.max()) < 1.0)):
        raise ValueError(f"{name}: probabilities must be strictly positive "
                         f"(a zero makes a KL term infinite)")


def theorem2(f_star, f_weak, f_strong, tol: float = 1e-9) -> Theorem2Result:
    r"""Check ``R(F_sw) <= R(F_w) - d_reverse`` (Theorem 2) on a population.

    ``slack = R(F_w) - d_reverse - R(F_sw) = E_x sum_i (F*_i - F_sw,i) log(F_sw,i / F_w,i)``
    (computed in this log-ratio form, not as a difference of three separately rounded
    averages, so that ``F_sw = F*`` gives ``slack = 0`` exactly). The theorem guarantees
    ``slack >= 0`` when ``F_sw`` is the reverse-KL projection of ``F_w`` onto a
    mixture-convex class containing ``F*``; pass the solver's own accuracy (e.g.
    its duality gap) as ``tol``. On the binary shorthand ``R(F_sw)`` is computed as
    ``R(F_w) + gap`` (clipped at 0) with the exact gap of `lemma1`, which saves two
    logarithms per row and is exact up to a few ulps of ``R(F_w)``.

    Args:
        f_star: truth, shape ``(n, k)`` or ``(n,)``.
        f_weak: weak predictions, same shape, strictly positive coordinates.
        f_strong: strong predictions, same shape, strictly positive coordinates.
        tol: non-negative tolerance; ``holds`` is ``slack >= -tol``.

    Returns:
        `Theorem2Result`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.bounds import theorem2
        >>> # F_sw = F* (realizable, exact projection onto the class {F*}): slack = 0
        >>> r = theorem2(np.array([0.9, 0.2]), np.array([0.6, 0.5]), np.array([0.9, 0.2]))
        >>> abs(r.slack) < 1e-12, r.holds
        (True, True)
    """
    fs, fw, fsw = three(f_star, f_weak, f_strong, values=False)
    t = check_number(tol, "tol", low=0.0)
    n = fs.shape[0]
    sums, (fs, fw, fsw) = sums_or_checked(_theorem2_kernel, fs, fw, fsw, _check_positive)
    if sums is not None:
        s0, sf, ss, rw = sums
        d_rev = (s0 + ss) / n
        slack = (sf - ss) / n
        risk_weak = rw / n
        gap = -(s0 + sf) / n                        # R(F_sw) - R(F_w)
    else:
        logr = log_ratio(fsw, fw)                   # log(F_sw,i / F_w,i)
        d_rev = float(np.vdot(fsw, logr)) / n
        slack = float(np.vdot(fs - fsw, logr)) / n
        risk_weak = float(rel_entr(fs, fw).sum()) / n
        risk_strong = float(rel_entr(fs, fsw).sum()) / n
    if sums is not None:
        risk_strong = risk_weak + gap
    # KL values are non-negative: clip float round-off below zero.
    risk_weak, risk_strong = max(risk_weak, 0.0), max(risk_strong, 0.0)
    d_rev = max(d_rev, 0.0)
    return Theorem2Result(risk_weak=float(risk_weak), risk_strong=float(risk_strong),
                          d_reverse=float(d_rev), slack=float(slack), tol=t, n=int(n),
                          holds=bool(slack >= -t))
