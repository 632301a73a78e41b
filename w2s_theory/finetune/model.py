"""The reward model: a transformers backbone + a linear head (1 or ``k`` outputs) on pooled states."""

from __future__ import annotations

import copy
import os

import torch
import torch.nn.functional as F
from torch import nn

from ..hub import default_pooling, load, pool, resolve_model
from .config import POOLINGS, FinetuneConfig

__all__ = ["mean_pool", "init_head_", "resolve_pooling", "pool_tokens", "RewardModel", "fp32_head",
           "load_backbone", "build_model"]


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
    return default_pooling(config)


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """`w2s_theory.hub.pool` without value checks (the training hot path): ``mean``, ``last``
    real token or ``cls`` of ``hidden`` ``(..., L, H)`` under ``mask`` ``(..., L)``."""
    if pooling not in POOLINGS[1:]:
        raise ValueError(f"pooling: 'mean', 'last' or 'cls', got {pooling!r}")
    return pool(hidden, mask, pooling, check=False)


class RewardModel(nn.Module):
    """Backbone + linear head on the pooled last hidden state: ``r(x)``, shape ``(n,)``
    (``n_outputs = 1``: a reward or a binary logit) or ``(n, k)`` (``n_outputs = k``: class logits).

    Args:
        backbone: a transformers encoder/decoder (``AutoModel``) returning ``last_hidden_state``.
        seed, head_init_std: the head's init (`init_head_`).
        pooling: ``mean`` (default), ``last``, ``cls`` or ``auto`` (`resolve_pooling`).
        n_outputs: the head's outputs: 1 (pairwise, binary) or ``k >= 2`` classes.

    Examples:
        >>> import torch
        >>> from transformers import BertConfig, BertModel
        >>> bb = BertModel(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
        ...                           num_attention_heads=2, intermediate_size=16))
        >>> m = RewardModel(bb, n_outputs=3)
        >>> tuple(m(torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.long)).shape)
        (2, 3)
    """

    def __init__(self, backbone: nn.Module, *, seed: int = 0, head_init_std: float = 0.02,
                 pooling: str = "mean", n_outputs: int = 1):
        super().__init__()
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
            raise ValueError(f"n_outputs: an integer >= 1, got {n_outputs!r}")
        self.backbone = backbone
        self.pooling = resolve_pooling(pooling, backbone.config)
        hidden = int(backbone.config.hidden_size)
        self.head = init_head_(nn.Linear(hidden, n_outputs), seed, head_init_std)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(n, H)``."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return pool_tokens(out.last_hidden_state, attention_mask, self.pooling)

    def forward(self, input_ids, attention_mask, index: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards (logits) of a padded batch, or of length chunks: ``input_ids`` and
        ``attention_mask`` tuples of ``(m_c, L_c)`` tensors whose concatenated outputs ``index``
        puts back in order (`w2s_theory.finetune.PadCollator`)."""
        if isinstance(input_ids, (tuple, list)):
            r = torch.cat([fp32_head(self.head, self.embed(i, m))
                           for i, m in zip(input_ids, attention_mask)])
            return r if index is None else r[index]
        return fp32_head(self.head, self.embed(input_ids, attention_mask))


def fp32_head(head: nn.Linear, pooled: torch.Tensor) -> torch.Tensor:
    """``head(pooled)`` in float32 even under autocast: bf16 would round the rewards
    (8-bit mantissa) before ``r(A) - r(B)`` is formed. Returns ``(n,)`` for a one-output head,
    ``(n, k)`` for ``k`` outputs."""
    with torch.autocast(pooled.device.type, enabled=False):
        z = F.linear(pooled.float(), head.weight.float(), head.bias.float())
    return z.squeeze(-1) if head.out_features == 1 else z


def load_backbone(path: str | os.PathLike, *, dropout: float = 0.0):
    """A transformers backbone in fp32 from any model spec (`w2s_theory.hub.load`), its
    dropout set and the pooler of BERT-style encoders removed (fp16 weights are upcast to fp32:
    the master weights of training)."""
    from transformers import AutoConfig  # heavy: at first use

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


def build_model(path_or_backbone, cfg: FinetuneConfig, n_outputs: int = 1) -> RewardModel:
    """`RewardModel` from a folder (or an already built backbone, deep-copied) for ``cfg``, with
    ``n_outputs`` head outputs (1, or ``k`` classes for ``task = "classification"``)."""
    if isinstance(path_or_backbone, nn.Module):
        backbone = copy.deepcopy(path_or_backbone)
    else:
        backbone = load_backbone(path_or_backbone, dropout=cfg.dropout)
    return RewardModel(backbone, seed=cfg.seed, head_init_std=cfg.head_init_std,
                       pooling=cfg.pooling, n_outputs=n_outputs)
