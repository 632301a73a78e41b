"""Burns et al.'s auxiliary confidence loss, its warm-up schedule and its class-balance
threshold over minibatches (torch; arXiv:2312.09390)."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import as_float_array, check_choice, check_int, check_number
from ._common import DEFAULT_EPS, check_inputs, value_checks
from .registry import REGISTRY


def confidence_alpha(step: int, total_steps: int, *, alpha_max: float = 0.5,
                     warmup_frac: float = 0.1) -> float:
    r"""Linear warm-up of the confidence weight: :math:`\alpha_t = \alpha_{max}\min(1, t / (f T))`.

    Climbs linearly from 0 at ``step = 0`` to ``alpha_max`` at
    ``step = warmup_frac * total_steps`` and stays there (the public code of
    Burns et al. climbs to ``alpha_max / 10`` and then jumps; this does not).

    Args:
        step: current optimisation step, ``>= 0``.
        total_steps: total number of steps, ``>= 1``.
        alpha_max: final weight in ``[0, 1]``.
        warmup_frac: fraction of training spent warming up, in ``[0, 1]``
            (``0`` means ``alpha_max`` from the start).

    Examples:
        >>> from w2s_theory.losses import confidence_alpha
        >>> [round(confidence_alpha(t, 100), 3) for t in (0, 5, 10, 50)]
        [0.0, 0.25, 0.5, 0.5]
    """
    step = check_int(step, "step", low=0)
    total_steps = check_int(total_steps, "total_steps", low=1)
    alpha_max = check_number(alpha_max, "alpha_max", low=0.0, high=1.0)
    warmup_frac = check_number(warmup_frac, "warmup_frac", low=0.0, high=1.0)
    warm = warmup_frac * total_steps
    # A relative 1e-12 snap: warmup_frac * total_steps is rounded (0.3 * 10 > 3 in
    # float64), and the ramp must reach alpha_max exactly at the end of the warm-up.
    if warm <= 0 or step >= warm * (1.0 - 1e-12):
        return float(alpha_max)
    return float(alpha_max * (step / warm))


class BalanceThreshold:
    """Rolling buffer for the confidence loss's class-balance threshold (binary).

    The threshold is the quantile of the student's recent probabilities at level
    ``1 - mean(weak labels)``, so that hardening at it keeps the weak labels'
    class balance. A minibatch of 16 (or 1) gives a meaningless quantile; this
    buffer keeps the last ``size`` predictions and labels across minibatches.

    Args:
        size: number of recent examples kept.
        min_count: `threshold` raises until this many examples were seen.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import BalanceThreshold
        >>> buf = BalanceThreshold(size=8, min_count=4)
        >>> buf.update(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
        >>> round(buf.threshold, 3)
        0.5
    """

    def __init__(self, size: int = 512, min_count: int = 32):
        size = check_int(size, "size", low=1)
        min_count = check_int(min_count, "min_count", low=1)
        if min_count > size:
            raise ValueError(f"min_count: must be an integer in [1, size={size}], got {min_count!r}")
        self.size = size
        self.min_count = min_count
        self._p: deque[float] = deque(maxlen=size)
        self._y: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._p)

    def update(self, student_probs, weak_probs) -> None:
        """Append a minibatch of binary student probabilities and weak labels (both ``(n,)``)."""
        p = self._as_probs(student_probs, "student_probs")
        y = self._as_probs(weak_probs, "weak_probs")
        if p.shape != y.shape:
            raise ValueError(f"weak_probs: shape {tuple(y.shape)} does not match student_probs "
                             f"shape {tuple(p.shape)}")
        self._p.extend(p.tolist())
        self._y.extend(y.tolist())

    @staticmethod
    def _as_probs(x, name: str) -> torch.Tensor:
        t = torch.from_numpy(as_float_array(x, name).astype(np.float64, copy=False))
        if t.ndim != 1 or t.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty binary batch of shape (n,), "
                             f"got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: contains NaN or inf")
        if (t < 0).any() or (t > 1).any():
            raise ValueError(f"{name}: entries must lie in [0, 1]")
        return t

    @property
    def threshold(self) -> float:
        """Quantile of buffered student probabilities at ``1 - mean(buffered weak labels)``."""
        if len(self._p) < self.min_count:
            raise ValueError(
                f"BalanceThreshold: only {len(self._p)} predictions buffered, need "
                f"min_count={self.min_count} for a meaningful class-balance threshold"
            )
        p = torch.tensor(list(self._p), dtype=torch.float64)
        q = 1.0 - sum(self._y) / len(self._y)
        return float(torch.quantile(p, q))


def confidence_loss(
    student_logits,
    weak_probs,
    *,
    alpha: float,
    threshold: float | None = None,
    base: str = "forward_ce",
    reduction: str = "mean",
    eps: float = DEFAULT_EPS,
    min_batch: int = 32,
):
    r"""Burns et al.'s auxiliary confidence loss: ``base(z, (1 - alpha) y + alpha * hard(p))``.

    ``hard(p)`` hardens the student's own (detached) prediction: binary, ``1[p > t]``
    with ``t`` the class-balance threshold (the quantile of the student's
    probabilities at level ``1 - mean(y)``); k-class, the one-hot of ``argmax p``.
    With ``base="reverse_kl"`` or ``"reverse_ce"`` this is the reverse variant.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        alpha: weight of the hardened target in ``[0, 1]`` (see `confidence_alpha`).
        threshold: binary hardening threshold; ``None`` computes it on this batch, which
            requires ``n >= min_batch`` (use `BalanceThreshold` for small batches).
            Must be ``None`` for k-class logits (hardening is the argmax there).
        base: a registered student loss (`loss_names`).
        reduction, eps: as for the base loss.
        min_batch: smallest batch for an in-batch threshold.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import confidence_loss, forward_ce
        >>> z, y = torch.tensor([2.0, -1.0]), torch.tensor([0.7, 0.4])
        >>> bool(confidence_loss(z, y, alpha=0.0, threshold=0.5) == forward_ce(z, y))
        True
    """
    zc, y = check_inputs(student_logits, weak_probs, reduction, eps)
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    check_choice(base, "base", tuple(REGISTRY))
    min_batch = check_int(min_batch, "min_batch", low=1)
    z = zc.detach()
    if z.ndim == 2 and threshold is not None:
        raise ValueError("threshold: only for binary logits of shape (n,); k-class hardening "
                         "is the argmax of the student's prediction")
    if z.ndim == 1:
        p = torch.sigmoid(z)
        if threshold is None:
            if z.shape[0] < min_batch:
                raise ValueError(
                    f"threshold: None needs a batch of at least min_batch={min_batch} to estimate "
                    f"the class-balance quantile, got {z.shape[0]}; pass "
                    f"threshold=BalanceThreshold(...).threshold"
                )
            threshold = float(torch.quantile(p.double(), 1.0 - float(y.double().mean())))
        threshold = check_number(threshold, "threshold", low=0.0, high=1.0)
        hard = (p > threshold).to(y.dtype)
    else:
        hard = F.one_hot(z.argmax(dim=1), z.shape[1]).to(y.dtype)
    target = (1.0 - alpha) * y + alpha * hard
    with value_checks(False):    # y was checked above; the mix may round a row sum by an ulp
        return REGISTRY[base].fn(zc, target, reduction=reduction, eps=eps)
