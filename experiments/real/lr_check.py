"""Choose the Adam learning rate of the practical regime on held-out ground truth (not on test).

For each feature set of the ladder and each HH-RLHF subset, train the ground-truth head
(forward CE, one epoch, batch 16, Adam, from zero) on the first 3000 rows of ``train_gt``
and score it on the last 1000 rows of ``train_gt`` (the test split is never touched),
for several learning rates and three seeds, all heads in one batched computation.
Writes ``experiments/results/real/lr_check.csv`` and prints the mean validation
accuracy per learning rate.

    .venv/bin/python experiments/real/lr_check.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from w2s_theory.metrics import accuracy  # noqa: E402
from w2s_theory.pipelines.real import FeatureBank, RealConfig, derive_seed  # noqa: E402
from w2s_theory.provenance import machine_name  # noqa: E402
from w2s_theory.training import HeadSpec, TrainConfig, predict_proba, train_heads  # noqa: E402

MODELS = ("wordllama", "all-MiniLM-L6-v2", "all-mpnet-base-v2", "SmolLM2-135M-layer15")
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SEEDS = (0, 1, 2)
N_TRAIN = 3000


def main() -> int:
    import pandas as pd

    cfg = RealConfig(name="lr_check", datasets=("harmless", "helpful"),
                     pairs=((MODELS[0], MODELS[1]),))
    bank = FeatureBank(cfg, progress=False)
    rows = []
    t0 = time.perf_counter()
    for lr in LRS:
        groups, specs, targets, meta = [], [], [], []
        for ds in cfg.datasets:
            for model in MODELS:
                for seed in SEEDS:
                    x = bank.rows(ds, model, "train_gt", seed)
                    y = bank.labels(ds, "train_gt", seed)
                    groups.append(x[:N_TRAIN])
                    specs.append(HeadSpec("forward_ce", False, derive_seed(seed, "lr"), len(groups) - 1))
                    targets.append(y[:N_TRAIN].astype(np.float64))
                    meta.append((ds, model, seed, x[N_TRAIN:], y[N_TRAIN:]))
        res = train_heads(groups, np.stack(targets), specs, TrainConfig(lr=lr), device="cpu",
                          num_threads=1)
        for (ds, model, seed, xv, yv), w in zip(meta, res.weights):
            rows.append({"lr": lr, "dataset": ds, "model": model, "seed": seed,
                         "val_acc": accuracy(yv, predict_proba(xv, w))})
    df = pd.DataFrame(rows)
    df["machine"] = machine_name()
    out = ROOT / "experiments" / "results" / "real" / "lr_check.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False, float_format="%.6g")
    summary = df.groupby(["model", "lr"])["val_acc"].mean().unstack("lr").round(4)
    print(summary.to_string())
    print("mean over models and data sets:")
    print(df.groupby("lr")["val_acc"].mean().round(4).to_string())
    print(f"({time.perf_counter() - t0:.1f} s) -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
