"""The Jensen-Shannon divergence ``KL(y || m)/2 + KL(p || m)/2``, ``m = (y + p)/2``, with its
closed-form gradient in the logits (torch)."""

from __future__ import annotations

import math

import torch

from ._common import (
    DEFAULT_EPS,
    check_inputs,
    log_student,
    pair,
    reduce_loss,
    softmax_chain,
    unpair,
)
from .registry import LossSpec


def js_divergence(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Jensen-Shannon divergence :math:`\tfrac12 KL(y \| m) + \tfrac12 KL(p \| m)`, ``m = (y+p)/2``.

    Symmetric, bounded by ``log 2``; gradient in ``z``: the softmax chain of
    ``dJS/dp_i = log(2 p_i / (y_i + p_i)) / 2``. ``eps`` unused.

    Examples:
        >>> import torch
        >>> round(js_divergence(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
    """
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = log_student(z)
    if lq is not None:
        lp2, y2 = torch.stack([lq, lp], dim=1), torch.stack([1 - y, y], dim=1)
    else:
        lp2, y2 = lp, y
    p2 = lp2.exp()
    lm = torch.logaddexp(torch.log(y2), lp2) - math.log(2.0)     # log m, finite where p > 0
    per = 0.5 * (torch.xlogy(y2, y2) - y2 * lm + p2 * (lp2 - lm)).sum(dim=1)
    return reduce_loss(per, reduction)


def _grad_js(z, y, eps=DEFAULT_EPS):
    p, y2 = pair(z, y)
    g = 0.5 * (math.log(2.0) + torch.log(p) - torch.log(y2 + p))
    return unpair(z, softmax_chain(p, g))


#: The losses of this file, in the registry's order.
LOSSES = (LossSpec("js", js_divergence, _grad_js, direction="symmetric", family="js"),)
