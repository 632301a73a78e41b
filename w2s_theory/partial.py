r"""Partial fine-tuning: only the top ``k`` transformer blocks and the reward head train.

Between the last-layer regime of Theorem 2 (``k = 0``: a linear head on frozen
features) and full fine-tuning (``k = all``) lies a ladder of regimes: the bottom
``L - k`` blocks (and the embeddings) stay frozen and the top ``k`` blocks train with
the head. Frozen blocks give the same output every epoch, so their output is
computed **once** per text and cached (`cache_states`); a training step then
runs only the top ``k`` blocks (`TopModel`), so a ``k = 1`` run of a 6-block
encoder costs about a sixth of a full run plus the one cached pass.

`train_top` is `w2s_theory.finetune.train`'s trainer (`w2s_theory.finetune.fit`, a
transformers ``Trainer``) with another set of trainable parameters: the same batch order
(`train_order`), AdamW, learning rate schedule, loss and mean-pooled fp32 head, on batches of
cached states. It is therefore the same computation as fine-tuning a `RewardModel` whose
lower blocks have ``requires_grad = False`` (checked in ``tests/test_partial.py``,
up to float round-off), only cheaper.

The sweep (`w2s_theory.pipelines.partial.run`) reuses the full fine-tuning sweep's data bundle (same pairs,
slot orders, weak supervisor, noise, seeds), its ``[lr_select]`` rule (applied per
``k``: the lr is chosen on held-out ``train_gt`` pairs, never on test), its prediction
store and its result rows (`w2s_theory.pipelines.finetune.make_row`: accuracy,
PGR, Lemma 1 and Theorem 2 against the truth and the same-``k`` ceiling). Rows carry
``regime = "top{k}"``. Supported backbones: BERT-family encoders (``model_type ==
"bert"``, e.g. all-MiniLM-L6-v2); others raise a clear error.

    w2s-theory partial --config experiments/finetune/cpu_4k_partial.toml

References: Yao et al., arXiv:2502.11107 (2025), Sec. 6: "the guarantee under full
fine-tuning remains unclear" -- this ladder measures how far Theorem 2's pattern carries.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .finetune import (
    FinetuneConfig,
    TextTask,
    TokenizedTexts,
    fit,
    fp32_head,
    init_head_,
    mean_pool,
    train_order,
)
from .finetune.data import StateCollator, StateRows
from .protocol import standardize_pairs

__all__ = ["SUPPORTED_MODEL_TYPES", "encoder_layers", "check_k", "CachedStates", "cache_states", "TopModel",
           "train_top", "predict_top", "last_layer_features", "pooled_mean"]

SUPPORTED_MODEL_TYPES = ("bert",)


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's list of transformer blocks (BERT family: ``encoder.layer``)."""
    mt = getattr(getattr(backbone, "config", None), "model_type", None)
    if mt not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"backbone: partial fine-tuning supports {SUPPORTED_MODEL_TYPES} "
                         f"encoders, got model_type {mt!r}")
    return backbone.encoder.layer


def check_k(backbone: nn.Module, k) -> int:
    n = len(encoder_layers(backbone))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) <= n:
        raise ValueError(f"k: an integer in [0, {n}] (blocks of this backbone), got {k!r}")
    return int(k)


@dataclass
class CachedStates:
    """Hidden states entering the top ``k`` blocks, one ragged ``(len_i, H)`` array per text.

    Attributes:
        states: ``(total_tokens, H)`` float32, texts one after another (framed, truncated).
        offsets: ``(n + 1,)`` int64 row offsets.
        k: the number of top blocks these states feed.
    """

    states: np.ndarray
    offsets: np.ndarray
    k: int

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def batch(self, idx, pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``(states (m, L, H) float32, mask (m, L) int64)`` of texts ``idx``."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        lens = self.offsets[idx + 1] - self.offsets[idx]
        L = int(max(lens.max(initial=0), pad_to or 0))
        H = self.states.shape[1]
        out = np.zeros((idx.size, L, H), dtype=np.float32)
        mask = np.zeros((idx.size, L), dtype=np.int64)
        for j, i in enumerate(idx):
            n = int(lens[j])
            out[j, :n] = self.states[self.offsets[i]:self.offsets[i] + n]
            mask[j, :n] = 1
        return torch.from_numpy(out), torch.from_numpy(mask)


@torch.no_grad()
def cache_states(backbone: nn.Module, texts: TokenizedTexts, ks: Sequence[int], *,
                 max_length: int, truncation_side: str = "left",
                 batch_size: int = 64) -> dict[int, CachedStates]:
    """One frozen forward pass of ``texts``: for each ``k`` in ``ks`` the states entering block ``L - k``.

    ``k = 0`` gives the last hidden state (the input of the head), ``k = L`` the
    embedding output. Texts are framed and truncated exactly as the trainer frames
    them (`TokenizedTexts.batch`) and run in length-sorted batches.

    Returns:
        ``{k: CachedStates}``.
    """
    ks = sorted({check_k(backbone, k) for k in ks})
    n_layers = len(encoder_layers(backbone))
    was_training = backbone.training
    backbone.eval()
    dev = next(backbone.parameters()).device
    n = len(texts)
    parts: dict[int, list] = {k: [None] * n for k in ks}
    order = np.argsort(texts.lengths(max_length), kind="stable")
    try:
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            ids, mask = texts.batch(idx, max_length, truncation_side)
            out = backbone(input_ids=ids.to(dev), attention_mask=mask.to(dev),
                           output_hidden_states=True)
            hs = out.hidden_states
            if len(hs) != n_layers + 1:
                raise RuntimeError(f"backbone: {len(hs)} hidden states for {n_layers} blocks")
            lens = mask.sum(1).tolist()
            for k in ks:
                h = hs[n_layers - k].float().cpu().numpy()
                for j, i in enumerate(idx):
                    parts[k][i] = h[j, :lens[j]]
    finally:
        backbone.train(was_training)
    out = {}
    for k in ks:
        lens = np.array([p.shape[0] for p in parts[k]], dtype=np.int64)
        out[k] = CachedStates(np.concatenate(parts[k]).astype(np.float32, copy=False),
                              np.concatenate([[0], np.cumsum(lens)]), k)
    return out


class TopModel(nn.Module):
    """The top ``k`` blocks of ``backbone`` (deep copies) + mean pool + linear head: ``r(h)``, ``(n,)``.

    Args:
        backbone: a BERT-family transformers encoder.
        k: blocks to train (0 = the head alone, on the last hidden state).
        seed, head_init_std: the head's init (`w2s_theory.finetune.init_head_`),
            identical to a `RewardModel` of the same seed.
    """

    def __init__(self, backbone: nn.Module, k: int, *, seed: int = 0, head_init_std: float = 0.02):
        super().__init__()
        k = check_k(backbone, k)
        layers = encoder_layers(backbone)
        self.config = backbone.config
        self.k = k
        self.layers = nn.ModuleList([copy.deepcopy(m) for m in list(layers)[len(layers) - k:]])
        self.head = init_head_(nn.Linear(int(self.config.hidden_size), 1), seed, head_init_std)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = states
        if len(self.layers):
            from transformers.masking_utils import create_bidirectional_mask

            am = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=mask)
            for layer in self.layers:
                h = layer(h, am)
                if isinstance(h, tuple):   # older transformers return (hidden, ...)
                    h = h[0]
        return fp32_head(self.head, mean_pool(h, mask))


def _pair_rewards(model: TopModel, cached: Sequence[CachedStates], idx) -> torch.Tensor:
    if len(cached) == 2:
        la = cached[0].offsets[np.asarray(idx) + 1] - cached[0].offsets[np.asarray(idx)]
        lb = cached[1].offsets[np.asarray(idx) + 1] - cached[1].offsets[np.asarray(idx)]
        L = int(max(la.max(initial=0), lb.max(initial=0)))
        ha, ma = cached[0].batch(idx, pad_to=L)
        hb, mb = cached[1].batch(idx, pad_to=L)
        r = model(torch.cat([ha, hb]), torch.cat([ma, mb]))
        m = ha.shape[0]
        return r[:m] - r[m:]
    h, m = cached[0].batch(idx)
    return model(h, m)


def _check_cached(cached, task: TextTask, k: int) -> tuple[CachedStates, ...]:
    cached = tuple(cached)
    if len(cached) != len(task.inputs) or any(len(c) != len(task) for c in cached):
        raise ValueError(f"cached: need {len(task.inputs)} CachedStates of {len(task)} texts")
    if any(c.k != k for c in cached):
        raise ValueError(f"cached: states for k={[c.k for c in cached]}, the model has k={k}")
    return cached


def train_top(model: TopModel, cached: Sequence[CachedStates], task: TextTask, targets,
              cfg: FinetuneConfig, *, progress: bool = False) -> dict:
    """Train ``model`` in place on cached states towards ``targets`` (already through
    `make_targets`): `w2s_theory.finetune.fit` (the trainer of `w2s_theory.finetune.train`)
    with the top ``k`` blocks and the head as the trainable parameters.

    Returns:
        ``{"steps", "wall_s", "losses", "trainable_params"}``.
    """
    if cfg.task != task.task:
        raise ValueError(f"task: config says {cfg.task!r} but the data are {task.task!r}")
    if cfg.precision in ("bf16", "fp16"):
        raise ValueError("cfg.precision: partial fine-tuning runs in fp32 here")
    cached = _check_cached(cached, task, model.k)
    y_all = np.asarray(targets, dtype=np.float64)
    if y_all.shape != (len(task),) or not np.all((y_all >= 0) & (y_all <= 1)):
        raise ValueError(f"targets: need ({len(task)},) values in [0, 1]")
    st = fit(model, StateRows(cached, y_all), StateCollator(), train_order(task, cfg), cfg,
             pairwise=cfg.task == "pairwise", regime=f"top{model.k}", progress=progress,
             training_args={"use_cpu": True, "bf16": False, "fp16": False})   # fp32 ("auto" too)
    return {"steps": st.steps, "wall_s": st.wall_s, "losses": st.losses,
            "trainable_params": st.trainable_params}


@torch.no_grad()
def predict_top(model: TopModel, cached: Sequence[CachedStates], task: TextTask, *,
                batch_size: int = 64) -> np.ndarray:
    """Probabilities ``sigmoid(r(A) - r(B))`` (or ``sigmoid(r(x))``), ``(n,)`` float64."""
    cached = _check_cached(cached, task, model.k)
    was = model.training
    model.eval()
    z = np.empty(len(task), dtype=np.float64)
    lens = np.max(np.stack([np.diff(c.offsets) for c in cached]), axis=0)
    order = np.argsort(lens, kind="stable")
    for s in range(0, len(task), batch_size):
        idx = order[s:s + batch_size]
        z[idx] = _pair_rewards(model, cached, idx).double().numpy()
    model.train(was)
    return 1.0 / (1.0 + np.exp(-z))



def last_layer_features(pooled: dict[str, tuple[np.ndarray, np.ndarray]], ref: str = "train_gt"
                        ) -> dict[str, np.ndarray]:
    r"""Standardised Bradley--Terry rows of the last-layer pipeline: :math:`(h_A - h_B) / sd`.

    ``pooled[split] = (h_A, h_B)`` (``(n, H)`` pooled features of the two slots);
    ``sd`` per coordinate over both slots of ``ref`` (``train_gt``: ground-truth data the
    weak model also sees; never test), as in the last-layer sweep (``experiments/real``):
    `w2s_theory.protocol.standardize_pairs`.

    Examples:
        >>> import numpy as np
        >>> a = np.array([[1.0, 2.0], [3.0, 2.0]]); b = np.array([[0.0, 2.0], [1.0, 4.0]])
        >>> last_layer_features({"train_gt": (a, b)})["train_gt"].round(3).tolist()
        [[0.918, 0.0], [1.835, -2.309]]
    """
    return standardize_pairs({k: a for k, (a, _) in pooled.items()},
                             {k: b for k, (_, b) in pooled.items()}, ref=ref)


def pooled_mean(c: CachedStates) -> np.ndarray:
    """Mean over each text's real tokens of cached last hidden states (``k = 0``), ``(n, H)``."""
    sums = np.add.reduceat(c.states.astype(np.float64), c.offsets[:-1], axis=0)
    return sums / np.diff(c.offsets)[:, None]
