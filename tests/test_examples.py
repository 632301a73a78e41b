"""The example configs of experiments/examples/ ("your own table, your own hub models",
docs/your_data.md) run through ``w2s-theory real`` on their tiny data files. The models are
swapped for the tiny hub models of conftest.py (offline; the committed pairs name presets and
hub ids a user would run); everything else -- the data file, its column mapping, its split
rule, the task kind -- is the example's own."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2s_theory.cli import main
from w2s_theory.config import read_toml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "experiments" / "examples"
TINY = '[["tiny-org/tiny-gpt2", "tiny-org/tiny-llama"]]'
#: example -> (data set, classes, rows of each split as the example's own rule gives them)
WANT = {"binary_table": ("reviews", 2, (20, 20, 20)),
        "kclass_table": ("tickets", 3, (15, 15, 15)),
        "hub_models": ("reviews", 2, (20, 20, 20))}


def test_every_example_is_listed_here():
    assert sorted(p.stem for p in EXAMPLES.glob("*.toml")) == sorted(WANT)


@pytest.mark.parametrize("name", sorted(WANT))
def test_example_runs_through_the_cli(name, tmp_path, hub_env, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)                          # the examples' data paths are the project's
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    text = (EXAMPLES / f"{name}.toml").read_text()
    raw = read_toml(EXAMPLES / f"{name}.toml")
    dataset, k, sizes = WANT[name]
    assert raw["datasets"] == [dataset]
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(re.sub(r"(?m)^pairs = .*$", f"pairs = {TINY}", text))
    out = tmp_path / "rows.csv"
    t0 = time.perf_counter()
    assert main(["real", "--config", str(cfg), "--out", str(out), "--cache-dir",
                 str(tmp_path / "heads"), "--quiet"]) == 0, capsys.readouterr().err
    seconds = time.perf_counter() - t0
    rows = pd.read_csv(out)
    n = len(raw["losses"]) * len(raw["seeds"]) * len(raw.get("noise", [0.0]))
    assert len(rows) == n and set(rows.dataset) == {dataset}
    assert set(rows.n_classes) == {k} and set(rows.n_test) == {sizes[2]}
    # the test split is the example's own: recomputed from the data file and its split rule
    src = raw["sources"][dataset]
    df = pd.read_csv(ROOT / src["data"])
    label = src.get("columns", {}).get("label", "label")
    if "split_column" in src:
        test = df[df[src["split_column"]] == "test"]
    else:
        p = np.random.default_rng([src.get("seed", 0), 0]).permutation(len(df))
        test = df.iloc[p[sizes[0] + sizes[1]:sum(sizes)]]
    assert len(test) == sizes[2] and test[label].nunique() == k
    # the weak model's test accuracy counts its argmax on the example's test labels: a
    # multiple of 1 / n_test
    acc = rows.weak_acc.to_numpy() * sizes[2]
    np.testing.assert_allclose(acc, np.round(acc), atol=1e-9)
    assert seconds < 60, f"{name}: {seconds:.1f} s"


def test_examples_name_every_schema_piece_the_docs_explain():
    doc = (ROOT / "docs" / "your_data.md").read_text()
    for name in WANT:
        assert f"experiments/examples/{name}.toml" in doc
    for key in ("kind", "data", "task", "columns", "sizes", "split_column", "seed"):
        assert f"`{key}`" in doc, key
    for task in ("pairwise", "binary", "multiclass"):
        assert f"`{task}`" in doc
