"""`train` and `predict`: a `RewardModel` fine-tuned (in full, or its head alone) and scored
through `w2s_theory.finetune.trainer.W2STrainer`."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .config import FinetuneConfig
from .data import MAX_CHUNKS, FeatureRows, PadCollator, StackCollator, TokenCount, TokenRows
from .model import RewardModel, fp32_head
from .order import train_order
from .tokens import TextTask, TokenizedTexts
from .trainer import TrainStats, fit, training_arguments

__all__ = ["train", "predict", "embed_texts", "check_targets", "HeadOnFeatures"]


class HeadOnFeatures(nn.Module):
    """A reward head on cached pooled features: ``forward(features) = head(features)`` in fp32
    (the head-only regime: the backbone is frozen, so its features are computed once)."""

    def __init__(self, head: nn.Linear):
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return fp32_head(self.head, features)


class _Embedder(nn.Module):
    def __init__(self, model: RewardModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.embed(input_ids, attention_mask)


def check_targets(task: TextTask, targets, cfg: FinetuneConfig) -> np.ndarray:
    """``targets`` as float64 checked against the task: ``(n,)`` in ``[0, 1]`` (pairwise, binary)
    or ``(n, k)`` rows of probabilities (``classification``, ``k >= 2``)."""
    if cfg.task == "pairwise" and task.task != "pairwise" or \
            cfg.task != "pairwise" and task.task == "pairwise":
        raise ValueError(f"task: config says {cfg.task!r} but the data are {task.task!r}")
    y = np.asarray(targets, dtype=np.float64)
    if cfg.task == "classification":
        if y.ndim != 2 or y.shape[0] != len(task) or y.shape[1] < 2:
            raise ValueError(f"targets: shape {y.shape}, expected ({len(task)}, k) class "
                             f"probabilities with k >= 2 (task 'classification')")
        if cfg.confidence:
            raise ValueError("confidence: the confidence loss is binary; task 'classification' "
                             "takes the plain losses")
    elif y.shape != (len(task),):
        raise ValueError(f"targets: shape {y.shape}, expected ({len(task)},)")
    if not np.all((y >= 0) & (y <= 1)):
        raise ValueError("targets: entries must lie in [0, 1]")
    return y


def train(model: RewardModel, task: TextTask, targets, cfg: FinetuneConfig, *,
          engine=None, checkpoint: str | os.PathLike | None = None,
          on_step: Callable[[int], None] | None = None, progress: bool = True,
          features: tuple[np.ndarray, ...] | None = None,
          training_args: dict | None = None) -> TrainStats:
    """Train ``model`` in place on ``task`` towards ``targets`` under ``cfg`` (`W2STrainer`).

    Args:
        model: a `RewardModel` (its head already initialised from ``cfg.seed``; ``k`` outputs for
            ``task = "classification"``).
        task: the training split (its ``labels`` are not used; ``targets`` are).
        targets: ``(n,)`` soft targets in ``[0, 1]`` (weak labels after `make_targets`, or the
            ground truth for a ceiling), or ``(n, k)`` class probabilities.
        cfg: the run's `FinetuneConfig`.
        engine: `make_engine`'s process state (``cpu=True`` keeps the run on the CPU).
        checkpoint: a folder for ``Trainer`` checkpoints (every ``cfg.checkpoint_every`` steps);
            when it holds one the run resumes from the newest complete one (a config other than
            the one that wrote it is a ``ValueError``).
        on_step: called with the number of finished optimiser steps after each step (and after
            its checkpoint); an exception there stops training (used to test resuming).
        progress: show ``Trainer``'s progress bar.
        features: head-only runs: the pooled backbone features of ``task``'s texts (one ``(n, H)``
            array per text slot, from `embed_texts`); computed here when ``None``.
        training_args: more ``TrainingArguments`` fields (e.g. ``gradient_checkpointing``),
            overriding the ones built from ``cfg``.

    Returns:
        `TrainStats`.
    """
    t0 = time.perf_counter()
    y = check_targets(task, targets, cfg)
    k = 1 if y.ndim == 1 else y.shape[1]
    if model.head.out_features != k:
        raise ValueError(f"model: a head of {model.head.out_features} outputs for targets of "
                         f"{k} column(s); build_model(..., n_outputs={k})")
    order = train_order(task, cfg)
    pairwise = cfg.task == "pairwise"
    if cfg.head_only:
        model.backbone.requires_grad_(False)
        if features is None:
            features = tuple(embed_texts(model, t, cfg, engine=engine) for t in task.inputs)
        if len(features) != len(task.inputs) or any(np.shape(f)[0] != len(task) for f in features):
            raise ValueError(f"features: need {len(task.inputs)} arrays of {len(task)} rows")
        return fit(HeadOnFeatures(model.head), FeatureRows(features, y), StackCollator(), order, cfg,
                   pairwise=pairwise, engine=engine, checkpoint=checkpoint, regime="head_only",
                   on_step=on_step, progress=progress, training_args=training_args, t0=t0)
    count = TokenCount()
    pad_id = task.inputs[0].pad_id
    return fit(model, TokenRows.of(task, y, cfg.max_length, cfg.truncation_side),
               PadCollator(pad_id, count, max_chunks=MAX_CHUNKS), order, cfg, pairwise=pairwise, engine=engine,
               checkpoint=checkpoint, regime="full", on_step=on_step, progress=progress, count=count,
               training_args=training_args, t0=t0)


def score(module: nn.Module, dataset, collator, cfg: FinetuneConfig, *, engine=None,
          progress: bool = False) -> np.ndarray:
    """``module``'s outputs on every row of ``dataset`` in order, ``(n, ...)`` float32, through
    ``Trainer.predict`` (accelerate's ``gather_for_metrics`` across processes)."""
    from .trainer import __getattr__ as _lazy

    was = module.training
    with tempfile.TemporaryDirectory(prefix="w2s_pred_") as d:
        args = training_arguments(cfg, d, engine=engine, progress=progress)
        trainer = _lazy("W2STrainer")(model=module, args=args, data_collator=collator, w2s_cfg=cfg,
                                      pairwise=False)
        out = trainer.predict(dataset).predictions
    module.train(was)
    return np.asarray(out, dtype=np.float32)


def _sorted_texts(texts: TokenizedTexts, cfg: FinetuneConfig) -> tuple[TokenRows, np.ndarray]:
    order = np.argsort(texts.lengths(cfg.max_length), kind="stable")
    return TokenRows([texts.subset(order)], None, cfg.max_length, cfg.truncation_side), order


def _run_texts(module, texts: TokenizedTexts, cfg, engine, progress) -> np.ndarray:
    rows, order = _sorted_texts(texts, cfg)      # length-sorted batches: little padding
    val = score(module, rows, PadCollator(texts.pad_id), cfg, engine=engine, progress=progress)
    out = np.empty_like(val)
    out[order] = val
    return out


def embed_texts(model: RewardModel, texts: TokenizedTexts, cfg: FinetuneConfig, *,
                engine=None, progress: bool = False) -> np.ndarray:
    """Pooled backbone features of every text, ``(n, H)`` float32, length-sorted batches."""
    return _run_texts(_Embedder(model), texts, cfg, engine, progress)


def predict(model: RewardModel, task: TextTask, cfg: FinetuneConfig, *, engine=None,
            progress: bool = False) -> np.ndarray:
    """Student probabilities on ``task``, float64: ``sigmoid(r(A) - r(B))`` (pairs) or
    ``sigmoid(r(x))``, ``(n,)``; ``softmax`` of the class logits, ``(n, k)``, for a ``k``-output head.

    Each text is scored once (length-sorted batches, ``Trainer.predict``); every process returns
    the full array.
    """
    r = [_run_texts(model, t, cfg, engine, progress).astype(np.float64) for t in task.inputs]
    z = r[0] - r[1] if len(r) == 2 else r[0]
    if z.ndim == 2:
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))
