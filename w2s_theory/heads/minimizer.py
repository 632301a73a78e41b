r"""Existence of a minimiser: which exact last-layer fits have one (audit of the exact fits).

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
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from .._validation import as_categorical, check_probs, check_scalar
from .design import check_features, standardize

__all__ = ["minimizer_status", "check_loss", "LINEAR_IN_P", "NO_MINIMIZER"]

#: Student losses linear in the student's probabilities ``p`` (``sum_j c_j(y) p_j``): on a
#: softmax head with ``l2 = 0`` they have no finite minimiser (`minimizer_status`).
LINEAR_IN_P = ("reverse_ce",)
#: Forward losses: convex in the logits, coercive when every weak probability is ``> 0``.
_FORWARD = ("forward_kl", "forward_ce")
#: ``FitReport.status`` of a fit whose objective has no finite minimiser starts with this.
NO_MINIMIZER = "no_minimizer"


def check_loss(loss: str) -> None:
    """A ValueError naming ``loss`` unless it is a registered student loss."""
    from ..losses import check_loss_name  # torch, imported only when a loss is checked

    check_loss_name(loss)


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
    check_loss(loss)
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

