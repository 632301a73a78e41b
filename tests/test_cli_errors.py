"""Every user error of the command line (config, data, model, device) ends in one line on
stderr naming the problem and exit status 2, no traceback; ``--traceback`` re-raises it;
``--version``; one spelling of the shared options; missing models are found before any work
(and by ``--dry-run``) with the install command, and ``--skip-missing`` runs the pairs whose
models are present.

Models are made "missing" by patching :func:`w2s_theory.models.is_installed` (and pointing
``--features-dir`` at an empty folder), so the tests hold whatever this machine has installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import w2s_theory
from w2s_theory import models
from w2s_theory.cli import main
from w2s_theory.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

REAL = """name = "t"
datasets = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"], ["wordllama", "Gemma-3-270M-layer9"]]
losses = ["forward_kl"]
seeds = [0]
[convex]
enabled = false
"""
FINETUNE = """name = "t"
strong = "Gemma-3-270M"
[data]
n_train = 32
n_test = 24
[sweep]
losses = ["forward_kl"]
seeds = [0]
"""


def _cli(*args, env=None):
    """The installed entry point in a fresh process (nothing of pytest's in the way)."""
    e = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
             PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "w2s_theory.cli", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=300)


def _one_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def no_gemma(monkeypatch, tmp_path):
    """Gemma-3-270M's weights "not installed" and an empty prebuilt features folder."""
    real = models.is_installed
    monkeypatch.setattr(models, "is_installed", lambda n: n != "Gemma-3-270M" and real(n))
    feats = tmp_path / "feats"
    (feats / "hh_rlhf").mkdir(parents=True)
    return feats


# ----------------------------------------------------------------------------- config
def test_unknown_config_key_in_a_fresh_process(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(REAL + "[train]\nlrr = 0.1\n")
    r = _cli("real", "--config", str(p))
    assert r.returncode == 2
    err = _one_line(r.stderr)
    assert err.startswith("w2s-theory real: ") and str(p) in err and "'lrr'" in err
    assert "did you mean 'lr'" in err


def test_missing_config_file(tmp_path, capsys):
    for cmd in (["real"], ["finetune"], ["synthetic"], ["partial"], ["features", "extract"]):
        assert main(cmd + ["--config", str(tmp_path / "nope.toml")]) == 2
        err = _one_line(capsys.readouterr().err)
        assert str(tmp_path / "nope.toml") in err and "cannot read" in err


def test_traceback_flag_reraises(tmp_path, capsys):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        main(["--traceback", "real", "--config", missing])
    with pytest.raises(ConfigError):                       # also after the command's options
        main(["synthetic", "--config", missing, "--traceback"])
    assert main(["real", "--config", missing]) == 2        # the mode does not stick
    r = _cli("--traceback", "finetune", "--config", missing)
    assert r.returncode == 1 and "Traceback (most recent call last)" in r.stderr
    assert "ConfigError" in r.stderr


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"w2s-theory {w2s_theory.__version__}"
    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"w2s-theory {w2s_theory.__version__}"


def test_shared_options_have_one_spelling(capsys):
    for cmd in (["demo"], ["synthetic"], ["real"], ["finetune"], ["partial"]):
        with pytest.raises(SystemExit) as e:
            main(cmd + ["--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "--out" in text and "--quiet" in text, cmd
        assert "--results" not in text and "--no-progress" not in text, cmd   # hidden aliases
    with pytest.raises(SystemExit):
        main(["features", "extract", "--help"])
    assert "--quiet" in capsys.readouterr().out


def test_old_spellings_still_work(tmp_path, capsys):
    cfg = ROOT / "experiments/synthetic/lemma1.toml"
    out = tmp_path / "r.csv"
    assert main(["synthetic", "--config", str(cfg), "--ci", "--no-figures", "--no-progress",
                 "--results", str(out), "--limit", "1"]) == 0
    assert out.is_file()


# ----------------------------------------------------------------------------- device
@pytest.mark.parametrize("cmd", [["real", "--config", "REAL"], ["finetune", "--config", "FT"]])
def test_device_cuda_without_cuda_is_refused_up_front(cmd, tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    (tmp_path / "r.toml").write_text(REAL)
    (tmp_path / "f.toml").write_text(FINETUNE.replace("Gemma-3-270M", "all-MiniLM-L6-v2"))
    cmd = [str(tmp_path / ("r.toml" if c == "REAL" else "f.toml")) if c in ("REAL", "FT") else c
           for c in cmd]
    import w2s_theory.pipelines.preflight as pre

    def boom(*a, **k):  # the device is checked before anything else
        raise AssertionError("work started before the device check")
    monkeypatch.setattr(pre, "real", boom)
    monkeypatch.setattr(pre, "finetune", boom)
    assert main(cmd + ["--device", "cuda"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "device" in err and "'cuda'" in err and "CUDA" in err and "--device cpu" in err


def test_device_check_names_the_device():
    import torch

    from w2s_theory._validation import DeviceUnavailable, check_device
    from w2s_theory.config import UserError

    assert check_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device: not a device: 'gpu'"):
        check_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailable, match="'cuda:1' requested") as e:
            check_device("cuda:1")
        assert isinstance(e.value, UserError) and isinstance(e.value, ValueError)
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(DeviceUnavailable, match="'mps' requested"):
            check_device("mps")


# ----------------------------------------------------------------------------- models
def test_missing_model_is_found_before_any_work(no_gemma, tmp_path, capsys, monkeypatch):
    import w2s_theory.pipelines.real as real

    def boom(*a, **k):
        raise AssertionError("work started despite a missing model")
    monkeypatch.setattr(real, "run", boom)
    p = tmp_path / "c.toml"
    p.write_text(REAL)
    assert main(["real", "--config", str(p), "--features-dir", str(no_gemma)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "Gemma-3-270M-layer9" in err and "1 model missing" in err
    assert "bash scripts/install_models.sh Gemma-3-270M" in err
    assert "--skip-missing" in err and "1 of 2 pairs" in err
    # --dry-run: the plan, the missing models and the install command; still exit 2
    assert main(["real", "--config", str(p), "--features-dir", str(no_gemma), "--dry-run"]) == 2
    io = capsys.readouterr()
    assert "2 runs" in io.out and "[model missing]" in io.out and "missing models (1):" in io.out
    assert "install: bash scripts/install_models.sh Gemma-3-270M" in io.out
    assert "wordllama -> Gemma-3-270M-layer9" in io.out
    _one_line(io.err)
    # --skip-missing --dry-run: runnable
    assert main(["real", "--config", str(p), "--features-dir", str(no_gemma), "--dry-run",
                 "--skip-missing"]) == 0


def test_skip_missing_runs_the_pairs_whose_models_are_present(no_gemma, tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(REAL)
    out = tmp_path / "r.csv"
    shared = ROOT.parent / "shared" / "features"
    feats = ["--features-dir", str(shared)] if (shared / "hh_rlhf").is_dir() else []
    assert main(["real", "--config", str(p), "--skip-missing", "--quiet", "--n-rows", "64",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache"), *feats]) == 0
    io = capsys.readouterr()
    assert "skipping 1 pairs" in io.err and "Gemma-3-270M-layer9" in io.err
    import pandas as pd

    df = pd.read_csv(out)
    assert len(df) == 1 and set(df["strong"]) == {"all-MiniLM-L6-v2"}


def test_finetune_missing_models(no_gemma, tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(FINETUNE)
    assert main(["finetune", "--config", str(p)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "Gemma-3-270M: its weights are not installed" in err
    assert "bash scripts/install_models.sh Gemma-3-270M" in err
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    io = capsys.readouterr()
    assert "runs (full" in io.out and "full ceiling forward_ce" in io.out
    assert io.out.count(" runs ->") == 0 and io.out.count(" runs (full") == 1   # one plan
    assert "missing models (1):" in io.out and "the strong student" in io.out
    p.write_text(FINETUNE.replace('"Gemma-3-270M"', f'"{tmp_path / "no-such-folder"}"'))
    assert main(["finetune", "--config", str(p)]) == 2
    assert "neither a folder nor a preset" in _one_line(capsys.readouterr().err)


def test_features_extract_missing_model(no_gemma, capsys):
    argv = ["features", "extract", "--model", "Gemma-3-270M-layer9", "--subset", "harmless",
            "--split", "test", "--features-dir", str(no_gemma)]
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert "Gemma-3-270M-layer9" in err and "bash scripts/install_models.sh Gemma-3-270M" in err
    assert main(argv + ["--dry-run"]) == 2
    assert "missing models (1):" in capsys.readouterr().out


# ----------------------------------------------------------------------------- data
def _data_dir(tmp_path, lines: list[bytes]) -> Path:
    d = tmp_path / "hh"
    (d / "harmless").mkdir(parents=True)
    (d / "harmless" / "test.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return d


GOOD = b'{"chosen": "\\n\\nHuman: hi Assistant: hello", "rejected": "\\n\\nHuman: hi Assistant: go"}'


@pytest.mark.parametrize("bad, what", [
    (b'{"chosen": "caf\xe9", "rejected": "x"}', "not valid UTF-8"),
    (b'{"chosen": "a", "rejected": ', "malformed JSON"),
    (b'["a", "b"]', "expected an object"),
])
def test_corrupt_data_file_names_file_and_line(bad, what, tmp_path):
    d = _data_dir(tmp_path, [GOOD, GOOD, bad, GOOD])
    r = _cli("features", "extract", "--model", "wordllama", "--subset", "harmless",
             "--split", "test", "--data-dir", str(d), "--cache", str(tmp_path / "cache"), "--quiet")
    assert r.returncode == 2, r.stderr[-2000:]
    err = _one_line(r.stderr)
    assert f"{d / 'harmless' / 'test.jsonl'}:3: {what}" in err, err


def test_missing_data_folder_is_found_before_any_work(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(REAL)
    nope = tmp_path / "no-data"
    assert main(["real", "--config", str(p), "--data-dir", str(nope), "--dry-run"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"HH-RLHF folder not found: {nope}" in err
    d = tmp_path / "partial-data"                   # the folder, without the files
    (d / "harmless").mkdir(parents=True)
    f = tmp_path / "f.toml"
    f.write_text(FINETUNE.replace("Gemma-3-270M", "all-MiniLM-L6-v2"))
    assert main(["finetune", "--config", str(f), "--data-dir", str(d)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "HH-RLHF files not found" in err and "harmless/train_gt.jsonl" in err


def test_unreadable_result_table_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(REAL.replace(', ["wordllama", "Gemma-3-270M-layer9"]', ""))
    out = tmp_path / "r.csv"
    out.write_bytes(b"\xff\xfe garbage")
    assert main(["real", "--config", str(p), "--out", str(out), "--quiet"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(out) in err
