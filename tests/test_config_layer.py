"""The one config layer (issue 8): every subcommand rejects a misspelt key or an out-of-range
value with one line naming the file, the key and the allowed values, exit 2, no traceback; a
sweep that would run nothing says so; run keys of the running fine-tuning sweep are unchanged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from w2s_theory.cli import main
from w2s_theory.config import ConfigError, check_keys, load_config, read_toml

ROOT = Path(__file__).resolve().parents[1]

REAL = """name = "t"
datasets = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
"""
FINETUNE = """name = "t"
[sweep]
losses = ["forward_kl"]
"""
SYNTHETIC = """[sweep]
name = "t"
kind = "theorem2"
seeds = 1
methods = ["convex/reverse_kl"]
"""

# (subcommand argv prefix, valid config, misspelt version, the bad key, a word of the allowed list)
MISSPELT = [
    (["demo"], "seed = 1\n", "sead = 1\n", "sead", "seed"),
    (["synthetic"], SYNTHETIC, SYNTHETIC.replace("seeds = 1", "seedz = 2"), "seedz", "seeds"),
    (["real"], REAL, REAL + "[train]\nlrr = 0.1\n", "lrr", "lr"),
    (["finetune"], FINETUNE, FINETUNE.replace("losses", "loses"), "loses", "losses"),
    (["features", "extract"], 'model = "wordllama"\n', 'modle = "wordllama"\n', "modle", "model"),
]


@pytest.mark.parametrize("cmd, good, bad, key, allowed", MISSPELT, ids=lambda v: v if isinstance(v, str) else None)
def test_misspelt_key_exits_2_with_one_line(cmd, good, bad, key, allowed, tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(bad)
    assert main(cmd + ["--config", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(p) in err and repr(key) in err and allowed in err
    assert "did you mean" in err


OUT_OF_RANGE = [
    (["demo"], "rows = 0\n", "rows"),
    (["synthetic"], SYNTHETIC.replace('kind = "theorem2"', 'kind = "nope"'), "kind"),
    (["real"], REAL + "noise = [1.5]\n", "noise"),
    (["finetune"], FINETUNE + "[run]\ngamma = 2.0\n", "run.gamma"),
    (["features", "extract"], 'data = "imdb"\n', "data"),
]


@pytest.mark.parametrize("cmd, text, key", OUT_OF_RANGE)
def test_out_of_range_value_exits_2_naming_file_and_key(cmd, text, key, tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(text)
    assert main(cmd + ["--config", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(p) in err and key in err


@pytest.mark.parametrize("cmd", [["demo"], ["synthetic"], ["real"], ["finetune"], ["features", "extract"]])
def test_missing_file_and_bad_toml_exit_2(cmd, tmp_path, capsys):
    assert main(cmd + ["--config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    p = tmp_path / "broken.toml"
    p.write_text("name = \n")
    assert main(cmd + ["--config", str(p)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize("cmd, text", [
    (["synthetic"], SYNTHETIC.replace('methods = ["convex/reverse_kl"]\n', "")),
    (["real"], REAL + "losses = []\n"),
    (["finetune"], 'name = "t"\n[sweep]\nlosses = []\nceiling = false\n'),
])
def test_a_sweep_that_would_run_nothing_says_so(cmd, text, tmp_path, capsys):
    p = tmp_path / "c.toml"
    p.write_text(text)
    assert main(cmd + ["--config", str(p)]) == 2
    assert "would run nothing" in capsys.readouterr().err


def test_bad_arguments_exit_2_in_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["real", "--config", "x.toml", "--device", "tpu"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_every_committed_config_loads():
    from w2s_theory.config import read_toml
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig
    from w2s_theory.pipelines.partial import PartialConfig
    from w2s_theory.pipelines.real import RealConfig
    from w2s_theory.pipelines.synthetic import load_sweep_config

    for p in sorted((ROOT / "experiments" / "synthetic").glob("*.toml")):
        for ci in (False, True):
            load_sweep_config(p, ci=ci)
    real = sorted((ROOT / "experiments" / "real").rglob("*.toml"))
    assert any(p.parent.name == "band" for p in real)
    for p in real:
        RealConfig.from_toml(p)
    for p in sorted((ROOT / "experiments" / "finetune").glob("*.toml")):
        (PartialConfig if "partial" in read_toml(p) else FinetuneSweepConfig).from_toml(p)


def test_config_helpers(tmp_path):
    with pytest.raises(ConfigError, match=r"\[x\] unknown key 'b'; allowed: a"):
        check_keys({"a": 1, "b": 2}, ["a"], "[x]")
    p = tmp_path / "c.toml"
    p.write_text("a = 1\n")
    assert read_toml(p) == {"a": 1}
    with pytest.raises(ConfigError, match=f"^{p}: boom"):
        load_config(p, lambda raw: (_ for _ in ()).throw(ValueError("boom")))


# ----------------------------------------------------------------------------- run keys
def test_finetune_run_key_of_the_running_cpu_4k_sweep_is_pinned():
    """The first run of experiments/finetune/cpu_4k.toml (full-regime ceiling, seed 0, lr 3e-5
    chosen by [lr_select]) has the key its prediction store was written under on 7e580c0, so
    that sweep resumes on this code."""
    from w2s_theory.pipelines.finetune import SPLIT_SLOT_OFFSET, FinetuneSweepConfig, plan_runs

    cfg = FinetuneSweepConfig.from_toml(ROOT / "experiments" / "finetune" / "cpu_4k.toml")
    cfg = replace(cfg, train=cfg.train.replace(lr=3e-05))
    meta = {"subset": "harmless", "n_train": 4000, "n_test": 2000, "weak_model": "wordllama",
            "weak_l2": 0.1, "ceiling_split": "train_gt",
            "slot_seeds": {sp: cfg.data.slot_seed + o for sp, o in SPLIT_SLOT_OFFSET.items()}}
    runs = plan_runs(cfg, meta)
    assert (runs[0].regime, runs[0].role, runs[0].cfg.seed) == ("full", "ceiling", 0)
    assert runs[0].key == "ac5dd2b20d58466b"
    assert len(runs) == 30 and runs[-1].key == "10658b2ec874e1cf"
