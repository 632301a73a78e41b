"""The student's training objective, one definition for every trainer.

`Objective` is what a student minimises: a registered loss (`w2s_theory.losses`),
optionally Burns et al.'s confidence loss with that base (its weight ramp ``alpha_max`` over
``confidence_warmup_frac`` of the steps, and the class-balance threshold's rolling buffer of
``threshold_buffer`` predictions, read once ``threshold_min_count`` are buffered), and the
clipping ``eps`` of weak labels inside ``log y``. The last-layer trainer
(`w2s_theory.training.train_head`), the fine-tuning trainer
(`w2s_theory.finetune.train`, whose ``Trainer`` also trains `w2s_theory.partial.train_top`)
all evaluate it through `Objective.__call__`, so they cannot disagree about what a field
means. (``TrainConfig`` and ``FinetuneConfig`` keep their historical field names, which are part
of stored run keys, and map them here: ``TrainConfig.warmup_frac`` is the *confidence* warm-up,
``FinetuneConfig.warmup_frac`` the *learning-rate* warm-up, which is not part of the objective.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import ArgumentTypeError, check_int, check_number

__all__ = ["Objective"]


@dataclass(frozen=True)
class Objective:
    """A student loss with the optional confidence term (see the module doc).

    Examples:
        >>> import torch
        >>> obj = Objective("reverse_kl", confidence=True, threshold_buffer=4, threshold_min_count=4)
        >>> buf = obj.new_buffer()
        >>> z, y = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([0.7, 0.2, 0.9, 0.4])
        >>> bool(obj(z, y, step=0, total_steps=10, buffer=buf) > 0)
        True
    """

    loss: str = "forward_ce"
    confidence: bool = False
    alpha_max: float = 0.5
    confidence_warmup_frac: float = 0.1
    threshold_buffer: int = 512
    threshold_min_count: int = 32
    eps: float = 1e-6

    def __post_init__(self):
        from .losses import check_loss_name  # torch

        check_loss_name(self.loss)
        if not isinstance(self.confidence, (bool, np.bool_)):     # (a table row's np.bool_ too)
            raise ArgumentTypeError(f"confidence: must be True or False, got {self.confidence!r}")
        for name in ("alpha_max", "confidence_warmup_frac"):
            check_number(getattr(self, name), name, low=0.0, high=1.0)
        for name in ("threshold_buffer", "threshold_min_count"):
            check_int(getattr(self, name), name, low=1)
        check_number(self.eps, "eps", low=0.0, high=0.5, low_open=True, high_open=True)

    def alpha(self, step: int, total_steps: int) -> float:
        """The confidence weight at ``step`` (`w2s_theory.losses.confidence_alpha`)."""
        from .losses import confidence_alpha

        return confidence_alpha(step, total_steps, alpha_max=self.alpha_max,
                                warmup_frac=self.confidence_warmup_frac)

    def new_buffer(self):
        """The class-balance threshold's buffer (``None`` without the confidence loss)."""
        if not self.confidence:
            return None
        from .losses import BalanceThreshold

        return BalanceThreshold(size=self.threshold_buffer,
                                min_count=min(self.threshold_min_count, self.threshold_buffer))

    def __call__(self, z, y, *, step: int, total_steps: int, buffer=None):
        """Mean loss of a batch of binary logits ``z`` ``(n,)`` against weak labels ``y``.

        With the confidence loss the buffer is updated with this batch before its threshold is
        read; while it holds fewer than ``threshold_min_count`` predictions the plain loss is used.
        """
        import torch

        from .losses import confidence_loss, get_loss

        if self.confidence:
            from .losses import BalanceThreshold

            if not isinstance(buffer, BalanceThreshold):
                raise ValueError(f"buffer: the confidence loss needs Objective.new_buffer(), got "
                                 f"{type(buffer).__name__}")
            buffer.update(torch.sigmoid(z.detach()), y)
            if len(buffer) >= self.threshold_min_count:
                return confidence_loss(z, y, alpha=self.alpha(step, total_steps),
                                       threshold=buffer.threshold, base=self.loss,
                                       reduction="mean", eps=self.eps)
        return get_loss(self.loss)(z, y, reduction="mean", eps=self.eps)
