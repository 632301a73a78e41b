"""Training targets (weak labels with the run's noise) and the run's loss (`w2s_theory.objective`)."""

from __future__ import annotations

import numpy as np
import torch

from ..losses import BalanceThreshold
from ..noise import corrupt_labels
from .config import FinetuneConfig

__all__ = ["make_targets", "loss_fn", "new_buffer"]


def make_targets(weak_probs, cfg: FinetuneConfig) -> np.ndarray:
    """Training targets: the weak probabilities (``(n,)``, or ``(n, k)`` class rows) with
    ``cfg.noise`` of them corrupted (`w2s_theory.noise.corrupt_labels`).

    The corrupted rows are drawn by ``numpy.random.default_rng([seed, 1])``, so every
    loss trained with one seed sees the same noisy labels.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import FinetuneConfig, make_targets
        >>> make_targets(np.full(4, 0.9), FinetuneConfig(noise=0.5, seed=0)).round(2).tolist()
        [0.9, 0.1, 0.9, 0.1]
    """
    y = np.asarray(weak_probs, dtype=np.float64)
    if cfg.noise == 0:
        return y.copy()
    return corrupt_labels(y, cfg.noise, a=cfg.noise_a, rng=np.random.default_rng([cfg.seed, 1]))


def loss_fn(z: torch.Tensor, y: torch.Tensor, cfg: FinetuneConfig, *, step: int,
            total_steps: int, buffer: BalanceThreshold | None = None) -> torch.Tensor:
    """Mean loss of a micro-batch: ``cfg.loss`` or the confidence loss with that base.

    The loss is computed in float32 (logits upcast). For the confidence loss the
    buffer is updated with this micro-batch before its threshold is read; while it
    holds fewer than ``cfg.threshold_min_count`` predictions the plain loss is used.
    """
    z = z.float()
    return cfg.objective(z, y.to(z.dtype), step=step, total_steps=total_steps, buffer=buffer)


def new_buffer(cfg: FinetuneConfig) -> BalanceThreshold | None:
    """The confidence loss's threshold buffer (``None`` without the confidence loss)."""
    return cfg.objective.new_buffer()
