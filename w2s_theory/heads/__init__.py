"""Last-layer heads on a fixed strong representation, fitted to weak labels.

Three ways to fit a linear head ``f`` on features ``h_s(x)`` (shape ``(n, d)``) to
weak probabilities ``F_w(x)`` (shape ``(n,)`` binary or ``(n, k)``):

* `fit_convex_head` (``heads.convex``) -- the *mixture-convex* head class of
  ``docs/theory.md`` (Theorem 2): probabilities affine in ``[h_s; 1]``,
  ``P(x) = A [h_s(x); 1]``, ``1^T P(x) = 1``, ``P_i(x) >= gamma`` on every sample, fitted by
  minimising the reverse KL ``E KL(P || F_w)`` (the I-projection) or the forward KL
  ``E KL(F_w || P)`` (the M-projection) exactly, as an exponential-cone program (Clarabel);
  the report carries a duality gap and a KKT certificate.
* `fit_softmax_head` (``heads.softmax.exact``) -- the softmax (logistic) linear head
  ``P(x) = softmax(W^T h_s(x) + b)``, fitted with any of the W2SG losses of
  `w2s_theory.losses` to a tight gradient tolerance (float64 L-BFGS, then a trust-region
  Newton polish with the exact Hessian).
* `fit_head_minibatch` (``heads.softmax.minibatch``) -- the practical regime: the same softmax
  head trained by minibatch Adam/SGD (default one epoch, batch 16), i.e. early stopped,
  through the one batched k-class loop (``heads.softmax.loop.fit_heads``) that also trains
  the real sweep's heads (`w2s_theory.training`).

Features are standardised (column mean 0, standard deviation 1) inside every fit
(``heads.design``) and the parameters mapped back to the original units, so the optimisation
is well scaled whatever the features' units; ``predict`` takes raw features. Which exact fits
have a finite minimiser, and how a fit without one is reported: `minimizer_status`
(``heads.minimizer``).

Parameterisation: class 0 is the reference. The binary shorthand ``(n,)`` is
``P(class 1)``; with ``k`` classes the free parameters are the columns of classes
``1..k-1`` (convex head: ``P_0 = 1 - sum_{j>0} P_j``; softmax head: logit ``z_0 = 0``),
so the fitted head is identifiable. Importing this package does not import torch or cvxpy.

References:
    Yao et al., arXiv:2502.11107 (2025), Theorem 2 and its "last linear layer" class.
    Csiszar, "I-divergence geometry of probability distributions", Ann. Probab. 3 (1975).
    Goulart & Chen, "Clarabel: an interior-point solver for conic programs", arXiv:2405.12762.
"""

from .convex import (
    CLARABEL_TOL,
    DIVERGENCES,
    ConvexHead,
    convex_program,
    fit_convex_head,
    project_to_floor_simplex,
    solve_clarabel,
)
from .design import check_features, standardize
from .minimizer import LINEAR_IN_P, NO_MINIMIZER, minimizer_status
from .report import FitReport
from .softmax import SMALL_TORCH_WORK, SoftmaxHead, fit_head_minibatch, fit_softmax_head

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
    "CLARABEL_TOL",
    "SMALL_TORCH_WORK",
    "check_features",
    "standardize",
    "solve_clarabel",
    "convex_program",
]
