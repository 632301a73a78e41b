"""A binary one-text table (experiments/examples/reviews_binary.csv, with a split column
added here) through ``w2s-theory finetune``: full and head-only runs. A one-text task has one
logit per example, ``z = w . phi(x) + b`` (head-only runs once indexed a second text that a
one-text task does not have); every row's accuracy is recomputed from the stored logits and
the CSV's own test labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2s_theory.cli import main
from w2s_theory.pipelines.finetune import FinetuneSweepConfig, PredStore

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "experiments" / "examples" / "reviews_binary.csv"


def _config(tmp_path, model) -> Path:
    raw = pd.read_csv(CSV)
    raw["part"] = np.repeat(["train_gt", "train_w2s", "test"], len(raw) // 3)
    raw.to_csv(tmp_path / "reviews.csv", index=False)
    p = tmp_path / "b.toml"
    p.write_text(f"""name = "binary_table"
strong = "{model}"
[data.source]
kind = "table"
data = "{tmp_path / 'reviews.csv'}"
task = "binary"
split_column = "part"
[weak]
l2_grid = [0.1]
[lr_select]
grid = [1e-2]
holdout = 5
[train]
max_length = 16
precision = "fp32"
batch_size = 5
epochs = 1
lr = 1e-2
[sweep]
losses = ["reverse_kl"]
noise = [0.0]
seeds = [0]
[run]
out = "{tmp_path / 'res.csv'}"
device = "cpu"
""")
    return p


def test_binary_table_full_and_head_only(tiny_bert, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    p = _config(tmp_path, tiny_bert)
    assert FinetuneSweepConfig.from_toml(p).train.task == "binary"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["finetune", "--config", str(p), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    rows = pd.read_csv(tmp_path / "res.csv")
    store = PredStore(tmp_path / "res.preds.npz")
    assert set(rows["regime"]) == {"full", "head_only"}
    assert len(rows) == 4 and set(rows["run_key"]) == set(store.logits)
    raw = pd.read_csv(tmp_path / "reviews.csv")
    truth = raw.loc[raw["part"] == "test", "label"].to_numpy()
    assert len(truth) == 20 and set(truth.tolist()) == {0, 1}
    for _, r in rows.iterrows():
        z = store.logits[r["run_key"]].astype(np.float64)
        assert z.shape == truth.shape                     # one logit per text, not per pair
        assert r["student_acc"] == pytest.approx(float(np.mean((z > 0) == truth)), abs=1e-12)
