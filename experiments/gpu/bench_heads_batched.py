#!/usr/bin/env python
"""Head-training speed: all heads of a sweep in one batched computation vs one by one.

Self-contained: needs only torch and numpy (plus this repository's ``w2s_theory.training``,
found from the script's location), no network, no data files. The heads are those of a
noise x confidence sweep of the real-model pipeline: ``groups`` feature groups (one per
seed) x 4 losses x {plain, +confidence} x ``noise`` levels, each head a linear score on
``(n, d)`` features trained one epoch at batch 16 by Adam (``TrainConfig`` defaults).

* batched: :func:`w2s_theory.training.train_heads` on all ``B`` heads at once;
* one by one: :func:`w2s_theory.training.train_heads_loop` (= ``B`` calls of
  ``train_head``) on the first ``--loop-heads`` heads (covering every loss and
  confidence setting), timed and scaled linearly to ``B`` (each head does identical work);
  ``--loop-heads 0`` runs all ``B``.

Both paths are warmed up first (CUDA context, kernels, lazy imports) and the batched run is
repeated ``--repeat`` times (the minimum is reported). The batched weights of the timed
heads are compared with the one-by-one weights (max abs difference).

Usage (GPU machine, from the repository root; writes a JSON with timings and the device):

    python experiments/gpu/bench_heads_batched.py --device cuda --out $OUT/bench_heads_gpu.json

Optional ``--features FILE.npz`` (array ``x`` of shape (n, d), or ``chosen``/``rejected``
whose difference is used) replaces the random same-shape features.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from w2s_theory.losses import PAPER_LOSSES as LOSSES  # noqa: E402
from w2s_theory.training import HeadSpec, TrainConfig, train_heads, train_heads_loop  # noqa: E402


def build_problem(n: int, d: int, groups: int, noise_levels: int, seed: int = 0,
                  features: str | None = None):
    """Feature groups, targets and head specs of a (seeds x losses x conf x noise) sweep."""
    rng = np.random.default_rng(seed)
    if features:
        with np.load(features) as z:
            base = z["x"] if "x" in z else z["chosen"].astype(np.float64) - z["rejected"]
        base = np.asarray(base, dtype=np.float64)[:n]
        base = (base - base.mean(0)) / np.where(base.std(0) > 0, base.std(0), 1.0)
        n, d = base.shape
        xs = [base * rng.choice([-1.0, 1.0], size=(n, 1)) for _ in range(groups)]
    else:
        xs = [rng.normal(size=(n, d)) for _ in range(groups)]
    specs, targets = [], []
    for g in range(groups):
        w_true = rng.normal(size=d) / np.sqrt(d)
        p = 1.0 / (1.0 + np.exp(-2.0 * xs[g] @ w_true))
        for k in range(noise_levels):
            frac = 0.5 * k / max(noise_levels - 1, 1)
            y = p.copy()
            flip = rng.choice(n, size=int(round(frac * n)), replace=False)
            y[flip] = 1.0 - y[flip]
            for loss in LOSSES:
                for conf in (False, True):
                    specs.append(HeadSpec(loss, conf, seed=1000 + g, group=g))
                    targets.append(y)
    # head order: group, noise level, loss, confidence -- so any 8 consecutive heads from
    # the start cover every loss x confidence setting
    return xs, np.stack(targets), specs


def _sync(dev: torch.device):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run(args) -> dict:
    dev = torch.device(args.device if args.device != "auto" else
                       ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, dtype=args.dtype)
    xs, targets, specs = build_problem(args.n, args.d, args.groups, args.noise,
                                       features=args.features)
    B = len(specs)
    k = B if args.loop_heads <= 0 else min(args.loop_heads, B)
    threads = args.threads if args.threads > 0 else None
    # warm-up: imports, CUDA context, kernels, allocator
    small = TrainConfig(epochs=1, batch_size=args.batch_size, dtype=args.dtype)
    sl = slice(0, min(8, B))
    train_heads([x[:64] for x in xs], targets[sl, :64], specs[sl], small, device=dev,
                num_threads=threads)
    train_heads_loop([x[:64] for x in xs], targets[sl, :64], specs[sl], small, device=dev,
                     num_threads=threads)
    _sync(dev)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = train_heads(xs, targets, specs, cfg, device=dev, num_threads=threads)
        _sync(dev)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    loop = train_heads_loop(xs, targets[:k], specs[:k], cfg, device=dev, num_threads=threads)
    _sync(dev)
    loop_s = time.perf_counter() - t0
    per_head = loop_s / k
    loop_all = per_head * B
    batched = min(times)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(res.weights[:k], loop.weights))
    scale = max(float(np.abs(w).max()) for w in loop.weights)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    return {
        "device": str(dev), "device_name": name, "torch": torch.__version__,
        "python": platform.python_version(), "host": platform.node(),
        "load_average_1min": _load(),
        "torch_threads": torch.get_num_threads() if threads is None else threads,
        "n": int(xs[0].shape[0]), "d": int(xs[0].shape[1]), "groups": args.groups,
        "noise_levels": args.noise, "heads": B, "steps_per_head": res.n_steps,
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "dtype": cfg.dtype,
        "features": args.features or "random normal",
        "batched_s": batched, "batched_runs_s": times,
        "loop_heads_timed": k, "loop_s_timed": loop_s, "loop_s_per_head": per_head,
        "loop_s_all_heads": loop_all, "loop_extrapolated": k < B,
        "speedup": loop_all / batched,
        "max_abs_diff_weights": diff, "max_abs_weight": scale,
    }


def _load():
    try:
        return __import__("os").getloadavg()[0]
    except OSError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({__import__('os').cpu_count()} cpu)"
    except OSError:
        pass
    return platform.processor() or "cpu"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--device", default="auto", help="cuda | cpu | auto")
    p.add_argument("--n", type=int, default=4000, help="examples per head (default 4000)")
    p.add_argument("--d", type=int, default=576, help="feature width (default 576, SmolLM2)")
    p.add_argument("--groups", type=int, default=5, help="feature groups = seeds (default 5)")
    p.add_argument("--noise", type=int, default=6, help="noise levels 0..50%% (default 6)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--loop-heads", type=int, default=24,
                   help="heads timed one by one, scaled to all (0 = run all)")
    p.add_argument("--repeat", type=int, default=3, help="batched repetitions (min reported)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--features", help="optional .npz with 'x' or 'chosen'/'rejected'")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    out = run(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"{out['device_name']}: {out['heads']} heads x {out['steps_per_head']} steps, "
          f"n={out['n']}, d={out['d']}: batched {out['batched_s']:.3f} s, one by one "
          f"{out['loop_s_all_heads']:.2f} s"
          f"{' (scaled from ' + str(out['loop_heads_timed']) + ' heads)' if out['loop_extrapolated'] else ''}"
          f" -> {out['speedup']:.1f}x; max |w_batched - w_loop| = {out['max_abs_diff_weights']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
