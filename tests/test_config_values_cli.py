"""Invalid values in the committed configs' own layouts, through `w2s_theory.cli.main` (issue 17):
`[train] lr = -1` in the real, finetune and partial configs, and `n_gt = 1e11` written as a TOML
float in a synthetic config, are refused at config load: one line naming the file and the key,
exit 2, nothing written (with and without `--dry-run`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _one_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def _with_train_lr(src: Path, dst: Path, value: str, out: Path) -> Path:
    """``src`` with its ``[train] lr`` replaced by ``value`` (and every output under ``out``)."""
    lines = src.read_text().splitlines(keepends=True)
    section, n = None, 0
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("["):
            section = s.split("]")[0] + "]"
        elif section == "[train]" and s.split("=")[0].strip() == "lr":
            lines[i] = f"lr = {value}\n"
            n += 1
        elif s.split("=")[0].strip() in ("out", "cache") and section in ("[run]", "[partial]", None):
            lines[i] = f'{s.split("=")[0].strip()} = "{out / f"{section}-{i}"}"\n'
    assert n == 1, f"{src}: no single [train] lr"
    dst.write_text("".join(lines))
    return dst


CONFIGS = {
    "real": ROOT / "experiments/real/main.toml",
    "finetune": ROOT / "experiments/finetune/cpu_reduced.toml",
    "partial": ROOT / "experiments/finetune/cpu_4k_partial.toml",
}


# --dry-run only: the config is loaded (and refused) before the command branches on it, and a
# run whose lr check were removed would start training the configured models for hours.
@pytest.mark.parametrize("dry", [True], ids=["dry-run"])
@pytest.mark.parametrize("value", ["-1", "0", "-1e-5", "nan"])
@pytest.mark.parametrize("cmd", list(CONFIGS))
def test_train_lr_must_be_positive(cmd, value, dry, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    p = _with_train_lr(CONFIGS[cmd], tmp_path / f"{cmd}.toml", value, out)
    argv = [cmd, "--config", str(p), "--quiet"] + (["--dry-run"] if dry else [])
    if cmd == "real":
        argv += ["--out", str(out / "real.csv"), "--cache-dir", str(out / "cache")]
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"w2s-theory {cmd}: {p}: lr: must be "), err
    assert not out.exists()                                # refused at config load


def test_the_committed_train_lr_is_accepted(tmp_path, capsys):
    """Control: the same rewrite with the committed value passes config load (dry run)."""
    src = CONFIGS["finetune"]
    p = _with_train_lr(src, tmp_path / "f.toml", "1e-5", tmp_path / "out")
    main(["finetune", "--config", str(p), "--dry-run", "--quiet"])
    assert "lr" not in capsys.readouterr().err


def _synthetic(tmp_path: Path, n_gt: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(f"""[sweep]
name = "t"
kind = "lemma1"
seeds = 2
methods = ["minibatch/forward_kl", "softmax/forward_kl"]
[base]
n_w2s = 50
n_test = 50
n_gt = {n_gt}
""")
    return p


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("n_gt", ["1e11", "1.0e11", "100000000000.0", "50.5", "-50.0"])
def test_synthetic_n_gt_float_literal_is_one_line(n_gt, dry, tmp_path, capsys):
    p = _synthetic(tmp_path, n_gt)
    out = tmp_path / "out"
    argv = ["synthetic", "--config", str(p), "--no-figures", "--quiet", "--out", str(out)]
    assert main(argv + (["--dry-run"] if dry else [])) == 2
    err = _one_line(capsys.readouterr().err)
    # (the integer path says "[base] n_gt:", this float path "n_gt:"; both name the key)
    assert re.match(rf"w2s-theory synthetic: {re.escape(str(p))}: (\[base\] )?n_gt: must be an integer",
                    err), err
    assert not out.exists()
