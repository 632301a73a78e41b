#!/usr/bin/env python
"""Full fine-tuning throughput on this machine: one run at a time vs many runs at once.

For each model it trains a few optimiser steps of the paper's protocol (batch 16 pairs =
32 texts per step, max length 128, left truncation, AdamW, fp32 on CPU / bf16 autocast on
CUDA) on HH-RLHF harmless ``train_w2s`` pairs and reports *real* (non-padding) training
tokens per second:

* ``one_by_one``: :func:`w2s_theory.finetune.train` (transformers model, one run);
* ``ensemble_R``: :func:`w2s_theory.ensemble.train_ensemble` with ``R`` runs at once
  (each on its own 16 pairs), tokens of all runs together.

The first step of each measurement is a warm-up and is not timed. wordllama is a static
embedding table (no transformer to fine-tune): N/A. Writes JSON (machine, load average,
numbers) to ``--out`` (default ``experiments/results/finetune/bench_cpu.json``).

    .venv/bin/python benchmarks/bench_finetune.py [--models all-MiniLM-L6-v2 tiny] [--runs 4] [--precision bf16]
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


def _task(tok, n: int):
    from w2s_theory.data import load_hh_rlhf, preference_task
    from w2s_theory.finetune import TextTask, TokenizedTexts

    a, b, lab = preference_task(load_hh_rlhf("harmless", "train_w2s"), 1)
    return TextTask((TokenizedTexts.from_texts(tok, a[:n]), TokenizedTexts.from_texts(tok, b[:n])),
                    lab[:n])


def _backbone(name: str, vocab: int):
    import torch
    from transformers import BertConfig, BertModel

    from w2s_theory.finetune import load_backbone
    from w2s_theory.models import model_dir

    if name == "tiny":
        torch.manual_seed(0)
        return BertModel(BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=128),
                         add_pooling_layer=False)
    return load_backbone(model_dir(name))


def bench(name: str, steps: int, runs: int, device: str, precision: str = "auto") -> dict:
    import torch
    from transformers import AutoTokenizer

    from w2s_theory.ensemble import train_ensemble
    from w2s_theory.finetune import (
        FinetuneConfig,
        PlainEngine,
        build_model,
        mixed_precision_for,
        train,
    )
    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    n = 16 * (steps + 1)
    task = _task(tok, n)
    weak = np.full(n, 0.7)
    bb = _backbone(name, len(tok))
    cfg = FinetuneConfig(max_length=128, precision=precision)
    mp = mixed_precision_for(cfg, torch.device(device).type)      # "bf16" or "no", as the trainer decides
    out = {"model": name, "steps_timed": steps, "batch_pairs": 16, "max_length": 128,
           "precision": "bf16" if mp == "bf16" else "fp32"}
    # one by one: time steps 2..steps+1 (the first is a warm-up)
    marks = []
    m = build_model(bb, cfg)
    eng = PlainEngine(device, mp)
    st = train(m, task, weak, cfg, engine=eng, progress=False,
               on_step=lambda k: marks.append(time.perf_counter()))
    per_step = st.real_tokens / (steps + 1)
    out["one_by_one_tokens_per_s"] = per_step * steps / (marks[-1] - marks[0])
    out["one_by_one_step_s"] = (marks[-1] - marks[0]) / steps
    del m
    # many at once: the same steps, R runs (seeds 0..R-1); warm-up = a 1-step call
    cfgs = [cfg.replace(seed=s) for s in range(runs)]
    small = task.subset(np.arange(16))
    train_ensemble(bb, small, [weak[:16]] * runs, cfgs, device=device, progress=False)
    _, est = train_ensemble(bb, task, [weak] * runs, cfgs, device=device, progress=False)
    out[f"ensemble_{runs}_tokens_per_s"] = est.tokens_per_s
    out[f"ensemble_{runs}_step_s"] = est.wall_s / est.steps
    out[f"ensemble_{runs}_speedup"] = est.tokens_per_s / out["one_by_one_tokens_per_s"]
    out["real_fraction_one_by_one"] = st.real_tokens / max(st.padded_tokens, 1)
    out["real_fraction_ensemble"] = est.real_tokens / max(est.padded_tokens, 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2", "tiny"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on CPU; bf16 on a CPU with native bf16 is faster")
    p.add_argument("--out", default=str(ROOT / "experiments/results/finetune/bench_cpu.json"))
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from w2s_theory.provenance import machine_name

    res = {"machine": machine_name() if a.device == "cpu" else torch.cuda.get_device_name(),
           "torch": torch.__version__, "threads": a.threads,
           "load_avg_1min_before": os.getloadavg()[0], "models": [],
           "wordllama": "N/A: static embeddings, nothing to fine-tune"}
    for name in a.models:
        r = bench(name, a.steps, a.runs, a.device, a.precision)
        res["models"].append(r)
        print(json.dumps(r, indent=1), flush=True)
    res["load_avg_1min_after"] = os.getloadavg()[0]
    from w2s_theory.atomic_io import atomic_write_text

    atomic_write_text(a.out, json.dumps(res, indent=1))
    print(f"-> {a.out} ({res['machine']}, load {res['load_avg_1min_before']:.1f} -> "
          f"{res['load_avg_1min_after']:.1f}, platform {platform.platform()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
