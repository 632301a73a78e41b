"""Many fine-tuning runs at once: ``R`` BERT reward models with stacked weights (torch).

A sweep (losses x noise levels x seeds) trains ``R`` copies of one pretrained
encoder that differ only in their head init, data order, targets and loss. Run
one by one at the paper's batch of 16, a small encoder leaves a GPU idle (the
step is launch-bound). `StackedBert` holds the ``R`` runs' weights as
tensors with a leading run axis, ``W[r]``, and evaluates all of them in one
pass of batched matrix products (``torch.baddbmm``) and one fused attention
call, each run on its *own* 16 pairs:

``x[r] -> LN(x[r] + Attn_r(x[r])) -> LN(. + W2[r] gelu(W1[r] . + b1[r]) + b2[r])``

The loss is the sum over runs of each run's mean loss; the runs share no
parameter, so the gradient with respect to ``W[r]`` is exactly run ``r``'s own
gradient, and Adam(W) -- elementwise -- is run ``r``'s own optimiser. Gradient
clipping, when on, is per run. `train_ensemble` therefore reproduces
`w2s_theory.finetune.train` run by run (same batches, targets, head init,
schedule), up to float round-off; ``tests/test_finetune.py`` checks it.

Head-only runs (the last-layer regime) stack only the heads
(`StackedHead`) on features computed once.

Scope: `StackedBert` covers BERT-architecture encoders (absolute positions,
post-LayerNorm, e.g. all-MiniLM-L6-v2, BERT, MiniLM) with mean pooling; weights come from
the transformers model (`w2s_theory.finetune.load_backbone`), never from a
hand-written reader. Any other ``transformers`` model (GPT-2, Llama, Qwen2, Pythia, ...)
is stacked by `StackedModels` (``torch.func.stack_module_state`` +
``functional_call`` + ``vmap``, the backbone given a 4-D attention mask so that no
data-dependent mask code runs under ``vmap``), after a probe on a tiny batch shows that it
reproduces the runs' own forward passes; when it does not (an architecture ``vmap`` cannot
trace), `LoopedModels` trains the ``R`` runs one after another inside each step (the
same numbers, no speed-up), and the log says why (`stacking_plan`).

References
----------
Devlin et al., "BERT", NAACL 2019 (the architecture).
PyTorch ``torch.func`` model ensembling tutorial (the stacked-weights idea).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .finetune import (
    FinetuneConfig,
    RewardModel,
    TextTask,
    device_name,
    init_head_,
    loss_fn,
    lr_multiplier,
    make_targets,
    mean_pool,
    new_buffer,
    resolve_pooling,
    train_order,
)
from .losses import get_loss
from .runtime import resolve_device

__all__ = ["StackedBert", "StackedModels", "LoopedModels", "StackedHead", "EnsembleStats",
           "compatible", "stacking_plan", "stack_models", "train_ensemble", "predict_ensemble",
           "predict_heads"]

_LAYER_KEYS = (
    "attention.self.query.weight", "attention.self.query.bias",
    "attention.self.key.weight", "attention.self.key.bias",
    "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias",
    "output.LayerNorm.weight", "output.LayerNorm.bias",
)
_EMB_KEYS = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
             "embeddings.LayerNorm.bias")

# Fields that every run of one ensemble must share (they fix the step count, the
# optimiser and the token ids); the others may differ run by run.
_SHARED = ("task", "head_only", "max_length", "truncation_side", "dropout", "epochs", "batch_size",
           "grad_accum", "lr", "weight_decay", "betas", "adam_eps", "schedule", "warmup_frac",
           "max_grad_norm", "precision", "eval_batch_size", "pooling")


def compatible(cfgs: Sequence[FinetuneConfig]) -> None:
    """Raise ``ValueError`` naming the field unless ``cfgs`` can train as one ensemble.

    Examples:
        >>> from w2s_theory.finetune import FinetuneConfig
        >>> from w2s_theory.ensemble import compatible
        >>> compatible([FinetuneConfig(loss="reverse_kl"), FinetuneConfig(seed=2, noise=0.1)])
    """
    if not cfgs:
        raise ValueError("cfgs: need at least one run")
    c0 = cfgs[0]
    for c in cfgs[1:]:
        for name in _SHARED:
            if getattr(c, name) != getattr(c0, name):
                raise ValueError(f"cfgs: field {name!r} differs between runs "
                                 f"({getattr(c0, name)!r} vs {getattr(c, name)!r}); "
                                 f"train such runs in separate ensembles")
    if c0.dropout != 0 and not c0.head_only:
        raise ValueError("cfgs: dropout must be 0 (random masks would differ from one-by-one runs)")


class StackedBert(nn.Module):
    """``R`` BERT reward models (backbone + linear head on the mean-pooled output), weights stacked.

    Parameters are named like a `w2s_theory.finetune.RewardModel`'s state dict
    with dots replaced by ``__`` and a leading run axis of size ``R``.

    Args:
        config: the transformers ``BertConfig`` (absolute positions, gelu / relu).
        states: ``R`` state dicts of `RewardModel` (``backbone.*``, ``head.*``).
    """

    def __init__(self, config, states: Sequence[dict]):
        super().__init__()
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("config: only absolute position embeddings are supported")
        act = getattr(config, "hidden_act", "gelu")
        if act not in ("gelu", "relu", "gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"config: hidden_act {act!r} not supported")
        self.config = config
        self.n_runs = len(states)
        self.n_layers = int(config.num_hidden_layers)
        self.n_heads = int(config.num_attention_heads)
        self.eps = float(config.layer_norm_eps)
        self.act = act
        for key in self.state_keys():
            t = torch.stack([s[key].detach().float().cpu() for s in states])
            self.register_parameter(key.replace(".", "__"), nn.Parameter(t.contiguous()))

    def state_keys(self) -> list[str]:
        keys = [f"backbone.{k}" for k in _EMB_KEYS]
        for i in range(self.n_layers):
            keys += [f"backbone.encoder.layer.{i}.{k}" for k in _LAYER_KEYS]
        return keys + ["head.weight", "head.bias"]

    def p(self, key: str) -> torch.Tensor:
        return getattr(self, key.replace(".", "__"))

    def run_state(self, r: int) -> dict:
        """Run ``r``'s weights as a `RewardModel` state dict (CPU, fp32)."""
        return {k: self.p(k)[r].detach().cpu().clone() for k in self.state_keys()}

    # -- building blocks (all with a leading run axis R)
    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # x (R, M, in), w (R, out, in), b (R, out) -> (R, M, out)
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    def _ln(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, (x.shape[-1],), eps=self.eps)
        return y * w.unsqueeze(1) + b.unsqueeze(1)

    def _act(self, x):
        if self.act == "gelu":
            return F.gelu(x)
        if self.act == "relu":
            return F.relu(x)
        return F.gelu(x, approximate="tanh")

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled last hidden states ``(R, N, H)`` of token ids ``(R, N, L)`` (run ``r`` on its own rows)."""
        R, N, L = input_ids.shape
        if R != self.n_runs:
            raise ValueError(f"input_ids: leading axis {R} != n_runs {self.n_runs}")
        word = self.p("backbone.embeddings.word_embeddings.weight")       # (R, V, H)
        V, H = word.shape[1], word.shape[2]
        flat = (input_ids + torch.arange(R, device=input_ids.device).view(R, 1, 1) * V).reshape(-1)
        x = word.reshape(R * V, H).index_select(0, flat).view(R, N * L, H)
        pos = self.p("backbone.embeddings.position_embeddings.weight")[:, :L]  # (R, L, H)
        typ = self.p("backbone.embeddings.token_type_embeddings.weight")[:, 0]  # (R, H)
        x = x.view(R, N, L, H) + pos.unsqueeze(1) + typ.view(R, 1, 1, H)
        x = x.view(R, N * L, H)
        x = self._ln(x, self.p("backbone.embeddings.LayerNorm.weight"),
                     self.p("backbone.embeddings.LayerNorm.bias"))
        nh = self.n_heads
        d = H // nh
        keep = attention_mask.bool().reshape(R * N, 1, 1, L)
        for i in range(self.n_layers):
            pre = f"backbone.encoder.layer.{i}."
            P = lambda k: self.p(pre + k)  # noqa: E731, B023  (used within this iteration)
            q = self._linear(x, P("attention.self.query.weight"), P("attention.self.query.bias"))
            k = self._linear(x, P("attention.self.key.weight"), P("attention.self.key.bias"))
            v = self._linear(x, P("attention.self.value.weight"), P("attention.self.value.bias"))
            q, k, v = (t.view(R * N, L, nh, d).transpose(1, 2) for t in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            a = a.transpose(1, 2).reshape(R, N * L, H)
            a = self._linear(a, P("attention.output.dense.weight"), P("attention.output.dense.bias"))
            x = self._ln(a + x, P("attention.output.LayerNorm.weight"),
                         P("attention.output.LayerNorm.bias"))
            h = self._act(self._linear(x, P("intermediate.dense.weight"), P("intermediate.dense.bias")))
            h = self._linear(h, P("output.dense.weight"), P("output.dense.bias"))
            x = self._ln(h + x, P("output.LayerNorm.weight"), P("output.LayerNorm.bias"))
        return mean_pool(x.view(R, N, L, H), attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Rewards ``(R, N)``."""
        pooled = self.embed(input_ids, attention_mask)
        w, b = self.p("head.weight"), self.p("head.bias")              # (R, 1, H), (R, 1)
        with torch.autocast(pooled.device.type, enabled=False):        # fp32 rewards, as RewardModel
            return torch.baddbmm(b.unsqueeze(1), pooled.float(), w.transpose(1, 2)).squeeze(-1)


def _mask4d(mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """An additive ``(N, 1, L, L)`` float mask from a ``(N, L)`` padding mask (causal for decoders)."""
    L = mask.shape[-1]
    keep = mask.bool()[..., None, :].expand(*mask.shape[:-1], L, L)
    if causal:
        keep = keep & torch.ones(L, L, dtype=torch.bool, device=mask.device).tril()
    return torch.where(keep, 0.0, torch.finfo(torch.float32).min).unsqueeze(-3)


class StackedModels(nn.Module):
    """``R`` `RewardModel` s of *any* transformers architecture,
    weights stacked with ``torch.func.stack_module_state`` and run with ``vmap``.

    ``forward(ids, mask)`` with ``(R, N, L)`` inputs (run ``r`` on its own rows) returns
    rewards ``(R, N)``. The backbone receives a 4-D additive mask (causal for decoders), so
    the transformers mask builders (data-dependent control flow) are skipped under ``vmap``.
    Parameters carry a leading run axis, so Adam and per-run clipping act run by run.
    """

    def __init__(self, models: Sequence[RewardModel], attn_implementation: str | None = None):
        super().__init__()
        import copy

        from torch.func import stack_module_state

        from .hub import is_decoder

        params, buffers = stack_module_state(list(models))
        self.n_runs = len(models)
        self._pnames, self._bnames = list(params), list(buffers)
        for k, v in params.items():
            self.register_parameter(k.replace(".", "__"), nn.Parameter(v.detach().clone()))
        for k, v in buffers.items():
            self.register_buffer(k.replace(".", "__"), v.detach().clone())
        base = copy.deepcopy(models[0]).to("meta")
        if attn_implementation is not None:
            base.backbone.config._attn_implementation = attn_implementation
        self._base = (base,)                       # a tuple: not a submodule, not in state_dict
        self.causal = is_decoder(models[0].backbone.config)

    def run_state(self, r: int) -> dict:
        """Run ``r``'s weights as a `RewardModel` state dict."""
        return {k: getattr(self, k.replace(".", "__"))[r].detach().cpu().clone()
                for k in self._pnames + self._bnames}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        base = self._base[0]
        params = {k: getattr(self, k.replace(".", "__")) for k in self._pnames}
        buffers = {k: getattr(self, k.replace(".", "__")) for k in self._bnames}
        causal = self.causal

        def one(p, b, ids, mask):
            return functional_call(base, (p, b), (ids, mask), {"backbone_mask": _mask4d(mask, causal)})

        return vmap(one)(params, buffers, input_ids, attention_mask)


class LoopedModels(nn.Module):
    """``R`` reward models run one after another (the fallback for what cannot be stacked).

    The same interface as `StackedModels`; each run's parameters are its own, so
    Adam over all of them is each run's own optimiser, and clipping is per run.
    """

    def __init__(self, models: Sequence[RewardModel]):
        super().__init__()
        self.runs = nn.ModuleList(models)
        self.n_runs = len(models)

    def run_state(self, r: int) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.runs[r].state_dict().items()}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(input_ids[r], attention_mask[r]) for r, m in enumerate(self.runs)])


def _bert_reason(config, pooling: str) -> str | None:
    """Why `StackedBert` cannot hold this backbone (``None``: it can)."""
    if config.model_type != "bert":
        return f"{config.model_type} is not a BERT-architecture encoder"
    if pooling != "mean":
        return f"pooling {pooling!r} (StackedBert mean-pools)"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return "relative position embeddings"
    if getattr(config, "hidden_act", "gelu") not in ("gelu", "relu", "gelu_new", "gelu_pytorch_tanh"):
        return f"activation {config.hidden_act!r}"
    return None


def stacking_plan(backbone: nn.Module, pooling: str = "auto") -> tuple[str, str]:
    """How `train_ensemble` holds many runs of this backbone: ``("bert", why)`` for
    `StackedBert`, else ``("vmap", why)`` (`StackedModels`, still to pass the
    probe of `stack_models`).

    Example:
        >>> from transformers import GPT2Config, GPT2Model
        >>> stacking_plan(GPT2Model(GPT2Config(n_embd=8, n_layer=1, n_head=2, vocab_size=10)))[0]
        'vmap'
    """
    pooling = resolve_pooling(pooling, backbone.config)
    why = _bert_reason(backbone.config, pooling)
    if why is None:
        return "bert", "BERT-architecture encoder: StackedBert (batched matrix products)"
    return "vmap", why


def _probe(stacked: nn.Module, models: Sequence[RewardModel], vocab: int) -> None:
    """Raise unless ``stacked`` gives each run's own rewards (and a gradient) on a tiny batch."""
    R = len(models)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, max(vocab, 2), (R, 2, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[:, 1, 4:] = 0
    dev = next(stacked.parameters()).device
    ids, mask = ids.to(dev), mask.to(dev)
    out = stacked(ids, mask)
    with torch.no_grad():
        ref = torch.stack([m.to(dev)(ids[r], mask[r]) for r, m in enumerate(models)])
    err = float((out.detach().float() - ref.float()).abs().max())
    scale = float(ref.abs().max()) + 1e-6
    if not err <= 1e-4 * max(1.0, scale):
        raise ValueError(f"stacked forward differs from the runs' own by {err:.3g}")
    out.sum().backward()
    stacked.zero_grad(set_to_none=True)


def stack_models(models: Sequence[RewardModel], device=None, log=None) -> nn.Module:
    """`StackedModels` of ``models`` when a probe shows it reproduces them (with eager
    attention, else the model's own), else `LoopedModels`; ``log`` gets one line
    saying which and why."""
    log = log or (lambda *_: None)
    dev = resolve_device(device)
    cfg = models[0].backbone.config
    vocab = int(getattr(cfg, "vocab_size", 2))
    errors = []
    # eager attention first: plain matrix products batch well under vmap (sdpa has no
    # batching rule on every backend); then the model's own attention
    for impl in ("eager", None):
        try:
            st = StackedModels(models, attn_implementation=impl).to(dev)
            _probe(st, models, vocab)
            log(f"ensemble: {len(models)} {cfg.model_type} runs stacked with torch.func.vmap"
                f"{' (eager attention)' if impl else ''}")
            return st
        except Exception as exc:  # noqa: BLE001 - any failure means: do not stack
            errors.append(f"{impl or 'default'} attention: {type(exc).__name__}: {str(exc)[:120]}")
    log(f"ensemble: cannot stack {cfg.model_type} runs with torch.func.vmap ({'; '.join(errors)}); "
        f"training the {len(models)} runs one at a time within each step instead")
    return LoopedModels(models).to(dev)


class StackedHead(nn.Module):
    """``R`` linear heads on fixed features (the head-only regime), weights ``(R, 1, H)``, ``(R, 1)``.

    ``forward(x)`` with ``x`` of shape ``(R, N, H)`` (run ``r`` on its own rows) returns
    rewards ``(R, N)`` in float32.
    """

    def __init__(self, states: Sequence[dict]):
        super().__init__()
        self.n_runs = len(states)
        self.register_parameter("head__weight", nn.Parameter(
            torch.stack([s["head.weight"].detach().float().cpu() for s in states]).contiguous()))
        self.register_parameter("head__bias", nn.Parameter(
            torch.stack([s["head.bias"].detach().float().cpu() for s in states]).contiguous()))

    def run_state(self, r: int) -> dict:
        return {"head.weight": self.head__weight[r].detach().cpu().clone(),
                "head.bias": self.head__bias[r].detach().cpu().clone()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return torch.baddbmm(self.head__bias.unsqueeze(1), x.float(),
                                 self.head__weight.transpose(1, 2)).squeeze(-1)


@dataclass
class EnsembleStats:
    """Cost and trace of one ensemble training.

    Attributes:
        n_runs: runs trained together (``R``).
        steps: optimiser steps.
        wall_s: wall-clock seconds.
        real_tokens: tokens over all runs, padding excluded.
        padded_tokens: tokens over all runs, padding included.
        tokens_per_s: real tokens of all runs per second.
        device: the device trained on.
        precision: the precision trained in.
        losses: ``(steps, R)`` mean training loss per run and step.
        stopped_early: the ``deadline`` passed before the last step (runs are incomplete).
    """

    n_runs: int
    steps: int
    wall_s: float
    real_tokens: int
    padded_tokens: int
    tokens_per_s: float
    device: str
    precision: str
    losses: np.ndarray = field(repr=False, default=None)
    stopped_early: bool = False


def _autocast(device: torch.device, precision: str):
    import contextlib

    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _resolve_precision(cfg: FinetuneConfig, device: torch.device) -> str:
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        return "bf16"
    return "no"


def _stack_batch(task: TextTask, idx: np.ndarray, cfg: FinetuneConfig):
    """Token ids of ``idx`` (R, m) -> ids, mask ``(R, k*m, L)`` (k = 1 or 2 texts per row)."""
    R, m = idx.shape
    flat = idx.reshape(-1)
    lens = max(int(t.lengths(cfg.max_length)[flat].max()) for t in task.inputs)
    parts_i, parts_m = [], []
    for t in task.inputs:
        ids, mask = t.batch(flat, cfg.max_length, cfg.truncation_side, pad_to=lens)
        parts_i.append(ids.view(R, m, -1))
        parts_m.append(mask.view(R, m, -1))
    return torch.cat(parts_i, 1), torch.cat(parts_m, 1)


def _z(rewards: torch.Tensor, k: int, m: int) -> torch.Tensor:
    return rewards[:, :m] - rewards[:, m:] if k == 2 else rewards


def train_ensemble(backbone: nn.Module, task: TextTask, targets: Sequence, cfgs: Sequence[FinetuneConfig],
                   *, device: str | torch.device | None = None, progress: bool = True,
                   deadline: float | None = None, desc: str = "ensemble",
                   features: Sequence[np.ndarray] | None = None,
                   log=None) -> tuple[nn.Module, EnsembleStats]:
    """Train ``len(cfgs)`` full fine-tuning runs together; run ``r`` as `train` would.

    Args:
        backbone: the pretrained transformers model (fp32), shared starting point: a BERT
            encoder (`StackedBert`) or any other architecture (`stack_models`:
            stacked with ``vmap``, or one run after another, as the log line says).
        task: the training split (pairwise or binary).
        targets: one ``(n,)`` array per run *before* noise; each run applies its
            own `make_targets` (noise from its seed).
        cfgs: one `FinetuneConfig` per run (`compatible`).
        device: default CUDA when available.
        progress: tqdm bar.
        deadline: ``time.monotonic()`` value after which training stops (partial runs,
            ``stopped_early=True``); the caller decides what to keep.
        features: head-only runs (``cfg.head_only``): the pooled features of ``task``'s
            texts, one ``(n, H)`` array per text slot (`embed_texts`);
            the runs are then `StackedHead` s on them.
        log: called with one line when the runs are not held by `StackedBert`.

    Returns:
        the trained `StackedBert` (or `StackedHead`) and `EnsembleStats`.
    """
    from tqdm.auto import tqdm

    compatible(cfgs)
    c0 = cfgs[0]
    if c0.task != task.task:
        raise ValueError(f"task: config says {c0.task!r} but the data are {task.task!r}")
    if len(targets) != len(cfgs):
        raise ValueError(f"targets: {len(targets)} arrays for {len(cfgs)} runs")
    dev = resolve_device(device)
    precision = _resolve_precision(c0, dev)
    t0 = time.perf_counter()
    states = []
    head_only = c0.head_only
    pooling = resolve_pooling(c0.pooling, backbone.config)
    plan = "head" if head_only else stacking_plan(backbone, pooling)[0]
    sd = {} if plan != "bert" else {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    hidden = int(backbone.config.hidden_size)
    for c in cfgs:
        head = init_head_(nn.Linear(hidden, 1), c.seed, c.head_init_std)
        s = dict(sd)
        s["head.weight"], s["head.bias"] = head.weight.detach(), head.bias.detach()
        states.append(s)
    R = len(cfgs)
    if head_only:
        if features is None or len(features) != len(task.inputs):
            raise ValueError(f"features: head-only runs need {len(task.inputs)} feature arrays")
        feats = [torch.as_tensor(np.asarray(f, dtype=np.float32), device=dev) for f in features]
        if any(f.shape != (len(task), hidden) for f in feats):
            raise ValueError(f"features: each must have shape ({len(task)}, {hidden})")
        model = StackedHead(states).to(dev)
    elif plan == "bert":
        model = StackedBert(backbone.config, states).to(dev)
    else:
        import copy

        if log is not None:
            log(f"ensemble: not StackedBert ({stacking_plan(backbone, pooling)[1]})")
        runs = []
        for c, st in zip(cfgs, states):
            m = RewardModel(copy.deepcopy(backbone), seed=c.seed, head_init_std=c.head_init_std,
                            pooling=pooling).float()
            with torch.no_grad():
                m.head.weight.copy_(st["head.weight"])
                m.head.bias.copy_(st["head.bias"])
            runs.append(m)
        model = stack_models(runs, device=dev, log=log)
        if isinstance(model, StackedModels):
            del runs
    ys = []
    for y, c in zip(targets, cfgs):
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(task),):
            raise ValueError(f"targets: shape {y.shape}, expected ({len(task)},)")
        ys.append(make_targets(y, c))
    ys = torch.as_tensor(np.stack(ys), dtype=torch.float32)                     # (R, n)
    orders = np.stack([train_order(task, c) for c in cfgs])
    total = orders.shape[1]
    accum, mb, k = c0.grad_accum, c0.micro_batch_size, len(task.inputs)
    params = list(model.parameters())
    fused = {"fused": True} if dev.type == "cuda" else {}
    opt = torch.optim.AdamW(params, lr=c0.lr, betas=c0.betas, eps=c0.adam_eps,
                            weight_decay=c0.weight_decay, **fused)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: lr_multiplier(t, total, c0.schedule, c0.warmup_frac))
    buffers = [new_buffer(c) for c in cfgs]
    groups: dict[str, list[int]] = {}
    for r, c in enumerate(cfgs):
        if not c.confidence:
            groups.setdefault(c.loss, []).append(r)
    conf_runs = [r for r, c in enumerate(cfgs) if c.confidence]
    real = padded = 0
    losses = torch.zeros((total, R), device=dev)
    stopped = False
    bar = tqdm(total=total, desc=f"{desc} ({R} runs)", disable=not progress, leave=False)
    model.train()
    for step in range(total):
        if deadline is not None and time.monotonic() > deadline:
            stopped = True
            break
        step_loss = torch.zeros(R, device=dev)
        for a in range(accum):
            idx = orders[:, step, a * mb:(a + 1) * mb]                          # (R, mb)
            y = torch.gather(ys, 1, torch.from_numpy(idx)).to(dev)              # (R, mb)
            if head_only:
                ii = torch.from_numpy(idx).to(dev)
                rew = model(torch.cat([f[ii] for f in feats], 1))                 # (R, k*mb)
            else:
                ids, mask = _stack_batch(task, idx, c0)
                real += int(mask.sum())          # counted on the host: no device sync per step
                padded += mask.numel()
                ids, mask = ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True)
                with _autocast(dev, precision):
                    rew = model(ids, mask)
            z = _z(rew, k, mb).float()                                            # (R, mb)
            per_run = torch.zeros(R, device=dev)
            for name, rs in groups.items():
                ri = torch.tensor(rs, device=dev)
                c = cfgs[rs[0]]
                l = get_loss(name)(z[ri].reshape(-1), y[ri].reshape(-1), reduction="none", eps=c.eps)
                per_run = per_run.index_add(0, ri, l.view(len(rs), mb).mean(1))
            for r in conf_runs:
                l = loss_fn(z[r], y[r], cfgs[r], step=step, total_steps=total, buffer=buffers[r])
                per_run = per_run.index_add(0, torch.tensor([r], device=dev), l.view(1))
            (per_run.sum() / accum).backward()
            step_loss += per_run.detach() / accum
        if c0.max_grad_norm is not None:
            if isinstance(model, LoopedModels):
                for m in model.runs:
                    torch.nn.utils.clip_grad_norm_(m.parameters(), c0.max_grad_norm)
            else:
                _clip_per_run(params, c0.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses[step] = step_loss
        bar.update(1)
    bar.close()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    stats = EnsembleStats(n_runs=R, steps=step + (0 if stopped else 1) if total else 0, wall_s=wall,
                          real_tokens=real, padded_tokens=padded, tokens_per_s=real / wall,
                          device=device_name(dev), precision=precision,
                          losses=losses.cpu().numpy(), stopped_early=stopped)
    return model, stats


@torch.no_grad()
def _clip_per_run(params: list[torch.Tensor], max_norm: float) -> None:
    """Scale each run's gradient to norm <= ``max_norm`` (as ``clip_grad_norm_`` per run)."""
    sq = None
    for p in params:
        if p.grad is None:
            continue
        s = p.grad.float().pow(2).reshape(p.shape[0], -1).sum(1)
        sq = s if sq is None else sq + s
    if sq is None:
        return
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for p in params:
        if p.grad is not None:
            p.grad.mul_(coef.view(-1, *([1] * (p.grad.ndim - 1))).to(p.grad.dtype))


@torch.no_grad()
def predict_heads(model: StackedHead, features: Sequence[np.ndarray]) -> np.ndarray:
    """Every head's probabilities ``(R, n)`` float64 on features (one ``(n, H)`` array per text slot).

    Pairwise: ``sigmoid(w . (f_A - f_B))`` (the bias cancels), binary ``sigmoid(w . f + b)``.
    """
    w = model.head__weight.detach().double().cpu().numpy()[:, 0]           # (R, H)
    if len(features) == 2:
        z = (np.asarray(features[0], np.float64) - np.asarray(features[1], np.float64)) @ w.T
    else:
        z = np.asarray(features[0], np.float64) @ w.T + model.head__bias.detach().double().cpu().numpy()[:, 0]
    return 1.0 / (1.0 + np.exp(-z.T))


@torch.no_grad()
def predict_ensemble(model: StackedBert, task: TextTask, cfg: FinetuneConfig, *,
                     device: str | torch.device | None = None, batch_size: int | None = None,
                     progress: bool = False) -> np.ndarray:
    """Every run's probabilities on ``task``, ``(R, n)`` float64: ``sigmoid(r(A) - r(B))`` or ``sigmoid(r(x))``.

    All runs score the same length-sorted batches of texts (``batch_size`` texts per run).
    """
    from tqdm.auto import tqdm

    dev = torch.device(device or next(model.parameters()).device)
    precision = _resolve_precision(cfg, dev)
    bs = int(batch_size or cfg.eval_batch_size)
    was = model.training
    model.eval()
    R = model.n_runs
    rewards = []
    for t in task.inputs:
        n = len(t)
        out = torch.empty((R, n), dtype=torch.float64)
        order = np.argsort(t.lengths(cfg.max_length), kind="stable")
        for i in tqdm(range(0, n, bs), desc="predict", disable=not progress, leave=False):
            b = order[i:i + bs]
            ids, mask = t.batch(b, cfg.max_length, cfg.truncation_side)
            ids = ids.to(dev).unsqueeze(0).expand(R, -1, -1)
            mask = mask.to(dev).unsqueeze(0).expand(R, -1, -1)
            with _autocast(dev, precision):
                r = model(ids, mask)
            out[:, torch.from_numpy(b)] = r.double().cpu()
        rewards.append(out)
    model.train(was)
    z = rewards[0] - rewards[1] if len(rewards) == 2 else rewards[0]
    return torch.sigmoid(z).numpy()
