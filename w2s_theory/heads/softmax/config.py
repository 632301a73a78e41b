"""What a batch of softmax heads is trained with: `TrainConfig` (shared) and `HeadSpec` (per head).

Both are read by the one batched loop (`w2s_theory.heads.softmax.loop.fit_heads`) and re-exported
by `w2s_theory.training`, which builds its inputs. numpy only at import.

Examples:
    >>> TrainConfig(epochs=2, dtype="float64").to_dict()["epochs"]
    2
    >>> HeadSpec("reverse_kl", confidence=True, seed=3).group
    0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...objective import Objective
from ..minimizer import check_loss

__all__ = ["TrainConfig", "HeadSpec"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by all heads of a computation.

    Defaults are the paper's practical regime (one epoch, batch 16, Adam); ``lr=1e-3``
    is our choice for a linear head on standardised features (see ``experiments/real``).

    Attributes:
        epochs: passes over the data, ``>= 1``.
        batch_size: minibatch size, ``>= 1``.
        lr: Adam learning rate; betas, adam_eps: Adam's other constants.
        alpha_max, warmup_frac: confidence-loss weight schedule (`confidence_alpha`).
        buffer_size, min_count: rolling buffer of the class-balance threshold.
        eps: clipping of weak labels inside ``log y`` (reverse losses).
        dtype: ``"float32"`` or ``"float64"``.
    """

    epochs: int = 1
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    alpha_max: float = 0.5
    warmup_frac: float = 0.1
    buffer_size: int = 512
    min_count: int = 32
    eps: float = 1e-6
    dtype: str = "float32"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "buffer_size", "min_count"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.min_count > self.buffer_size:
            raise ValueError(f"min_count: must be <= buffer_size={self.buffer_size}, "
                             f"got {self.min_count}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: must be a positive number, got {self.lr!r}")
        b1, b2 = self.betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas: each must lie in [0, 1), got {self.betas!r}")
        if not (0.0 <= self.alpha_max <= 1.0):
            raise ValueError(f"alpha_max: must lie in [0, 1], got {self.alpha_max!r}")
        if not (0.0 <= self.warmup_frac <= 1.0):
            raise ValueError(f"warmup_frac: must lie in [0, 1], got {self.warmup_frac!r}")
        if not (0.0 < self.eps < 0.5):
            raise ValueError(f"eps: must lie in (0, 0.5), got {self.eps!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: must be 'float32' or 'float64', got {self.dtype!r}")

    @property
    def torch_dtype(self):
        """``torch.float32`` or ``torch.float64``."""
        import torch

        return torch.float32 if self.dtype == "float32" else torch.float64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    def objective(self, spec: HeadSpec):
        """The `w2s_theory.objective.Objective` of one head: its loss and confidence switch with
        this config's confidence settings (``warmup_frac`` is the confidence warm-up here)."""
        return Objective(spec.loss, spec.confidence, self.alpha_max, self.warmup_frac,
                         self.buffer_size, self.min_count, self.eps)


@dataclass(frozen=True)
class HeadSpec:
    """One head: its loss, whether the confidence loss is on, its data-order seed, its features.

    Attributes:
        loss: a registered student loss (`w2s_theory.losses.loss_names`).
        confidence: add Burns et al.'s confidence loss (same base loss).
        seed: seeds the minibatch order (`epoch_orders`).
        group: index of the feature group the head reads.
    """

    loss: str
    confidence: bool = False
    seed: int = 0
    group: int = 0

    def __post_init__(self):
        check_loss(self.loss)
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed: must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.group, (int, np.integer)) or self.group < 0:
            raise ValueError(f"group: must be a non-negative integer, got {self.group!r}")
