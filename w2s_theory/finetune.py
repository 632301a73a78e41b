"""Full fine-tuning of a reward model (backbone + linear head) under the W2SG losses (torch).

The strong student is a pretrained transformer ``h`` (e.g. all-MiniLM-L6-v2) with
a linear head on the mean-pooled last hidden state,

``r(x) = w . mean_t h(x)_t + b``  (mean over the attention-mask tokens),

trained on soft targets ``y`` (the weak model's probabilities, optionally
corrupted by label noise) under one of `w2s_theory.losses`:

* ``task="pairwise"`` (HH-RLHF reward model, Bradley--Terry): a pair ``(A, B)``
  has logit ``z = r(A) - r(B)``, ``P(A preferred) = sigmoid(z)``;
* ``task="binary"``: one text, logit ``z = r(x)``.

The default `FinetuneConfig` is the paper's protocol (arXiv:2502.11107,
Sec. 5): one epoch, batch 16, learning rate 1e-5, cosine decay, Adam (AdamW with
weight decay 0), dropout off (reward-model practice; it also makes a run a
deterministic function of its seed). Texts are truncated from the *left* (the
final assistant reply is what a preference is about) to ``max_length`` tokens
including the special tokens, as the shared features were.

``head_only=True`` freezes the backbone and trains the head alone on its
pooled features (computed once): the last-layer regime through the same loop,
batches, losses and rows.

Training runs through `accelerate <https://huggingface.co/docs/accelerate>`_ when
it is installed (``accelerate launch -m w2s_theory.cli finetune ...`` or torchrun
gives multi-GPU / multi-node data parallelism; the global batch stays
``batch_size``, split over processes and ``grad_accum`` micro-steps), and through
a single-process plain-torch engine with the same interface otherwise.
Checkpoints are written atomically every ``checkpoint_every`` optimiser steps; a
killed run restarted with the same config resumes from the last one and ends
with the same weights as an uninterrupted run.

References
----------
Yao et al., "Revisiting Weak-to-Strong Generalization in Theory and Practice:
Reverse KL vs. Forward KL", arXiv:2502.11107 (2025).
Burns et al., "Weak-to-Strong Generalization", arXiv:2312.09390 (2023).
Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 39 (1952).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hub import load, pool, resolve_model
from .losses import BalanceThreshold, check_loss_name
from .noise import corrupt_binary
from .objective import Objective
from .runtime import resolve_device

__all__ = [
    "FinetuneConfig",
    "TokenizedTexts",
    "TextTask",
    "RewardModel",
    "TrainStats",
    "load_backbone",
    "build_model",
    "batch_order",
    "task_lengths",
    "train_order",
    "lr_multiplier",
    "make_targets",
    "init_head_",
    "mean_pool",
    "pool_tokens",
    "resolve_pooling",
    "fp32_head",
    "loss_fn",
    "make_engine",
    "end_processes",
    "PlainEngine",
    "train",
    "predict",
    "embed_texts",
]

TASKS = ("pairwise", "binary")
#: Pooling rules of the reward head (``auto``: by architecture, `resolve_pooling`).
POOLINGS = ("auto", "mean", "last", "cls")


# ----------------------------------------------------------------------------- config
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
        task: ``pairwise`` (Bradley--Terry) or ``binary``.
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
        schedule: ``cosine`` | ``constant``.
        warmup_frac: linear warm-up share of the steps.
        max_grad_norm: gradient-norm clipping (``None`` = no clipping).
        precision: ``auto`` (bf16 autocast on CUDA, fp32 on CPU) | ``fp32`` | ``bf16``.
        seed: the run's seed: data order, head init, noise.
        checkpoint_every: optimiser steps between checkpoints (0 = none).
        eval_batch_size: texts per forward pass in `predict`.
        group_by_length: batches grouped by length in mega-batches of this many batches
            (`batch_order`; 0 = off), as transformers' ``group_by_length``: the same
            examples per epoch with much less padding.
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

    loss: str = "forward_ce"
    confidence: bool = False
    alpha_max: float = 0.5
    confidence_warmup_frac: float = 0.1
    threshold_buffer: int = 512
    threshold_min_count: int = 32
    noise: float = 0.0
    noise_a: float = -1.0
    eps: float = 1e-6
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
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision: 'auto', 'fp32' or 'bf16', got {self.precision!r}")
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
        """A copy with some fields changed (validated)."""
        d = self.to_dict()
        d.update(changes)
        return FinetuneConfig.from_dict(d)

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
    def from_dict(cls, d: dict) -> FinetuneConfig:
        """Build from a dict, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"FinetuneConfig: unknown field(s) {bad}; known: {sorted(known)}")
        return cls(**d)

    @property
    def objective(self) -> Objective:
        """The run's training objective (`w2s_theory.objective.Objective`)."""
        return Objective(self.loss, self.confidence, self.alpha_max, self.confidence_warmup_frac,
                         self.threshold_buffer, self.threshold_min_count, self.eps)

    def same_trajectory(self) -> dict:
        """The fields that change the training numbers (for checkpoint compatibility)."""
        d = self.to_dict()
        for k in ("checkpoint_every", "eval_batch_size"):
            d.pop(k)
        return d


# ----------------------------------------------------------------------------- token ids
def special_frame(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The special-token ids a tokenizer puts before and after one text (BERT: ``[CLS]``, ``[SEP]``)."""
    bare = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k:k + len(bare)] == bare:
            return tuple(full[:k]), tuple(full[k + len(bare):])
    raise ValueError("tokenizer: cannot locate the text between its special tokens")


@dataclass
class TokenizedTexts:
    """Ragged token ids of ``n`` texts *without* special tokens, plus how to frame them.

    Attributes:
        ids: flat ``(total,)`` integer array (uint16 when the vocabulary fits).
        offsets: ``(n + 1,)`` int64; text ``i`` is ``ids[offsets[i]:offsets[i+1]]``.
        prefix, suffix: special-token ids put around each text (BERT: ``[CLS]``, ``[SEP]``).
        pad_id: padding id (padding is on the right; the mask marks real tokens).

    `batch` truncates each text to ``max_length - len(prefix) - len(suffix)``
    tokens from the left or the right, frames it and pads: the same ids as
    ``tokenizer(texts, truncation=True, max_length=L, padding=True)`` with the
    tokenizer's ``truncation_side`` set alike.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import TokenizedTexts
        >>> t = TokenizedTexts(np.array([5, 6, 7, 8, 9], np.uint16), np.array([0, 3, 5]), (1,), (2,), 0)
        >>> ids, mask = t.batch([0, 1], max_length=4, truncation_side="left")
        >>> ids.tolist(), mask.tolist()
        ([[1, 6, 7, 2], [1, 8, 9, 2]], [[1, 1, 1, 1], [1, 1, 1, 1]])
    """

    ids: np.ndarray
    offsets: np.ndarray
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    pad_id: int

    def __post_init__(self):
        self.ids = np.asarray(self.ids)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.ids.ndim != 1 or self.offsets.ndim != 1 or self.offsets.size < 1:
            raise ValueError("ids/offsets: expected 1-D arrays")
        if self.offsets[0] != 0 or self.offsets[-1] != self.ids.size or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets: must start at 0, end at len(ids) and be non-decreasing")
        self.prefix = tuple(int(i) for i in self.prefix)
        self.suffix = tuple(int(i) for i in self.suffix)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @classmethod
    def from_texts(cls, tokenizer, texts: Sequence[str]) -> TokenizedTexts:
        """Tokenise ``texts`` once (no special tokens, no truncation) with a HF tokenizer."""
        enc = tokenizer(list(texts), add_special_tokens=False, truncation=False,
                        verbose=False)["input_ids"]
        lens = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
        offsets = np.concatenate([[0], np.cumsum(lens)])
        flat = np.fromiter((t for e in enc for t in e), dtype=np.int64, count=int(offsets[-1]))
        vocab = len(tokenizer)
        dtype = np.uint16 if vocab <= np.iinfo(np.uint16).max + 1 else np.int32
        prefix, suffix = special_frame(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(flat.astype(dtype), offsets, prefix, suffix, int(pad))

    def lengths(self, max_length: int) -> np.ndarray:
        """Framed lengths after truncation, ``(n,)``."""
        extra = len(self.prefix) + len(self.suffix)
        return np.minimum(np.diff(self.offsets), max_length - extra) + extra

    def subset(self, idx) -> TokenizedTexts:
        """The texts ``idx`` (in that order) as a new object."""
        idx = np.asarray(idx, dtype=np.int64)
        lens = np.diff(self.offsets)[idx]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        parts = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]
        ids = np.concatenate(parts) if parts else self.ids[:0]
        return TokenizedTexts(ids, offsets, self.prefix, self.suffix, self.pad_id)

    def batch(self, idx, max_length: int, truncation_side: str = "left",
              pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``(input_ids, attention_mask)``, both int64 ``(len(idx), L)``.

        ``L`` is the longest framed text of the batch (or ``pad_to`` when larger).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        keep = max_length - len(self.prefix) - len(self.suffix)
        rows = []
        for i in idx:
            t = self.ids[self.offsets[i]:self.offsets[i + 1]]
            if t.size > keep:
                t = t[-keep:] if truncation_side == "left" else t[:keep]
            rows.append(t)
        L = max([len(r) for r in rows], default=0) + len(self.prefix) + len(self.suffix)
        if pad_to is not None:
            L = max(L, int(pad_to))
        out = np.full((idx.size, L), self.pad_id, dtype=np.int64)
        mask = np.zeros((idx.size, L), dtype=np.int64)
        p, s = np.asarray(self.prefix, np.int64), np.asarray(self.suffix, np.int64)
        for j, t in enumerate(rows):
            row = np.concatenate([p, t.astype(np.int64), s])
            out[j, :row.size] = row
            mask[j, :row.size] = 1
        return torch.from_numpy(out), torch.from_numpy(mask)


@dataclass
class TextTask:
    """A labelled split: one text per example (binary) or a pair ``(A, B)`` (pairwise).

    Attributes:
        inputs: ``(texts,)`` or ``(texts_a, texts_b)`` as `TokenizedTexts`.
        labels: ``(n,)`` int8 ground truth (pairwise: 1 when slot A holds the chosen reply).
    """

    inputs: tuple[TokenizedTexts, ...]
    labels: np.ndarray

    def __post_init__(self):
        self.inputs = tuple(self.inputs)
        self.labels = np.asarray(self.labels)
        if len(self.inputs) not in (1, 2):
            raise ValueError(f"inputs: 1 (binary) or 2 (pairwise) token sets, got {len(self.inputs)}")
        for t in self.inputs:
            if len(t) != self.labels.shape[0]:
                raise ValueError(f"labels: {self.labels.shape[0]} labels for {len(t)} texts")

    @property
    def task(self) -> str:
        return "pairwise" if len(self.inputs) == 2 else "binary"

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx) -> TextTask:
        """Rows ``idx`` (in that order)."""
        return TextTask(tuple(t.subset(idx) for t in self.inputs), self.labels[np.asarray(idx)])

    def real_tokens(self, max_length: int) -> int:
        """Framed, truncated tokens of all texts (what one epoch feeds the backbone)."""
        return int(sum(int(t.lengths(max_length).sum()) for t in self.inputs))


# ----------------------------------------------------------------------------- model
def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Mean over real tokens, :math:`\sum_t m_t h_t / \sum_t m_t`: `w2s_theory.hub.pool`.

    Examples:
        >>> import torch
        >>> from w2s_theory.finetune import mean_pool
        >>> mean_pool(torch.tensor([[[1.0], [3.0], [100.0]]]), torch.tensor([[1, 1, 0]])).tolist()
        [[2.0]]
    """
    return pool(hidden, mask, "mean", check=False)


def init_head_(head: nn.Linear, seed: int, std: float) -> nn.Linear:
    """Seeded head init in place: weight ``~ N(0, std^2)`` (CPU generator ``seed``), bias 0.

    Examples:
        >>> from torch import nn
        >>> from w2s_theory.finetune import init_head_
        >>> a, b = init_head_(nn.Linear(4, 1), 0, 0.02), init_head_(nn.Linear(4, 1), 0, 0.02)
        >>> bool((a.weight == b.weight).all()), float(a.bias.detach())
        (True, 0.0)
    """
    g = torch.Generator().manual_seed(int(seed))
    w = torch.randn(head.weight.shape, generator=g, dtype=torch.float32) * std
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight))
        head.bias.zero_()
    return head


def resolve_pooling(pooling: str, config) -> str:
    """``auto`` -> ``last`` for decoders, ``mean`` for encoders (`w2s_theory.hub.default_pooling`);
    any other rule as given.

    Example:
        >>> from transformers import BertConfig, GPT2Config
        >>> resolve_pooling("auto", BertConfig()), resolve_pooling("auto", GPT2Config())
        ('mean', 'last')
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: one of {POOLINGS}, got {pooling!r}")
    if pooling != "auto":
        return pooling
    from .hub import default_pooling

    return default_pooling(config)


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """`w2s_theory.hub.pool` without value checks (the training hot path): ``mean``, ``last``
    real token or ``cls`` of ``hidden`` ``(..., L, H)`` under ``mask`` ``(..., L)``."""
    if pooling not in POOLINGS[1:]:
        raise ValueError(f"pooling: 'mean', 'last' or 'cls', got {pooling!r}")
    return pool(hidden, mask, pooling, check=False)


class RewardModel(nn.Module):
    """Backbone + linear head on the pooled last hidden state: ``r(x)``, shape ``(n,)``.

    Args:
        backbone: a transformers encoder/decoder (``AutoModel``) returning ``last_hidden_state``.
        seed, head_init_std: the head's init (`init_head_`).
        pooling: ``mean`` (default), ``last``, ``cls`` or ``auto`` (`resolve_pooling`).
    """

    def __init__(self, backbone: nn.Module, *, seed: int = 0, head_init_std: float = 0.02,
                 pooling: str = "mean"):
        super().__init__()
        self.backbone = backbone
        self.pooling = resolve_pooling(pooling, backbone.config)
        hidden = int(backbone.config.hidden_size)
        self.head = init_head_(nn.Linear(hidden, 1), seed, head_init_std)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              backbone_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled features ``(n, H)`` (``backbone_mask``: a 4-D mask given to the backbone
        instead of ``attention_mask``, used by the stacked ensemble)."""
        m = attention_mask if backbone_mask is None else backbone_mask
        out = self.backbone(input_ids=input_ids, attention_mask=m)
        return pool_tokens(out.last_hidden_state, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                backbone_mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.embed(input_ids, attention_mask, backbone_mask)
        return fp32_head(self.head, pooled)


def fp32_head(head: nn.Linear, pooled: torch.Tensor) -> torch.Tensor:
    """``head(pooled)`` in float32 even under autocast: bf16 would round the rewards
    (8-bit mantissa) before ``r(A) - r(B)`` is formed. Returns ``(n,)``."""
    with torch.autocast(pooled.device.type, enabled=False):
        return F.linear(pooled.float(), head.weight.float(), head.bias.float()).squeeze(-1)


def load_backbone(path: str | os.PathLike, *, dropout: float = 0.0):
    """A transformers backbone in fp32 from any model spec (`w2s_theory.hub.load`), its
    dropout set and the pooler of BERT-style encoders removed (fp16 weights are upcast to fp32:
    the master weights of training)."""
    from transformers import AutoConfig

    r = resolve_model(path)
    config = AutoConfig.from_pretrained(r.path, local_files_only=True)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout",
                 "attention_dropout", "activation_dropout", "resid_pdrop", "embd_pdrop",
                 "attn_pdrop", "hidden_dropout"):
        if hasattr(config, name):
            setattr(config, name, float(dropout))
    kwargs = {"add_pooling_layer": False} if config.model_type in ("bert", "mpnet", "roberta") else {}
    # quiet: the unused pooler weights are expected, not news
    return load(r, dtype="float32", tokenizer=False, quiet=True, config=config, **kwargs)[0].float()


def build_model(path_or_backbone, cfg: FinetuneConfig) -> RewardModel:
    """`RewardModel` from a folder (or an already built backbone, deep-copied) for ``cfg``."""
    import copy

    if isinstance(path_or_backbone, nn.Module):
        backbone = copy.deepcopy(path_or_backbone)
    else:
        backbone = load_backbone(path_or_backbone, dropout=cfg.dropout)
    return RewardModel(backbone, seed=cfg.seed, head_init_std=cfg.head_init_std,
                       pooling=cfg.pooling)


# ----------------------------------------------------------------------------- protocol pieces
def batch_order(n: int, batch_size: int, seed: int, epochs: int = 1, *,
                lengths: np.ndarray | None = None, group: int = 0) -> np.ndarray:
    """Training order: per epoch a seeded permutation, cut to whole batches; ``(steps, batch_size)``.

    Epoch ``e`` uses ``numpy.random.default_rng([seed, 0, e])``; the incomplete last
    batch of each epoch is dropped (so every step averages ``batch_size`` examples).

    With ``group > 0`` and ``lengths`` (``(n,)`` token lengths), batches are grouped by
    length as transformers' ``group_by_length`` does: the permutation is cut into
    mega-batches of ``group`` batches, each sorted by length (longest first) and cut into
    batches, whose order within the epoch is then shuffled (``default_rng([seed, 1, e])``),
    so the batches pad little while every example is still seen once per epoch in a
    seeded random batch. ``group = 0`` gives exactly the plain order.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.finetune import batch_order
        >>> batch_order(10, 4, seed=0).shape
        (2, 4)
        >>> lens = np.arange(64) % 8
        >>> o = batch_order(64, 8, seed=0, lengths=lens, group=8)
        >>> sorted(o.ravel().tolist()) == list(range(64)), int(np.ptp(lens[o], axis=1).max())
        (True, 0)
    """
    if n < batch_size:
        raise ValueError(f"batch_size: {batch_size} exceeds the {n} training examples")
    if not isinstance(group, (int, np.integer)) or group < 0:
        raise ValueError(f"group: must be an integer >= 0, got {group!r}")
    if group and lengths is None:
        raise ValueError("lengths: needed when group > 0")
    per = n // batch_size
    out = []
    for e in range(epochs):
        perm = np.random.default_rng([int(seed), 0, e]).permutation(n)[: per * batch_size]
        if group:
            lens = np.asarray(lengths).reshape(-1)
            if lens.shape != (n,):
                raise ValueError(f"lengths: shape {lens.shape}, expected ({n},)")
            m = int(group) * batch_size
            parts = [c[np.argsort(-lens[c], kind="stable")]
                     for c in (perm[i:i + m] for i in range(0, perm.size, m))]
            b = np.concatenate(parts).reshape(per, batch_size)
            perm = b[np.random.default_rng([int(seed), 1, e]).permutation(per)].reshape(-1)
        out.append(perm)
    return np.concatenate(out).reshape(epochs * per, batch_size)


def task_lengths(task: TextTask, max_length: int) -> np.ndarray:
    """Per example, the longest framed text after truncation (pairs: max of both), ``(n,)``."""
    return np.max(np.stack([t.lengths(max_length) for t in task.inputs]), axis=0)


def train_order(task: TextTask, cfg: FinetuneConfig) -> np.ndarray:
    """`batch_order` of a run (length-grouped when ``cfg.group_by_length``)."""
    if cfg.group_by_length:
        return batch_order(len(task), cfg.batch_size, cfg.seed, cfg.epochs,
                           lengths=task_lengths(task, cfg.max_length), group=cfg.group_by_length)
    return batch_order(len(task), cfg.batch_size, cfg.seed, cfg.epochs)


def lr_multiplier(step: int, total_steps: int, schedule: str = "cosine",
                  warmup_frac: float = 0.0) -> float:
    r"""Learning-rate factor at optimiser step ``t``: linear warm-up, then cosine to 0.

    ``w = round(warmup_frac * T)``; for ``t < w``: ``(t + 1) / w``; then cosine:
    :math:`\tfrac12 (1 + \cos(\pi (t - w) / (T - w)))`; ``constant``: 1 after warm-up.

    Examples:
        >>> from w2s_theory.finetune import lr_multiplier
        >>> [round(lr_multiplier(t, 4), 4) for t in range(4)]
        [1.0, 0.8536, 0.5, 0.1464]
    """
    w = int(round(warmup_frac * total_steps))
    if step < w:
        return (step + 1) / w
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (step - w) / max(1, total_steps - w)))


def make_targets(weak_probs, cfg: FinetuneConfig) -> np.ndarray:
    """Training targets: the weak probabilities with ``cfg.noise`` of them corrupted.

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
    return corrupt_binary(y, cfg.noise, a=cfg.noise_a, rng=np.random.default_rng([cfg.seed, 1]))


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


# ----------------------------------------------------------------------------- engines
class PlainEngine:
    """Single-process stand-in for the subset of ``accelerate.Accelerator`` used here."""

    num_processes = 1
    process_index = 0
    is_main_process = True

    def __init__(self, device: str | torch.device | None = None, mixed_precision: str = "no"):
        self.device = resolve_device(device)
        self.mixed_precision = mixed_precision

    def prepare(self, *objs):
        out = tuple(o.to(self.device) if isinstance(o, nn.Module) else o for o in objs)
        return out if len(out) != 1 else out[0]

    def autocast(self):
        if self.mixed_precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss):
        loss.backward()

    def no_sync(self, model):
        return contextlib.nullcontext()

    def clip_grad_norm_(self, params, max_norm):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def unwrap_model(self, model):
        return model

    def gather(self, t):
        return t

    def wait_for_everyone(self):
        pass

    def skip_first_batches(self, loader, n):
        return _Skip(loader, n)


class _Skip:
    def __init__(self, loader, n):
        self.loader, self.n = loader, n

    def __iter__(self):
        it = iter(self.loader)
        for _ in range(self.n):
            next(it)
        return it


def mixed_precision_for(cfg: FinetuneConfig, device_type: str) -> str:
    """The trainer's precision rule: ``"bf16"`` autocast when asked for, or on CUDA with
    ``precision = "auto"``; else ``"no"`` (fp32).

    Examples:
        >>> mixed_precision_for(FinetuneConfig(precision="auto"), "cpu")
        'no'
    """
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device_type == "cuda"):
        return "bf16"
    return "no"


def make_engine(cfg: FinetuneConfig, *, use_accelerate: bool | None = None, cpu: bool = False):
    """An ``accelerate.Accelerator`` (when installed, or when ``use_accelerate``) or a `PlainEngine`.

    The accelerator uses ``split_batches=True``: a loader's batch is the *global*
    micro-batch, split over the processes, so ``batch_size`` keeps its meaning at
    any number of GPUs. Precision follows ``cfg.precision``.
    """
    want = use_accelerate
    if want is None:
        try:
            import accelerate  # noqa: F401
            want = True
        except ImportError:
            want = False
    if want:
        from accelerate import Accelerator
        from accelerate.utils import DataLoaderConfiguration

        device_type = "cpu" if cpu or not torch.cuda.is_available() else "cuda"
        mp = mixed_precision_for(cfg, device_type)
        return Accelerator(cpu=cpu or device_type == "cpu", mixed_precision=mp,
                           dataloader_config=DataLoaderConfiguration(split_batches=True))
    device = "cpu" if cpu else None
    dev = resolve_device(device)
    return PlainEngine(dev, mixed_precision_for(cfg, dev.type))


def end_processes(engine) -> None:
    """Destroy the process group of a multi-process engine (from `make_engine`) before exit.

    A gloo/NCCL group left alive when the interpreter exits can abort the process
    ("terminate called without an active exception", SIGABRT) after its work is done,
    failing a run that had finished. One-process engines (and ``None``) are left alone.

    Examples:
        >>> end_processes(PlainEngine("cpu"))   # one process: nothing to do
    """
    if int(getattr(engine, "num_processes", 1)) > 1 and hasattr(engine, "end_training"):
        engine.end_training()


def _is_plain(engine) -> bool:
    return isinstance(engine, PlainEngine)


# ----------------------------------------------------------------------------- data loading
class _Rows(torch.utils.data.Dataset):
    def __init__(self, order: np.ndarray):
        self.order = np.asarray(order, dtype=np.int64).reshape(-1)

    def __len__(self):
        return int(self.order.size)

    def __getitem__(self, i):
        return int(self.order[i])


class _Collate:
    """Row indices -> a batch dict; token ids for full fine-tuning, cached features for head-only."""

    def __init__(self, task: TextTask, targets: np.ndarray, cfg: FinetuneConfig,
                 features: tuple[torch.Tensor, ...] | None = None):
        self.task, self.cfg, self.features = task, cfg, features
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))

    def __call__(self, idx: list[int]):
        idx_np = np.asarray(idx, dtype=np.int64)
        out = {"idx": torch.from_numpy(idx_np), "y": self.targets[idx_np]}
        if self.features is not None:
            for k, f in zip("ab", self.features):
                out[f"f{k}"] = f[idx_np]
            return out
        lens = [t.lengths(self.cfg.max_length)[idx_np].max() for t in self.task.inputs]
        L = int(max(lens))
        for k, t in zip("ab", self.task.inputs):
            ids, mask = t.batch(idx_np, self.cfg.max_length, self.cfg.truncation_side, pad_to=L)
            out[f"ids_{k}"], out[f"mask_{k}"] = ids, mask
        return out


def _logits(model, batch: dict, head_only: bool) -> torch.Tensor:
    """Student logits of a batch: ``r(A) - r(B)`` (pairwise) or ``r(x)`` (binary)."""
    if head_only:
        head = model.head if hasattr(model, "head") else model
        r = [fp32_head(head, batch[k]) for k in ("fa", "fb") if k in batch]
        return r[0] - r[1] if len(r) == 2 else r[0]
    if "ids_b" in batch:
        ids = torch.cat([batch["ids_a"], batch["ids_b"]])
        mask = torch.cat([batch["mask_a"], batch["mask_b"]])
        r = model(ids, mask)
        m = batch["ids_a"].shape[0]
        return r[:m] - r[m:]
    return model(batch["ids_a"], batch["mask_a"])


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(path: Path, engine, model, head_module, optimizer, scheduler, buffer,
                     step: int, cfg: FinetuneConfig) -> None:
    from .atomic_io import atomic_write_bytes

    if not engine.is_main_process:
        return
    mod = engine.unwrap_model(model)
    state = {
        "step": step,
        "config": cfg.same_trajectory(),
        "model": {k: v.detach().cpu() for k, v in mod.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "buffer": None if buffer is None else (list(buffer._p), list(buffer._y)),
        "torch_rng": torch.get_rng_state(),
    }
    bio = io.BytesIO()
    torch.save(state, bio)
    atomic_write_bytes(path, bio.getvalue())


def _load_checkpoint(path: Path, cfg: FinetuneConfig) -> dict | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("config") != cfg.same_trajectory():
        raise ValueError(f"checkpoint: {path} was written by a different config; "
                         f"delete it or use another checkpoint path")
    return state


# ----------------------------------------------------------------------------- training
@dataclass
class TrainStats:
    """What a training run cost and did.

    Attributes:
        steps: optimiser steps taken in total (including before a resume).
        resumed_from: step the run resumed from (0 = fresh).
        wall_s: seconds of this call (feature caching included for head-only).
        real_tokens: framed text tokens fed to the backbone by this call (0 when head-only).
        padded_tokens: tokens including padding.
        tokens_per_s: ``real_tokens / wall_s``.
        losses: mean training loss per optimiser step of this call.
        device: e.g. ``cpu`` or the CUDA device name; precision: ``bf16`` or ``no``.
        num_processes: data-parallel processes.
    """

    steps: int
    resumed_from: int
    wall_s: float
    real_tokens: int
    padded_tokens: int
    tokens_per_s: float
    losses: list[float] = field(default_factory=list)
    device: str = "cpu"
    precision: str = "no"
    num_processes: int = 1


def device_name(device: torch.device | str) -> str:
    """Human-readable device name (the CUDA product name, or ``cpu``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def train(model: RewardModel, task: TextTask, targets, cfg: FinetuneConfig, *,
          engine=None, checkpoint: str | os.PathLike | None = None,
          on_step: Callable[[int], None] | None = None, progress: bool = True,
          features: tuple[np.ndarray, ...] | None = None) -> TrainStats:
    """Train ``model`` in place on ``task`` towards ``targets`` under ``cfg``.

    Args:
        model: a `RewardModel` (its head already initialised from ``cfg.seed``).
        task: the training split (its ``labels`` are not used; ``targets`` are).
        targets: ``(n,)`` soft targets in ``[0, 1]`` (weak labels after
            `make_targets`, or the ground truth for a ceiling).
        cfg: the run's `FinetuneConfig`.
        engine: an ``accelerate.Accelerator`` or `PlainEngine` (default: `make_engine`).
        checkpoint: file for atomic checkpoints; when it exists the run resumes from it.
        on_step: called with the number of finished optimiser steps after each step
            (and after its checkpoint); an exception there stops training (used to
            test resuming).
        progress: show a tqdm bar on the main process.
        features: head-only runs: the pooled backbone features of ``task``'s texts
            (one ``(n, H)`` array per text slot, from `embed_texts`), so that many
            head-only runs share one feature pass; computed here when ``None``.

    Returns:
        `TrainStats`.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if cfg.task != task.task:
        raise ValueError(f"task: config says {cfg.task!r} but the data are {task.task!r}")
    targets = np.asarray(targets, dtype=np.float64)
    if targets.shape != (len(task),):
        raise ValueError(f"targets: shape {targets.shape}, expected ({len(task)},)")
    if not np.all((targets >= 0) & (targets <= 1)):
        raise ValueError("targets: entries must lie in [0, 1]")
    engine = engine or make_engine(cfg)
    # on the device before the optimiser exists, so that a resumed optimiser state lands there too
    model.to(engine.device)
    order = train_order(task, cfg)
    total = order.shape[0]
    accum = cfg.grad_accum

    if cfg.head_only:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        if features is None:
            features = tuple(embed_texts(model, t, cfg, engine=engine, progress=False)
                             for t in task.inputs)
        if len(features) != len(task.inputs) or any(f.shape[0] != len(task) for f in features):
            raise ValueError(f"features: need {len(task.inputs)} arrays of {len(task)} rows")
        features = tuple(torch.as_tensor(np.asarray(f, dtype=np.float32)) for f in features)
        trainable = model.head
    else:
        features = None
        trainable = model
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps,
                                  weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: lr_multiplier(t, total, cfg.schedule, cfg.warmup_frac))
    buffer = new_buffer(cfg)

    ck_path = Path(checkpoint) if checkpoint is not None else None
    start = 0
    if ck_path is not None:
        state = _load_checkpoint(ck_path, cfg)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            if buffer is not None and state["buffer"] is not None:
                buffer._p.extend(state["buffer"][0])
                buffer._y.extend(state["buffer"][1])
            start = int(state["step"])

    loader = torch.utils.data.DataLoader(
        _Rows(order), batch_size=cfg.micro_batch_size, shuffle=False,
        collate_fn=_Collate(task, targets, cfg, features))
    if cfg.head_only:
        model.backbone.requires_grad_(False)
        model.head, optimizer, loader = engine.prepare(model.head, optimizer, loader)
        model.backbone.to(engine.device)
        net = model.head
    else:
        model, optimizer, loader = engine.prepare(model, optimizer, loader)
        net = model
    scheduler_step = scheduler
    if start:
        loader = engine.skip_first_batches(loader, start * accum)

    real = padded = 0
    losses: list[float] = []
    it = iter(loader)
    bar = tqdm(total=total, initial=start, desc=f"{cfg.loss}{'+conf' if cfg.confidence else ''} "
               f"seed={cfg.seed}", disable=not (progress and engine.is_main_process), leave=False)
    net.train()
    for step in range(start, total):
        step_loss = torch.zeros((), device=engine.device)
        for k in range(accum):
            batch = next(it)
            if not cfg.head_only:
                for key in ("mask_a", "mask_b"):    # counted before the copy: no device sync
                    if key in batch:
                        real += int(batch[key].sum())
                        padded += batch[key].numel()
            batch = _to(batch, engine.device)
            sync = engine.no_sync(net) if k < accum - 1 else contextlib.nullcontext()
            with sync:
                with engine.autocast():
                    z = _logits(net, batch, cfg.head_only)
                loss = loss_fn(z, batch["y"], cfg, step=step, total_steps=total, buffer=buffer)
                engine.backward(loss / accum)
            step_loss += loss.detach() / accum
        if cfg.max_grad_norm is not None:
            engine.clip_grad_norm_(params if _is_plain(engine) else net.parameters(),
                                   cfg.max_grad_norm)
        optimizer.step()
        scheduler_step.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        bar.update(1)
        done = step + 1
        if ck_path is not None and cfg.checkpoint_every and (
                done % cfg.checkpoint_every == 0 or done == total):
            _save_checkpoint(ck_path, engine, model if not cfg.head_only else _Wrap(model, engine),
                             None, optimizer, scheduler, buffer, done, cfg)
            engine.wait_for_everyone()
        if on_step is not None:
            on_step(done)
    bar.close()
    losses = [float(v) for v in torch.stack(losses).cpu()] if losses else []
    if cfg.head_only:
        model.head = engine.unwrap_model(model.head)
    wall = time.perf_counter() - t0
    nproc = int(getattr(engine, "num_processes", 1))
    real_t = torch.tensor([real, padded], dtype=torch.float64, device=engine.device)
    if nproc > 1:
        real_t = engine.gather(real_t.unsqueeze(0)).sum(0)
    return TrainStats(steps=total, resumed_from=start, wall_s=wall, real_tokens=int(real_t[0]),
                      padded_tokens=int(real_t[1]), tokens_per_s=float(real_t[0]) / wall,
                      losses=losses, device=device_name(engine.device),
                      precision=getattr(engine, "mixed_precision", "no") or "no",
                      num_processes=nproc)


class _Wrap:
    """Checkpoint view of a head-only model whose head is engine-wrapped."""

    def __init__(self, model, engine):
        self.model, self.engine = model, engine

    def state_dict(self):
        head = self.engine.unwrap_model(self.model.head)
        sd = {f"backbone.{k}": v for k, v in self.model.backbone.state_dict().items()}
        sd.update({f"head.{k}": v for k, v in head.state_dict().items()})
        return sd


# ----------------------------------------------------------------------------- inference
@torch.no_grad()
def embed_texts(model: RewardModel, texts: TokenizedTexts, cfg: FinetuneConfig, *,
                engine=None, progress: bool = False) -> np.ndarray:
    """Pooled backbone features of every text, ``(n, H)`` float32, length-sorted batches."""
    return _run_texts(model, texts, cfg, engine=engine, progress=progress, what="embed")


@torch.no_grad()
def _run_texts(model, texts: TokenizedTexts, cfg, *, engine, progress, what):
    from tqdm.auto import tqdm

    engine = engine or make_engine(cfg)
    base = engine.unwrap_model(model)
    base.to(engine.device)
    was = base.training
    base.eval()
    n = len(texts)
    order = np.argsort(texts.lengths(cfg.max_length), kind="stable")
    batches = [order[i:i + cfg.eval_batch_size] for i in range(0, n, cfg.eval_batch_size)]
    # Every process takes a strided share of the batches; results are gathered by index.
    nproc, rank = int(getattr(engine, "num_processes", 1)), int(getattr(engine, "process_index", 0))
    mine = batches[rank::nproc]
    outs, idxs = [], []
    for b in tqdm(mine, desc=what, disable=not progress or not engine.is_main_process, leave=False):
        ids, mask = texts.batch(b, cfg.max_length, cfg.truncation_side)
        ids, mask = ids.to(engine.device), mask.to(engine.device)
        with engine.autocast():
            v = base.embed(ids, mask) if what == "embed" else base(ids, mask)
        outs.append(v.float())
        idxs.append(torch.from_numpy(b).to(engine.device))
    if nproc > 1:
        width = (base.head.in_features,) if what == "embed" else ()
        val, ix = _gather_ragged(engine, outs, idxs, width)
    else:
        val = torch.cat(outs) if outs else torch.zeros(0)
        ix = torch.cat(idxs) if idxs else torch.zeros(0, dtype=torch.long)
    res = torch.empty((n,) + tuple(val.shape[1:]), dtype=torch.float32)
    res[ix.cpu()] = val.cpu()
    base.train(was)
    return res.numpy()


def _gather_ragged(engine, outs, idxs, width):
    """Gather per-process results of different lengths (pad to the longest, drop pads)."""
    dev = engine.device
    val = torch.cat(outs) if outs else torch.zeros((0,) + width, device=dev)
    ix = torch.cat(idxs) if idxs else torch.zeros(0, dtype=torch.long, device=dev)
    n = torch.tensor([ix.numel()], device=dev)
    m = int(engine.gather(n).max())
    vp = torch.zeros((m,) + width, device=dev)
    vp[: ix.numel()] = val
    ip = torch.full((m,), -1, dtype=torch.long, device=dev)
    ip[: ix.numel()] = ix
    vg, ig = engine.gather(vp), engine.gather(ip)
    keep = ig >= 0
    return vg[keep], ig[keep]


@torch.no_grad()
def predict(model: RewardModel, task: TextTask, cfg: FinetuneConfig, *, engine=None,
            progress: bool = False) -> np.ndarray:
    """Student probabilities on ``task``: ``sigmoid(r(A) - r(B))`` or ``sigmoid(r(x))``, ``(n,)`` float64.

    Each text is scored once (length-sorted batches); results of all processes are
    gathered by index, so every process returns the full array.
    """
    rewards = [_run_texts(model, t, cfg, engine=engine, progress=progress, what="reward")
               .astype(np.float64) for t in task.inputs]
    z = rewards[0] - rewards[1] if len(rewards) == 2 else rewards[0]
    return 1.0 / (1.0 + np.exp(-z))
