#!/usr/bin/env python3
"""Time the whole 48,000-text HH-RLHF feature extraction on one GPU (or CPU), check it, save it.

Runs where only python3 + torch + transformers (+ numpy, tqdm) exist and nothing is
installed: the repository tree is put on ``sys.path``. Input is a folder written by
``w2s-theory features prepare-gpu --out DIR`` (plain transformers folder with fp16
weights + ``w2s_tokens.npz`` + ``w2s_reference.npz`` + ``w2s_prepared.json``); no data
set, tokenizer run or network is needed here.

Per model folder it measures (bf16 by default on CUDA, fp32 on CPU):

* ``load_ids_s``: reading the token ids from disk;
* ``model_load_s``: transformers load + move to the device;
* ``first_pass_s``: the first full extraction (kernel warm-up included);
* ``e2e_s`` (best of ``--repeats``) : ids in host memory -> features in host memory,
  i.e. upload ids, length-bucketed batches gathered on the device, model, pooling,
  download; ``texts_per_s`` and ``tokens_per_s`` (real tokens) from it;
* optional ``--sweep-max-tokens``: the warm time per bucket size.

It compares the reference rows (cosine, max |diff|), writes ``timings.json`` and
``timings.csv`` (with the device name) to ``--out`` and, with ``--save-features``,
the features as float16 ``hh_rlhf/<set>/<subset>/<split>.npz`` + ``manifest.json``
(the layout of ``../shared/features``, so the folder can be used as a prebuilt
features folder, e.g. copied to ``~/.cache/w2s_theory/prebuilt``).

GPU run (the lead's command; see README)::

    python3 experiments/gpu/extract_features.py --model-dir .device/minilm --out $OUT \\
        --save-features --repeats 3 --sweep-max-tokens 32768,65536,131072,262144
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from w2s_theory.features import TokenIds, embed_token_ids  # noqa: E402


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _limit(tokens: TokenIds, parts: list[dict], limit: int | None) -> tuple[TokenIds, list[dict]]:
    """Keep the first ``limit`` rows of every part (for quick checks)."""
    if not limit:
        return tokens, parts
    rows, new_parts = [], []
    for p in parts:
        k = min(limit, p["n"])
        new_parts.append({**p, "start": len(rows), "n": k, "orig_start": p["start"]})
        rows.extend(tokens.row(p["start"] + i).tolist() for i in range(k))
    return TokenIds.from_lists(rows), new_parts


def _map_ref(ref_idx: np.ndarray, parts: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Reference rows still present after ``--limit``: (positions in ref, new indices)."""
    keep, new = [], []
    for j, i in enumerate(ref_idx):
        for p in parts:
            s = p.get("orig_start", p["start"])
            if s <= i < s + p["n"]:
                keep.append(j)
                new.append(p["start"] + (i - s))
    return np.array(keep, dtype=np.int64), np.array(new, dtype=np.int64)


def run_model(model_dir: Path, out: Path, args, dev, dtype) -> dict:
    import torch
    import transformers
    from transformers import AutoModel

    prep = json.loads((model_dir / "w2s_prepared.json").read_text())
    spec = prep["spec"]
    if prep.get("chunks"):       # weights staged in parts (carry limits): join + verify once
        from w2s_theory.pipelines.features import join_chunks

        t = time.perf_counter()
        join_chunks(model_dir, prep["chunks"])
        print(f"joined {list(prep['chunks'])} in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    tokens = TokenIds.load(model_dir / "w2s_tokens.npz")
    load_ids_s = time.perf_counter() - t
    tokens, parts = _limit(tokens, prep["parts"], args.limit)

    t = time.perf_counter()
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kw = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, **kw).to(dev).eval()
    _sync(dev)
    model_load_s = time.perf_counter() - t

    def once(max_tokens: int) -> tuple[np.ndarray, float]:
        _sync(dev)
        t0 = time.perf_counter()
        x = embed_token_ids(model, tokens, layer=spec["layer"], pooling=spec["pooling"], device=dev,
                            max_tokens=max_tokens, max_batch=args.max_batch, pad_id=prep["pad_id"],
                            progress=False)
        _sync(dev)
        return x, time.perf_counter() - t0

    max_tokens = args.max_tokens or (65536 if dev.type == "cuda" else 8192)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    feats, first_pass_s = once(max_tokens)
    reps = [once(max_tokens)[1] for _ in range(max(args.repeats - 1, 0))]
    e2e_s = min(reps) if reps else first_pass_s
    sweep = {}
    for mt in args.sweep_max_tokens:
        sweep[str(mt)] = round(min(once(mt)[1] for _ in range(2)), 4)

    lengths = tokens.lengths
    from w2s_theory.features import length_buckets

    batches = length_buckets(lengths, max_tokens=max_tokens, max_batch=args.max_batch)
    padded = sum(int(lengths[b].max()) * b.size for b in batches)
    real = int(lengths.sum())

    # reference check
    with np.load(model_dir / prep["reference"]["file"]) as z:
        ref_idx, ref = z["idx"], z["features"].astype(np.float32)
    keep, new = _map_ref(ref_idx, parts)
    x, r = feats[new], ref[keep]
    cos = (x * r).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1))
    check = {"rows": int(keep.size), "cosine_min": float(cos.min()) if keep.size else None,
             "max_abs_diff": float(np.abs(x - r).max()) if keep.size else None,
             "reference_source": prep["reference"]["source"]}
    check["ok"] = bool(keep.size) and check["cosine_min"] > 0.999

    res = {
        "feature_set": prep["feature_set"], "model_dir": str(model_dir), "device": _device_name(dev),
        "dtype": str(dtype).replace("torch.", ""), "n_texts": len(tokens), "real_tokens": real,
        "padded_tokens": padded, "padding_frac": round(1 - real / padded, 4), "batches": len(batches),
        "max_tokens": max_tokens, "max_batch": args.max_batch, "load_ids_s": round(load_ids_s, 4),
        "model_load_s": round(model_load_s, 3), "first_pass_s": round(first_pass_s, 4),
        "e2e_s": round(e2e_s, 4), "e2e_with_ids_load_s": round(e2e_s + load_ids_s, 4),
        "texts_per_s": round(len(tokens) / e2e_s, 1), "tokens_per_s": round(real / e2e_s, 1),
        "repeats": args.repeats, "sweep_max_tokens_s": sweep, "check": check,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated(dev) / 2**30, 3) if dev.type == "cuda" else None,
        "torch": torch.__version__, "transformers": transformers.__version__,
    }
    if args.save_features:
        _save(out, prep, parts, feats, res)
    return res                 # the model is freed with this frame; main() empties the CUDA cache


def _save(out: Path, prep: dict, parts: list[dict], feats: np.ndarray, res: dict) -> None:
    folder = out / "hh_rlhf" / prep["feature_set"]
    groups: dict[tuple[str, str], dict] = {}
    for p in parts:
        groups.setdefault((p["subset"], p["split"]), {})[p["side"]] = \
            feats[p["start"]:p["start"] + p["n"]].astype(np.float16)
    for (subset, split), arrs in groups.items():
        (folder / subset).mkdir(parents=True, exist_ok=True)
        np.savez(folder / subset / f"{split}.npz", chosen=arrs["chosen"], rejected=arrs["rejected"])
    spec = prep["spec"]
    manifest = {
        "model": prep["model"], "package_weights_sha256": prep["source_weights_sha256"],
        "weights": f"{prep['weights_dtype']} copy (w2s-theory features prepare-gpu)",
        "layer": "last" if spec["layer"] is None else f"hidden_states[{spec['layer']}]",
        "pooling": "mean over attention-mask tokens" if spec["pooling"] == "mean" else "last real token",
        "max_length": spec["max_length"], "truncation_side": spec["truncation_side"],
        "dtype_compute": res["dtype"], "dtype_stored": "float16", "device": res["device"],
        "torch": res["torch"], "transformers": res["transformers"], "n_texts": res["n_texts"],
        "real_tokens": res["real_tokens"], "embed_s": res["e2e_s"],
        "rows_per_file": parts[0]["n"], "finite": bool(np.isfinite(feats).all()),
        "sources": {f"{p['subset']}/{p['split']}.jsonl": p["source_sha256"] for p in parts},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _device_name(dev) -> str:
    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores, {platform.node()})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", required=True, type=Path, help="folder from `features prepare-gpu`")
    p.add_argument("--model-dir2", type=Path, default=None, help="optional second prepared folder (e.g. mpnet)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", help="bfloat16 | float16 | float32 | auto (bf16 on CUDA)")
    p.add_argument("--limit", type=int, default=None, help="rows per part (quick check)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=None, help="padded tokens per batch (65536 on CUDA)")
    p.add_argument("--max-batch", type=int, default=1024, help="texts per batch at most")
    p.add_argument("--sweep-max-tokens", default="", help="comma-separated bucket sizes to time")
    p.add_argument("--save-features", action="store_true")
    args = p.parse_args(argv)
    args.sweep_max_tokens = [int(v) for v in args.sweep_max_tokens.split(",") if v]

    import torch

    from w2s_theory.models import resolve_device, resolve_dtype

    dev = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, dev)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for d in [args.model_dir] + ([args.model_dir2] if args.model_dir2 else []):
        t = time.perf_counter()
        r = run_model(d, args.out, args, dev, dtype)
        r["total_s"] = round(time.perf_counter() - t, 3)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        results.append(r)
        print(json.dumps(r, indent=1), flush=True)
    (args.out / "timings.json").write_text(json.dumps(results, indent=1))
    flat = [{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()} for r in results]
    with open(args.out / "timings.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    for r in results:
        print(f"{r['feature_set']}: {r['n_texts']} texts, {r['real_tokens']} tokens on {r['device']} "
              f"({r['dtype']}): e2e {r['e2e_s']:.3f} s = {r['texts_per_s']:.0f} texts/s, "
              f"{r['tokens_per_s'] / 1e6:.2f}M tokens/s; first pass {r['first_pass_s']:.3f} s; "
              f"padding {r['padding_frac']:.1%}; check cos_min {r['check']['cosine_min']}, "
              f"max|diff| {r['check']['max_abs_diff']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
