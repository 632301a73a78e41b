"""kill -9 at random points of real CLI sweeps (synthetic, real, finetune), then resume.

Each sweep runs once uninterrupted (the reference), then again from scratch while being
killed with SIGKILL mid-sweep (after its table grew by a row, plus a seeded random
0-1 s; 3 + 3 + 3 = 9 kills in all) and restarted until it
finishes. The resumed table must hold exactly the reference's rows (no row lost, none
duplicated) with identical values (provenance and timing columns aside).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = ("wall", "_utc", "machine", "git_commit", "tokens_per_s", "torch_version", "device",
            "config_file", "created", "resumed_from", "feature_s", "fit_s", "time")


def _cmd(*args):
    return [sys.executable, "-m", "w2s_theory.cli", *args]


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


def _run(cmd, timeout=600):
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def _rows(path: Path) -> int:
    try:
        return len(pd.read_csv(path, dtype={"run_key": str}))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


def _kill_then_finish(cmd, out: Path, n_kills: int, rng, timeout=600) -> int:
    """Start the sweep; once its table has grown by a row, SIGKILL it after a random
    0-1 s (so kills land mid-run, in training, evaluation or a write); restart; repeat
    ``n_kills`` times, then run it to the end. Returns the number of processes killed."""
    kills = 0
    for _ in range(n_kills):
        before = _rows(out)
        p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        t0 = time.monotonic()
        while p.poll() is None and _rows(out) <= before and time.monotonic() - t0 < timeout:
            time.sleep(0.2)
        time.sleep(float(rng.uniform(0.0, 1.0)))
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
    _run(cmd, timeout)
    return kills


def _table(path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"run_key": str})
    assert not df["run_key"].duplicated().any(), "duplicated rows"
    keep = [c for c in df.columns if not any(v in c for v in VOLATILE)]
    return df[keep].sort_values("run_key").reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a["run_key"]) == list(b["run_key"]), "rows lost or added"
    for c in a.columns:
        if a[c].dtype.kind in "fc":
            np.testing.assert_allclose(a[c].to_numpy(float), b[c].to_numpy(float), rtol=1e-9,
                                       atol=1e-12, equal_nan=True, err_msg=c)
        else:
            assert a[c].astype(str).tolist() == b[c].astype(str).tolist(), c


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(20261201)


def test_synthetic_survives_kills(tmp_path, rng):
    base = ["synthetic", "--config", "experiments/synthetic/lemma1.toml", "--ci", "--no-figures",
            "--quiet"]
    _run(_cmd(*base, "--results", str(tmp_path / "ref.csv")))
    kills = _kill_then_finish(_cmd(*base, "--results", str(tmp_path / "k.csv")),
                              tmp_path / "k.csv", 3, rng)
    _same(_table(tmp_path / "ref.csv"), _table(tmp_path / "k.csv"))
    assert kills == 3


def test_real_survives_kills(tmp_path, rng):
    cfg = tmp_path / "real.toml"
    cfg.write_text('name = "kr"\ndatasets = ["harmless"]\npairs = [["wordllama", "all-MiniLM-L6-v2"]]\n'
                   'losses = ["forward_kl", "reverse_kl"]\nnoise = [0.0, 0.3]\nseeds = [0, 1, 2]\n'
                   '[convex]\nenabled = true\npca_dim = 8\n')
    common = ["real", "--config", str(cfg), "--n-rows", "300", "--quiet"]
    _run(_cmd(*common, "--out", str(tmp_path / "ref.csv"), "--cache-dir", str(tmp_path / "c1")))
    kills = _kill_then_finish(_cmd(*common, "--out", str(tmp_path / "k.csv"), "--cache-dir",
                                   str(tmp_path / "c2")), tmp_path / "k.csv", 3, rng)
    _same(_table(tmp_path / "ref.csv"), _table(tmp_path / "k.csv"))
    assert kills == 3


def test_finetune_survives_kills(tmp_path, rng, tiny_bert):
    mdir = tiny_bert
    for tag in ("ref", "k"):
        (tmp_path / f"{tag}.toml").write_text(f"""
name = "kf"
strong = "{mdir}"
[data]
n_train = 64
n_test = 32
[weak]
l2_grid = [0.1]
[train]
max_length = 24
precision = "fp32"
lr = 1e-4
batch_size = 8
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.4]
seeds = [0]
regimes = ["full"]
[run]
out = "{tmp_path / (tag + '.csv')}"
""")
    _run(_cmd("finetune", "--config", str(tmp_path / "ref.toml"), "--no-progress"))
    kills = _kill_then_finish(_cmd("finetune", "--config", str(tmp_path / "k.toml"), "--no-progress"),
                              tmp_path / "k.csv", 3, rng)
    _same(_table(tmp_path / "ref.csv"), _table(tmp_path / "k.csv"))
    assert kills == 3
