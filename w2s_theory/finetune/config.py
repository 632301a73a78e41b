"""`FinetuneConfig`: one fine-tuning run; the defaults are the paper's protocol (arXiv:2502.11107, Sec. 5)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

from ..config import check_keys, from_mapping
from ..losses import check_loss_name
from ..objective import Objective
from ..precision import PRECISIONS

__all__ = ["FinetuneConfig", "TASKS", "POOLINGS"]

#: ``pairwise``: Bradley--Terry pairs; ``binary``: one text, one logit; ``classification``: one
#: text, ``k`` classes (``(n, k)`` targets, a ``Linear(H, k)`` head).
TASKS = ("pairwise", "binary", "classification")
#: Pooling rules of the reward head (``auto``: by architecture, `resolve_pooling`).
POOLINGS = ("auto", "mean", "last", "cls")


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run; the defaults are the paper's protocol.

    Attributes:
        loss: ``forward_kl`` | ``reverse_kl`` | ``forward_ce`` | ``reverse_ce``.
        confidence: add Burns et al.'s confidence term, ``loss`` being its base.
        alpha_max, confidence_warmup_frac: the confidence weight's ramp
            (`w2s_theory.losses.confidence_alpha`).
        threshold_buffer, threshold_min_count: the rolling buffer of the class-balance
            threshold; until ``threshold_min_count`` predictions are buffered the plain
            loss is used (as in `w2s_theory.training`).
        noise: fraction of training targets corrupted by ``y -> 1/2 + noise_a (y - 1/2)``
            (``noise_a = -1`` flips), `w2s_theory.noise.corrupt_binary`.
        eps: clipping of targets inside ``log y`` (reverse losses).
        task: ``pairwise`` (Bradley--Terry), ``binary`` (one text, one logit) or
            ``classification`` (one text, ``k`` classes from the targets' shape ``(n, k)``).
        head_only: freeze the backbone (last-layer regime).
        max_length: tokens per text including special tokens; truncation_side: ``left``/``right``.
        dropout: backbone dropout (0 = off).
        head_init_std: the head's weights start ``N(0, std^2)`` from the run's seed; bias 0.
        epochs: passes over the training pairs.
        batch_size: examples per optimiser step (global).
        grad_accum: micro-steps per optimiser step.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        adam_eps: AdamW epsilon.
        schedule: ``cosine`` | ``constant`` (transformers' ``get_scheduler``: ``cosine`` /
            ``constant_with_warmup``).
        warmup_frac: linear warm-up share of the steps (``warmup_steps = round(frac * T)``;
            transformers' warm-up starts at lr 0).
        max_grad_norm: gradient-norm clipping (``None`` = no clipping).
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (autocast). ``auto``: bf16 on a CUDA
            device that supports it, elsewhere bf16 only where it measured faster than fp32 on
            this machine (`w2s_theory.precision.choose_precision`); rows record the one used.
        seed: the run's seed: data order, head init, noise.
        checkpoint_every: optimiser steps between Trainer checkpoints (0 = none).
        eval_batch_size: texts per forward pass in `predict`.
        group_by_length: batches grouped by length in mega-batches of this many batches
            (transformers' ``get_length_grouped_indices`` with ``mega_batch_mult`` = this,
            seeded; `batch_order`; 0 = off): the same examples per epoch with much less padding.
        pooling: what the reward head reads: ``mean`` over real tokens, the ``last`` real
            token (right or left padding, from the attention mask), ``cls`` (the first token)
            or ``auto``: ``last`` for decoders (GPT-2, Llama, Qwen2, Pythia: decoder reward
            models read the last token), ``mean`` for encoders (`resolve_pooling`).

    Examples:
        >>> from w2s_theory.finetune import FinetuneConfig
        >>> c = FinetuneConfig(loss="reverse_kl", seed=3)
        >>> c.batch_size, c.lr, c.epochs, c.schedule, c.truncation_side
        (16, 1e-05, 1, 'cosine', 'left')
    """

    # the objective's settings: defaults are `Objective`'s (one definition; `objective`)
    loss: str = Objective.loss
    confidence: bool = Objective.confidence
    alpha_max: float = Objective.alpha_max
    confidence_warmup_frac: float = Objective.confidence_warmup_frac
    threshold_buffer: int = Objective.threshold_buffer
    threshold_min_count: int = Objective.threshold_min_count
    noise: float = 0.0
    noise_a: float = -1.0
    eps: float = Objective.eps
    task: str = "pairwise"
    head_only: bool = False
    max_length: int = 128
    truncation_side: str = "left"
    dropout: float = 0.0
    head_init_std: float = 0.02
    epochs: int = 1
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    schedule: str = "cosine"
    warmup_frac: float = 0.0
    max_grad_norm: float | None = None
    precision: str = "auto"
    seed: int = 0
    checkpoint_every: int = 0
    eval_batch_size: int = 64
    group_by_length: int = 0
    pooling: str = "auto"

    def __post_init__(self):
        check_loss_name(self.loss)
        if self.task not in TASKS:
            raise ValueError(f"task: must be one of {TASKS}, got {self.task!r}")
        if self.truncation_side not in ("left", "right"):
            raise ValueError(f"truncation_side: 'left' or 'right', got {self.truncation_side!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule: 'cosine' or 'constant', got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: one of {PRECISIONS}, got {self.precision!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling: one of {POOLINGS}, got {self.pooling!r}")
        if not isinstance(self.group_by_length, int) or self.group_by_length < 0:
            raise ValueError(f"group_by_length: must be an integer >= 0, got {self.group_by_length!r}")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"grad_accum: must divide batch_size={self.batch_size}, "
                             f"got {self.grad_accum}")
        if self.max_length < 3:
            raise ValueError(f"max_length: must be >= 3 (special tokens), got {self.max_length}")
        if not (0.0 <= self.noise <= 1.0):
            raise ValueError(f"noise: must lie in [0, 1], got {self.noise!r}")
        if not (-1.0 <= self.noise_a <= 1.0):
            raise ValueError(f"noise_a: must lie in [-1, 1], got {self.noise_a!r}")
        if not (self.lr > 0):
            raise ValueError(f"lr: must be > 0, got {self.lr!r}")
        if not (0.0 <= self.warmup_frac < 1.0):
            raise ValueError(f"warmup_frac: must lie in [0, 1), got {self.warmup_frac!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout: must lie in [0, 1), got {self.dropout!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm: must be > 0 or None, got {self.max_grad_norm!r}")
        if not (isinstance(self.threshold_min_count, int)
                and 1 <= self.threshold_min_count <= self.threshold_buffer):
            raise ValueError(f"threshold_min_count: must be an integer in [1, threshold_buffer], "
                             f"got {self.threshold_min_count!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every: must be an integer >= 0, got {self.checkpoint_every!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    @property
    def micro_batch_size(self) -> int:
        """Pairs (or texts) per micro-step, over all processes."""
        return self.batch_size // self.grad_accum

    def replace(self, **changes) -> FinetuneConfig:
        """A copy with some fields changed (validated by ``__post_init__``; an unknown field is
        a `w2s_theory.config.ConfigError` naming it)."""
        check_keys(changes, [f.name for f in fields(self)], "FinetuneConfig.replace:")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict (JSON/TOML-able)."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        if not self.group_by_length:   # absent when off, so earlier run keys stay valid
            d.pop("group_by_length")
        if self.pooling == "auto":     # absent at its default (earlier run keys stay valid)
            d.pop("pooling")
        return d

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "[train]", path: str = "train") -> FinetuneConfig:
        """Build from a dict (a ``[train]`` table) by the fields' types
        (`w2s_theory.config.from_mapping`): an unknown key is refused naming the table, the
        key and the closest field."""
        return from_mapping(cls, d, where=where, path=path)

    @property
    def objective(self) -> Objective:
        """The run's training objective (`w2s_theory.objective.Objective`)."""
        return Objective(**{f.name: getattr(self, f.name) for f in fields(Objective)})

    def same_trajectory(self) -> dict:
        """The fields that change the training numbers (for checkpoint compatibility)."""
        d = self.to_dict()
        for k in ("checkpoint_every", "eval_batch_size"):
            d.pop(k)
        return d
