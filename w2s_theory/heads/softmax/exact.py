r"""The exact softmax fit: L-BFGS, then a trust-region Newton polish, to a tight gradient.

A solver, not a training loop (the practical regime is `w2s_theory.heads.fit_head_minibatch`):
float64 torch objectives of `w2s_theory.losses` on the standardised design, minimised by
scipy. Where the objective has no finite minimiser (`w2s_theory.heads.minimizer_status`)
the report says so.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from ..._validation import check_probs, check_scalar, n_classes
from ..design import check_features, standardize, unstandardize
from ..minimizer import NO_MINIMIZER, check_loss, minimizer_status
from ..report import FitReport
from .head import SoftmaxHead, probs_from_design, small_torch_work, torch_objective

__all__ = ["fit_softmax_head"]


@small_torch_work
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
        >>> x = np.arange(4.0).reshape(4, 1)                # one feature: 0, 1, 2, 3
        >>> y = np.array([0.1, 0.4, 0.7, 0.8])
        >>> h = fit_softmax_head(x, y, loss="forward_kl")
        >>> h.report.converged, h.report.grad_norm < 1e-10
        (True, True)
        >>> round(float(h.probs.sum()), 8) == round(float(y.sum()), 8)  # moment matching
        True
    """
    import torch

    check_loss(loss)
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
    f = torch_objective(design_t, y_t, loss, l2, binary, eps)
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
    coef, intercept = unstandardize(theta, mu, sd)
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
    object.__setattr__(head, "probs", probs_from_design(design, theta, binary))
    return head

