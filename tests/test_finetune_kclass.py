"""Tables through ``w2s-theory finetune`` end to end, with a tiny local BERT as the strong model.

* 3 classes: the multiclass example's CSV (experiments/examples/tickets_3class.csv, its column
  mapping and its own split column). Every loss gets rows with ``n_classes = 3`` whose
  accuracies are the argmax accuracies of the ``(n, 3)`` predictions in the prediction store,
  recomputed here with plain numpy from the CSV's own test labels.
* A binary one-text table (experiments/examples/reviews_binary.csv, with a split column added
  here), full and head-only runs: one logit per example, ``z = w . phi(x) + b`` (head-only runs
  once indexed a second text that a one-text task does not have); every row's accuracy is
  recomputed from the stored logits and the CSV's own test labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2s_theory.cli import main
from w2s_theory.pipelines.finetune import FinetuneSweepConfig, PredStore

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "experiments" / "examples" / "tickets_3class.csv"
BINARY_CSV = ROOT / "experiments" / "examples" / "reviews_binary.csv"
LOSSES = ("forward_kl", "reverse_kl")


def _table_config(tmp_path, model, source: str, *, grid, epochs, lr, losses, noise,
                  extra: str = "") -> Path:
    """A finetune config over a table (``source``: the ``[data.source]`` lines), one seed."""
    p = tmp_path / "k.toml"
    p.write_text(f"""name = "table"
strong = "{model}"
[data.source]
kind = "table"
{source}
split_column = "part"
[weak]
l2_grid = [0.1]
[lr_select]
grid = {list(grid)!r}
holdout = 5
[train]
max_length = 16
precision = "fp32"
batch_size = 5
epochs = {epochs}
lr = {lr!r}
[sweep]
losses = {list(losses)!r}
noise = {list(noise)!r}
seeds = [0]
{extra}
[run]
out = "{tmp_path / 'res.csv'}"
device = "cpu"
""".replace("'", '"'))
    return p


def _config(tmp_path, model, extra: str = "") -> Path:
    """The 3-class example table: both losses, 0 and 20 % flips."""
    source = (f'data = "{CSV}"\ntask = "multiclass"\n'
              'columns = { text = "message", label = "topic_id" }')
    return _table_config(tmp_path, model, source, grid=(1e-3, 1e-2), epochs=2, lr=1e-3,
                         losses=LOSSES, noise=(0.0, 0.2), extra=extra)


def _finetune_one_thread(p: Path) -> int:
    """``w2s-theory finetune --config p --quiet`` with torch on one thread (restored after)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(["finetune", "--config", str(p), "--quiet"])
    finally:
        torch.set_num_threads(n)


def test_three_class_table_through_the_finetune_cli(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    p = _config(tmp_path, tiny_bert)
    cfg = FinetuneSweepConfig.from_toml(p)
    assert cfg.train.task == "classification"          # a multiclass table: a k-output head
    assert _finetune_one_thread(p) == 0
    rows = pd.read_csv(tmp_path / "res.csv")
    # the CSV's own test rows, in file order (the split column keeps their order)
    raw = pd.read_csv(CSV)
    truth = raw.loc[raw["part"] == "test", "topic_id"].to_numpy()
    assert sorted(set(truth.tolist())) == [0, 1, 2]
    store = PredStore(tmp_path / "res.preds.npz")
    # 2 regimes x (ceiling + 2 losses x 2 noise levels)
    assert len(rows) == 10 and set(rows["run_key"]) == set(store.logits)
    assert (rows["n_classes"] == 3).all()
    for loss in LOSSES:
        for regime in ("full", "head_only"):
            sel = rows[(rows["role"] == "student") & (rows["loss"] == loss)
                       & (rows["regime"] == regime)]
            assert sorted(sel["noise"].tolist()) == [0.0, 0.2], (loss, regime)
    for _, r in rows.iterrows():
        z = store.logits[r["run_key"]].astype(np.float64)
        assert z.shape == (len(truth), 3)
        p_rows = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        assert np.allclose(p_rows.sum(axis=1), 1.0)
        acc = float(np.mean(np.argmax(z, axis=1) == truth))
        assert r["student_acc"] == pytest.approx(acc, abs=1e-12), r["run_key"]
        # the same-seed, same-regime ceiling's accuracy sits in every row of that regime
        ck = rows[(rows["role"] == "ceiling") & (rows["regime"] == r["regime"])]["run_key"].item()
        cacc = float(np.mean(np.argmax(store.logits[ck], axis=1) == truth))
        assert r["ceiling_acc"] == pytest.approx(cacc, abs=1e-12)
    # the lr chosen on held-out train_gt rows with one-hot targets (a 3-output head)
    sel = json.loads((tmp_path / "res.lr_select.json").read_text())
    assert sel and set(rows["lr"]) <= {1e-3, 1e-2} and rows.loc[rows["regime"] == "full", "lr"].nunique() == 1
    # the weak teacher: a multinomial head; its test accuracy is one value in every row
    assert rows["weak_acc"].nunique() == 1 and 0.0 <= rows["weak_acc"].iloc[0] <= 1.0


@pytest.mark.parametrize("extra, pattern", [
    ("confidence = [true]", r"sweep\.confidence: the confidence loss is binary"),
])
def test_three_class_table_refuses_binary_only_settings(tiny_bert, tmp_path, capsys, extra,
                                                         pattern):
    p = _config(tmp_path, tiny_bert, extra)
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err


def test_weak_finetune_is_refused_for_a_three_class_table(tiny_bert, tmp_path, capsys):
    p = _config(tmp_path, tiny_bert)
    p.write_text(p.read_text().replace("[weak]\n", f'[weak]\nkind = "finetune"\nmodel = "{tiny_bert}"\n'))
    assert FinetuneSweepConfig.from_toml(p).weak.kind == "finetune"
    assert main(["finetune", "--config", str(p), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weak.kind: a multiclass table takes a weak head on features" in err[0]
    assert not (tmp_path / "res.csv").exists()


def test_binary_table_full_and_head_only(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    raw = pd.read_csv(BINARY_CSV)
    raw["part"] = np.repeat(["train_gt", "train_w2s", "test"], len(raw) // 3)
    raw.to_csv(tmp_path / "reviews.csv", index=False)
    p = _table_config(tmp_path, tiny_bert, f'data = "{tmp_path / "reviews.csv"}"\ntask = "binary"',
                      grid=(1e-2,), epochs=1, lr=1e-2, losses=("reverse_kl",), noise=(0.0,))
    assert FinetuneSweepConfig.from_toml(p).train.task == "binary"
    assert _finetune_one_thread(p) == 0
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
