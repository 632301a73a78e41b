#!/usr/bin/env python
"""CPU benchmark: a sweep's heads trained in one batched computation vs one by one.

Runs ``experiments/gpu/bench_heads_batched.py`` (the same code the GPU check uses) on this
machine's CPU with one torch thread for both paths (faster for these small kernels on a
shared machine), and writes ``experiments/results/real/bench_heads_cpu.json``.

Default size: the students of a noise x confidence sweep on SmolLM2-width features --
5 seeds x 4 losses x {plain, +confidence} x 6 noise levels = 240 heads, n = 4000, d = 576,
one epoch at batch 16 (250 steps); the one-by-one time is measured on 24 heads (every
loss and confidence setting) and scaled to 240 (``--loop-heads 0`` runs them all).

    .venv/bin/python benchmarks/bench_heads_batched.py [--loop-heads 0] [--out FILE]

The JSON records the machine, its 1-minute load average (other processes share the CPU
here) and both timings.
"""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    mod = runpy.run_path(str(ROOT / "experiments" / "gpu" / "bench_heads_batched.py"),
                         run_name="bench_heads")
    argv = sys.argv[1:]
    if "--out" not in argv:
        argv += ["--out", str(ROOT / "experiments" / "results" / "real" / "bench_heads_cpu.json")]
    if "--device" not in argv:
        argv += ["--device", "cpu"]
    if "--threads" not in argv:
        argv += ["--threads", "1"]
    sys.exit(mod["main"](argv))
