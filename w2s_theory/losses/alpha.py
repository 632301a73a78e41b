"""The alpha-divergences ``D_a(y || p)`` and ``D_a(p || y)`` (Yao et al.'s f-divergence
follow-up, arXiv:2506.03109), with their closed-form gradients in the logits (torch)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._validation import check_choice, check_number
from ._common import DEFAULT_EPS, check_inputs, log_student, pair, reduce_loss, unpair
from .registry import LossSpec


def _check_alpha(alpha) -> float:
    return check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)


def _alpha_affinity(z: torch.Tensor, y: torch.Tensor, a: float) -> torch.Tensor:
    """``s = sum_i y_i^a p_i^(1-a)`` per example (p from the logits in log space)."""
    lp, lq = log_student(z)
    if lq is not None:
        return y.pow(a) * torch.exp((1 - a) * lp) + (1 - y).pow(a) * torch.exp((1 - a) * lq)
    return (y.pow(a) * torch.exp((1 - a) * lp)).sum(dim=1)


def alpha_divergence(alpha: float, direction: str = "forward") -> Callable:
    r"""The alpha-divergence loss of a fixed ``alpha`` in ``(0, 1)`` and direction.

    ``forward``: :math:`D_\alpha(y \| p) = (1 - \sum_i y_i^\alpha p_i^{1-\alpha}) / (\alpha(1-\alpha))`
    (-> forward KL as alpha -> 1, reverse KL as alpha -> 0); ``reverse``: :math:`D_\alpha(p \| y)`,
    which equals the forward loss at ``1 - alpha``. Shapes as the other losses; ``eps`` unused.

    Examples:
        >>> import torch
        >>> f = alpha_divergence(0.5)
        >>> round(f(torch.tensor([0.0]), torch.tensor([1.0])).item(), 6)   # 4(1 - sqrt(1/2))
        1.171573
    """
    a = _check_alpha(alpha)
    check_choice(direction, "direction", ("forward", "reverse"))
    e = a if direction == "forward" else 1.0 - a     # exponent on y

    def loss(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
        z, y = check_inputs(student_logits, weak_probs, reduction, eps)
        per = (1.0 - _alpha_affinity(z, y, e)) / (a * (1.0 - a))
        return reduce_loss(per, reduction)

    loss.__name__ = f"alpha_{a:g}_{direction}"
    loss.__doc__ = f"alpha-divergence D_{a:g}({'y || p' if direction == 'forward' else 'p || y'})."
    return loss


def _alpha_grad(alpha: float, direction: str) -> Callable:
    """Closed form: with ``e`` the exponent on ``y`` and ``s`` the affinity,
    ``d/dz_j D = (p_j s - y_j^e p_j^(1-e)) / e`` (the forward form at ``e``)."""
    a = _check_alpha(alpha)
    e = a if direction == "forward" else 1.0 - a

    def grad(z, y, eps=DEFAULT_EPS):
        p, y2 = pair(z, y)
        t = y2.pow(e) * p.pow(1 - e)
        s = t.sum(dim=1, keepdim=True)
        # D = (1 - s)/(a(1-a)), ds/dz_j = (1-e)(t_j - p_j s); a(1-a) = e(1-e)
        return unpair(z, (p * s - t) / e)

    return grad


def _registered() -> tuple[LossSpec, ...]:
    """``alpha_0.25_forward``, ``alpha_0.25_reverse`` (= ``D_0.75(y || p)``) and the symmetric
    ``alpha_0.5`` (4 x squared Hellinger)."""
    out = []
    for a in (0.25, 0.5):
        dirs = ("forward",) if a == 0.5 else ("forward", "reverse")
        for d in dirs:
            name = "alpha_0.5" if a == 0.5 else f"alpha_{a:g}_{d}"
            out.append(LossSpec(name, alpha_divergence(a, d), _alpha_grad(a, d),
                                direction="symmetric" if a == 0.5 else d, family="alpha", alpha=a))
    return tuple(out)


#: The losses of this file, in the registry's order.
LOSSES = _registered()
