"""Partial fine-tuning sweep: the top ``k`` blocks of the strong model (and the head) train.

The pipeline of `w2s_theory.partial` on the full fine-tuning sweep's data bundle
(`w2s_theory.pipelines.finetune`): same pairs, weak supervisor, noise, seeds and
``[lr_select]`` rule (applied per ``k`` on held-out ``train_gt`` pairs), the same prediction
store and result rows (``regime = "top{k}"``), plus the standardised last-layer baseline on
the same pairs and weak labels (``regime = "lastlayer"``). Entry point `run`;
command line ``w2s-theory partial --config FILE.toml``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..config import check_keys, from_mapping, load_config
from ..data import project_root
from ..finetune import FinetuneConfig, TextTask, load_backbone, make_targets
from ..fingerprint import load_records, save_records
from ..partial import (
    CachedStates,
    TopModel,
    cache_states,
    check_k,
    last_layer_features,
    pooled_mean,
    predict_top,
    train_top,
)
from ..protocol import holdout_scores, holdout_split, select_lr
from ..provenance import git_commit, machine_name
from ..sweep import ResultTable, run_key
from ..training import HeadSpec, TrainConfig, train_head
from .finetune import (
    PROTOCOL_VERSION,
    FinetuneSweepConfig,
    PredStore,
    RunSpec,
    build_bundle,
    bundle_fingerprint,
    logit,
    lr_select_fingerprint,
    rows_from_store,
    run_record,
)

__all__ = ["PartialConfig", "run"]


@dataclass(frozen=True)
class PartialConfig:
    """A partial fine-tuning sweep: a full fine-tuning sweep config plus ``[partial]``.

    TOML: every section of `w2s_theory.pipelines.finetune.FinetuneSweepConfig`, plus
    ``[partial] blocks = [0, 1, 2]`` (the ``k`` values), ``out`` (the result CSV) and
    ``last_layer = true`` for the standardised last-layer baseline on the same pairs and
    weak labels (regime ``lastlayer``: `last_layer_features` + the last-layer trainer
    `w2s_theory.training.train_head`, lr chosen on held-out ``train_gt`` pairs from
    ``head_lr_grid``).
    The ``[sweep]`` grid, ``[data]``, ``[weak]``, ``[train]`` and ``[lr_select]`` mean
    what they mean there; ``[sweep] regimes`` is ignored (each ``k`` is a regime).
    """

    sweep: FinetuneSweepConfig
    blocks: tuple[int, ...] = (0, 1, 2)
    out: str = ""
    last_layer: bool = False
    head_lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)

    def __post_init__(self):
        if not isinstance(self.sweep, FinetuneSweepConfig):
            raise ValueError("sweep: must be a FinetuneSweepConfig")
        if self.sweep.train_args:
            raise ValueError("train.args: not used by partial fine-tuning (its top-k trainer "
                             "takes no TrainingArguments fields); remove the table")
        if (not self.blocks
                or any(isinstance(b, bool) or not isinstance(b, int) or b < 0 for b in self.blocks)):
            raise ValueError(f"[partial] blocks: a non-empty list of integers >= 0, got "
                             f"{list(self.blocks)!r}")
        if not isinstance(self.out, str) or not self.out:
            raise ValueError("[partial] out: the result CSV path is required")
        if not self.head_lr_grid or any(isinstance(v, bool) or not v > 0
                                        for v in self.head_lr_grid):
            raise ValueError(f"[partial] head_lr_grid: a list of learning rates > 0, got "
                             f"{list(self.head_lr_grid)!r}")
        object.__setattr__(self, "blocks", tuple(sorted(set(self.blocks))))
        object.__setattr__(self, "head_lr_grid", tuple(float(v) for v in self.head_lr_grid))

    @classmethod
    def from_dict(cls, d: dict) -> PartialConfig:
        """Build from the TOML dict: a fine-tuning sweep config plus ``[partial]`` (read by the
        fields' types, `w2s_theory.config.from_mapping`)."""
        d = dict(d)
        part = dict(d.pop("partial", None) or {})
        check_keys(part, [f.name for f in fields(cls) if f.name != "sweep"], "[partial]")
        return from_mapping(cls, {**part, "sweep": FinetuneSweepConfig.from_dict(d)},
                            where="[partial]", path="partial")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> PartialConfig:
        """Read a TOML file through the one config layer (errors name the file and key)."""
        return load_config(path, cls.from_dict)

    def out_path(self) -> Path:
        p = Path(self.out)
        return p if p.is_absolute() else project_root() / p


def plan_block(cfg, bundle_meta: dict, k: int, train_cfg: FinetuneConfig) -> list:
    """The `RunSpec`s of block count ``k`` (regime ``top{k}``): ceilings, then students, each
    with its run key (``cfg``: the `FinetuneSweepConfig`; ``bundle_meta``: the data bundle's)."""
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
    cfg = pc.sweep
    if cfg.train.precision in ("bf16", "fp16"):
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
        check_k(backbone, b)
    store = PredStore(out.with_suffix(".preds.npz"), n_test=len(bundle.test),
                      fingerprint=bundle_fingerprint(bundle))
    table = ResultTable(out)
    sel_path = out.with_suffix(".lr_select.json")
    lr_fp = lr_select_fingerprint(bundle)      # records of other data / model files: redone
    selected = load_records(sel_path, lr_fp, what="lr-selection cache")
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
                                  deadline, log, lr_fp)
    for k in pc.blocks:
        # ---- lr for this k, on held-out train_gt pairs (never test)
        lr = float(tc.lr)
        if cfg.lr_select.grid:
            lr = _top_k_lr(pc, bundle, backbone, states, k, selected, sel_path, lr_fp,
                           progress, log)
            log(f"[partial] k={k}: lr {lr:g} chosen on held-out train_gt pairs")
        # ---- runs
        for spec in plan_block(cfg, bundle.meta, k, tc.replace(lr=lr)):
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
            store.add({spec.key: (logit(p), run_record(spec, {
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


def _top_k_lr(pc: PartialConfig, bundle, backbone, states, k: int, selected: dict,
              sel_path: Path, lr_fp: dict, progress: bool, log) -> float:
    """The lr of the top-``k`` runs by the protocol's rule on held-out ``train_gt`` pairs
    (`w2s_theory.protocol.select_lr`); each candidate's record is sealed in ``sel_path``."""
    cfg = pc.sweep
    tc, ls, gt = cfg.train, cfg.lr_select, bundle.gt
    fit_idx, hold_idx = _holdout(len(gt), ls.holdout)
    fit, hold = gt.subset(fit_idx), gt.subset(hold_idx)

    def fit_and_score(cand: float) -> dict:
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
            selected[key] = {"k": k, "lr": float(cand), **holdout_scores(hold.labels, p),
                             "n_fit": len(fit), "train_wall_s": st["wall_s"],
                             "machine": machine_name(), "git_commit": git_commit()}
            save_records(sel_path, selected, lr_fp)
            log(f"[partial] k={k} lr {cand:g}: held-out train_gt acc "
                f"{selected[key]['holdout_acc']:.4f} ({st['wall_s']:.0f} s)")
        return selected[key]

    return select_lr(ls.grid, fit_and_score, metric=ls.metric)[0]


def _run_last_layer(pc: PartialConfig, bundle, states, store, write_rows, selected: dict,
                    sel_path: Path, deadline, log, lr_fp: dict) -> int:
    """The standardised last-layer baseline (regime ``lastlayer``) on the sweep's own pairs."""
    cfg = pc.sweep
    if 0 not in pc.blocks:
        raise ValueError("[partial] last_layer needs 0 in blocks (the frozen model's features)")
    ceil_split = bundle.meta.get("ceiling_split", "train_w2s")
    pooled = {"train_w2s": tuple(pooled_mean(c) for c in states("train_w2s", bundle.train, 0)),
              "test": tuple(pooled_mean(c) for c in states("test", bundle.test, 0))}
    if bundle.gt is not None:
        pooled["train_gt"] = tuple(pooled_mean(c) for c in states("train_gt", bundle.gt, 0))
    X = last_layer_features(pooled, ref="train_gt" if "train_gt" in pooled else "train_w2s")
    tc = cfg.train
    base_tc = TrainConfig(epochs=tc.epochs, batch_size=tc.batch_size, dtype="float64", eps=tc.eps)
    ls = cfg.lr_select
    lr = 1e-3
    if "train_gt" in X:
        fit, hold = _holdout(X["train_gt"].shape[0], ls.holdout)
        y = bundle.gt.labels.astype(np.float64)

        def fit_and_score(cand: float) -> dict:
            key = run_key({"role": "lr_select", "regime": "lastlayer", "strong": cfg.strong,
                           "holdout": ls.holdout, "lr": cand, "seed": ls.seed,
                           "data": {x: bundle.meta.get(x) for x in ("subset", "n_train", "slot_seeds")},
                           "train": {"epochs": tc.epochs, "batch_size": tc.batch_size}})
            if key not in selected:
                w = train_head(X["train_gt"][fit], y[fit], HeadSpec("forward_ce", seed=ls.seed),
                               replace(base_tc, lr=float(cand)))
                p = 1 / (1 + np.exp(-(X["train_gt"][hold] @ w)))
                selected[key] = {"regime": "lastlayer", "lr": float(cand),
                                 **holdout_scores(bundle.gt.labels[hold], p),
                                 "n_fit": int(fit.size), "machine": machine_name(),
                                 "git_commit": git_commit()}
                save_records(sel_path, selected, lr_fp)
            return selected[key]

        lr, _ = select_lr(pc.head_lr_grid, fit_and_score, metric=ls.metric)
        log(f"[partial] lastlayer: lr {lr:g} chosen on held-out train_gt pairs")
    head_tc = replace(base_tc, lr=lr)
    n_done = 0
    # the run keys hash the sweep's FinetuneConfig (loss, noise, seed) plus the head trainer
    for spec in plan_block(cfg, bundle.meta, 0, tc.replace(lr=lr)):
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
        store.add({key: (z, run_record(lspec, {
            "device": "cpu", "precision": "float64", "num_processes": 1, "train_wall_s": wall,
            "eval_wall_s": 0.0, "group_size": 1, "group_wall_s": wall, "train_tokens": 0,
            "train_padded_tokens": 0, "tokens_per_s": float("nan"),
            "group_tokens_per_s": float("nan"), "final_loss": None, "resumed_from": 0,
            "partial_k": "lastlayer", "trainable_params": int(w.size)}))})
        write_rows()
        n_done += 1
    log(f"[partial] lastlayer: {n_done} heads trained")
    return n_done


def _holdout(n: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """`w2s_theory.protocol.holdout_split`, its error naming ``lr_select.holdout``."""
    try:
        return holdout_split(n, holdout)
    except ValueError as exc:
        raise ValueError(f"lr_select.{exc}") from None


def _sub(c: CachedStates, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = c.offsets[idx + 1] - c.offsets[idx]
    parts = [c.states[c.offsets[i]:c.offsets[i + 1]] for i in idx]
    return np.concatenate(parts), np.concatenate([[0], np.cumsum(lens)])
