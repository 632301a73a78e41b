"""The four losses of arXiv:2502.11107: forward and reverse KL (families ``kl``) and forward and
reverse cross-entropy (``ce``), with their closed-form gradients in the logits (torch).

Forward KL ``KL(y || p)`` and forward CE ``-sum_i y_i log p_i`` (the standard W2SG loss) are
mass-covering and share the gradient ``p - y``; reverse KL ``KL(p || y)`` and reverse CE
``-sum_i p_i log y_i`` are mode-seeking.
"""

from __future__ import annotations

import torch

from ._common import (
    DEFAULT_EPS,
    check_inputs,
    grad_forward,
    log_student,
    log_weak,
    log_weak2,
    pair,
    reduce_loss,
    softmax_chain,
    unpair,
)
from .registry import LossSpec


def forward_ce(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Forward cross-entropy :math:`CE(y, p) = -\sum_i y_i \log p_i` (standard W2SG loss).

    Binary: ``-[y log p + (1-y) log(1-p)]``, gradient in ``z``: ``p - y``.

    Args:
        student_logits: ``(n,)`` binary logits or ``(n, k)`` logits.
        weak_probs: same shape; weak probabilities (binary: P(class 1)).
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (shape ``(n,)``).
        eps: unused here (no log of ``y``); accepted for a uniform signature.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import forward_ce
        >>> round(forward_ce(torch.tensor([0.0]), torch.tensor([1.0])).item(), 6)  # log 2
        0.693147
    """
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = log_student(z)
    if lq is not None:
        per = -(y * lp + (1 - y) * lq)
    else:
        per = -(y * lp).sum(dim=1)
    return reduce_loss(per, reduction)


def forward_kl(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Forward KL :math:`KL(y \| p) = \sum_i y_i \log(y_i / p_i)`.

    Equals `forward_ce` minus the weak labels' entropy (a constant in the
    student), so it has the same gradient ``p - y`` (binary) and the same minimiser.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``. eps: accepted, unused.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import forward_kl
        >>> round(forward_kl(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
    """
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = log_student(z)
    if lq is not None:
        per = torch.xlogy(y, y) - y * lp + torch.xlogy(1 - y, 1 - y) - (1 - y) * lq
    else:
        per = (torch.xlogy(y, y) - y * lp).sum(dim=1)
    return reduce_loss(per, reduction)


def reverse_kl(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Reverse KL :math:`KL(p \| y) = \sum_i p_i \log(p_i / y_i)` (mode-seeking).

    Binary: ``p log(p/y) + (1-p) log((1-p)/(1-y))``, gradient in ``z``:
    ``p(1-p)(z - logit y)``. ``y`` is clipped into ``[eps, 1-eps]`` inside the log.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        eps: clipping of the weak probabilities inside ``log y``.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import reverse_kl
        >>> round(reverse_kl(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
        >>> round(reverse_kl(torch.tensor([0.0]), torch.tensor([0.25])).item(), 6)
        0.143841
    """
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = log_student(z)
    ly, l1y = log_weak(y, eps)
    if lq is not None:
        p, q = lp.exp(), lq.exp()                  # q = 1 - p without cancellation
        per = p * (lp - ly) + q * (lq - l1y)
    else:
        p = lp.exp()
        per = (p * (lp - ly)).sum(dim=1)
    return reduce_loss(per, reduction)


def reverse_ce(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Reverse cross-entropy :math:`CE(p, y) = -\sum_i p_i \log y_i`.

    Equals reverse KL plus the student's entropy: an extra pull towards confident
    students. Binary gradient in ``z``: ``-p(1-p) logit y``.

    Args:
        student_logits, weak_probs, reduction, eps: as `reverse_kl` (``eps`` clips ``log y``).

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import reverse_ce
        >>> z, y = torch.tensor([0.0]), torch.tensor([0.5])
        >>> round(reverse_ce(z, y).item(), 6)                  # -log(1/2) = log 2
        0.693147
    """
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    ly, l1y = log_weak(y, eps)
    if z.ndim == 1:
        # -(p ly + q l1y) written about the larger of p, q: -ly + q (ly - l1y) when p >= 1/2,
        # else -l1y - p (ly - l1y). No cancellation beyond a factor 2, p + q = 1 exactly, and for
        # y, 1 - y (swapped logs) the two products are exact negatives: the symmetric identity
        # l(p, y) + l(p, 1 - y) = -(log y + log(1 - y)) holds to the two final roundings
        p, q = torch.sigmoid(z), torch.sigmoid(-z)  # q = 1 - p without cancellation
        d = ly - l1y
        per = torch.where(z >= 0, q * d - ly, -(p * d) - l1y)
    else:
        p = torch.softmax(z, dim=1)
        per = -(p * ly).sum(dim=1)
    return reduce_loss(per, reduction)


def _grad_reverse_kl(z, y, eps=DEFAULT_EPS):
    """Reverse KL: ``p_j (log p_j - log y_j - KL(p || y))``; binary ``p(1-p)(z - logit y)``."""
    p, _ = pair(z, y)
    return unpair(z, softmax_chain(p, torch.log(p) - log_weak2(z, y, eps)))


def _grad_reverse_ce(z, y, eps=DEFAULT_EPS):
    """Reverse CE: ``p_j (-log y_j + sum_i p_i log y_i)``; binary ``-p(1-p) logit y``."""
    p, _ = pair(z, y)
    return unpair(z, softmax_chain(p, -log_weak2(z, y, eps)))


#: The losses of this file, in the registry's order.
LOSSES = (
    LossSpec("forward_kl", forward_kl, grad_forward, direction="forward", family="kl"),
    LossSpec("reverse_kl", reverse_kl, _grad_reverse_kl, direction="reverse", family="kl"),
    LossSpec("forward_ce", forward_ce, grad_forward, direction="forward", family="ce"),
    LossSpec("reverse_ce", reverse_ce, _grad_reverse_ce, direction="reverse", family="ce"),
)
