"""Lemma 1 and Theorem 2 of arXiv:2502.11107, checked on a finite population (numpy).

Notation (``THEORY.md``): ``F*`` the truth, ``F_w`` the weak model, ``F_sw`` the
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

References
----------
Yao et al., arXiv:2502.11107 (2025), Lemma 1 and Theorem 2.
Csiszár, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy.special import entr, rel_entr

from ._validation import check_gamma, check_probs, check_same_shape, check_scalar, n_classes

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
# relative to the magnitudes involved, a few hundred ulps of float64.
_REL_ROUNDOFF = 1e-12


class _Result:
    """Mixin: readable table via ``str()``, plain dict via ``to_dict()``."""

    def to_dict(self) -> dict:
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
        gap: exact ``R(F_sw) - R(F_w)``.
        risk_weak, risk_strong: ``R(F_w)``, ``R(F_sw)`` in KL form.
        d_forward, d_reverse: ``E KL(F_w||F_sw)``, ``E KL(F_sw||F_w)``.
        data_dependent_bound: ``E[TV(x) / m(x)]``.
        tv_bound: ``E TV / gamma``.
        sqrt_bound_forward, sqrt_bound_reverse: ``sqrt(d / 2) / gamma``.
        gamma: the ``gamma`` used; n: number of rows.
        holds: every stage is ``>= |gap|`` (up to float round-off).
    """

    gap: float
    risk_weak: float
    risk_strong: float
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


def _three(f_star, f_weak, f_strong):
    fs = check_probs(f_star, "f_star")
    fw = check_probs(f_weak, "f_weak")
    fsw = check_probs(f_strong, "f_strong")
    check_same_shape(f_star=fs, f_weak=fw, f_strong=fsw)
    return fs, fw, fsw


def lemma1(f_star, f_weak, f_strong, gamma: float = 1e-3) -> Lemma1Result:
    r"""Lemma 1's chain of bounds on ``|R(F_sw) - R(F_w)|``, every stage.

    ``|gap| <= E[TV(x)/m(x)] <= E TV / gamma <= sqrt(d/2) / gamma`` for both
    ``d = d_forward`` and ``d = d_reverse``. Predictions are used as given: a
    coordinate of ``f_weak`` or ``f_strong`` below ``gamma`` is a ``ValueError``
    (use :func:`w2s_theory.divergences.smooth` to meet the assumption).

    Args:
        f_star: truth, shape ``(n, k)`` or ``(n,)``; may be one-hot.
        f_weak: weak predictions, same shape, every coordinate ``>= gamma``.
        f_strong: strong predictions, same shape, every coordinate ``>= gamma``.
        gamma: in ``(0, 1/k]``.

    Returns:
        :class:`Lemma1Result`.

    Example:
        >>> import numpy as np
        >>> from w2s_theory.bounds import lemma1
        >>> r = lemma1(np.array([1.0, 0.0]), np.array([0.7, 0.4]), np.array([0.8, 0.3]), gamma=0.1)
        >>> round(r.gap, 6), round(r.tv_bound, 6), r.holds
        (-0.143841, 1.0, True)
    """
    fs, fw, fsw = _three(f_star, f_weak, f_strong)
    k = n_classes(fs)
    g = check_gamma(gamma, k)
    n = fs.shape[0]
    if fs.ndim == 1:
        # Binary fast path: two log passes give gap, d_forward and d_reverse.
        lo_w, hi_w = float(fw.min()), float(fw.max())
        lo_s, hi_s = float(fsw.min()), float(fsw.max())
        _check_floor("f_weak", min(lo_w, 1.0 - hi_w), g)
        _check_floor("f_strong", min(lo_s, 1.0 - hi_s), g)
        l1 = np.log(fw / fsw)                      # log(F_w,1 / F_sw,1)
        l0 = np.log((1.0 - fw) / (1.0 - fsw))       # log(F_w,0 / F_sw,0)
        sum_l0 = float(l0.sum())
        np.subtract(l1, l0, out=l1)                 # l1 <- l1 - l0
        gap = (sum_l0 + float(fs @ l1)) / n
        d_forward = (sum_l0 + float(fw @ l1)) / n
        d_reverse = -(sum_l0 + float(fsw @ l1)) / n
        diff = np.abs(fw - fsw)                     # TV(x) in the binary case
        tv_mean = float(diff.sum()) / n
        m = np.minimum(fw, fsw)
        np.minimum(m, 1.0 - np.maximum(fw, fsw), out=m)
        dd = float((diff / m).sum()) / n
        risk_weak, risk_strong = _risks_binary(fs, fw, fsw)
    else:
        _check_floor("f_weak", float(fw.min()), g)
        _check_floor("f_strong", float(fsw.min()), g)
        logr = np.log(fw) - np.log(fsw)
        gap = float((fs * logr).sum()) / n
        d_forward = float(rel_entr(fw, fsw).sum()) / n
        d_reverse = float(rel_entr(fsw, fw).sum()) / n
        tv = 0.5 * np.abs(fw - fsw).sum(axis=1)
        tv_mean = float(tv.sum()) / n
        m = np.minimum(fw, fsw).min(axis=1)
        dd = float((tv / m).sum()) / n
        risk_weak = float(rel_entr(fs, fw).sum()) / n
        risk_strong = float(rel_entr(fs, fsw).sum()) / n
    # KL is non-negative; clip float round-off below zero before the square root.
    d_forward, d_reverse = max(d_forward, 0.0), max(d_reverse, 0.0)
    tv_bound = tv_mean / g
    sq_f = math.sqrt(d_forward / 2.0) / g
    sq_r = math.sqrt(d_reverse / 2.0) / g
    # Round-off allowance scales with the magnitudes involved.
    slack = _REL_ROUNDOFF * (1.0 + abs(gap) + dd)
    a = abs(gap)
    holds = bool(dd >= a - slack and tv_bound >= a - slack
                 and sq_f >= a - slack and sq_r >= a - slack)
    return Lemma1Result(
        gap=float(gap), risk_weak=float(risk_weak), risk_strong=float(risk_strong),
        d_forward=float(d_forward), d_reverse=float(d_reverse), data_dependent_bound=float(dd),
        tv_bound=float(tv_bound), sqrt_bound_forward=float(sq_f), sqrt_bound_reverse=float(sq_r),
        gamma=g, n=int(n), holds=holds,
    )


def _check_floor(name: str, lo: float, gamma: float) -> None:
    # 1 - p is rounded in float64: allow a relative 1e-12 below gamma.
    if lo < gamma * (1.0 - 1e-12):
        raise ValueError(
            f"{name}: smallest probability {lo:.6g} is below gamma={gamma:g}; Lemma 1 needs every "
            f"coordinate >= gamma (smooth the predictions with w2s_theory.divergences.smooth, "
            f"or pass a smaller gamma)"
        )


def _risks_binary(fs, fw, fsw):
    """E KL(F*||F_w), E KL(F*||F_sw) for the binary shorthand."""
    n = fs.shape[0]
    h = float(entr(fs).sum() + entr(1.0 - fs).sum())
    ce_w = -float(fs @ np.log(fw) + (1.0 - fs) @ np.log1p(-fw))
    ce_s = -float(fs @ np.log(fsw) + (1.0 - fs) @ np.log1p(-fsw))
    return (ce_w - h) / n, (ce_s - h) / n


def theorem2(f_star, f_weak, f_strong, tol: float = 1e-9) -> Theorem2Result:
    r"""Check ``R(F_sw) <= R(F_w) - d_reverse`` (Theorem 2) on a population.

    ``slack = R(F_w) - d_reverse - R(F_sw) = E_x sum_i (F*_i - F_sw,i) log(F_sw,i / F_w,i)``
    (computed in this form, which has no cancellation). The theorem guarantees
    ``slack >= 0`` when ``F_sw`` is the reverse-KL projection of ``F_w`` onto a
    mixture-convex class containing ``F*``; pass the solver's own accuracy (e.g.
    its duality gap) as ``tol``.

    Args:
        f_star: truth, shape ``(n, k)`` or ``(n,)``.
        f_weak: weak predictions, same shape, strictly positive coordinates.
        f_strong: strong predictions, same shape, strictly positive coordinates.
        tol: non-negative tolerance; ``holds`` is ``slack >= -tol``.

    Returns:
        :class:`Theorem2Result`.

    Example:
        >>> import numpy as np
        >>> from w2s_theory.bounds import theorem2
        >>> # F_sw = F* (realizable, exact projection onto the class {F*}): slack = 0
        >>> r = theorem2(np.array([0.9, 0.2]), np.array([0.6, 0.5]), np.array([0.9, 0.2]))
        >>> abs(r.slack) < 1e-12, r.holds
        (True, True)
    """
    fs, fw, fsw = _three(f_star, f_weak, f_strong)
    t = check_scalar(tol, "tol", low=0.0)
    n = fs.shape[0]
    if fs.ndim == 1:
        for name, a in (("f_weak", fw), ("f_strong", fsw)):
            if float(a.min()) <= 0.0 or float(a.max()) >= 1.0:
                raise ValueError(f"{name}: probabilities must lie strictly inside (0, 1) "
                                 f"(a zero makes a KL term infinite)")
        lw, lw0 = np.log(fw), np.log1p(-fw)
        ls, ls0 = np.log(fsw), np.log1p(-fsw)
        h = float(entr(fs).sum() + entr(1.0 - fs).sum())
        ce_w = -float(fs @ lw + (1.0 - fs) @ lw0)
        ce_s = -float(fs @ ls + (1.0 - fs) @ ls0)
        dlog = (ls - lw) - (ls0 - lw0)              # log-odds(F_sw) - log-odds(F_w)
        d_rev = float(fsw @ dlog + (ls0 - lw0).sum())
        slack = float((fs - fsw) @ dlog)
        risk_weak, risk_strong = (ce_w - h) / n, (ce_s - h) / n
    else:
        for name, a in (("f_weak", fw), ("f_strong", fsw)):
            if float(a.min()) <= 0.0:
                raise ValueError(f"{name}: probabilities must be strictly positive "
                                 f"(a zero makes a KL term infinite)")
        logr = np.log(fsw) - np.log(fw)
        d_rev = float((fsw * logr).sum())
        slack = float(((fs - fsw) * logr).sum())
        risk_weak = float(rel_entr(fs, fw).sum()) / n
        risk_strong = float(rel_entr(fs, fsw).sum()) / n
    slack /= n
    d_rev = max(d_rev / n, 0.0)
    return Theorem2Result(risk_weak=float(risk_weak), risk_strong=float(risk_strong),
                          d_reverse=float(d_rev), slack=float(slack), tol=t, n=int(n),
                          holds=bool(slack >= -t))


# ----------------------------------------------------------------------------- scalar calculators
def lemma1_constant(gamma: float, k: int = 2) -> float:
    r"""Lemma 1's constant :math:`C_1 = 1 / (\gamma\sqrt2)`.

    Example:
        >>> from w2s_theory.bounds import lemma1_constant
        >>> round(lemma1_constant(1e-3), 3)
        707.107
    """
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k: must be an integer >= 2, got {k!r}")
    return 1.0 / (check_gamma(gamma, k) * math.sqrt(2.0))


def _risk_d(risk_weak, disagreement):
    r = check_scalar(risk_weak, "risk_weak", low=0.0)
    d = check_scalar(disagreement, "disagreement", low=0.0)
    return r, d


def strong_risk_upper_bound(risk_weak: float, disagreement: float, gamma: float, k: int = 2) -> float:
    r"""Lemma 1 upper bound: :math:`R(F_{sw}) \le R(F_w) + \sqrt{d/2}/\gamma`.

    Valid for either disagreement direction, when all predictions are ``>= gamma``.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form). disagreement: ``d >= 0`` (forward or reverse KL).
        gamma: probability floor in ``(0, 1/k]``. k: number of classes.

    Example:
        >>> from w2s_theory.bounds import strong_risk_upper_bound
        >>> round(strong_risk_upper_bound(0.3, 0.02, 0.1), 6)
        1.3
    """
    r, d = _risk_d(risk_weak, disagreement)
    return r + lemma1_constant(gamma, k) * math.sqrt(d)


def strong_risk_lower_bound(risk_weak: float, disagreement: float, gamma: float, k: int = 2) -> float:
    r"""Lemma 1 lower bound: :math:`R(F_{sw}) \ge R(F_w) - \sqrt{d/2}/\gamma`.

    Not clipped at 0 (a KL risk is ``>= 0`` anyway; a negative value says the bound is vacuous).

    Example:
        >>> from w2s_theory.bounds import strong_risk_lower_bound
        >>> round(strong_risk_lower_bound(0.3, 0.0002, 0.1), 6)
        0.2
    """
    r, d = _risk_d(risk_weak, disagreement)
    return r - lemma1_constant(gamma, k) * math.sqrt(d)


def theorem2_risk_bound(risk_weak: float, d_reverse: float) -> float:
    r"""Theorem 2's guaranteed risk: :math:`R(F_{sw}) \le R(F_w) - d_{rev}`.

    Holds for the reverse-KL projection onto a mixture-convex class containing ``F*``.

    Example:
        >>> from w2s_theory.bounds import theorem2_risk_bound
        >>> theorem2_risk_bound(0.5, 0.125)
        0.375
    """
    r = check_scalar(risk_weak, "risk_weak", low=0.0)
    d = check_scalar(d_reverse, "d_reverse", low=0.0)
    return r - d
