#!/usr/bin/env python
"""Full fine-tuning throughput as the sweep runs it: the Trainer-based pipeline beside a plain
``transformers.Trainer`` (same model, same batches, same run, interleaved).

The batches are the sweep's: all 4,000 HH-RLHF harmless ``train_w2s`` pairs (slot seed 1),
``batch_size`` 16 pairs = 32 texts, ``max_length`` 128 with left truncation, grouped by length
as ``experiments/finetune/cpu_4k_n4000.toml`` does (``group_by_length = 50``: transformers'
``get_length_grouped_indices``), each step's 32 texts padded in at most 4 length chunks
(`w2s_theory.finetune.chunk_bounds`, as `w2s_theory.finetune.train` pads them); the real-token
fraction is computed over the whole epoch of that order. The first ``steps + 1`` batches of the order are trained:

* ``pipeline``: `w2s_theory.finetune.fit`, the trainer of `w2s_theory.finetune.train`
  (`W2STrainer`: the loss registry's ``forward_ce`` through `w2s_theory.objective.Objective`);
* ``plain_trainer``: ``transformers.Trainer`` on a module returning ``{"loss": BCE(r(A) - r(B), y)}``
  (``binary_cross_entropy_with_logits``, the same forward CE), the same data set, collator
  (``DataCollatorWithPadding``) and batches (a sequential sampler over the ordered pairs).

Both start from the same weights (their first-batch losses are compared); AdamW, lr 3e-5, cosine,
``--precision`` (default fp32; ``auto`` is resolved once by `w2s_theory.precision.choose_precision`,
whose probe is recorded, and both trainers then run the chosen one). The first step of each measurement is a warm-up and is not timed; tokens per second count
the timed steps' real (attention-mask) and padded tokens, from the batches' lengths. The two are
measured in ``--rounds`` rounds, alternating which goes first; the acceptance flags need
``--steps`` >= 20 (fewer steps is a smoke run: ``accept`` says so). Also printed: the old hand loop's
figure measured on this machine before its deletion (``--old``, read, not re-measured), and the
padded-token compute as a fraction of a measured fp32 matmul peak (an estimate: 6 x non-embedding
parameters FLOPs per token).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_finetune.py --steps 20 --threads 1 \\
        --out experiments/results/finetune/bench_cpu_zen3_trainer.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

OLD = ROOT / "experiments/results/finetune/bench_cpu_zen3.json"


def sweep_task(tok, n: int):
    """The sweep's training pairs (HH-RLHF harmless train_w2s, slot seed 1), tokenised once."""
    from w2s_theory.data import load_hh_rlhf, preference_task
    from w2s_theory.finetune import TextTask, TokenizedTexts

    a, b, lab = preference_task(load_hh_rlhf("harmless", "train_w2s"), 1)
    n = len(a) if n <= 0 else n
    return TextTask((TokenizedTexts.from_texts(tok, a[:n]), TokenizedTexts.from_texts(tok, b[:n])),
                    lab[:n])


def batch_tokens(task, order: np.ndarray, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and padded tokens of each batch of ``order`` (``(steps, batch)``): a step's texts
    padded in the length chunks of `w2s_theory.finetune.chunk_bounds`, as the collator pads them."""
    from w2s_theory.finetune import padded_tokens

    lens = np.stack([t.lengths(max_length) for t in task.inputs])     # (2, n)
    real = lens[:, order].sum(axis=(0, 2))
    padded = np.array([padded_tokens(lens[:, r].ravel()) for r in order])
    return real, padded


def matmul_gflops(n: int = 1024, reps: int = 5) -> float:
    """Measured fp32 matmul throughput of this process (GFLOP/s), best of ``reps``."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def _plain_trainer(model, args, dataset, collator, marks, losses):
    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import Trainer, TrainerCallback

    class BT(nn.Module):
        """r(A) - r(B) of a reward model, under binary cross-entropy with soft labels."""

        def __init__(self, rm):
            super().__init__()
            self.rm = rm

        def forward(self, input_ids, attention_mask, labels, index=None):
            r = self.rm(input_ids, attention_mask, index)
            m = r.shape[0] // 2
            loss = F.binary_cross_entropy_with_logits(r[:m] - r[m:], labels.float())
            losses.append(float(loss.detach()))
            return {"loss": loss}

    class Marks(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    class Sequential(Trainer):
        def _get_train_sampler(self, train_dataset=None):   # the same batches, in order
            return torch.utils.data.SequentialSampler(self.train_dataset)

    return Sequential(model=BT(model), args=args, train_dataset=dataset, data_collator=collator,
                      callbacks=[Marks()])


def measure(which: str, backbone, task, cfg, steps: int, real, padded) -> dict:
    """Train ``steps + 1`` steps of ``task`` (already in batch order) with ``which``; time the last
    ``steps``."""
    import tempfile

    from w2s_theory.finetune import (
        MAX_CHUNKS,
        PadCollator,
        TokenRows,
        build_model,
        fit,
        training_arguments,
    )

    model = build_model(backbone, cfg)
    order = np.arange((steps + 1) * cfg.batch_size).reshape(steps + 1, cfg.batch_size)
    data = TokenRows.of(task, np.full(len(task), 0.7), cfg.max_length, cfg.truncation_side)
    collator = PadCollator(task.inputs[0].pad_id, max_chunks=MAX_CHUNKS)   # as train() pads
    marks, losses = [], []
    t0 = time.perf_counter()
    if which == "pipeline":
        from w2s_theory.finetune.trainer import __getattr__ as lazy

        W = lazy("W2STrainer")
        orig = W.compute_loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = orig(self, model, inputs, return_outputs, num_items_in_batch)
            losses.append(float(self.step_losses[-1][1]))
            return out

        W.compute_loss = compute_loss
        try:
            fit(model, data, collator, order, cfg, pairwise=True, progress=False,
                on_step=lambda k: marks.append(time.perf_counter()))
        finally:
            W.compute_loss = orig
    else:
        with tempfile.TemporaryDirectory() as d:
            args = training_arguments(cfg, d, total_steps=steps + 1)
            _plain_trainer(model, args, data, collator, marks, losses).train()
    wall = time.perf_counter() - t0
    if len(marks) != steps + 1:
        raise RuntimeError(f"{which}: {len(marks)} step marks for {steps + 1} steps")
    dt = marks[-1] - marks[0]
    r, p = float(real[1:steps + 1].sum()), float(padded[1:steps + 1].sum())
    return {"which": which, "timed_steps": steps, "timed_s": dt, "step_s": dt / steps,
            "wall_s_incl_setup_and_warmup": wall, "real_tokens_per_s": r / dt,
            "padded_tokens_per_s": p / dt, "first_batch_loss": losses[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--steps", type=int, default=20, help="timed steps (one more is a warm-up)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--n-pairs", type=int, default=0, help="pairs of the sweep (0 = all 4,000)")
    p.add_argument("--group", type=int, default=50, help="group_by_length of the sweep")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                   help="both trainers' precision (auto: the measured probe's choice)")
    p.add_argument("--old", default=str(OLD), help="the old hand loop's JSON (read, not re-run)")
    p.add_argument("--out", default=str(ROOT / "experiments/results/finetune/bench_cpu_zen3_trainer.json"))
    a = p.parse_args(argv)
    if a.steps < 1 or a.rounds < 1:
        p.error("--steps and --rounds must be >= 1")
    import torch
    from transformers import AutoTokenizer

    from w2s_theory.finetune import FinetuneConfig, load_backbone, real_token_fraction, train_order
    from w2s_theory.models import model_dir
    from w2s_theory.precision import choose_precision, probe
    from w2s_theory.provenance import machine_name

    torch.set_num_threads(a.threads)
    prec_probe = None
    if a.precision == "auto":
        prec_probe = probe("cpu")
        prec_probe.pop("times", None)
    precision = choose_precision(a.precision, "cpu")
    path = model_dir(a.model)
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    full = sweep_task(tok, a.n_pairs)
    cfg = FinetuneConfig(max_length=128, batch_size=16, lr=3e-5, precision=precision, group_by_length=a.group,
                         loss="forward_ce")
    epoch = train_order(full, cfg)
    frac_grouped = real_token_fraction(full, epoch, cfg.max_length, cfg.micro_batch_size)
    plain = train_order(full, cfg.replace(group_by_length=0))
    frac_plain = real_token_fraction(full, plain, cfg.max_length, cfg.micro_batch_size)
    frac_one_block = real_token_fraction(full, epoch, cfg.max_length, cfg.micro_batch_size, 1)
    rows = epoch[: a.steps + 1]
    task = full.subset(rows.ravel())
    real, padded = batch_tokens(full, rows, cfg.max_length)
    bb = load_backbone(path)
    old = json.loads(Path(a.old).read_text())
    old_fig = old["fp32"]["models"][0]["one_by_one_tokens_per_s"]
    peak = matmul_gflops()
    n_params = sum(p.numel() for n, p in bb.named_parameters() if "embeddings" not in n)
    res = {"what": __doc__.split("\n")[0], "machine": machine_name(), "cpu": platform.processor() or "",
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
           "load_avg_1min_before": os.getloadavg()[0], "model": a.model, "pairs": len(full),
           "batch_pairs": cfg.batch_size, "max_length": cfg.max_length, "group_by_length": a.group,
           "real_fraction_epoch_grouped": frac_grouped, "real_fraction_epoch_plain": frac_plain,
           "real_fraction_epoch_grouped_one_block": frac_one_block,
           "real_fraction_timed_batches": float(real[1:].sum() / padded[1:].sum()),
           "precision_requested": a.precision, "precision": precision, "precision_probe": prec_probe,
           "matmul_fp32_gflops": peak, "non_embedding_params": n_params, "rounds": []}
    for r in range(a.rounds):
        first, second = ("pipeline", "plain_trainer") if r % 2 == 0 else ("plain_trainer", "pipeline")
        rnd = {}
        for which in (first, second):
            m = measure(which, bb, task, cfg, a.steps, real, padded)
            m["peak_fraction_est"] = 6 * n_params * m["padded_tokens_per_s"] / (peak * 1e9)
            rnd[which] = m
            print(json.dumps(m), flush=True)
        rnd["ratio_pipeline_over_plain"] = (rnd["pipeline"]["real_tokens_per_s"]
                                            / rnd["plain_trainer"]["real_tokens_per_s"])
        rnd["first_batch_loss_diff"] = abs(rnd["pipeline"]["first_batch_loss"]
                                           - rnd["plain_trainer"]["first_batch_loss"])
        res["rounds"].append(rnd)
    pipe = [x["pipeline"]["real_tokens_per_s"] for x in res["rounds"]]
    plain_t = [x["plain_trainer"]["real_tokens_per_s"] for x in res["rounds"]]
    res["summary"] = {
        "pipeline_real_tokens_per_s": float(np.median(pipe)),
        "plain_trainer_real_tokens_per_s": float(np.median(plain_t)),
        "pipeline_over_plain": float(np.median(pipe) / np.median(plain_t)),
        "old_hand_loop_real_tokens_per_s": old_fig,
        "old_hand_loop_source": f"{Path(a.old).relative_to(ROOT)} (fp32, 1 thread, 3 ungrouped "
                                f"steps, real fraction {old['fp32']['models'][0]['real_fraction_one_by_one']:.2f};"
                                f" measured before the loop's deletion, not re-run)",
        "pipeline_over_old": float(np.median(pipe) / old_fig),
        "real_fraction": frac_grouped,
        "ratio_per_round": [x["ratio_pipeline_over_plain"] for x in res["rounds"]],
        "timed_steps": a.steps,
        "accept": {"timed_steps>=20": a.steps >= 20,
                   "pipeline_over_plain>=0.95": bool(np.median(pipe) / np.median(plain_t) >= 0.95),
                   "pipeline_over_old>=1.0": bool(np.median(pipe) / old_fig >= 1.0),
                   "real_fraction>=0.85": bool(frac_grouped >= 0.85)},
    }
    res["load_avg_1min_after"] = os.getloadavg()[0]
    s = res["summary"]
    print(f"\nper-round pipeline/plain: {', '.join(f'{r:.3f}' for r in s['ratio_per_round'])}"
          + ("" if a.steps >= 20 else f"  (smoke run: {a.steps} timed steps < 20, not a measurement)"))
    print(f"real tokens/s ({res['machine']}, {res['threads']} thread, {precision}): pipeline "
          f"{s['pipeline_real_tokens_per_s']:.0f} | plain Trainer {s['plain_trainer_real_tokens_per_s']:.0f}"
          f" ({s['pipeline_over_plain']:.3f}x) | old hand loop {old_fig:.0f} ({s['pipeline_over_old']:.2f}x)"
          f" | real-token fraction {frac_grouped:.3f} (ungrouped {frac_plain:.3f})")
    from w2s_theory.atomic_io import atomic_write_text

    atomic_write_text(a.out, json.dumps(res, indent=1))
    print(f"-> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
