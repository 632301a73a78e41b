"""Lemma 1 and Theorem 2 of arXiv:2502.11107, checked on a finite population (numpy).

Notation (``docs/theory.md``): ``F*`` the truth, ``F_w`` the weak model, ``F_sw`` the
strong student; rows are distributions, shape ``(n, k)``, or the binary
shorthand ``(n,)`` = P(class 1). The population is the empirical measure of the
``n`` rows, so every statement holds *exactly* on it, not only in expectation.

* Risk ``R(F) = E_x KL(F*(x) || F(x))`` (KL form; the CE form differs by the
  constant ``E H(F*)``, so risk *differences* agree).
* Disagreements ``d_forward = E KL(F_w || F_sw)``, ``d_reverse = E KL(F_sw || F_w)``.

**Lemma 1** (either direction): if every coordinate of ``F_w`` and ``F_sw`` is
``>= gamma``, then

``|R(F_sw) - R(F_w)| <= E TV / gamma <= sqrt(d / 2) / gamma``  for ``d = d_forward, d_reverse``,

and the data-dependent ``E[TV(x) / m(x)]``, ``m(x) = min_i min(F_w,i(x), F_sw,i(x))``,
sits between ``|gap|`` and ``E TV / gamma``.

**Theorem 2**: if ``F_sw`` is the reverse-KL projection of ``F_w`` onto a
mixture-convex class containing ``F*``, then ``R(F_sw) <= R(F_w) - d_reverse``.

Performance: on the binary shorthand both checks run fused passes over cache-sized
blocks (validation included), on fixed segments of rows that worker threads can share
(``W2S_THEORY_THREADS``, default 1); partial sums are added in segment order, so the
result does not depend on the thread count.
``benchmarks/bench_bounds.py`` reports the cost against one numpy pass.

Input and tolerance: arrays go through `w2s_theory._validation` (numpy arrays,
lists, CPU tensors; ``requires_grad`` tensors are detached). k-class rows may sum to 1
within ``ROW_SUM_ATOL`` (``1e-6``) and are renormalised at the boundary, so Lemma 1's
chain (``holds``) and Theorem 2's slack are those of the nearest distributions: e.g.
``lemma1([[1, 0]], [[.5, .5]], [[.5 - 8e-7, .5]], gamma=1e-3).holds`` is true. The
floor ``gamma`` is checked on the renormalised rows (what the bounds use).

References
----------
Yao et al., arXiv:2502.11107 (2025), Lemma 1 and Theorem 2.
Csiszár, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.special import rel_entr

from ._validation import (
    as_prob_array,
    check_broadcast,
    check_gamma,
    check_gammas,
    check_int,
    check_number,
    check_numbers,
    check_probs,
    check_same_shape,
    n_classes,
)
from .export import TableExport

__all__ = [
    "Lemma1Result",
    "Theorem2Result",
    "lemma1",
    "theorem2",
    "lemma1_constant",
    "strong_risk_upper_bound",
    "strong_risk_lower_bound",
    "theorem2_risk_bound",
]

# Float round-off allowed when comparing mathematically ordered quantities:
# relative to the magnitudes involved, a few thousand ulps of float64.
_REL_ROUNDOFF = 1e-12
# ``1 - p`` is rounded in float64: a coordinate may sit this far (relative) below gamma.
_FLOOR_RTOL = 1e-12
#: Rows per block of the binary fast paths: the block's scratch arrays (6 x 64 KiB)
#: stay in the CPU's L2 cache, so the fused passes run at cache speed, not memory speed.
#: Below 10^4 also because OpenBLAS hands longer dot products to its own threads, whose
#: wake-up costs more than the product (10x slower overall on a busy machine).
_BLOCK = 1 << 13
#: Rows per segment: the unit of work of one thread; fixed, so results do not depend
#: on the thread count.
_SEGMENT = 8 * _BLOCK
#: Default thread count of the binary fast paths (``W2S_THEORY_THREADS`` overrides). One:
#: on a shared 2-core machine a second thread measured no faster (the other core is
#: rarely free), and results do not depend on it anyway.
_DEFAULT_THREADS = 1
_TINY = np.finfo(np.float64).tiny
_TLS = threading.local()


class _Result(TableExport):
    """Mixin: readable table via ``str()``, plain dict via ``to_dict()``, ``to_latex()``, ``to_markdown()``."""

    def to_dict(self) -> dict:
        """The fields as a plain ``dict`` (floats, ints, bools), in declaration order."""
        return asdict(self)

    def __str__(self) -> str:
        rows = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                s = str(v)
            elif isinstance(v, float):
                s = f"{v:.6g}"
            else:
                s = str(v)
            rows.append((f.name, s))
        w = max(len(k) for k, _ in rows)
        title = type(self).__name__
        lines = [title, "-" * max(len(title), w + 14)]
        lines += [f"{k:<{w}}  {s:>12}" for k, s in rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Lemma1Result(_Result):
    """Every stage of Lemma 1's chain; all values are population averages over the rows.

    Attributes:
        gap: exact ``R(F_sw) - R(F_w) = E_x sum_i F*_i log(F_w,i / F_sw,i)`` (KL or CE
            form alike; the risks themselves are `theorem2`'s, or
            `w2s_theory.divergences.kl` averaged).
        d_forward, d_reverse: ``E KL(F_w||F_sw)``, ``E KL(F_sw||F_w)``.
        data_dependent_bound: ``E[TV(x) / m(x)]``.
        tv_bound: ``E TV / gamma``.
        sqrt_bound_forward, sqrt_bound_reverse: ``sqrt(d / 2) / gamma``.
        gamma: the ``gamma`` used; n: number of rows.
        holds: every stage is ``>= |gap|`` up to float round-off: a relative ``1e-12`` of
            the magnitudes, and for the square-root stages an absolute ``1e-12 (1 + 4 dd)``
            on ``d`` (the round-off of a KL between nearly equal predictions, which the
            square root amplifies).
    """

    gap: float
    d_forward: float
    d_reverse: float
    data_dependent_bound: float
    tv_bound: float
    sqrt_bound_forward: float
    sqrt_bound_reverse: float
    gamma: float
    n: int
    holds: bool

    def stages(self) -> dict:
        """The four upper bounds on ``|gap|``, tightest first."""
        return {
            "data_dependent": self.data_dependent_bound,
            "tv": self.tv_bound,
            "sqrt_forward": self.sqrt_bound_forward,
            "sqrt_reverse": self.sqrt_bound_reverse,
        }

    def tightness(self) -> dict:
        """Each stage divided by ``|gap|`` (``>= 1`` when the lemma holds; ``inf`` if gap = 0)."""
        a = abs(self.gap)
        return {k: (v / a if a > 0 else math.inf) for k, v in self.stages().items()}


@dataclass(frozen=True)
class Theorem2Result(_Result):
    """Theorem 2's inequality ``R(F_sw) <= R(F_w) - d_reverse`` on a population.

    Attributes:
        risk_weak, risk_strong: ``R(F_w)``, ``R(F_sw)`` (KL form).
        d_reverse: ``E KL(F_sw || F_w)``.
        slack: ``risk_weak - d_reverse - risk_strong`` (``>= 0`` when the theorem applies).
        tol: tolerance used; holds: ``slack >= -tol``; n: number of rows.
    """

    risk_weak: float
    risk_strong: float
    d_reverse: float
    slack: float
    tol: float
    n: int
    holds: bool


def _three(f_star, f_weak, f_strong, *, values: bool = True):
    """Convert and check the three predictor arrays (values too, unless ``values=False``)."""
    def conv(x, name):
        return check_probs(x, name, renormalize=True) if values else as_prob_array(x, name)

    fs = conv(f_star, "f_star")
    fw = conv(f_weak, "f_weak")
    fsw = conv(f_strong, "f_strong")
    check_same_shape(f_star=fs, f_weak=fw, f_strong=fsw)
    return fs, fw, fsw


def _threads() -> int:
    """Worker threads for the binary fast paths: ``W2S_THEORY_THREADS`` (default 1)."""
    env = os.environ.get("W2S_THEORY_THREADS", "").strip()
    if not env:
        return _DEFAULT_THREADS
    try:
        v = int(env)
    except ValueError:
        v = 0
    if v < 1:
        raise ValueError(f"W2S_THEORY_THREADS: must be an integer >= 1, got {env!r}")
    return v


def _scratch() -> np.ndarray:
    """This thread's scratch block: rows 0-4 are work arrays, row 5 holds ones (sums as dots)."""
    buf = getattr(_TLS, "buf", None)
    if buf is None:
        buf = _TLS.buf = np.empty((6, _BLOCK))
        buf[5] = 1.0
    return buf


def _segment_sums(kernel, arrays, n: int, *args):
    """Run ``kernel(*arrays, start, stop, *args)`` on fixed segments of the rows; combine in order.

    Segments are ``_SEGMENT`` rows long whatever the thread count, and their partial sums
    are added in segment order, so the result is bit-for-bit the same with 1 or 8 threads.
    Returns the summed tuple, or ``None`` if a segment reported invalid values.
    """
    bounds_ = [(i, min(i + _SEGMENT, n)) for i in range(0, n, _SEGMENT)]
    out: list = [None] * len(bounds_)
    workers = min(_threads(), len(bounds_))

    def work(ids):
        for s in ids:
            out[s] = kernel(*arrays, *bounds_[s], *args)

    if workers <= 1:
        work(range(len(bounds_)))
    else:
        errors: list = []

        def run(ids):
            try:
                work(ids)
            except BaseException as exc:  # pragma: no cover - re-raised below
                errors.append(exc)

        helpers = [threading.Thread(target=run, args=(range(w, len(bounds_), workers),), daemon=True)
                   for w in range(1, workers)]
        for t in helpers:
            t.start()
        run(range(0, len(bounds_), workers))
        for t in helpers:
            t.join()
        if errors:  # pragma: no cover
            raise errors[0]
    if any(r is None for r in out):
        return None
    return tuple(math.fsum(col) for col in zip(*out))


def _lemma1_kernel(fs, fw, fsw, start, stop, floor):
    """Partial sums of Lemma 1 over rows ``start:stop`` (binary), or ``None`` if invalid.

    Per row, with ``l1 = log(F_w,1/F_sw,1)``, ``l0 = log(F_w,0/F_sw,0)`` and ``dl = l1 - l0``:
    ``sum_i F*_i log(F_w,i/F_sw,i) = l0 + F*_1 dl`` (the gap's summand), and the same with
    ``F_w`` (forward KL) and ``F_sw`` (minus the reverse KL) in place of ``F*``. Validation
    (``F*`` in [0, 1], every coordinate of ``F_w``, ``F_sw`` at least ``floor``; NaN fails)
    is fused into the block loop, before any log is taken.
    """
    buf = _scratch()
    full = tuple(buf)                                  # views reused by every full block
    s0 = sg = sf = sr = stv = sdd = 0.0
    for i in range(start, stop, _BLOCK):
        j = min(i + _BLOCK, stop)
        f, w, s = fs[i:j], fw[i:j], fsw[i:j]
        a, b, m, t, u, one = full if j - i == _BLOCK else buf[:, : j - i]
        np.subtract(1.0, w, out=a)                     # F_w,0
        np.subtract(1.0, s, out=b)                     # F_sw,0
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
    fs, fw, fsw = _three(f_star, f_weak, f_strong, values=False)
    k = n_classes(fs)
    g = check_gamma(gamma, k)
    n = fs.shape[0]
    floor = g * (1.0 - _FLOOR_RTOL)
    sums = _segment_sums(_lemma1_kernel, (fs, fw, fsw), n, floor) if fs.ndim == 1 else None
    if sums is None:
        # Full validation: raises the precise error for the binary fast path's failure,
        # and is the validation of the k-class path.
        fs, fw, fsw = _three(fs, fw, fsw)
        for name, a in (("f_weak", fw), ("f_strong", fsw)):
            lo = float(a.min()) if a.ndim == 2 else min(float(a.min()), 1.0 - float(a.max()))
            _check_floor(name, lo, g, floor)
    if sums is not None:
        s0, sg, sf, sr, stv, sdd = sums
        gap, d_forward, d_reverse = (s0 + sg) / n, (s0 + sf) / n, -(s0 + sr) / n
        tv_mean, dd = stv / n, sdd / n
    elif fs.ndim == 1:  # pragma: no cover - the fast path failed but full validation passed
        raise ValueError("f_star, f_weak, f_strong: invalid values")
    else:
        logr = np.log(fw)
        logr -= np.log(fsw)                         # log(F_w,i / F_sw,i)
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


def _theorem2_kernel(fs, fw, fsw, start, stop):
    """Partial sums of Theorem 2 over rows ``start:stop`` (binary), or ``None`` if invalid.

    With ``l0 = log(F_sw,0/F_w,0)`` and ``dl = logit F_sw - logit F_w`` per row:
    ``KL(F_sw||F_w) = l0 + F_sw,1 dl``, the slack's summand is ``(F*_1 - F_sw,1) dl``,
    and ``R(F_sw) - R(F_w) = -(l0 + F*_1 dl)``. ``KL(F*||F_w)`` is summed directly
    (``0 log 0 = 0``: ``F*`` is floored at the smallest normal float inside the log, which
    changes a term by less than ``1e-305``).
    """
    buf = _scratch()
    full = tuple(buf)                                  # views reused by every full block
    s0 = sf = ss = rw = 0.0
    for i in range(start, stop, _BLOCK):
        j = min(i + _BLOCK, stop)
        f, w, s = fs[i:j], fw[i:j], fsw[i:j]
        a, b, t, u, _, one = full if j - i == _BLOCK else buf[:, : j - i]
        np.subtract(1.0, w, out=a)                     # F_w,0
        np.subtract(1.0, s, out=b)                     # F_sw,0
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
    fs, fw, fsw = _three(f_star, f_weak, f_strong, values=False)
    t = check_number(tol, "tol", low=0.0)
    n = fs.shape[0]
    sums = _segment_sums(_theorem2_kernel, (fs, fw, fsw), n) if fs.ndim == 1 else None
    if sums is None:
        fs, fw, fsw = _three(fs, fw, fsw)
        for name, a in (("f_weak", fw), ("f_strong", fsw)):
            if not (float(a.min()) > 0.0 and (a.ndim == 2 or float(a.max()) < 1.0)):
                raise ValueError(f"{name}: probabilities must be strictly positive "
                                 f"(a zero makes a KL term infinite)")
    if sums is not None:
        s0, sf, ss, rw = sums
        d_rev = (s0 + ss) / n
        slack = (sf - ss) / n
        risk_weak = rw / n
        gap = -(s0 + sf) / n                        # R(F_sw) - R(F_w)
    elif fs.ndim == 1:  # pragma: no cover - the fast path failed but full validation passed
        raise ValueError("f_star, f_weak, f_strong: invalid values")
    else:
        logr = np.log(fsw)
        logr -= np.log(fw)                          # log(F_sw,i / F_w,i)
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


# ----------------------------------------------------------------------------- scalar calculators
# Each calculator takes numbers or arrays (one call draws a bound curve): numbers in, a Python
# float out; any array in, a float64 array of the broadcast shape out, equal entry by entry to
# the calls on the numbers (the same float64 operations in the same order).
def _out(x, shape):
    """A Python float when every input was a number, else an array of the broadcast shape."""
    if isinstance(x, np.ndarray) or shape != ():
        return np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()
    return float(x)


def lemma1_constant(gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1's constant ``C_1 = 1 / (gamma sqrt(2))``, for one floor or an array of them.

    Args:
        gamma: probability floor in ``(0, 1/k]``: a number or an array (list, numpy array,
            CPU tensor) of them.
        k: number of classes. It only sets the allowed range of ``gamma`` (every coordinate
            of a k-class distribution can be ``>= gamma`` only if ``gamma <= 1/k``); the
            constant itself does not depend on it.

    Returns:
        A ``float`` for a number, a float64 array of ``gamma``'s shape for an array.

    Examples:
        >>> from w2s_theory.bounds import lemma1_constant
        >>> round(lemma1_constant(1e-3), 3)
        707.107
        >>> lemma1_constant([0.5, 0.25, 0.1]).round(3)
        array([1.414, 2.828, 7.071])
    """
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(gamma=g)
    return _out(1.0 / (g * math.sqrt(2.0)), shape)


def _risk_d(risk_weak, disagreement, name="disagreement"):
    r = check_numbers(risk_weak, "risk_weak", low=0.0)
    d = check_numbers(disagreement, name, low=0.0)
    return r, d


def strong_risk_upper_bound(risk_weak: float | np.ndarray, disagreement: float | np.ndarray,
                            gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1 upper bound: ``R(F_sw) <= R(F_w) + sqrt(d / 2) / gamma``.

    Valid for either disagreement direction, when all predictions are ``>= gamma``. The
    three numeric arguments broadcast against each other (numpy rules), so one call gives a
    whole bound curve, e.g. over a grid of disagreements.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        disagreement: ``d >= 0`` (forward or reverse KL); a number or an array.
        gamma: probability floor in ``(0, 1/k]``; a number or an array.
        k: number of classes; it only sets the allowed range of ``gamma`` (see
            `lemma1_constant`).

    Returns:
        A ``float`` when every argument is a number, else a float64 array of the broadcast
        shape.

    Examples:
        >>> from w2s_theory.bounds import strong_risk_upper_bound
        >>> round(strong_risk_upper_bound(0.3, 0.02, 0.1), 6)
        1.3
        >>> strong_risk_upper_bound(0.3, [0.0, 0.0002, 0.02], 0.1).round(6)
        array([0.3, 0.4, 1.3])
    """
    r, d = _risk_d(risk_weak, disagreement)
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(risk_weak=r, disagreement=d, gamma=g)
    return _out(r + (1.0 / (g * math.sqrt(2.0))) * np.sqrt(d), shape)


def strong_risk_lower_bound(risk_weak: float | np.ndarray, disagreement: float | np.ndarray,
                            gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1 lower bound: ``R(F_sw) >= R(F_w) - sqrt(d / 2) / gamma``.

    Not clipped at 0 (a KL risk is ``>= 0`` anyway; a negative value says the bound is
    vacuous). Arguments and broadcasting as in `strong_risk_upper_bound`.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        disagreement: ``d >= 0`` (forward or reverse KL); a number or an array.
        gamma: probability floor in ``(0, 1/k]``; a number or an array.
        k: number of classes; it only sets the allowed range of ``gamma``.

    Returns:
        A ``float`` when every argument is a number, else a float64 array.

    Examples:
        >>> from w2s_theory.bounds import strong_risk_lower_bound
        >>> round(strong_risk_lower_bound(0.3, 0.0002, 0.1), 6)
        0.2
        >>> strong_risk_lower_bound(0.3, 0.0002, [0.1, 0.2]).round(6)
        array([0.2 , 0.25])
    """
    r, d = _risk_d(risk_weak, disagreement)
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(risk_weak=r, disagreement=d, gamma=g)
    return _out(r - (1.0 / (g * math.sqrt(2.0))) * np.sqrt(d), shape)


def theorem2_risk_bound(risk_weak: float | np.ndarray,
                        d_reverse: float | np.ndarray) -> float | np.ndarray:
    r"""Theorem 2's guaranteed risk: ``R(F_sw) <= R(F_w) - d_reverse``.

    Holds for the reverse-KL projection onto a mixture-convex class containing ``F*``.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        d_reverse: ``E KL(F_sw || F_w) >= 0``; a number or an array (broadcast).

    Returns:
        A ``float`` when both are numbers, else a float64 array.

    Examples:
        >>> from w2s_theory.bounds import theorem2_risk_bound
        >>> theorem2_risk_bound(0.5, 0.125)
        0.375
        >>> theorem2_risk_bound(0.5, [0.0, 0.125, 0.25])
        array([0.5  , 0.375, 0.25 ])
    """
    r, d = _risk_d(risk_weak, d_reverse, "d_reverse")
    shape = check_broadcast(risk_weak=r, d_reverse=d)
    return _out(r - d, shape)
