r"""Theorem 2 without realizability: the reverse-KL student gains at least ``d_rev - 2 eps``.

Theorem 2 of arXiv:2502.11107 needs the truth ``F*`` to lie in the convex head class ``C``.
Real labels are one-hot and no affine head reproduces them, so on real data the theorem's
hypothesis fails and its check against the truth fails too. This module states, computes
and checks the version that needs no realizability (derivation:
``docs/theorem2_misspecified.md``).

Statement. Let ``C`` be a mixture-convex class, ``F_sw = argmin_{P in C} E KL(P || F_w)`` the
exact reverse-KL projection, ``g_i(x) = log(F_sw,i(x) / F_w,i(x))`` and
``m(x) = max_i |g_i(x)|``. For every ``P in C``, Csiszar's inequality
``E KL(P||F_w) >= E KL(P||F_sw) + E KL(F_sw||F_w)`` gives

``R(F_sw) <= R(F_w) - d_rev + E_x sum_i (P_i - F*_i) g_i``            (1)
``        <= R(F_w) - d_rev + 2 eps``,   ``eps = min_{P in C} E_x[TV(P(x), F*(x)) m(x)]``  (2)

with ``R(F) = E KL(F* || F)`` and ``d_rev = E KL(F_sw || F_w)``. Line (1) at ``P = F_sw`` is
an identity (both sides equal ``R(F_sw)``): it proves nothing. Line (2) is the statement:
the student beats the teacher by at least ``d_rev - 2 eps`` (informative when positive);
``F* in C`` gives ``eps = 0``, i.e. Theorem 2.

``eps`` is a weighted L1 fit of ``F*`` inside ``C``. For the affine-probability class of
`w2s_theory.heads.fit_convex_head` (``P(x) = A [z(x); 1]``, ``1^T P = 1``,
``P_i >= gamma`` on every sample, ``z`` the standardised features) it is a linear program,
solved here with cvxpy + Clarabel in the same parametrisation and constraints.

References
----------
Yao et al., arXiv:2502.11107 (2025), Theorem 2.
Csiszar, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975), Thm 2.2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.special import rel_entr

from ._validation import (
    as_categorical,
    check_gamma,
    check_probs,
    check_same_shape,
    check_scalar,
    n_classes,
)
from .export import TableExport, text_table
from .heads import check_features, solve_clarabel, standardize

__all__ = [
    "EpsilonFit",
    "MisspecifiedTheorem2Result",
    "misspecification_epsilon",
    "theorem2_misspecified",
    "log_ratio_weights",
]

#: Clarabel gap/feasibility tolerance of the epsilon LP (on the summed objective).
LP_TOL = 1e-10


class _Table(TableExport):
    """Mixin: ``str()`` prints the fields as a two-column table, ``to_dict()`` a plain dict;
    ``to_latex()`` / ``to_markdown()`` export the scalar fields (`w2s_theory.export`)."""

    def to_dict(self) -> dict:
        """Scalar fields as a plain ``dict`` (arrays left out), in declaration order."""
        return {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray)}

    def __str__(self) -> str:
        rows = []
        for k, v in self.to_dict().items():
            s = str(v) if isinstance(v, (bool, str, int)) else f"{v:.6g}"
            rows.append((k, s))
        return text_table(type(self).__name__, rows)


@dataclass(frozen=True)
class EpsilonFit(_Table):
    r"""The epsilon linear program's solution.

    Attributes:
        epsilon: ``(1/n) sum_x TV(P(x), F*(x)) m(x)`` at the returned member ``P`` of the class
            (an upper bound on the minimum, equal to it up to ``duality_gap``).
        tv_to_class: ``(1/n) sum_x TV(P(x), F*(x))`` at the same ``P`` (unweighted distance).
        status: Clarabel's status string; duality_gap: ``|primal - dual|`` of the LP per sample.
        mix: weight of the uniform predictor mixed into the solver's point to make it an exact
            member of the class (``P_i >= gamma`` without round-off); ``0`` when already inside.
        n, k: rows and classes.
        probs: the member ``P``, shape ``(n, k)`` (categorical even for binary input).
        theta: its parameters on the standardised design ``[z, 1]``, shape ``(d + 1, k - 1)``.
    """

    epsilon: float
    tv_to_class: float
    status: str
    duality_gap: float
    mix: float
    n: int
    k: int
    probs: np.ndarray
    theta: np.ndarray


@dataclass(frozen=True)
class MisspecifiedTheorem2Result(_Table):
    r"""Theorem 2 under misspecification on a finite population (see the module docstring).

    Attributes:
        risk_weak, risk_strong: ``R(F_w)``, ``R(F_sw)`` (KL form, ``E KL(F* || .)``).
        gain: ``R(F_w) - R(F_sw)``, the student's actual gain over the teacher.
        d_reverse: ``E KL(F_sw || F_w)``.
        epsilon: ``E[TV(P, F*) m]`` at the LP's member ``P`` (see `EpsilonFit`).
        guaranteed_gain: ``d_reverse - 2 epsilon`` (the bound's statement).
        slack: ``gain - guaranteed_gain`` (``>= -tol`` when the bound holds).
        csiszar_term: ``E sum_i (P_i - F_sw,i) g_i``, ``>= 0`` by the projection's optimality
            (Csiszar); the part of the slack the solver's accuracy can make negative.
        holder_term: ``2 epsilon - E sum_i (P_i - F*_i) g_i``, ``>= 0`` (Hoelder, exact).
            ``slack = csiszar_term + holder_term``.
        realizable_slack: Theorem 2's own slack ``R(F_w) - d_reverse - R(F_sw)``; negative
            values show where the realizable statement fails.
        tv_to_class: ``E TV(P, F*)``; max_log_ratio: ``max_x m(x)``.
        eps_status, eps_duality_gap: the LP's status and per-sample duality gap.
        tol: tolerance of the check (from the projection's KKT certificate when a
            `w2s_theory.heads.ConvexHead` is passed); holds: ``slack >= -tol``.
        gain_positive: ``guaranteed_gain > tol`` (the bound says the student is better).
        n: rows.
    """

    risk_weak: float
    risk_strong: float
    gain: float
    d_reverse: float
    epsilon: float
    guaranteed_gain: float
    slack: float
    csiszar_term: float
    holder_term: float
    realizable_slack: float
    tv_to_class: float
    max_log_ratio: float
    eps_status: str
    eps_duality_gap: float
    tol: float
    holds: bool
    gain_positive: bool
    n: int


def log_ratio_weights(f_weak, f_strong) -> tuple[np.ndarray, np.ndarray]:
    r"""``g_i(x) = log(F_sw,i(x) / F_w,i(x))`` and ``m(x) = max_i |g_i(x)|``.

    Args:
        f_weak, f_strong: shape ``(n,)`` (binary ``P(class 1)``) or ``(n, k)``, strictly
            positive coordinates.

    Returns:
        ``(g, m)``: shapes ``(n, k)`` and ``(n,)``.

    Examples:
        >>> import numpy as np
        >>> g, m = log_ratio_weights(np.array([0.5]), np.array([0.8]))
        >>> np.round(g, 4).tolist(), np.round(m, 4).tolist()
        ([[-0.9163, 0.47]], [0.9163])
    """
    fw = as_categorical(check_probs(f_weak, "f_weak"))
    fsw = as_categorical(check_probs(f_strong, "f_strong"))
    check_same_shape(f_weak=fw, f_strong=fsw)
    for name, a in (("f_weak", fw), ("f_strong", fsw)):
        if not float(a.min()) > 0.0:
            raise ValueError(f"{name}: probabilities must be strictly positive (a zero makes "
                             f"log(F_sw / F_w) infinite); smooth them with "
                             f"w2s_theory.divergences.smooth")
    g = np.log(fsw) - np.log(fw)
    return g, np.abs(g).max(axis=1)


def _design(features, n: int) -> np.ndarray:
    x = check_features(features, n)
    return standardize(x)[2]


def _epsilon_lp_clarabel(design, fc, w, g, tol, max_iter):
    """The eps LP through cvxpy + Clarabel: ``(theta, status, duality gap per sample)``."""
    import cvxpy as cp

    n, k = fc.shape
    theta = cp.Variable((design.shape[1], k - 1))
    pf = design @ theta
    p0 = 1.0 - cp.sum(pf, axis=1)
    obj = 0.5 * (cp.sum(cp.multiply(w[:, None], cp.abs(pf - fc[:, 1:])))
                 + w @ cp.abs(p0 - fc[:, 0]))
    prob = cp.Problem(cp.Minimize(obj), [pf >= g, p0 >= g])
    sol = solve_clarabel(prob, tol, max_iter)
    status = str(sol.status)
    if theta.value is None:
        raise RuntimeError(f"misspecification_epsilon: Clarabel returned no solution "
                           f"(status {status})")
    th = np.asarray(theta.value, dtype=np.float64).reshape(design.shape[1], k - 1)
    return th, status, abs(float(sol.obj_val) - float(sol.obj_val_dual)) / n


def _epsilon_lp_highs(design, fc, w, g, tol):
    r"""The eps LP in standard form for HiGHS: ``(theta, status, duality gap per sample)``.

    Variables ``[theta (q (k-1)); t (n k)]`` with ``q = d + 1``; ``P_i = D theta_i`` for
    ``i >= 1`` and ``P_0 = 1 - sum_i D theta_i``. Minimise ``(1/2) sum_x w_x sum_i t_xi``
    subject to ``|P_i - F*_i| <= t_xi`` (two rows each) and ``P_i >= g`` (binary: the
    class-1 column; the class-0 column is ``1 - P_1``, so its ``|.|`` equals class 1's and
    one ``t`` of weight ``w`` replaces the two halves).
    """
    n, k = fc.shape
    q = design.shape[1]
    D = sp.csr_matrix(design)
    eye = sp.identity(n, format="csr")
    htol = float(min(max(tol, 1e-10), 1e-7))
    if k == 2:
        nv = q + n
        c = np.concatenate([np.zeros(q), w])
        a = sp.vstack([sp.hstack([D, -eye]), sp.hstack([-D, -eye]),
                       sp.hstack([-D, sp.csr_matrix((n, n))]),
                       sp.hstack([D, sp.csr_matrix((n, n))])], format="csr")
        b = np.concatenate([fc[:, 1], -fc[:, 1], -g * np.ones(n), (1.0 - g) * np.ones(n)])
    else:
        m = k - 1
        nv = q * m + n * k
        blocks_p = [sp.hstack([sp.csr_matrix((n, q * j)), D, sp.csr_matrix((n, q * (m - 1 - j)))])
                    for j in range(m)]                       # P_{j+1} = D theta_j
        p0 = -sp.hstack([D] * m)                             # P_0 - 1 = -sum_j D theta_j
        zt = sp.csr_matrix((n, n * k))

        def tcol(i):                                         # selects t_{., i}
            return sp.hstack([sp.csr_matrix((n, n * i)), eye,
                              sp.csr_matrix((n, n * (k - 1 - i)))])

        rows, rhs = [], []
        for i in range(k):
            pi = p0 if i == 0 else blocks_p[i - 1]
            off = 1.0 if i == 0 else 0.0
            rows += [sp.hstack([pi, -tcol(i)]), sp.hstack([-pi, -tcol(i)]),
                     sp.hstack([-pi, zt])]
            rhs += [fc[:, i] - off, -(fc[:, i] - off), -(g - off) * np.ones(n)]
        a = sp.vstack(rows, format="csr")
        b = np.concatenate(rhs)
        c = np.concatenate([np.zeros(q * m), 0.5 * np.repeat(w[None, :], k, axis=0).ravel()])
    bounds = [(None, None)] * (q * (k - 1)) + [(0, None)] * (nv - q * (k - 1))
    res = linprog(c, A_ub=a, b_ub=b, bounds=bounds, method="highs-ipm",
                  options={"primal_feasibility_tolerance": htol,
                           "dual_feasibility_tolerance": htol})
    if res.x is None:
        raise RuntimeError(f"misspecification_epsilon: HiGHS returned no solution "
                           f"({res.message})")
    th = np.asarray(res.x[: q * (k - 1)], dtype=np.float64).reshape(k - 1, q).T
    gap = 0.0
    if getattr(res, "ineqlin", None) is not None and res.ineqlin.marginals is not None:
        dual = float(np.dot(res.ineqlin.marginals, b))   # max b^T y, y <= 0
        gap = abs(float(res.fun) - dual) / n
    status = "Solved" if res.status == 0 else f"HiGHS: {res.message}"
    return th, status, gap


def misspecification_epsilon(features, f_star, weights, gamma: float, *,
                             tol: float = LP_TOL, max_iter: int = 200,
                             solver: str = "highs") -> EpsilonFit:
    r"""Weighted L1 fit of ``F*`` inside the affine-probability class: the ``eps`` LP.

    ``min_A (1/n) sum_x w(x) (1/2) sum_i |P_i(x) - F*_i(x)|`` over ``P(x) = A [z(x); 1]``
    with ``1^T P(x) = 1`` and ``P_i(x) >= gamma`` on every sample -- the class, design
    (standardised features, class 0 the reference) and constraints of
    `w2s_theory.heads.fit_convex_head`. Solved as a linear program with ``abs``
    epigraphs, by HiGHS' interior-point method with crossover (``scipy.optimize.linprog``, the
    default; ~2x faster than Clarabel at n = 4000, d = 32, measured on a 2-core Xeon) or by
    Clarabel through cvxpy; the solver's point is then
    mixed with the uniform predictor
    (a member of the class) just enough to satisfy ``P_i >= gamma`` exactly, so the returned
    ``P`` is a member of ``C`` and ``epsilon`` (its objective, computed here in numpy) is a
    valid upper bound on the minimum.

    Args:
        features: ``h_s`` on the population, shape ``(n, d)``.
        f_star: truth, shape ``(n,)`` or ``(n, k)`` (may be one-hot).
        weights: ``w(x) >= 0``, shape ``(n,)`` (for Theorem 2: ``m(x)`` of
            `log_ratio_weights`).
        gamma: the class's floor, in ``(0, 1/k]``.
        tol: Clarabel tolerance on the summed objective (``solver="clarabel"``; HiGHS uses
            its own primal/dual feasibility tolerances, set to ``tol`` clipped to ``[1e-10,
            1e-7]``). max_iter: Clarabel's iteration limit.
        solver: ``"highs"`` or ``"clarabel"``. The bound does not rely on optimality: ``eps``
            is evaluated at the returned member of the class, so any feasible point gives a
            valid (if looser) bound; both solvers reach the optimum (tested against each other).

    Returns:
        `EpsilonFit`.

    Examples:
        >>> import numpy as np
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> fit = misspecification_epsilon(x, np.array([0.2, 0.4, 0.6, 0.8]), np.ones(4), 0.01)
        >>> fit.status, fit.epsilon < 1e-8                   # F* affine: in the class
        ('Solved', True)
        >>> fit = misspecification_epsilon(x, np.array([0.0, 1.0, 0.0, 1.0]), np.ones(4), 0.01)
        >>> round(fit.epsilon, 6)              # best affine L1 fit of 0,1,0,1: 0.01 ... 0.99
        0.336667
    """
    fs = check_probs(f_star, "f_star")
    k = n_classes(fs)
    fc = as_categorical(fs)
    n = fc.shape[0]
    g = check_gamma(gamma, k)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights: expected shape ({n},), got {w.shape}")
    if not (np.all(np.isfinite(w)) and float(w.min()) >= 0.0):
        raise ValueError("weights: must be finite and non-negative")
    tol = check_scalar(tol, "tol", low=0.0, low_open=True, high=1e-3)
    if solver not in ("highs", "clarabel"):
        raise ValueError(f"solver: expected 'highs' or 'clarabel', got {solver!r}")
    design = _design(features, n)
    if solver == "highs":
        th, status, gap = _epsilon_lp_highs(design, fc, w, g, tol)
    else:
        th, status, gap = _epsilon_lp_clarabel(design, fc, w, g, tol, max_iter)
    free = design @ th
    p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
    # Exact membership: P' = (1 - lam) P + lam / k lifts min P to gamma (uniform is in C).
    lo = float(p.min())
    lam = 0.0
    if lo < g:
        lam = (g - lo) / (1.0 / k - lo)
        lam = min(1.0, lam * (1.0 + 1e-9) + 1e-300)
        th = (1.0 - lam) * th
        th[-1] += lam / k                               # intercept row of the design
        free = design @ th
        p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
        p = np.maximum(p, g)  # round-off of the product only (lam already lifted it)
        p /= p.sum(axis=1, keepdims=True)
    tv = 0.5 * np.abs(p - fc).sum(axis=1)
    eps = float(math.fsum(tv * w)) / n
    return EpsilonFit(epsilon=eps, tv_to_class=float(math.fsum(tv)) / n, status=status,
                      duality_gap=gap, mix=float(lam), n=int(n), k=int(k), probs=p, theta=th)


def theorem2_misspecified(f_star, f_weak, f_strong, features, gamma: float, *,
                          head=None, tol: float = 1e-9,
                          lp_tol: float = LP_TOL) -> MisspecifiedTheorem2Result:
    r"""Check ``R(F_sw) <= R(F_w) - d_rev + 2 eps`` (Theorem 2 without realizability).

    ``F_sw`` must be the exact reverse-KL projection of ``F_w`` onto the affine-probability
    class with floor ``gamma`` on ``features`` (`w2s_theory.heads.fit_convex_head` with
    ``divergence="reverse_kl"``), evaluated on the same population. The slack is computed in
    log-ratio form, ``slack = E sum_i (F*_i - F_sw,i) g_i + 2 eps`` (Theorem 2's own slack plus
    ``2 eps``), and split into ``csiszar_term + holder_term``.

    Args:
        f_star: truth on the population, shape ``(n,)`` or ``(n, k)`` (one-hot allowed).
        f_weak: ``F_w``, same shape, strictly positive.
        f_strong: ``F_sw``, same shape, strictly positive (``head.probs`` when ``head`` given).
        features: ``h_s`` on the population, shape ``(n, d)`` (the features of the fit).
        gamma: the class's floor (``head.gamma``).
        head: optional `w2s_theory.heads.ConvexHead`, the reverse-KL fit that produced
            ``f_strong``; then ``tol`` is raised to the projection's own accuracy at the LP's
            member, `theorem2_tolerance` (KKT certificate).
        tol: tolerance when no head is given (pass the solver's duality gap).
        lp_tol: Clarabel tolerance of the ``eps`` LP.

    Returns:
        `MisspecifiedTheorem2Result`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import fit_convex_head
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> y = np.array([0.2, 0.45, 0.55, 0.8]); truth = np.array([0.0, 1.0, 0.0, 1.0])
        >>> h = fit_convex_head(x, y, divergence="reverse_kl", gamma=0.01)
        >>> r = theorem2_misspecified(truth, y, h.probs, x, 0.01, head=h)
        >>> r.realizable_slack < 0          # F* one-hot, not in the class: Theorem 2 fails
        True
        >>> r.holds, round(r.epsilon, 4), r.gain_positive   # the misspecified form holds
        (True, 0.0365, False)
    """
    fs = check_probs(f_star, "f_star")
    fw = check_probs(f_weak, "f_weak")
    fsw = check_probs(f_strong, "f_strong")
    check_same_shape(f_star=fs, f_weak=fw, f_strong=fsw)
    k = n_classes(fs)
    g_floor = check_gamma(gamma, k)
    t = check_scalar(tol, "tol", low=0.0)
    if head is not None:
        if head.divergence != "reverse_kl":
            raise ValueError(f"head: must be a reverse_kl fit (the I-projection), got "
                             f"{head.divergence!r}")
        if head.probs.shape != fsw.shape or not np.array_equal(head.probs, fsw):
            raise ValueError("head: head.probs must equal f_strong (the fit being checked)")
        if abs(head.gamma - g_floor) > 0:
            raise ValueError(f"gamma: {g_floor:g} differs from head.gamma={head.gamma:g}")
    lr, m = log_ratio_weights(fw, fsw)
    fc, wc, sc = as_categorical(fs), as_categorical(fw), as_categorical(fsw)
    n = fc.shape[0]
    fit = misspecification_epsilon(features, fs, m, g_floor, tol=lp_tol)
    p = fit.probs
    if head is not None:
        ref = p[:, 1] if fs.ndim == 1 else p
        t = max(t, float(head.theorem2_tolerance(ref)))

    def mean_dot(a):
        return float(math.fsum((a * lr).sum(axis=1))) / n

    d_rev = float(math.fsum(rel_entr(sc, wc).sum(axis=1))) / n
    risk_weak = float(math.fsum(rel_entr(fc, wc).sum(axis=1))) / n
    gain = mean_dot(fc)                                 # E sum F* log(F_sw/F_w) = R(F_w) - R(F_sw)
    s0 = mean_dot(fc - sc)                              # Theorem 2's slack
    csiszar = mean_dot(p - sc)
    holder = 2.0 * fit.epsilon - mean_dot(p - fc)
    slack = s0 + 2.0 * fit.epsilon
    guaranteed = d_rev - 2.0 * fit.epsilon
    return MisspecifiedTheorem2Result(
        risk_weak=risk_weak, risk_strong=risk_weak - gain, gain=gain, d_reverse=d_rev,
        epsilon=fit.epsilon, guaranteed_gain=guaranteed, slack=slack, csiszar_term=csiszar,
        holder_term=holder, realizable_slack=s0, tv_to_class=fit.tv_to_class,
        max_log_ratio=float(m.max()), eps_status=fit.status, eps_duality_gap=fit.duality_gap,
        tol=float(t), holds=bool(slack >= -t), gain_positive=bool(guaranteed > t), n=int(n))
