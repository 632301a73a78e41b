#!/usr/bin/env python3
"""Feature-extraction speed per model on this machine: texts/s and tokens/s.

A seeded sample of HH-RLHF texts (default 500, both subsets, chosen and rejected, all
splits) is tokenized once (timed) and embedded (timed, model already loaded) with the
project's extractor: length-sorted buckets (``--max-tokens`` padded tokens each). For
reference, ``--file-order`` also times naive batches of 32 in file order (the padding
the buckets avoid). Models: wordllama and all-MiniLM-L6-v2 always; all-mpnet-base-v2,
SmolLM2-135M (layer 15), Gemma-3-270M (layer 9) when installed (``--models`` to choose).

    .venv/bin/python benchmarks/bench_features.py [--n 500] [--models wordllama,all-MiniLM-L6-v2]

Prints a table naming the machine; ``--csv FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from w2s_theory import data as D  # noqa: E402
from w2s_theory import features as F  # noqa: E402
from w2s_theory import models as M  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {load:.1f} at start")


def sample_texts(n: int, seed: int = 0) -> list[str]:
    texts = []
    for subset in D.SUBSETS:
        for split in D.SPLITS:
            p = D.load_hh_rlhf(subset, split)
            texts += p.chosen + p.rejected
    idx = np.random.default_rng(seed).choice(len(texts), n, replace=False)
    return [texts[i] for i in idx]


def bench(name: str, texts: list[str], max_tokens: int, file_order: bool, dtype: str = "spec") -> dict:
    spec = F.FEATURE_SETS[name]
    row = {"model": name, "params_M": M.REGISTRY[spec.model].params / 1e6, "texts": len(texts),
           "dtype": "float32"}
    if spec.model == "wordllama":
        wl = M.load_wordllama()
        t = time.perf_counter()
        tokens = F.tokenize(wl.tokenizer, texts, max_length=spec.max_length,
                            truncation_side=spec.truncation_side, add_special_tokens=False)
        row["tokenize_s"] = time.perf_counter() - t
        t = time.perf_counter()
        F.static_embed(wl.embedding, tokens, spec.pooling)
        row["embed_s"] = time.perf_counter() - t
    else:
        import torch

        tok = M.load_tokenizer(spec.model)
        t = time.perf_counter()
        tokens = F.tokenize(tok, texts, max_length=spec.max_length, truncation_side=spec.truncation_side)
        row["tokenize_s"] = time.perf_counter() - t
        dt = M.resolve_dtype(spec.dtype if dtype == "spec" else dtype, "cpu")
        row["dtype"] = str(dt).replace("torch.", "")
        model = M.load_model(spec.model, device="cpu", dtype=dt)
        F.embed_token_ids(model, F.TokenIds.from_lists([tokens.row(0).tolist()]), progress=False)  # warm-up
        t = time.perf_counter()
        F.embed_token_ids(model, tokens, layer=spec.layer, pooling=spec.pooling,
                          max_tokens=max_tokens, progress=False)
        row["embed_s"] = time.perf_counter() - t
        if file_order:  # naive: batches of 32 in file order, padded to the batch's longest text
            t = time.perf_counter()
            with torch.inference_mode():
                for s in range(0, len(texts), 32):
                    b = tok(texts[s:s + 32], truncation=True, max_length=spec.max_length,
                            padding=True, return_tensors="pt")
                    model(**b, output_hidden_states=spec.layer is not None)
            row["file_order_s"] = time.perf_counter() - t
        del model
    real = int(tokens.ids.size)
    row["real_tokens"] = real
    row["texts_per_s"] = len(texts) / row["embed_s"]
    row["tokens_per_s"] = real / row["embed_s"]
    row["tokenize_tokens_per_s"] = real / row["tokenize_s"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--models", default=None, help="comma-separated feature sets")
    p.add_argument("--max-tokens", type=int, default=8192)
    p.add_argument("--file-order", action="store_true", help="also time naive file-order batches of 32")
    p.add_argument("--dtype", choices=("spec", "float32", "bfloat16"), default="spec",
                   help="compute dtype: the feature set's own (spec; 'auto' = fp32 on CPU) or forced")
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)
    if args.models:
        names = args.models.split(",")
    else:
        names = [n for n in ("wordllama", "all-MiniLM-L6-v2", "all-mpnet-base-v2",
                             "SmolLM2-135M-layer15", "Gemma-3-270M-layer9")
                 if M.is_installed(F.FEATURE_SETS[n].model)]
    print(f"machine: {machine()}")
    texts = sample_texts(args.n)
    rows = []
    for name in names:
        r = bench(name, texts, args.max_tokens, args.file_order, args.dtype)
        rows.append(r)
        print(f"  {name}: {r['embed_s']:.2f} s", flush=True)
    hdr = f"{'model':<22}{'dtype':>10}{'params':>8}{'texts':>7}{'tokens':>9}{'tok/s (tokenize)':>18}" \
          f"{'embed s':>9}{'texts/s':>10}{'tokens/s':>11}{'file-order s':>14}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        fo = f"{r['file_order_s']:.2f}" if "file_order_s" in r else "-"
        print(f"{r['model']:<22}{r['dtype']:>10}{r['params_M']:>7.1f}M{r['texts']:>7}{r['real_tokens']:>9}"
              f"{r['tokenize_tokens_per_s']:>18,.0f}{r['embed_s']:>9.2f}{r['texts_per_s']:>10,.1f}"
              f"{r['tokens_per_s']:>11,.0f}{fo:>14}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}) + ["machine"])
            w.writeheader()
            m = machine()
            for r in rows:
                w.writerow({**r, "machine": m})
    return 0


if __name__ == "__main__":
    sys.exit(main())
