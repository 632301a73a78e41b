"""One trainer for full, partial (top-k blocks) and head-only fine-tuning: `W2STrainer`, a
`w2s_theory.trainers.SoftLabelTrainer` whose loss is the run's `w2s_theory.objective.Objective`.

The three regimes differ only in the module ``Trainer`` trains (its trainable parameters) and
in what a batch holds: token ids (`RewardModel`), cached pooled features (the head alone) or
cached hidden states (the top ``k`` blocks, `w2s_theory.partial.TopModel`). Everything else is
transformers': the AdamW optimiser, ``get_scheduler`` (cosine / constant with linear warm-up),
``DataCollatorWithPadding``, ``resume_from_checkpoint``, accelerate's device placement, mixed
precision and ``gather_for_metrics``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic_io import atomic_write_bytes, atomic_write_text
from ..precision import choose_precision
from .config import FinetuneConfig
from .order import OrderSampler

# W2STrainer is built on first access (module __getattr__)
__all__ = ["TrainStats", "W2STrainer", "training_arguments", "fit", "make_engine",  # noqa: F822
           "end_processes", "mixed_precision_for", "device_name", "last_checkpoint", "args_precision"]

#: written last into a Trainer checkpoint folder: the confidence buffer (a folder without it is
#: a checkpoint cut short by a kill, and is not resumed from)
STATE_FILE = "w2s_state.pt"
#: written into the run's checkpoint folder: the config that trains there
RUN_FILE = "w2s_run.json"


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
        device: e.g. ``cpu`` or the CUDA device name.
        precision: what the run trained in (``"auto"`` resolved, `mixed_precision_for`):
            ``bf16``, ``fp16`` or ``no`` (fp32).
        num_processes: data-parallel processes.
        trainable_params: parameters the optimiser updated.
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
    trainable_params: int = 0


def device_name(device: torch.device | str) -> str:
    """Human-readable device name (the CUDA product name, or ``cpu``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def mixed_precision_for(cfg: FinetuneConfig, device_type: str) -> str:
    """The trainer's precision (accelerate's spelling): ``"bf16"``, ``"fp16"`` or ``"no"`` (fp32).

    ``cfg.precision`` as given, except ``"auto"``: bf16 on a CUDA device that supports it, and
    elsewhere bf16 only where `w2s_theory.precision.probe` measured bf16 autocast faster than fp32
    on this machine (by 10 %; probed once per process and machine,
    `w2s_theory.precision.choose_precision`).

    Examples:
        >>> mixed_precision_for(FinetuneConfig(precision="fp32"), "cpu")
        'no'
    """
    p = choose_precision(cfg.precision, device_type)
    return "no" if p == "fp32" else p


def make_engine(cfg: FinetuneConfig | None = None, *, cpu: bool = False):
    """The process state runs share: an ``accelerate.PartialState`` (``device``,
    ``num_processes``, ``process_index``, ``is_main_process``, ``wait_for_everyone()``).

    ``cpu=True`` keeps training on the CPU when a GPU is present. ``cfg`` is accepted for
    callers that pass the run's config and not read (``Trainer`` always runs through accelerate).
    """
    from accelerate import PartialState

    return PartialState(cpu=bool(cpu) or not torch.cuda.is_available())


def end_processes(engine) -> None:
    """Destroy the process group of a multi-process engine (from `make_engine`) before exit.

    A gloo/NCCL group left alive when the interpreter exits can abort the process
    ("terminate called without an active exception", SIGABRT) after its work is done,
    failing a run that had finished. One-process engines (and ``None``) are left alone.

    Examples:
        >>> end_processes(None)   # nothing to do
    """
    if int(getattr(engine, "num_processes", 1)) > 1:
        if hasattr(engine, "end_training"):
            engine.end_training()
        elif hasattr(engine, "destroy_process_group"):
            engine.destroy_process_group()


def _device_type(engine) -> str:
    if engine is not None and hasattr(engine, "device"):
        return torch.device(engine.device).type
    return "cuda" if torch.cuda.is_available() else "cpu"


def training_arguments(cfg: FinetuneConfig, output_dir, *, total_steps: int | None = None,
                       engine=None, progress: bool = False, save: bool = False, extra: dict | None = None):
    """``transformers.TrainingArguments`` of a run: ``cfg``'s optimiser, schedule and batches
    (``per_device_train_batch_size = micro_batch_size / processes``), no logging or reporting,
    checkpoints every ``cfg.checkpoint_every`` steps when ``save``; ``extra`` fields override
    (validated by ``TrainingArguments`` itself: an unknown field is a ``TypeError``)."""
    from transformers import TrainingArguments

    nproc = int(getattr(engine, "num_processes", 1) or 1)
    dev = "cpu" if (extra or {}).get("use_cpu") else _device_type(engine)
    mixed = mixed_precision_for(cfg, dev)
    warm = int(round(cfg.warmup_frac * total_steps)) if total_steps else 0
    kw = dict(
        output_dir=str(output_dir), per_device_train_batch_size=max(1, cfg.micro_batch_size // nproc),
        per_device_eval_batch_size=cfg.eval_batch_size, gradient_accumulation_steps=cfg.grad_accum,
        max_steps=total_steps or -1, num_train_epochs=cfg.epochs, learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay, adam_beta1=cfg.betas[0], adam_beta2=cfg.betas[1],
        adam_epsilon=cfg.adam_eps, optim="adamw_torch_fused" if dev == "cuda" else "adamw_torch",
        lr_scheduler_type="cosine" if cfg.schedule == "cosine" else "constant_with_warmup",
        warmup_steps=warm, max_grad_norm=cfg.max_grad_norm or 0.0,
        bf16=mixed == "bf16", fp16=mixed == "fp16", use_cpu=dev == "cpu", seed=cfg.seed,
        dataloader_drop_last=False, dataloader_num_workers=0, dataloader_pin_memory=dev == "cuda",
        remove_unused_columns=False, report_to="none", logging_strategy="no",
        disable_tqdm=not progress, save_strategy="steps" if save and cfg.checkpoint_every else "no",
        save_steps=cfg.checkpoint_every or 500, save_total_limit=2,
    )
    kw.update(extra or {})
    return TrainingArguments(**kw)


def args_precision(args) -> str:
    """The precision a ``TrainingArguments`` trains in: ``"bf16"``, ``"fp16"`` or ``"no"`` (fp32)."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "no"


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder of ``folder`` (one holding `STATE_FILE`)."""
    best, step = None, -1
    for p in Path(folder).glob("checkpoint-*"):
        tail = p.name.rsplit("-", 1)[-1]
        if tail.isdigit() and (p / STATE_FILE).exists() and int(tail) > step:
            best, step = p, int(tail)
    return best


def _make_w2s_trainer():
    from ..trainers import SoftLabelTrainer

    class W2STrainer(SoftLabelTrainer):
        """``SoftLabelTrainer`` whose ``compute_loss`` is the run's `w2s_theory.objective.Objective`
        (the confidence loss and its class-balance buffer included) on ``r(A) - r(B)`` (pairs) or
        the model's logits, with the batch order of `w2s_theory.finetune.train_order`.

        The model maps a batch (``labels`` removed) to rewards ``(2m,)`` (pairs: slot ``a``
        rows first), logits ``(m,)`` or class logits ``(m, k)``.
        """

        def __init__(self, *args, w2s_cfg: FinetuneConfig, pairwise: bool, order=None,
                     on_step: Callable[[int], None] | None = None, **kwargs):
            super().__init__(*args, w2s_loss=w2s_cfg.loss, w2s_eps=w2s_cfg.eps, **kwargs)
            from transformers.trainer_callback import PrinterCallback

            self.remove_callback(PrinterCallback)   # no metrics dict printed at the end
            self.w2s_cfg, self.pairwise, self.order = w2s_cfg, pairwise, order
            self.objective = w2s_cfg.objective
            self.buffer = self.objective.new_buffer()
            self.on_step, self._last_step = on_step, -1
            self.step_losses: list[tuple[int, torch.Tensor]] = []
            self.loss_is_scaled_for_ga = False    # the objective is a micro-batch mean: Trainer divides

        def _get_train_sampler(self, train_dataset=None):
            if self.order is None:
                return super()._get_train_sampler(train_dataset)
            return OrderSampler(self.order, self.w2s_cfg.epochs)

        def logits(self, model, inputs) -> torch.Tensor:
            r = model(**inputs)
            if self.pairwise:
                m = r.shape[0] // 2
                return r[:m] - r[m:]
            return r

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            y = inputs.pop("labels")
            z = self.logits(model, inputs)
            loss = self.objective(z.float(), y.to(z.device, torch.float32), step=self.state.global_step,
                                  total_steps=self.state.max_steps, buffer=self.buffer)
            if model.training:
                self.step_losses.append((self.state.global_step, loss.detach()))
            return (loss, {"logits": z}) if return_outputs else loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            inputs = self._prepare_inputs(inputs)
            labels = inputs.pop("labels", None)
            with torch.no_grad(), self.compute_loss_context_manager():
                out = model(**inputs)
            return None, out.float().detach(), labels

        def _save_checkpoint(self, model, trial):
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
                b = self.buffer
                bio = io.BytesIO()
                torch.save({"buffer": None if b is None else (list(b._p), list(b._y)),
                            "step": self.state.global_step}, bio)
                atomic_write_bytes(folder / STATE_FILE, bio.getvalue())

        def load_w2s_state(self, folder: Path) -> int:
            state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=False)
            if self.buffer is not None and state["buffer"] is not None:
                self.buffer._p.extend(state["buffer"][0])
                self.buffer._y.extend(state["buffer"][1])
            return int(state["step"])

        def _maybe_log_save_evaluate(self, *args, **kwargs):
            out = super()._maybe_log_save_evaluate(*args, **kwargs)
            step = self.state.global_step
            if self.on_step is not None and self.model.training and step != self._last_step:
                self._last_step = step
                self.on_step(step)
            return out

    return W2STrainer


_BUILT: dict = {}


def __getattr__(name: str):
    # the Trainer subclass is built on first use (importing this module imports no Trainer)
    if name == "W2STrainer":
        if name not in _BUILT:
            _BUILT[name] = _make_w2s_trainer()
        return _BUILT[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_run_folder(folder: Path, cfg: FinetuneConfig, regime: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"checkpoint: {folder} is a file (a checkpoint of the old format?); a "
                         f"checkpoint is a folder now: delete it or use another path")
    folder.mkdir(parents=True, exist_ok=True)
    want = {"regime": regime, "config": cfg.same_trajectory()}
    f = folder / RUN_FILE
    if f.exists():
        if json.loads(f.read_text()) != json.loads(json.dumps(want)):
            raise ValueError(f"checkpoint: {folder} was written by a different config; "
                             f"delete it or use another checkpoint path")
    else:
        atomic_write_text(f, json.dumps(want, sort_keys=True))


def fit(module: nn.Module, dataset, collator, order: np.ndarray, cfg: FinetuneConfig, *, pairwise: bool,
        engine=None, checkpoint=None, regime: str = "full", on_step=None, progress: bool = False,
        count=None, training_args: dict | None = None, t0: float | None = None) -> TrainStats:
    """Train ``module``'s trainable parameters in place with `W2STrainer` over ``dataset`` in the
    batch ``order`` (``(steps, batch_size)``, `train_order`); resume from the newest complete
    checkpoint of the folder ``checkpoint`` when there is one."""
    t0 = time.perf_counter() if t0 is None else t0
    total = int(order.shape[0])
    tmp = None
    if checkpoint is not None:
        out_dir = Path(checkpoint)
        _check_run_folder(out_dir, cfg, regime)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="w2s_ft_")
        out_dir = Path(tmp.name)
    try:
        args = training_arguments(cfg, out_dir, total_steps=total, engine=engine, progress=progress,
                                  save=checkpoint is not None, extra=training_args)
        trainer = __getattr__("W2STrainer")(model=module, args=args, train_dataset=dataset,
                                            data_collator=collator, w2s_cfg=cfg, pairwise=pairwise,
                                            order=order, on_step=on_step)
        resume = last_checkpoint(out_dir) if checkpoint is not None else None
        start = trainer.load_w2s_state(resume) if resume is not None else 0
        trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    finally:
        if tmp is not None:
            tmp.cleanup()
    per: dict[int, torch.Tensor] = {}
    for step, v in trainer.step_losses:
        per[step] = per.get(step, 0.0) + v / cfg.grad_accum
    losses = [float(per[s]) for s in sorted(per)]
    wall = time.perf_counter() - t0
    real, padded = (count.real, count.padded) if count is not None else (0, 0)
    acc = trainer.accelerator
    nproc = int(acc.num_processes)
    if nproc > 1:
        t = acc.gather(torch.tensor([[real, padded]], dtype=torch.float64, device=acc.device)).sum(0)
        real, padded = int(t[0]), int(t[1])
    return TrainStats(steps=total, resumed_from=start, wall_s=wall, real_tokens=int(real),
                      padded_tokens=int(padded), tokens_per_s=real / wall, losses=losses,
                      device=device_name(acc.device), precision=args_precision(args),
                      num_processes=nproc,
                      trainable_params=int(sum(p.numel() for p in module.parameters() if p.requires_grad)))


def run_dir(checkpoint) -> Path | None:
    """``checkpoint`` as a folder path (``None`` stays ``None``)."""
    return None if checkpoint is None else Path(os.fspath(checkpoint))
