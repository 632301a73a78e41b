r"""Partial fine-tuning: only the top ``k`` transformer blocks and the reward head train.

Between the last-layer regime of Theorem 2 (``k = 0``: a linear head on frozen
features) and full fine-tuning (``k = all``) lies a ladder of regimes: the bottom
``L - k`` blocks (and the embeddings) stay frozen and the top ``k`` blocks train with
the head. Frozen blocks give the same output every epoch, so their output is
computed **once** per text and cached (:func:`cache_states`); a training step then
runs only the top ``k`` blocks (:class:`TopModel`), so a ``k = 1`` run of a 6-block
encoder costs about a sixth of a full run plus the one cached pass.

The trainer (:func:`train_top`) follows :func:`w2s_theory.finetune.train` step for
step: the same batch order (:func:`~w2s_theory.finetune.train_order`), AdamW, learning
rate schedule, loss (:func:`~w2s_theory.finetune.loss_fn`) and mean-pooled fp32 head.
It is therefore the same computation as fine-tuning a :class:`RewardModel` whose
lower blocks have ``requires_grad = False`` (checked in ``tests/test_partial.py``,
up to float round-off), only cheaper.

The sweep (:func:`run`) reuses the full fine-tuning sweep's data bundle (same pairs,
slot orders, weak supervisor, noise, seeds), its ``[lr_select]`` rule (applied per
``k``: the lr is chosen on held-out ``train_gt`` pairs, never on test), its prediction
store and its result rows (:func:`w2s_theory.sweeps.finetune.make_row`: accuracy,
PGR, Lemma 1 and Theorem 2 against the truth and the same-``k`` ceiling). Rows carry
``regime = "top{k}"``. Supported backbones: BERT-family encoders (``model_type ==
"bert"``, e.g. all-MiniLM-L6-v2); others raise a clear error.

    python -m w2s_theory.partial --config experiments/finetune/cpu_4k_partial.toml

References: Yao et al., arXiv:2502.11107 (2025), Sec. 6: "the guarantee under full
fine-tuning remains unclear" -- this ladder measures how far Theorem 2's pattern carries.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .finetune import (FinetuneConfig, TextTask, TokenizedTexts, fp32_head, init_head_,
                       lr_multiplier, loss_fn, mean_pool, new_buffer, train_order)

__all__ = ["SUPPORTED_MODEL_TYPES", "encoder_layers", "CachedStates", "cache_states", "TopModel",
           "train_top", "predict_top", "last_layer_features", "PartialConfig", "run", "main"]

SUPPORTED_MODEL_TYPES = ("bert",)


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's list of transformer blocks (BERT family: ``encoder.layer``)."""
    mt = getattr(getattr(backbone, "config", None), "model_type", None)
    if mt not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"backbone: partial fine-tuning supports {SUPPORTED_MODEL_TYPES} "
                         f"encoders, got model_type {mt!r}")
    return backbone.encoder.layer


def _check_k(backbone: nn.Module, k) -> int:
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
    them (:meth:`TokenizedTexts.batch`) and run in length-sorted batches.

    Returns:
        ``{k: CachedStates}``.
    """
    ks = sorted({_check_k(backbone, k) for k in ks})
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
        seed, head_init_std: the head's init (:func:`w2s_theory.finetune.init_head_`),
            identical to a :class:`~w2s_theory.finetune.RewardModel` of the same seed.
    """

    def __init__(self, backbone: nn.Module, k: int, *, seed: int = 0, head_init_std: float = 0.02):
        super().__init__()
        k = _check_k(backbone, k)
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
    :func:`~w2s_theory.finetune.make_targets`), as :func:`w2s_theory.finetune.train` would.

    Returns:
        ``{"steps", "wall_s", "losses", "trainable_params"}``.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if cfg.task != task.task:
        raise ValueError(f"task: config says {cfg.task!r} but the data are {task.task!r}")
    if cfg.precision == "bf16":
        raise ValueError("cfg.precision: partial fine-tuning runs in fp32 here")
    cached = _check_cached(cached, task, model.k)
    y_all = np.asarray(targets, dtype=np.float64)
    if y_all.shape != (len(task),) or not np.all((y_all >= 0) & (y_all <= 1)):
        raise ValueError(f"targets: need ({len(task)},) values in [0, 1]")
    y_all = torch.as_tensor(y_all, dtype=torch.float32)
    order = train_order(task, cfg)
    total, accum = order.shape[0], cfg.grad_accum
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps,
                            weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: lr_multiplier(t, total, cfg.schedule, cfg.warmup_frac))
    buffer = new_buffer(cfg)
    losses = []
    model.train()
    for step in tqdm(range(total), disable=not progress, leave=False, desc=f"top{model.k}"):
        step_loss = 0.0
        for micro in np.split(order[step], accum):
            z = _pair_rewards(model, cached, micro)
            loss = loss_fn(z, y_all[micro], cfg, step=step, total_steps=total, buffer=buffer)
            (loss / accum).backward()
            step_loss += float(loss.detach()) / accum
        if cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(step_loss)
    return {"steps": total, "wall_s": time.perf_counter() - t0, "losses": losses,
            "trainable_params": int(sum(p.numel() for p in params))}


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


# ============================================================================= the sweep
@dataclass(frozen=True)
class PartialConfig:
    """A partial fine-tuning sweep: a full fine-tuning sweep config plus ``[partial]``.

    TOML: every section of :class:`w2s_theory.sweeps.finetune.FinetuneSweepConfig`, plus
    ``[partial] blocks = [0, 1, 2]`` (the ``k`` values), ``out`` (the result CSV) and
    ``last_layer = true`` for the standardised last-layer baseline on the same pairs and
    weak labels (regime ``lastlayer``: :func:`last_layer_features` + the last-layer trainer
    :func:`w2s_theory.training.train_head`, lr chosen on held-out ``train_gt`` pairs from
    ``head_lr_grid``).
    The ``[sweep]`` grid, ``[data]``, ``[weak]``, ``[train]`` and ``[lr_select]`` mean
    what they mean there; ``[sweep] regimes`` is ignored (each ``k`` is a regime).
    """

    sweep: object
    blocks: tuple[int, ...]
    out: str
    last_layer: bool = False
    head_lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "PartialConfig":
        from .sweeps.finetune import FinetuneSweepConfig

        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        with open(path, "rb") as fh:
            d = tomllib.load(fh)
        part = dict(d.pop("partial", None) or {})
        known = ["blocks", "out", "last_layer", "head_lr_grid"]
        bad = sorted(set(part) - set(known))
        if bad:
            raise ValueError(f"{path}: [partial] unknown key(s) {bad}; known: {known}")
        last = part.get("last_layer", False)
        if not isinstance(last, bool):
            raise ValueError(f"{path}: [partial] last_layer: true or false, got {last!r}")
        grid = part.get("head_lr_grid", list(cls.head_lr_grid))
        if (not isinstance(grid, list) or not grid
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                       for v in grid)):
            raise ValueError(f"{path}: [partial] head_lr_grid: a list of learning rates > 0, "
                             f"got {grid!r}")
        blocks = part.get("blocks", [0, 1, 2])
        if (not isinstance(blocks, list) or not blocks
                or any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in blocks)):
            raise ValueError(f"{path}: [partial] blocks: a non-empty list of integers >= 0, "
                             f"got {blocks!r}")
        out = part.get("out")
        if not isinstance(out, str) or not out:
            raise ValueError(f"{path}: [partial] out: the result CSV path is required")
        return cls(FinetuneSweepConfig.from_dict(d), tuple(sorted(set(blocks))), out, last,
                   tuple(float(v) for v in grid))

    def out_path(self) -> Path:
        from .data import project_root

        p = Path(self.out)
        return p if p.is_absolute() else project_root() / p


def _plan(cfg, bundle_meta: dict, k: int, train_cfg: FinetuneConfig) -> list:
    from .sweep import run_key
    from .sweeps.finetune import PROTOCOL_VERSION, RunSpec

    base = {"protocol": PROTOCOL_VERSION, "strong": cfg.strong, "partial_k": k,
            "ceiling_split": bundle_meta.get("ceiling_split", "train_w2s"),
            "data": {key: bundle_meta.get(key) for key in ("subset", "n_train", "n_test",
                                                          "slot_seeds", "weak_model", "weak_l2")}}
    s = cfg.sweep
    out = []
    regime = f"top{k}"
    if s.ceiling:
        for seed in s.seeds:
            c = train_cfg.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(seed))
            out.append(RunSpec(regime, "ceiling", c, run_key({**base, "role": "ceiling",
                                                               "cfg": c.to_dict()})))
    for seed in s.seeds:
        for a in s.noise:
            for loss in s.losses:
                for conf in s.confidence:
                    c = train_cfg.replace(loss=loss, noise=float(a), confidence=bool(conf),
                                          seed=int(seed))
                    out.append(RunSpec(regime, "student", c, run_key({**base, "role": "student",
                                                                       "cfg": c.to_dict()})))
    return out


def run(pc: PartialConfig, *, progress: bool = False, log: Callable[[str], None] = print,
        time_limit: float | None = None) -> list[dict]:
    """Run (or resume) the partial fine-tuning sweep; returns its result rows.

    Per ``k``: the lr by ``[lr_select]`` on held-out ``train_gt`` pairs (records in
    ``<out>.lr_select.json``), then the ceilings (on ``[data] ceiling_split``) and the
    students; test logits go to ``<out>.preds.npz`` and rows to ``<out>`` after every run.
    """
    from .finetune import load_backbone, make_targets
    from .metrics import accuracy
    from .sweep import ResultTable, atomic_write_text, git_commit, machine_name, run_key
    from .sweeps.finetune import PredStore, build_bundle, rows_from_store

    cfg = pc.sweep
    if cfg.train.precision == "bf16":
        raise ValueError("[train] precision: partial fine-tuning runs in fp32 here")
    deadline = None if time_limit is None else time.monotonic() + time_limit
    out = pc.out_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bundle = build_bundle(cfg, progress=progress)
    log(f"[partial] {cfg.name}: {len(bundle.train)} train / {len(bundle.test)} test pairs, "
        f"weak test acc {bundle.meta['weak_acc_test']:.4f} ({time.perf_counter() - t0:.1f} s)")
    backbone = load_backbone(bundle.model_dir, dropout=cfg.train.dropout)
    for b in pc.blocks:
        _check_k(backbone, b)
    store = PredStore(out.with_suffix(".preds.npz"))
    table = ResultTable(out)
    sel_path = out.with_suffix(".lr_select.json")
    selected = json.loads(sel_path.read_text()) if sel_path.exists() else {}
    tc = cfg.train
    cached: dict[str, dict[int, CachedStates]] = {}
    ceil_task = bundle.ceiling_task()

    def states(split: str, task: TextTask, k: int) -> tuple[CachedStates, ...]:
        if split not in cached:
            t = time.perf_counter()
            per = [cache_states(backbone, x, pc.blocks, max_length=tc.max_length,
                                truncation_side=tc.truncation_side) for x in task.inputs]
            cached[split] = {kk: tuple(p[kk] for p in per) for kk in pc.blocks}
            log(f"[partial] cached {split}: {len(task)} pairs, k in {list(pc.blocks)}, "
                f"{time.perf_counter() - t:.1f} s")
        return cached[split][k]

    def write_rows():
        rows = rows_from_store(store, bundle.meta, bundle.test.labels, bundle.weak_test,
                               cfg.run.gamma, extra={"sweep": cfg.name,
                                      "lr_rule": cfg.lr_select.rule() + " (per k)"})
        table.extend([r for r in rows if not table.has(r["run_key"])
                      and (r["role"] == "ceiling" or np.isfinite(r["ceiling_acc"]))])
        return rows

    n_done = 0
    if pc.last_layer:   # first: cheap once the k = 0 states are cached
        n_done += _run_last_layer(pc, bundle, states, store, write_rows, selected, sel_path,
                                  deadline, log)
    for k in pc.blocks:
        # ---- lr for this k, on held-out train_gt pairs (never test)
        lr = float(tc.lr)
        ls = cfg.lr_select
        if ls.grid:
            gt = bundle.gt
            n = len(gt)
            fit_idx, hold_idx = np.arange(n - ls.holdout), np.arange(n - ls.holdout, n)
            fit, hold = gt.subset(fit_idx), gt.subset(hold_idx)
            recs = []
            for cand in ls.grid:
                c = tc.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(ls.seed),
                               lr=float(cand))
                key = run_key({"role": "lr_select", "partial_k": k, "strong": cfg.strong,
                               "holdout": ls.holdout, "data": {x: bundle.meta.get(x) for x in
                                                               ("subset", "n_train", "slot_seeds")},
                               "cfg": c.to_dict()})
                if key not in selected:
                    g = states("train_gt", gt, k)
                    fs = tuple(CachedStates(*_sub(s, fit_idx), k) for s in g)
                    hs = tuple(CachedStates(*_sub(s, hold_idx), k) for s in g)
                    m = TopModel(backbone, k, seed=c.seed, head_init_std=c.head_init_std)
                    st = train_top(m, fs, fit, fit.labels.astype(np.float64), c, progress=progress)
                    p = predict_top(m, hs, hold)
                    y = hold.labels.astype(np.float64)
                    pcl = np.clip(p, 1e-12, 1 - 1e-12)
                    selected[key] = {"k": k, "lr": float(cand), "holdout_acc": accuracy(hold.labels, p),
                                     "holdout_logloss": float(-(y * np.log(pcl) + (1 - y)
                                                                * np.log1p(-pcl)).mean()),
                                     "n_fit": len(fit), "n_holdout": len(hold),
                                     "train_wall_s": st["wall_s"], "machine": machine_name(),
                                     "git_commit": git_commit()}
                    atomic_write_text(sel_path, json.dumps(selected, indent=1, sort_keys=True))
                    log(f"[partial] k={k} lr {cand:g}: held-out train_gt acc "
                        f"{selected[key]['holdout_acc']:.4f} ({st['wall_s']:.0f} s)")
                recs.append(selected[key])
            best = (max(recs, key=lambda r: (r["holdout_acc"], -r["lr"])) if ls.metric == "accuracy"
                    else min(recs, key=lambda r: (r["holdout_logloss"], r["lr"])))
            lr = float(best["lr"])
            log(f"[partial] k={k}: lr {lr:g} chosen on held-out train_gt pairs")
        # ---- runs
        for spec in _plan(cfg, bundle.meta, k, tc.replace(lr=lr)):
            if store.has(spec.key):
                continue
            if deadline is not None and time.monotonic() > deadline:
                log("[partial] time limit: stopping before a run")
                return write_rows()
            is_ceil = spec.role == "ceiling"
            task = ceil_task if is_ceil else bundle.train
            split = bundle.meta.get("ceiling_split", "train_w2s") if is_ceil else "train_w2s"
            y = task.labels.astype(np.float64) if is_ceil else bundle.weak_train
            m = TopModel(backbone, k, seed=spec.cfg.seed, head_init_std=spec.cfg.head_init_std)
            st = train_top(m, states(split, task, k), task, make_targets(y, spec.cfg), spec.cfg,
                           progress=progress)
            t1 = time.perf_counter()
            p = predict_top(m, states("test", bundle.test, k), bundle.test)
            z = np.log(np.clip(p, 1e-300, None)) - np.log1p(-np.minimum(p, 1 - 1e-16))
            store.add({spec.key: (z, _run_record(spec, {
                "device": "cpu", "precision": "no", "num_processes": 1,
                "train_wall_s": st["wall_s"], "eval_wall_s": time.perf_counter() - t1,
                "group_size": 1, "group_wall_s": st["wall_s"], "train_tokens": 0,
                "train_padded_tokens": 0, "tokens_per_s": float("nan"),
                "group_tokens_per_s": float("nan"), "final_loss": st["losses"][-1],
                "resumed_from": 0, "partial_k": k, "trainable_params": st["trainable_params"]}))})
            write_rows()
            n_done += 1
            log(f"[partial] top{k} {spec.role} {spec.cfg.loss} noise={spec.cfg.noise} "
                f"seed={spec.cfg.seed}: {st['wall_s']:.0f} s")
    rows = write_rows()
    log(f"[partial] {n_done} runs trained, {len(rows)} rows in {out} "
        f"({time.perf_counter() - t0:.0f} s)")
    return rows


def last_layer_features(pooled: dict[str, tuple[np.ndarray, np.ndarray]], ref: str = "train_gt"
                        ) -> dict[str, np.ndarray]:
    r"""Standardised Bradley--Terry rows of the last-layer pipeline: :math:`(h_A - h_B) / sd`.

    ``pooled[split] = (h_A, h_B)`` (``(n, H)`` pooled features of the two slots);
    ``sd`` per coordinate over both slots of ``ref`` (``train_gt``: ground-truth data the
    weak model also sees; never test), as in the last-layer sweep (``experiments/real``).

    Example:
        >>> import numpy as np
        >>> a = np.array([[1.0, 2.0], [3.0, 2.0]]); b = np.array([[0.0, 2.0], [1.0, 4.0]])
        >>> last_layer_features({"train_gt": (a, b)})["train_gt"].round(3).tolist()
        [[0.908, 0.0], [1.816, -2.0]]
    """
    a, b = pooled[ref]
    sd = np.concatenate([a, b]).astype(np.float64).std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return {k: (np.asarray(x, np.float64) - np.asarray(y, np.float64)) / sd
            for k, (x, y) in pooled.items()}


def _pooled(c: CachedStates) -> np.ndarray:
    """Mean over each text's real tokens of cached last hidden states (``k = 0``), ``(n, H)``."""
    sums = np.add.reduceat(c.states.astype(np.float64), c.offsets[:-1], axis=0)
    return sums / np.diff(c.offsets)[:, None]


def _run_record(spec, extra: dict) -> dict:
    from .sweep import git_commit, machine_name

    return {**spec.coords(), "config": spec.cfg.to_dict(), "torch_version": torch.__version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_name(), "git_commit": git_commit(), **extra}


def _run_last_layer(pc: PartialConfig, bundle, states, store, write_rows, selected: dict,
                    sel_path: Path, deadline, log) -> int:
    """The standardised last-layer baseline (regime ``lastlayer``) on the sweep's own pairs."""
    from .finetune import make_targets
    from .metrics import accuracy
    from .sweep import atomic_write_text, git_commit, machine_name, run_key
    from .training import HeadSpec, TrainConfig, train_head

    cfg = pc.sweep
    if 0 not in pc.blocks:
        raise ValueError("[partial] last_layer needs 0 in blocks (the frozen model's features)")
    ceil_split = bundle.meta.get("ceiling_split", "train_w2s")
    pooled = {"train_w2s": tuple(_pooled(c) for c in states("train_w2s", bundle.train, 0)),
              "test": tuple(_pooled(c) for c in states("test", bundle.test, 0))}
    if bundle.gt is not None:
        pooled["train_gt"] = tuple(_pooled(c) for c in states("train_gt", bundle.gt, 0))
    X = last_layer_features(pooled, ref="train_gt" if "train_gt" in pooled else "train_w2s")
    tc = cfg.train
    base_tc = TrainConfig(epochs=tc.epochs, batch_size=tc.batch_size, dtype="float64", eps=tc.eps)
    ls = cfg.lr_select
    lr = 1e-3
    if "train_gt" in X:
        n = X["train_gt"].shape[0]
        hold = np.arange(n - ls.holdout, n)
        fit = np.arange(n - ls.holdout)
        y = bundle.gt.labels.astype(np.float64)
        recs = []
        for cand in pc.head_lr_grid:
            key = run_key({"role": "lr_select", "regime": "lastlayer", "strong": cfg.strong,
                           "holdout": ls.holdout, "lr": cand, "seed": ls.seed,
                           "data": {x: bundle.meta.get(x) for x in ("subset", "n_train", "slot_seeds")},
                           "train": {"epochs": tc.epochs, "batch_size": tc.batch_size}})
            if key not in selected:
                w = train_head(X["train_gt"][fit], y[fit], HeadSpec("forward_ce", seed=ls.seed),
                               replace(base_tc, lr=float(cand)))
                p = 1 / (1 + np.exp(-(X["train_gt"][hold] @ w)))
                pcl = np.clip(p, 1e-12, 1 - 1e-12)
                selected[key] = {"regime": "lastlayer", "lr": float(cand),
                                 "holdout_acc": accuracy(bundle.gt.labels[hold], p),
                                 "holdout_logloss": float(-(y[hold] * np.log(pcl) + (1 - y[hold])
                                                            * np.log1p(-pcl)).mean()),
                                 "n_fit": int(fit.size), "n_holdout": int(hold.size),
                                 "machine": machine_name(), "git_commit": git_commit()}
                atomic_write_text(sel_path, json.dumps(selected, indent=1, sort_keys=True))
            recs.append(selected[key])
        best = (max(recs, key=lambda r: (r["holdout_acc"], -r["lr"])) if ls.metric == "accuracy"
                else min(recs, key=lambda r: (r["holdout_logloss"], r["lr"])))
        lr = float(best["lr"])
        log(f"[partial] lastlayer: lr {lr:g} chosen on held-out train_gt pairs")
    head_tc = replace(base_tc, lr=lr)
    n_done = 0
    # the run keys hash the sweep's FinetuneConfig (loss, noise, seed) plus the head trainer
    for spec in _plan(cfg, bundle.meta, 0, tc.replace(lr=lr)):
        key = run_key({"regime": "lastlayer", "base": spec.key, "head_train": head_tc.to_dict()})
        if store.has(key):
            continue
        if deadline is not None and time.monotonic() > deadline:
            break
        is_ceil = spec.role == "ceiling"
        split = ceil_split if is_ceil else "train_w2s"
        y = ((bundle.ceiling_task().labels.astype(np.float64)) if is_ceil
             else make_targets(bundle.weak_train, spec.cfg))
        t0 = time.perf_counter()
        w = train_head(X[split], y, HeadSpec(spec.cfg.loss, seed=spec.cfg.seed), head_tc)
        wall = time.perf_counter() - t0
        z = X["test"] @ w
        lspec = replace(spec, regime="lastlayer", key=key)
        store.add({key: (z, _run_record(lspec, {
            "device": "cpu", "precision": "float64", "num_processes": 1, "train_wall_s": wall,
            "eval_wall_s": 0.0, "group_size": 1, "group_wall_s": wall, "train_tokens": 0,
            "train_padded_tokens": 0, "tokens_per_s": float("nan"),
            "group_tokens_per_s": float("nan"), "final_loss": None, "resumed_from": 0,
            "partial_k": "lastlayer", "trainable_params": int(w.size)}))})
        write_rows()
        n_done += 1
    log(f"[partial] lastlayer: {n_done} heads trained")
    return n_done


def _sub(c: CachedStates, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = c.offsets[idx + 1] - c.offsets[idx]
    parts = [c.states[c.offsets[i]:c.offsets[i + 1]] for i in idx]
    return np.concatenate(parts), np.concatenate([[0], np.cumsum(lens)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m w2s_theory.partial",
                                description="Partial fine-tuning sweep (top k blocks) on a "
                                            "full fine-tuning TOML config plus [partial].")
    p.add_argument("--config", required=True)
    p.add_argument("--out", help="result CSV (overrides [partial] out)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds after which no new run starts")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        pc = PartialConfig.from_toml(args.config)
    except (OSError, ValueError) as e:
        print(f"w2s-theory partial: {e}", file=sys.stderr)
        return 2
    if args.out:
        pc = replace(pc, out=args.out)
    run(pc, log=(lambda *_: None) if args.quiet else print, time_limit=args.time_limit)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
