"""Last-layer heads on a fixed strong representation, fitted to weak labels.

Three ways to fit a linear head ``f`` on features ``h_s(x)`` (shape ``(n, d)``) to
weak probabilities ``F_w(x)`` (shape ``(n,)`` binary or ``(n, k)``):

* `fit_convex_head` -- the *mixture-convex* head class of ``docs/theory.md``
  (Theorem 2): probabilities affine in ``[h_s; 1]``,

  ``P(x) = A [h_s(x); 1]``,  ``1^T P(x) = 1``,  ``P_i(x) >= gamma`` on every sample,

  fitted by minimising the reverse KL ``E KL(P || F_w)`` (the I-projection) or the
  forward KL ``E KL(F_w || P)`` (the M-projection) exactly, as an exponential-cone
  program (cvxpy ``rel_entr``, solver Clarabel at tight tolerances). The report
  carries the solver's duality gap and a KKT certificate computed here in the
  original problem, and `ConvexHead.theorem2_tolerance` turns them into the
  tolerance of a Theorem 2 check.
* `fit_softmax_head` -- the softmax (logistic) linear head
  ``P(x) = softmax(W^T h_s(x) + b)``, fitted with any of the four W2SG losses of
  `w2s_theory.losses` to a tight gradient tolerance (float64 L-BFGS, then a
  trust-region Newton polish with the exact Hessian).
* `fit_head_minibatch` -- the practical regime: the same softmax head
  trained by minibatch Adam/SGD (default one epoch, batch 16), i.e. early stopped.

Features are standardised (column mean 0, standard deviation 1) inside every fit
and the parameters mapped back to the original units, so the optimisation is
well scaled whatever the features' units; ``predict`` takes raw features.

Existence of a minimiser (audit of the exact fits)
--------------------------------------------------
An "exact fit" is only meaningful when its objective has a finite minimiser; where it has
none, an optimiser still stops somewhere (at a gradient tolerance, an iteration limit or
round-off), and what it reports depends on the BLAS kernel. `minimizer_status` certifies
the cases below, `fit_softmax_head` reports them (``report.status`` starting with
``"no_minimizer"``, ``converged=False``), and ``tests/test_heads_minimizer.py`` has a test for
each conclusion.

* `fit_convex_head` (both divergences): **always has a minimiser.** The feasible
  probabilities ``{P = A[h; 1] : P_i >= gamma, 1^T P = 1}`` on the sample form a non-empty
  compact set and both objectives are continuous on it (``gamma > 0`` keeps ``log P``
  finite); the reported ``probs`` are the (unique, by strict convexity in ``P``) minimiser.
* `fit_softmax_head`, ``forward_kl`` / ``forward_ce`` (same minimiser): convex in the
  parameters. **A minimiser exists when every weak probability is > 0** (every
  direction of the parameters raises some ``-y_j log p_j`` to infinity: the objective is
  coercive) **or ``l2 > 0`` on data with no such direction**. With exact zeros (one-hot
  labels) and ``l2 = 0`` it has none exactly when a direction moves probability onto every
  sample's support (logistic regression's separation, Albert and Anderson 1984); a linear
  program decides it. The synthetic pipeline's weak labels are smoothed (``>= gamma``).
* ``reverse_ce`` on a softmax head with ``l2 = 0``: **no finite minimiser** unless the
  weak labels are degenerate. The loss is linear in ``p`` (``-sum_j p_j log y_j``), and with
  one Gumbel vector ``G`` shared by all samples (the Gumbel-max trick; a linear loss only sees
  each sample's marginal ``softmax(z(x))``), ``f(W) = E_G L(argmax(z(x) + G))``: an average of
  the costs of *hard* linear classifiers, including (for ``G`` far out) each constant one. So
  ``inf f`` is the best hard classifier's cost, approached only as the logits diverge, and a
  finite ``W`` attains it only if every constant prediction is optimal too: impossible as
  soon as the constant predictions' costs ``C_j = mean_x -log y_j(x)`` differ, or the
  gradient at ``W = 0`` is not zero.
* ``reverse_kl`` (softmax head): not convex and not certified either way here. Along any
  ray to infinity the objective tends to its limit *from below* (the entropy term has an
  infinite slope at the simplex boundary), so no ray is a descent direction at infinity;
  the fits stop with bounded logits and a gradient norm at round-off (tested).

Parameterisation: class 0 is the reference. The binary shorthand ``(n,)`` is
``P(class 1)``; with ``k`` classes the free parameters are the columns of classes
``1..k-1`` (convex head: ``P_0 = 1 - sum_{j>0} P_j``; softmax head: logit ``z_0 = 0``),
so the fitted head is identifiable.

References
----------
Yao et al., arXiv:2502.11107 (2025), Theorem 2 and its "last linear layer" class.
Csiszar, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
Goulart & Chen, "Clarabel: an interior-point solver for conic programs", arXiv:2405.12762.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_categorical, check_gamma, check_probs, check_scalar, n_classes
from .runtime import thread_limit

__all__ = [
    "FitReport",
    "ConvexHead",
    "SoftmaxHead",
    "fit_convex_head",
    "fit_softmax_head",
    "fit_head_minibatch",
    "project_to_floor_simplex",
    "minimizer_status",
    "DIVERGENCES",
    "LINEAR_IN_P",
    "NO_MINIMIZER",
]

#: Objectives of `fit_convex_head`.
DIVERGENCES = ("reverse_kl", "forward_kl")
#: Student losses linear in the student's probabilities ``p`` (``sum_j c_j(y) p_j``): on a
#: softmax head with ``l2 = 0`` they have no finite minimiser (`minimizer_status`).
LINEAR_IN_P = ("reverse_ce",)
#: Forward losses: convex in the logits, coercive when every weak probability is ``> 0``.
_FORWARD = ("forward_kl", "forward_ce")
#: ``FitReport.status`` of a fit whose objective has no finite minimiser starts with this.
NO_MINIMIZER = "no_minimizer"

#: Clarabel tolerance used by `fit_convex_head` (absolute/relative gap and feasibility
#: of the *summed* objective; the reported gap is per sample, typically ~1e-12).
CLARABEL_TOL = 1e-10
#: fits with at most this many feature entries x classes run on one torch thread
SMALL_TORCH_WORK = 5_000_000


# ----------------------------------------------------------------------------- shared pieces
@dataclass(frozen=True)
class FitReport:
    """How a head was fitted and how accurately.

    Attributes:
        method: ``"convex/clarabel"``, ``"softmax/lbfgs+newton"`` or ``"minibatch/<opt>"``.
        status: the solver's status string (``"Solved"``, ``"converged"``, ...).
        converged: the fit met its accuracy target.
        objective: final objective (mean over the ``n`` samples, plus the L2 term if any).
        duality_gap: convex head: ``|primal - dual|`` objective reported by Clarabel,
            divided by ``n`` (same units as ``objective``); ``nan`` for the other heads.
        grad_norm: Euclidean norm of the gradient of ``objective`` in the standardised
            parameters (softmax heads); for the convex head, the norm of the
            KKT stationarity residual computed here from the solver's dual values.
        complementarity: convex head: ``sum lambda (P - gamma)`` (the duality gap of the
            original problem at the returned point); ``nan`` otherwise.
        max_violation: convex head: ``max(gamma - P)`` over samples, ``<= 0`` when feasible.
        iterations: solver / optimiser iterations (minibatch: optimisation steps).
        solve_time: seconds spent in the solver / optimiser.
    """

    method: str
    status: str
    converged: bool
    objective: float
    duality_gap: float = math.nan
    grad_norm: float = math.nan
    complementarity: float = math.nan
    max_violation: float = math.nan
    iterations: int = 0
    solve_time: float = 0.0

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def check_features(features, n: int | None = None, name: str = "features") -> np.ndarray:
    """``features`` as a finite float64 ``(n, d)`` array (``n`` rows when given), or a ValueError naming it."""
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from None
    if x.ndim != 2:
        raise ValueError(f"{name}: expected shape (n, d), got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: empty array (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name}: has {x.shape[0]} rows but weak_probs has {n}")
    return x


def standardize(x: np.ndarray):
    """Column mean and scale (a constant column gets scale 1) and the design ``[z, 1]``."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mu) / sd
    return mu, sd, np.hstack([z, np.ones((x.shape[0], 1))])


def _unstandardize(theta: np.ndarray, mu: np.ndarray, sd: np.ndarray):
    """Map ``theta`` (shape ``(d+1, m)``) on ``[(x-mu)/sd, 1]`` to ``(coef, intercept)`` on ``x``."""
    coef = theta[:-1] / sd[:, None]
    intercept = theta[-1] - mu @ coef
    return coef, intercept


def _linear(features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    return features @ coef + intercept


def _binary_out(p_cat: np.ndarray, binary: bool) -> np.ndarray:
    return p_cat[:, 1].copy() if binary else p_cat


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


# ----------------------------------------------------------------------------- convex head
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
        free = _linear(x, self.coef.reshape(x.shape[1], -1), np.atleast_1d(self.intercept))
        p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
        return _binary_out(p, self.binary)

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
    # Clarabel sometimes stalls ("AlmostSolved") or fails ("NumericalError") on one of two
    # equivalent exponential-cone formulations and not on the other: try the primary one,
    # then the alternative, then both at a 100x looser tolerance, and keep the first
    # "Solved" result (else the attempt with the smallest gap).
    alt = {"reverse_kl": ("rel_entr", "entr"), "forward_kl": ("rel_entr", "log")}[divergence]
    loose = min(tol * 100.0, 1e-6)
    attempts = [(alt[0], tol), (alt[1], tol), (alt[0], loose), (alt[1], loose)]
    best = None
    for form, t in attempts:
        sol, theta, cons = _convex_program(design, yc, g, divergence, form, t, max_iter)
        gap_try = (abs(float(sol.obj_val) - float(sol.obj_val_dual))
                   if theta.value is not None else math.inf)
        if best is None or (str(sol.status) == "Solved") or gap_try < best[0]:
            best = (gap_try, sol, theta, cons)
        if str(sol.status) == "Solved":
            break
    _, sol, theta, cons = best
    solve_time = time.perf_counter() - t0
    status = str(sol.status)
    if theta.value is None:
        raise RuntimeError(f"fit_convex_head: Clarabel returned no solution (status {status})")

    th = np.asarray(theta.value, dtype=np.float64)
    free = design @ th
    p = np.hstack([1.0 - free.sum(axis=1, keepdims=True), free])
    lam = np.hstack([np.asarray(cons[2].dual_value).reshape(n, 1),
                     np.asarray(cons[1].dual_value).reshape(n, k - 1)]) / n
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
    gap = abs(float(sol.obj_val) - float(sol.obj_val_dual)) / n
    report = FitReport(
        method="convex/clarabel", status=status, converged=status == "Solved",
        objective=objective, duality_gap=gap, grad_norm=float(np.linalg.norm(resid)),
        complementarity=comp, max_violation=float(np.max(g - p)),
        iterations=int(sol.iterations), solve_time=float(solve_time),
    )
    coef, intercept = _unstandardize(th, mu, sd)
    if binary:
        coef, intercept = coef[:, 0], np.asarray(intercept[0])
    head = ConvexHead(coef=coef, intercept=intercept, probs=_binary_out(p, binary),
                      divergence=divergence, gamma=g, k=k, report=report,
                      _mu=mu, _sd=sd, _theta=th, _lam=lam, _resid=resid, _design=design)
    return head


def _convex_program(design, yc, g, divergence, form, tol, max_iter):
    """Build and solve one exponential-cone formulation; return (solution, theta, constraints).

    The summed (not averaged) objective is what Clarabel sees: 1/n-weighted cones are badly
    scaled (3x more iterations at n = 4000); gaps and multipliers are divided by n later.
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
    prob = cp.Problem(cp.Minimize(obj), cons)
    return solve_clarabel(prob, tol, max_iter), theta, cons


def _objective(p: np.ndarray, yc: np.ndarray, divergence: str) -> float:
    from scipy.special import rel_entr

    pc = np.maximum(p, 0.0)
    if divergence == "reverse_kl":
        return float(rel_entr(pc, yc).sum(axis=1).mean())
    return float(rel_entr(yc, pc).sum(axis=1).mean())


def solve_clarabel(prob, tol: float, max_iter: int):
    """Solve a cvxpy problem with Clarabel directly, keeping Clarabel's dual objective."""
    import clarabel
    import cvxpy as cp
    import scipy.sparse as sp
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
    st.tol_gap_abs = tol
    st.tol_gap_rel = tol
    st.tol_feas = tol
    st.tol_ktratio = min(1e-6, tol * 1e2)
    sol = clarabel.DefaultSolver(pmat, q, sp.csc_matrix(a), b, cones, st).solve()
    if sol.x is None or len(sol.x) == 0:
        return sol
    for inv in inverse:  # cvxpy's Clarabel invert() reads solver_options (None here)
        if getattr(inv, "solver_options", {}) is None:
            inv.solver_options = {}
    import warnings

    with warnings.catch_warnings():   # an inaccurate status is reported in FitReport instead
        warnings.simplefilter("ignore", UserWarning)
        try:
            prob.unpack_results(sol, chain, inverse)
        except cp.error.SolverError:      # e.g. "NumericalError": no values; the caller retries
            pass
    return sol


# ----------------------------------------------------------------------------- softmax head
@dataclass(frozen=True)
class SoftmaxHead:
    r"""A fitted softmax (logistic) linear head ``P(x) = softmax(z(x))``, ``z_0 = 0``.

    Attributes:
        coef: shape ``(d,)`` (binary: ``P(class 1) = sigmoid(coef . h + intercept)``) or
            ``(d, k-1)`` (logits of classes ``1..k-1``), in the original feature units.
        intercept: scalar array (binary) or ``(k-1,)``.
        probs: fitted probabilities on the training samples, same shape as ``weak_probs``.
        loss: the loss minimised; l2: its L2 weight (on standardised weights, not bias).
        report: `FitReport` (``grad_norm``, ``iterations``, ``converged``).
    """

    coef: np.ndarray
    intercept: np.ndarray
    probs: np.ndarray
    loss: str
    l2: float
    report: FitReport

    @property
    def binary(self) -> bool:
        return self.probs.ndim == 1

    def logits(self, features) -> np.ndarray:
        """Logits ``z(x)``: shape ``(m,)`` (binary) or ``(m, k)`` with ``z_0 = 0``."""
        x = check_features(features)
        if x.shape[1] != self.coef.shape[0]:
            raise ValueError(f"features: has {x.shape[1]} columns, the head was fitted on "
                             f"{self.coef.shape[0]}")
        z = _linear(x, self.coef.reshape(x.shape[1], -1), np.atleast_1d(self.intercept))
        if self.binary:
            return z[:, 0]
        return np.hstack([np.zeros((x.shape[0], 1)), z])

    def predict(self, features) -> np.ndarray:
        """Probabilities on new samples: shape ``(m,)`` (binary ``P(class 1)``) or ``(m, k)``."""
        from scipy.special import expit, softmax

        z = self.logits(features)
        return expit(z) if self.binary else softmax(z, axis=1)


def _small_torch_work(fit):
    """Decorator: run ``fit(features, weak_probs, ...)`` on one torch thread when it is small."""
    import functools

    @functools.wraps(fit)
    def wrapper(features, weak_probs, **kwargs):
        k = int(np.shape(weak_probs)[-1]) if np.ndim(weak_probs) == 2 else 1
        # small fits on one thread (see w2s_theory.runtime); large ones keep torch's setting
        with thread_limit(1 if int(np.size(features)) * k <= SMALL_TORCH_WORK else None):
            return fit(features, weak_probs, **kwargs)

    return wrapper


def _check_loss(loss: str) -> None:
    from .losses import check_loss_name  # torch, imported only when a softmax head is fitted

    check_loss_name(loss)


def _torch_objective(design_t, y_t, loss: str, l2: float, binary: bool, eps: float):
    """Return ``f(theta_flat) -> scalar`` in torch (mean loss + l2/2 |weights|^2)."""
    import torch

    from .losses import get_loss

    fn = get_loss(loss)
    d1 = design_t.shape[1]
    n = design_t.shape[0]

    def f(theta_flat):
        th = theta_flat.reshape(d1, -1)
        z = design_t @ th
        if binary:
            z = z[:, 0]
        else:
            z = torch.cat([torch.zeros(n, 1, dtype=z.dtype), z], dim=1)
        val = fn(z, y_t, reduction="mean", eps=eps)
        if l2 > 0:
            val = val + 0.5 * l2 * (th[:-1] ** 2).sum()
        return val

    return f


def _linear_costs(yc: np.ndarray, eps: float) -> np.ndarray:
    """The costs ``c`` with ``reverse_ce(z, y) = sum_j c_j softmax(z)_j``, shape ``(n, k)``
    (the weak labels clipped into ``[eps, 1 - eps]`` inside the log, as `w2s_theory.losses`)."""
    clipped = np.clip(yc, eps, 1.0 - eps)
    if yc.shape[1] == 2:                    # the binary loss uses log1p(-y) for class 0
        return np.column_stack([-np.log1p(-clipped[:, 1]), -np.log(clipped[:, 1])])
    return -np.log(clipped)


def _separating_direction(design: np.ndarray, yc: np.ndarray) -> float:
    """Largest total margin ``sum s`` of a direction that moves every sample's probability onto
    its support ``{j : y_j > 0}`` (logits tied inside the support, ``>= s`` above the rest,
    ``0 <= s <= 1``): positive exactly when the forward loss strictly decreases along it."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    n, k = yc.shape
    d1 = design.shape[1]
    nv = d1 * (k - 1)                        # V: (d1, k-1) flattened, class 0's logit is 0

    def logit_row(i: int, j: int):           # coefficients of z_ij in V
        row = np.zeros(nv)
        if j > 0:
            row[(j - 1)::(k - 1)] = design[i]
        return row

    eq, ub, n_s = [], [], 0
    for i in range(n):
        sup = np.flatnonzero(yc[i] > 0)
        j0 = int(sup[0])
        base = logit_row(i, j0)
        for j in sup[1:]:
            eq.append(logit_row(i, int(j)) - base)
        for j in np.flatnonzero(yc[i] <= 0):
            ub.append((logit_row(i, int(j)) - base, n_s))   # z_ij - z_ij0 + s <= 0
            n_s += 1
    if n_s == 0:
        return 0.0
    a_ub = sp.lil_matrix((n_s, nv + n_s))
    for r, (row, si) in enumerate(ub):
        a_ub[r, :nv] = row
        a_ub[r, nv + si] = 1.0
    a_eq = (sp.csr_matrix(np.hstack([np.asarray(eq), np.zeros((len(eq), n_s))]))
            if eq else None)
    c = np.concatenate([np.zeros(nv), -np.ones(n_s)])
    bounds = [(None, None)] * nv + [(0.0, 1.0)] * n_s
    res = linprog(c, A_ub=a_ub.tocsr(), b_ub=np.zeros(n_s), A_eq=a_eq,
                  b_eq=np.zeros(len(eq)) if eq else None, bounds=bounds, method="highs")
    return float(-res.fun) if res.status == 0 else 0.0


def minimizer_status(features, weak_probs, *, loss: str, l2: float = 0.0,
                     eps: float = 1e-6) -> str | None:
    r"""Why the softmax head's exact fit has **no finite minimiser**, or ``None``.

    ``None`` means no certificate of non-existence was found (a minimiser exists, or the case is
    not decided here: ``reverse_kl`` and the other non-convex losses, or ``l2 > 0`` with a loss
    linear in ``p``). The certificates (see the module docstring, "Existence of a minimiser"):

    * a loss linear in ``p`` (`LINEAR_IN_P`: ``reverse_ce``, ``sum_j c_j p_j`` with
      ``c_j = -log y_j``) and ``l2 = 0``: the infimum is a hard classifier's cost, reached only as
      the logits diverge, unless the constant predictions' mean costs ``C_j`` are all equal and
      the gradient at zero parameters vanishes;
    * ``forward_kl`` / ``forward_ce``, ``l2 = 0`` and some weak probability exactly 0: a
      direction that moves every sample's probability onto its support (a linear program)
      lowers the loss forever.

    Args:
        features: shape ``(n, d)``. weak_probs: shape ``(n,)`` or ``(n, k)``.
        loss: a registered student loss. l2: the fit's L2 weight. eps: the label clipping
            inside ``log y`` of the reverse losses.

    Returns:
        ``None`` or a one-line reason.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import minimizer_status
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> minimizer_status(x, np.array([0.1, 0.4, 0.7, 0.8]), loss="forward_kl") is None
        True
        >>> minimizer_status(x, np.array([0.1, 0.4, 0.7, 0.8]), loss="reverse_ce")[:40]
        'reverse_ce is linear in the probabilitie'
        >>> minimizer_status(x, np.array([0.0, 0.0, 1.0, 1.0]), loss="forward_ce")[:40]
        'forward_ce with weak probabilities of ex'
    """
    _check_loss(loss)
    y = check_probs(weak_probs, "weak_probs")
    x = check_features(features, y.shape[0])
    l2 = check_scalar(l2, "l2", low=0.0)
    eps = check_scalar(eps, "eps", low=0.0, low_open=True, high=0.5)
    if l2 > 0:
        return None
    yc = as_categorical(y)
    if loss in LINEAR_IN_P:
        cost = _linear_costs(yc, eps)
        const = cost.mean(axis=0)
        scale = float(np.abs(const).max()) + 1e-300
        if float(const.max() - const.min()) > 1e-9 * scale:
            return (f"{loss} is linear in the probabilities, so its infimum over a softmax head is "
                    f"a hard classifier's cost, reached only as the logits diverge (the constant "
                    f"predictions' mean costs differ: {np.array2string(const, precision=4)})")
        # equal constant costs: zero parameters (uniform p) minimise only if stationary there
        _, _, design = standardize(x)
        k = yc.shape[1]
        grad = design.T @ (cost[:, 1:] - cost.mean(axis=1, keepdims=True)) / (k * len(cost))
        if float(np.linalg.norm(grad)) > 1e-9 * scale:
            return (f"{loss} is linear in the probabilities and its gradient at zero parameters "
                    f"is {float(np.linalg.norm(grad)):.3g} != 0: its infimum, a hard classifier's "
                    f"cost, is reached only as the logits diverge")
        return None
    if loss in _FORWARD and bool((yc <= 0).any()):
        _, _, design = standardize(x)
        margin = _separating_direction(design, yc)
        if margin > 1e-7:
            return (f"{loss} with weak probabilities of exactly 0 and l2 = 0: a direction of the "
                    f"parameters moves every sample's probability onto its weak support "
                    f"(separation, total margin {margin:.3g}), so the loss decreases forever")
    return None


@_small_torch_work
def fit_softmax_head(features, weak_probs, *, loss: str = "forward_kl", l2: float = 0.0,
                     tol: float = 1e-10, max_iter: int = 2000, newton: bool = True,
                     eps: float = 1e-6, init=None) -> SoftmaxHead:
    r"""Fit a softmax linear head to weak labels with one of the four W2SG losses, tightly.

    Minimises ``(1/n) sum_x loss(z(x), F_w(x)) + (l2/2) |W|^2`` over ``z(x) = W^T z_s(x) + b``
    (``z_s`` the standardised features, class 0's logit fixed at 0), with the losses of
    `w2s_theory.losses` in float64 torch: L-BFGS (scipy) to ``gtol=tol``, then, if
    ``newton`` and there are at most 2000 parameters, a trust-region Newton polish
    (scipy ``trust-exact``, exact Hessian by autograd) which also handles the non-convex
    reverse losses. ``report.grad_norm`` is the final Euclidean gradient norm;
    ``converged`` means ``grad_norm <= max(tol, 1e-12)`` after a normal exit.

    Where the objective has no finite minimiser (`minimizer_status`: ``reverse_ce`` with
    ``l2 = 0``, or a forward loss on separable hard labels), the optimiser still runs and
    stops somewhere on a path of diverging logits: ``report.status`` then starts with
    ``"no_minimizer: "`` (with the reason) and ``converged`` is ``False``; the returned
    parameters depend on where it stopped (and on the BLAS kernel), not on the data alone.

    Forward KL and forward CE have the same minimiser (they differ by ``E H(F_w)``).
    With ``l2 = 0`` the forward fit matches moments: ``sum_x (F_w(x) - P(x)) [z_s(x); 1]^T = 0``.

    Args:
        features: shape ``(n, d)``.
        weak_probs: shape ``(n,)`` or ``(n, k)``.
        loss: ``forward_kl``, ``reverse_kl``, ``forward_ce`` or ``reverse_ce``.
        l2: non-negative L2 weight on the standardised weights (not on the bias).
        tol: gradient-norm target.
        max_iter: L-BFGS iteration limit (the Newton polish adds at most 200).
        newton: run the Newton polish.
        eps: clipping of weak labels inside ``log y`` (reverse losses).
        init: optional starting parameters, shape ``(d+1, k-1)`` on the standardised design.

    Returns:
        `SoftmaxHead`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import fit_softmax_head
        >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
        >>> y = np.array([0.1, 0.4, 0.7, 0.8])
        >>> h = fit_softmax_head(x, y, loss="forward_kl")
        >>> h.report.converged, h.report.grad_norm < 1e-10
        (True, True)
        >>> round(float(h.probs.sum()), 8) == round(float(y.sum()), 8)  # moment matching
        True
    """
    import torch
    from scipy.optimize import minimize

    _check_loss(loss)
    y = check_probs(weak_probs, "weak_probs")
    binary = y.ndim == 1
    k = n_classes(y)
    x = check_features(features, y.shape[0])
    l2 = check_scalar(l2, "l2", low=0.0)
    tol = check_scalar(tol, "tol", low=0.0, low_open=True)
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter: must be an integer >= 1, got {max_iter!r}")
    n, d = x.shape
    mu, sd, design = standardize(x)
    design_t = torch.from_numpy(design)
    y_t = torch.from_numpy(y)
    f = _torch_objective(design_t, y_t, loss, l2, binary, eps)
    npar = (d + 1) * (k - 1)
    if init is None:
        th0 = np.zeros(npar)
    else:
        th0 = np.asarray(init, dtype=np.float64).reshape(-1)
        if th0.shape != (npar,):
            raise ValueError(f"init: expected {npar} parameters ((d+1, k-1) = ({d + 1}, {k - 1})), "
                             f"got shape {np.shape(init)}")

    def fun(th):
        t = torch.tensor(th, dtype=torch.float64, requires_grad=True)
        v = f(t)
        (gr,) = torch.autograd.grad(v, t)
        return float(v.detach()), gr.numpy().copy()

    def hess(th):
        t = torch.tensor(th, dtype=torch.float64)
        return torch.autograd.functional.hessian(f, t).numpy()

    t0 = time.perf_counter()
    use_newton = newton and npar <= 2000
    # With the Newton polish, L-BFGS only needs to get close (gtol 1e-6).
    res = minimize(fun, th0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": max(tol, 1e-6) if use_newton else tol,
                            "ftol": 0.0, "maxcor": 30})
    th, iters, status = res.x, int(res.nit), str(res.message)
    if use_newton:
        res2 = minimize(fun, th, jac=True, hess=hess, method="trust-exact",
                        options={"maxiter": 200, "gtol": max(tol, 1e-12)})
        if res2.fun <= res.fun + 1e-15:
            th, status = res2.x, f"lbfgs+newton: {res2.message}"
        iters += int(res2.nit)
        # A few plain Newton steps where the Hessian is positive definite: quadratic
        # convergence down to round-off, kept only while the gradient norm drops.
        val, gr = fun(th)
        for _ in range(5):
            try:
                step = -np.linalg.solve(hess(th), gr)
            except np.linalg.LinAlgError:
                break
            v2, g2 = fun(th + step)
            if not (np.linalg.norm(g2) < np.linalg.norm(gr) and v2 <= val + 1e-12 * abs(val)):
                break
            th, val, gr = th + step, v2, g2
            iters += 1
    val, gr = fun(th)
    gnorm = float(np.linalg.norm(gr))
    solve_time = time.perf_counter() - t0
    theta = th.reshape(d + 1, k - 1)
    coef, intercept = _unstandardize(theta, mu, sd)
    if binary:
        coef, intercept = coef[:, 0], np.asarray(intercept[0])
    ill_posed = minimizer_status(x, y, loss=loss, l2=l2, eps=eps)
    if ill_posed is not None:           # the optimiser stopped somewhere on a divergent path
        status = f"{NO_MINIMIZER}: {ill_posed}"
    head = SoftmaxHead(coef=coef, intercept=intercept, probs=np.empty(0), loss=loss, l2=l2,
                       report=FitReport(method="softmax/lbfgs+newton" if newton else
                                        "softmax/lbfgs", status=status,
                                        converged=bool(ill_posed is None
                                                       and gnorm <= max(tol, 1e-12)),
                                        objective=float(val), grad_norm=gnorm,
                                        iterations=iters, solve_time=float(solve_time)))
    object.__setattr__(head, "probs", _probs_from_design(design, theta, binary))
    return head


def _probs_from_design(design: np.ndarray, theta: np.ndarray, binary: bool) -> np.ndarray:
    from scipy.special import expit, softmax

    z = design @ theta
    if binary:
        return expit(z[:, 0])
    return softmax(np.hstack([np.zeros((z.shape[0], 1)), z]), axis=1)


# ----------------------------------------------------------------------------- minibatch regime
@_small_torch_work
def fit_head_minibatch(features, weak_probs, *, loss: str = "forward_kl",
                       optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 16,
                       epochs: int = 1, l2: float = 0.0, seed: int = 0,
                       eps: float = 1e-6) -> SoftmaxHead:
    r"""Train the softmax head the practical way: minibatch Adam/SGD for a few epochs.

    Same model and losses as `fit_softmax_head` (float64, standardised
    features, zero initialisation), but optimised by ``optimizer`` with learning
    rate ``lr`` over ``epochs`` passes of shuffled minibatches of ``batch_size``
    (the last, smaller batch is kept). One epoch of batch 16 is the paper's
    regime; it stops far from the minimiser, which is the point of comparing it
    with `fit_softmax_head`. ``report.grad_norm`` is the full-batch gradient
    norm at the end; ``converged`` is always ``False`` unless that is ``<= 1e-6``.

    Args:
        features: shape ``(n, d)``. weak_probs: shape ``(n,)`` or ``(n, k)``.
        loss: a registered student loss (`w2s_theory.losses.loss_names`).
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate ``> 0``. batch_size: ``>= 1``. epochs: ``>= 1``.
        l2: L2 weight on the standardised weights. seed: shuffling seed.
        eps: clipping of weak labels inside ``log y`` (reverse losses).

    Returns:
        `SoftmaxHead`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import fit_head_minibatch
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(64, 3)); y = 1 / (1 + np.exp(-x[:, 0]))
        >>> h = fit_head_minibatch(x, y, loss="reverse_kl", lr=0.1, seed=0)
        >>> h.report.iterations, h.probs.shape
        (4, (64,))
    """
    import torch

    _check_loss(loss)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer: must be 'adam' or 'sgd', got {optimizer!r}")
    y = check_probs(weak_probs, "weak_probs")
    binary = y.ndim == 1
    k = n_classes(y)
    x = check_features(features, y.shape[0])
    lr = check_scalar(lr, "lr", low=0.0, low_open=True)
    l2 = check_scalar(l2, "l2", low=0.0)
    for name, v in (("batch_size", batch_size), ("epochs", epochs)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
    if not isinstance(seed, int):
        raise ValueError(f"seed: must be an integer, got {seed!r}")
    n, d = x.shape
    mu, sd, design = standardize(x)
    design_t = torch.from_numpy(design)
    y_t = torch.from_numpy(y)
    theta = torch.zeros((d + 1) * (k - 1), dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.Adam([theta], lr=lr) if optimizer == "adam"
           else torch.optim.SGD([theta], lr=lr))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    steps = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            fb = _torch_objective(design_t[idx], y_t[idx], loss, l2, binary, eps)
            opt.zero_grad()
            v = fb(theta)
            v.backward()
            opt.step()
            steps += 1
    f = _torch_objective(design_t, y_t, loss, l2, binary, eps)
    th = theta.detach().clone().requires_grad_(True)
    v = f(th)
    (gr,) = torch.autograd.grad(v, th)
    gnorm = float(gr.norm())
    solve_time = time.perf_counter() - t0
    theta_np = th.detach().numpy().reshape(d + 1, k - 1)
    coef, intercept = _unstandardize(theta_np, mu, sd)
    if binary:
        coef, intercept = coef[:, 0], np.asarray(intercept[0])
    return SoftmaxHead(coef=coef, intercept=intercept,
                       probs=_probs_from_design(design, theta_np, binary), loss=loss, l2=l2,
                       report=FitReport(method=f"minibatch/{optimizer}", status="finished",
                                        converged=bool(gnorm <= 1e-6), objective=float(v.detach()),
                                        grad_norm=gnorm, iterations=steps,
                                        solve_time=float(solve_time)))
