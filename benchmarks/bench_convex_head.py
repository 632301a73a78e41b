"""Benchmark: the exact convex projection (Theorem 2's head) at N = 4000, d = 64.

Goal (issue 3): <= 10 s on 2 cores at a duality gap <= 1e-7 (per sample).
Fits the reverse-KL (I-) and forward-KL (M-) projections of a synthetic instance's weak
labels onto the affine-probability class with :func:`w2s_theory.heads.fit_convex_head`
and prints wall time, Clarabel's duality gap, the KKT certificate and the machine.

    .venv/bin/python benchmarks/bench_convex_head.py [--n 4000] [--d 64] [--k 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return (f"{cpu}; {os.cpu_count()} logical CPUs; load average {load:.2f}; "
            f"Python {platform.python_version()}; {platform.system()} {platform.release()}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--goal-s", type=float, default=10.0)
    p.add_argument("--goal-gap", type=float, default=1e-7)
    a = p.parse_args(argv)

    import clarabel
    import cvxpy

    from w2s_theory.heads import fit_convex_head
    from w2s_theory.synthetic import SyntheticConfig, make_instance

    cfg = SyntheticConfig(k=a.k, d_strong=a.d, d_weak=max(1, a.d // 4), weak_noise=1.0,
                          truth="affine", truth_scale=0.9, n_gt=a.n, n_w2s=a.n, n_test=1)
    inst = make_instance(cfg, seed=0)
    x, y = inst.w2s.h_strong, inst.weak_probs
    fit_convex_head(x[:50], y[:50])                     # warm up imports / cvxpy caches
    print(f"machine: {machine()}")
    print(f"cvxpy {cvxpy.__version__}, clarabel {clarabel.__version__}; "
          f"N={a.n}, d={a.d}, k={a.k}, repeats={a.repeats}")
    ok = True
    for div in ("reverse_kl", "forward_kl"):
        times, gaps = [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            h = fit_convex_head(x, y, divergence=div)
            times.append(time.perf_counter() - t0)
            gaps.append(h.report.duality_gap)
        r = h.report
        med = statistics.median(times)
        good = med <= a.goal_s and max(gaps) <= a.goal_gap and r.status == "Solved"
        ok &= good
        print(f"{div:>10}: median {med:.2f} s (min {min(times):.2f}, max {max(times):.2f}); "
              f"status {r.status}; iterations {r.iterations}; duality gap {max(gaps):.2e} per "
              f"sample; KKT stationarity {r.grad_norm:.1e}, complementarity "
              f"{r.complementarity:.1e}; {'meets' if good else 'MISSES'} goal "
              f"(<= {a.goal_s:g} s, gap <= {a.goal_gap:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
