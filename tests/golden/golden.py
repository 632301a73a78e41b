"""Golden tables: the CI-size output of every sweep, recorded before the architecture refactor
(issue 8) and compared after it by ``tests/test_golden.py``.

Each family is produced through the command line only (``w2s_theory.cli.main``), whose argv is
the stable interface, so this file ran unchanged on the code before and after the move.
Regenerate (only when a change of numbers is intended and explained in the commit):

    PYTHONPATH=. python tests/golden/golden.py            # writes tests/golden/*.csv
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
SYNTHETIC = ("theorem2", "dual", "lemma1", "noise", "strength")

# columns that are provenance, timing or paths, not results
VOLATILE = ("git_commit", "machine", "device", "torch_version", "config_file", "strong",
            "created_utc", "feature_s",
            # solver cost, not a result: L-BFGS / interior-point iteration counts move with
            # round-off in the objective (the binary KL was rewritten for precision, issue 10)
            "fit_iterations", "solver_iterations", "iterations",
            # a convergence residual (~1e-9 either way), not a result
            "fit_grad_norm")
VOLATILE_SUFFIX = ("_time_s", "wall_s", "_seconds", "tokens_per_s", "_per_s")

REAL_TOML = """
name = "golden"
datasets = ["harmless"]
pairs = [["all-MiniLM-L6-v2", "SmolLM2-135M-layer15"]]
losses = ["forward_kl", "reverse_kl", "forward_ce", "reverse_ce"]
confidence = [false, true]
noise = [0.0, 0.3]
seeds = [0, 1]
n_rows = 96
gamma = 1e-3
[train]
lr = 0.003
dtype = "float64"
min_count = 32
[convex]
pca_dim = 6
"""

FINETUNE_TOML = """
name = "golden"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
[weak]
l2_grid = [0.1]
[train]
max_length = 24
precision = "fp32"
lr = 1e-4
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.5]
seeds = [0]
[run]
out = "{out}"
"""

DEMO_TOML = """
lemma1_trials = 40
hull_instances = 3
segment_instances = 5
"""


def _cli(argv: list[str]) -> None:
    from w2s_theory.cli import main

    rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"w2s-theory {' '.join(argv)} exited {rc}")


def synthetic(name: str, tmp: Path, limit: int | None = None) -> pd.DataFrame:
    """The ``--ci`` table of ``experiments/synthetic/{name}.toml`` (first ``limit`` runs)."""
    out = tmp / f"synthetic_{name}.csv"
    argv = ["synthetic", "--config", str(ROOT / "experiments/synthetic" / f"{name}.toml"), "--ci",
            "--results", str(out), "--no-figures", "--quiet"]
    _cli(argv + (["--limit", str(limit)] if limit else []))
    return pd.read_csv(out)


def real(tmp: Path) -> pd.DataFrame:
    """A 32-run last-layer sweep on the shared MiniLM / SmolLM2 features (96 rows per split)."""
    cfg = tmp / "real.toml"
    cfg.write_text(REAL_TOML)
    out = tmp / "real.csv"
    _cli(["real", "--config", str(cfg), "--out", str(out), "--cache-dir", str(tmp / "cache"),
          "--quiet"])
    return pd.read_csv(out)


def tiny_model_dir(path: Path) -> Path:
    """A seeded 2-layer BERT (hidden 32) with all-MiniLM-L6-v2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def finetune(tmp: Path) -> pd.DataFrame:
    """The tiny fine-tuning sweep (32 train / 24 test pairs, full and head-only, ensemble)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mdir = tiny_model_dir(tmp / "tiny_model")
        out = tmp / "finetune.csv"
        cfg = tmp / "finetune.toml"
        cfg.write_text(FINETUNE_TOML.format(mdir=mdir, out=out))
        _cli(["finetune", "--config", str(cfg), "--no-progress"])
    finally:
        torch.set_num_threads(n)
    return pd.read_csv(out)


def demo(tmp: Path) -> pd.DataFrame:
    """The demo's Lemma 1 trials and Theorem 2 cases at a reduced size, stacked."""
    cfg = tmp / "demo.toml"
    cfg.write_text(DEMO_TOML)
    _cli(["demo", "--config", str(cfg), "--out", str(tmp / "demo"), "--quiet"])
    parts = [pd.read_csv(tmp / "demo" / f).assign(table=f.split(".")[0])
             for f in ("lemma1_trials.csv", "theorem2_cases.csv", "summary.csv")]
    pd.concat(parts, ignore_index=True).to_csv(tmp / "demo.csv", index=False)
    return pd.read_csv(tmp / "demo.csv")     # one CSV round trip, as the stored golden table


def results_only(df: pd.DataFrame) -> pd.DataFrame:
    """Drop provenance / timing / path columns (and run keys, which hash a model path in the
    fine-tuning table); rows in a canonical order."""
    keep = [c for c in df.columns if c not in VOLATILE and not c.endswith(VOLATILE_SUFFIX)
            and not (c == "run_key" and "regime" in df.columns)]
    out = df[keep]
    by = [c for c in ("run_key", "table", "regime", "role", "loss", "noise", "seed", "trial", "case")
          if c in out.columns]
    return out.sort_values(by or list(out.columns[:8]), kind="stable").reset_index(drop=True)


def assert_same(got: pd.DataFrame, want: pd.DataFrame, *, rtol=1e-7, atol=1e-9) -> None:
    """Same columns and rows; numbers equal up to round-off, everything else exactly."""
    got, want = results_only(got), results_only(want)
    assert list(got.columns) == list(want.columns), (set(got.columns) ^ set(want.columns))
    assert len(got) == len(want), (len(got), len(want))
    for c in want.columns:
        a, b = got[c], want[c]
        if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a):
            ok = np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=atol, equal_nan=True)
            assert ok.all(), f"column {c}: rows {np.flatnonzero(~ok)[:5]} differ"
        else:
            sa, sb = (x.astype(object).where(x.notna(), "").astype(str).to_numpy() for x in (a, b))
            assert (sa == sb).all(), f"column {c} differs"


def main() -> int:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        tables = {f"synthetic_{n}": synthetic(n, tmp) for n in SYNTHETIC}
        tables["real"] = real(tmp)
        tables["finetune"] = finetune(tmp)
        tables["demo"] = demo(tmp)
        for name, df in tables.items():
            df.to_csv(GOLDEN / f"{name}.csv", index=False)
            print(f"{name}: {len(df)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
