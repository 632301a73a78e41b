#!/usr/bin/env python
"""Last-layer heads: w2s_theory's batched heads vs scikit-learn, one run at a time (issue 11).

The objective is the one both can fit: forward cross-entropy to the weak model's soft labels,
``-(1/n) sum_i [p_i log s(x_i w) + (1 - p_i) log(1 - s(x_i w))]``, no bias, no penalty.
scikit-learn's ``LogisticRegression`` takes soft labels as duplicated rows (every row once with
label 1 and weight ``p_i``, once with label 0 and weight ``1 - p_i``); it is fitted to
convergence (L-BFGS) for each of ``--runs`` label sets in turn. w2s_theory trains the same
``--runs`` heads in one batched computation (``w2s_theory.training.train_heads``: the paper's
regime, one epoch of Adam at batch 16). Same data for both: standardised Gaussian features
``(n, d)`` and ``--runs`` noisy soft-label vectors of one linear teacher. The objective each
reaches is reported next to the times (sklearn's optimum is the floor), and the ratio of times.
Prints one JSON line: wall and process-CPU seconds (on a shared machine only the
CPU seconds are meaningful) and their ratios.

    .venv/bin/python benchmarks/bench_vs_sklearn.py --n 4000 --d 384 --runs 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def forward_ce(x, w, p):
    import numpy as np

    z = x @ w
    return float(np.mean(p * np.logaddexp(0.0, -z) + (1.0 - p) * np.logaddexp(0.0, z)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="rows (default 4000)")
    ap.add_argument("--d", type=int, default=384, help="feature width (default 384, MiniLM's)")
    ap.add_argument("--runs", type=int, default=40, help="label sets = heads (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from w2s_theory.training import HeadSpec, TrainConfig, train_heads

    torch.set_num_threads(1)
    rng = np.random.default_rng(a.seed)
    x = rng.normal(size=(a.n, a.d))
    x = (x - x.mean(0)) / x.std(0)
    teacher = rng.normal(size=a.d) / np.sqrt(a.d)
    logits = x @ teacher + rng.normal(scale=0.5, size=(a.runs, a.n))      # one label set per run
    p = 1.0 / (1.0 + np.exp(-2.0 * logits))

    t0, c0 = time.perf_counter(), time.process_time()
    ours = train_heads(x, p, [HeadSpec("forward_ce", seed=r) for r in range(a.runs)],
                       TrainConfig(), device="cpu")
    t_ours = time.perf_counter() - t0
    cpu_ours = time.process_time() - c0

    xx = np.vstack([x, x])
    yy = np.r_[np.ones(a.n), np.zeros(a.n)]
    t0, c0 = time.perf_counter(), time.process_time()
    sk = []
    for r in range(a.runs):
        m = LogisticRegression(C=np.inf, fit_intercept=False, solver="lbfgs", max_iter=1000)  # no penalty
        m.fit(xx, yy, sample_weight=np.r_[p[r], 1.0 - p[r]])
        sk.append(m.coef_.ravel())
    t_sk = time.perf_counter() - t0
    cpu_sk = time.process_time() - c0

    obj_ours = [forward_ce(x, w, p[r]) for r, w in enumerate(ours.weights)]
    obj_sk = [forward_ce(x, w, p[r]) for r, w in enumerate(sk)]
    print(json.dumps({
        "bench": "heads_vs_sklearn", "n": a.n, "d": a.d, "runs": a.runs,
        "w2s_theory_s": round(t_ours, 3), "sklearn_s": round(t_sk, 3),
        "speedup": round(t_sk / t_ours, 3), "w2s_theory_cpu_s": round(cpu_ours, 3),
        "sklearn_cpu_s": round(cpu_sk, 3), "cpu_speedup": round(cpu_sk / cpu_ours, 3),
        "objective_w2s_theory_mean": round(float(np.mean(obj_ours)), 6),
        "objective_sklearn_mean": round(float(np.mean(obj_sk)), 6),
        "w2s_theory_regime": "1 epoch Adam, batch 16, lr 1e-3 (the paper's)",
        "sklearn_regime": "L-BFGS to convergence, one run at a time",
        "machine": platform.processor() or platform.machine(), "load_1min": os.getloadavg()[0],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
