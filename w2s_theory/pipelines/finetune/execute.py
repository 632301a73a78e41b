"""Training every unfinished run of a fine-tuning sweep, one after the other (`execute`).

Full fine-tuning runs train one by one by `w2s_theory.finetune.train` (through the engine: an
accelerate ``Accelerator`` when installed, so one config runs on one or many devices);
head-only runs share one feature pass of the frozen pretrained backbone and then train their
heads one by one on the CPU. Each finished run's test logits and record go into the prediction
store (`w2s_theory.pipelines.finetune.store`).

(The stacked many-runs-at-once trainer that used to sit beside this loop was removed in
issue 19: on a 2-core AMD EPYC Zen 3 it ran at 0.78x (fp32) / 0.83x (bf16) the speed of
training its members one by one.)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...provenance import git_commit, machine_name
from ...runtime import resolve_device
from .bundle import Bundle
from .config import FinetuneSweepConfig
from .runs import RunSpec, plan_runs
from .store import PredStore

#: Seconds past the sweep's deadline within which the cheap head-only runs still start, so
#: that both regimes of a sweep stopped by its time limit share their seeds.
HEAD_ONLY_GRACE_S = 90.0


def logit(p: np.ndarray) -> np.ndarray:
    """``log p - log(1 - p)``, float64, finite for ``p`` in ``[0, 1]`` (clipped at 1e-300 and
    ``1 - 1e-16``): the stored form of a run's test probabilities.

    Examples:
        >>> float(logit(np.array([0.5]))[0])
        0.0
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, None)
    return np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16))


def stored_form(p: np.ndarray) -> np.ndarray:
    """The stored form of a run's test predictions: `logit` of ``P(label 1)`` ``(n,)``, or the
    log class probabilities ``log p`` ``(n, k)`` (clipped at 1e-300) of a k-class head, whose
    softmax gives ``p`` back.

    Examples:
        >>> np.exp(stored_form(np.array([[0.2, 0.8]]))).round(3).tolist()
        [[0.2, 0.8]]
    """
    p = np.asarray(p, dtype=np.float64)
    return logit(p) if p.ndim == 1 else np.log(np.clip(p, 1e-300, None))


def run_record(spec: RunSpec, extra: dict, train_args: dict | None = None) -> dict:
    """The stored record of a finished run: its coordinates, config and provenance + ``extra``
    (+ ``train_args``, the ``[train.args]`` table as JSON, when there is one)."""
    import torch

    args = {"train_args": json.dumps(train_args, sort_keys=True)} if train_args else {}
    return {**spec.coords(), "config": spec.cfg.to_dict(), **args, "torch_version": torch.__version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_name(), "git_commit": git_commit(), **extra}


class _Reporting:
    """A store that calls ``on_done`` after every update."""

    def __init__(self, inner, on_done: Callable[[], Any]):
        self._inner = inner
        self._on_done = on_done

    def has(self, key: str) -> bool:
        return self._inner.has(key)

    def add(self, items: dict) -> None:
        self._inner.add(items)
        self._on_done()


def execute(cfg: FinetuneSweepConfig, bundle: Bundle, store: PredStore, *,
            deadline: float | None = None, progress: bool = True,
            log: Callable[[str], None] = print, engine=None,
            on_done: Callable[[], Any] | None = None) -> dict:
    """Train and evaluate every unfinished run of the sweep, one by one; logits go into ``store``.

    Args:
        cfg: the sweep.
        bundle: its data (`w2s_theory.pipelines.finetune.build_bundle` / ``load_bundle``).
        store: the prediction store; runs it already holds are skipped.
        deadline: ``time.monotonic()`` after which no full run starts (head-only runs: up to
            `HEAD_ONLY_GRACE_S` later).
        progress: progress bars.
        log: progress lines.
        engine: the engine of full runs (`w2s_theory.finetune.make_engine`); ``None``: one per
            run for ``[run] device``.
        on_done: called after every run stored (e.g. to write the result rows).

    Returns:
        timing summary ``{"full_s", "head_only_s", "n_done", "n_todo", "stopped"}``.
    """
    if on_done is not None:
        store = _Reporting(store, on_done)
    import torch

    from ...finetune import (
        RewardModel,
        build_model,
        embed_texts,
        load_backbone,
        make_engine,
        make_targets,
        predict,
        train,
    )

    runs = [r for r in plan_runs(cfg, bundle.meta) if not store.has(r.key)]
    summary = {"full_s": 0.0, "head_only_s": 0.0, "n_done": 0, "n_todo": len(runs), "stopped": False}
    if not runs:
        return summary
    dev = resolve_device(cfg.run.device)
    ceil_task = bundle.ceiling_task()

    k_out = bundle.n_outputs()      # 1, or k classes of a multiclass table

    def targets(spec):
        return bundle.truth_targets(ceil_task.labels) if spec.role == "ceiling" else bundle.weak_train

    def task_of(spec):
        return ceil_task if spec.role == "ceiling" else bundle.train

    backbone = load_backbone(bundle.model_dir, dropout=cfg.train.dropout)
    n_test = len(bundle.test)

    def past(grace: float = 0.0) -> bool:
        return deadline is not None and time.monotonic() > deadline + grace

    # ---------------------------------------------------------------- full fine-tuning
    full = [r for r in runs if r.regime == "full"]
    t_full = time.perf_counter()
    for spec in full:
        if past():
            summary["stopped"] = True
            log("deadline: stop before a full run")
            break
        eng = engine or make_engine(spec.cfg, cpu=dev.type == "cpu")
        model = build_model(backbone, spec.cfg, n_outputs=k_out)
        ck = Path(cfg.run.checkpoint_dir) / spec.key if cfg.run.checkpoint_dir else None
        t0 = time.perf_counter()
        st = train(model, task_of(spec), make_targets(targets(spec), spec.cfg), spec.cfg,
                   engine=eng, checkpoint=ck, progress=progress,
                   training_args=cfg.train_args or None)
        t1 = time.perf_counter()
        p = predict(model, bundle.test, spec.cfg, engine=eng)
        t2 = time.perf_counter()
        if getattr(eng, "is_main_process", True):
            store.add({spec.key: (stored_form(p), run_record(spec, {
                "device": st.device, "precision": st.precision, "num_processes": st.num_processes,
                "train_wall_s": st.wall_s, "eval_wall_s": t2 - t1, "group_size": 1,
                "group_wall_s": t2 - t0, "train_tokens": st.real_tokens,
                "train_padded_tokens": st.padded_tokens, "tokens_per_s": st.tokens_per_s,
                "group_tokens_per_s": st.tokens_per_s,
                "final_loss": st.losses[-1] if st.losses else None,
                "resumed_from": st.resumed_from}, cfg.train_args))})
        if ck is not None and ck.exists() and getattr(eng, "is_main_process", True):
            shutil.rmtree(ck)     # the run is stored: its checkpoints are no longer needed
        summary["n_done"] += 1
        log(f"full {spec.role} {spec.cfg.loss} noise={spec.cfg.noise} seed={spec.cfg.seed}: "
            f"{st.wall_s:.1f} s, {st.tokens_per_s:.0f} tok/s")
    summary["full_s"] = time.perf_counter() - t_full

    # ---------------------------------------------------------------- head only
    heads = [r for r in runs if r.regime == "head_only"]
    # head-only runs are cheap (one feature pass, then a 1 x H head each): they still run when
    # the deadline stopped the full runs, within the grace period, so both regimes share seeds
    if not heads or past(HEAD_ONLY_GRACE_S):
        return summary
    t_h = time.perf_counter()
    hc = heads[0].cfg
    # one feature pass of the frozen pretrained backbone on the device ...
    feng = make_engine(hc, cpu=dev.type == "cpu")
    base = RewardModel(backbone, seed=0, head_init_std=hc.head_init_std, pooling=hc.pooling)
    t0 = time.perf_counter()
    ftr = tuple(embed_texts(base, t, hc, engine=feng) for t in bundle.train.inputs)
    fte = tuple(embed_texts(base, t, hc, engine=feng) for t in bundle.test.inputs)
    fgt = ftr
    if ceil_task is not bundle.train and any(r.role == "ceiling" for r in heads):
        fgt = tuple(embed_texts(base, t, hc, engine=feng) for t in ceil_task.inputs)
    feat_s = time.perf_counter() - t0
    log(f"head-only: features of {len(bundle.train)} + {n_test} pairs in {feat_s:.1f} s")
    # ... then the heads one by one on the CPU (a 1 x H head per step is launch-bound on a
    # GPU); the runs share the frozen backbone object (no copies)
    backbone.to("cpu")
    for spec in heads:
        if past(HEAD_ONLY_GRACE_S):
            summary["stopped"] = True
            break
        heng = make_engine(spec.cfg, cpu=True)
        m = RewardModel(backbone, seed=spec.cfg.seed, head_init_std=spec.cfg.head_init_std,
                        pooling=spec.cfg.pooling, n_outputs=k_out)
        st = train(m, task_of(spec), make_targets(targets(spec), spec.cfg), spec.cfg,
                   engine=heng, progress=False, features=fgt if spec.role == "ceiling" else ftr,
                   training_args=cfg.train_args or None)
        with torch.no_grad():
            w = m.head.weight.detach().double().cpu().numpy()
            b = m.head.bias.detach().double().cpu().numpy()
        if k_out > 1:      # k classes: log softmax(W phi + b), (n, k)
            a = fte[0].astype(np.float64) @ w.T + b
            z = a - a.max(axis=1, keepdims=True)
            z = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        elif len(fte) == 2:  # pairs: z = r(A) - r(B), the bias cancels
            z = (fte[0].astype(np.float64) - fte[1].astype(np.float64)) @ w[0]
        else:                # one text (binary): z = r(x) = w . phi(x) + b
            z = fte[0].astype(np.float64) @ w[0] + b[0]
        store.add({spec.key: (z, run_record(spec, {
            "device": st.device, "precision": st.precision, "num_processes": 1,
            "train_wall_s": st.wall_s, "eval_wall_s": 0.0, "group_size": 1,
            "group_wall_s": st.wall_s, "feature_s": feat_s, "train_tokens": 0,
            "train_padded_tokens": 0, "tokens_per_s": float("nan"),
            "group_tokens_per_s": float("nan"),
            "final_loss": st.losses[-1] if st.losses else None, "resumed_from": 0},
            cfg.train_args))})
        summary["n_done"] += 1
    summary["head_only_s"] = time.perf_counter() - t_h
    return summary
