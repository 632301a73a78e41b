"""No hyper-parameter is chosen on test data: every config under ``experiments/`` declares how
its hyper-parameters were chosen (``[selection]``), and each declared rule is checked against
what the config and the committed tables actually do."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from w2s_theory.config import SELECTION_RULES, ConfigError, check_selection, read_toml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").rglob("*.toml"))
PAPER_LR = 1e-5                                   # arXiv 2502.11107: lr 1e-5, batch 16, 1 epoch


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_every_config_is_listed():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_config_declares_a_valid_rule(path):
    raw = read_toml(path)
    assert "selection" in raw, f"{_rel(path)}: no [selection] table (how were its " \
                               f"hyper-parameters chosen?)"
    sel = check_selection(raw["selection"])
    assert sel["rule"] in SELECTION_RULES
    assert "test" not in sel.get("source", "").replace("lr_check", ""), sel


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_rule_matches_what_the_config_does(path):
    raw = read_toml(path)
    sel = raw["selection"]
    rule, src = sel["rule"], sel.get("source", "")
    tr = raw.get("train", {})
    if raw.get("lr_select", {}).get("grid"):
        # the finetune pipeline fits each candidate on train_gt[:n - holdout] and scores it on
        # train_gt[n - holdout:] (tests/test_finetune.py checks that it never reads the test
        # split); the declared rule must say so
        ls = raw["lr_select"]
        assert rule == "held_out_ground_truth" and "[lr_select]" in src
        assert len(ls["grid"]) >= 2 and ls.get("holdout", 1000) > 0
        n = raw.get("data", {}).get("n_train", 0) or 4000
        assert ls.get("holdout", 1000) < n
    elif rule == "held_out_ground_truth":
        script = ROOT / src
        assert script.is_file(), f"{_rel(path)}: source {src!r} does not exist"
        assert "train_gt" in script.read_text() and "test split is never touched" in \
            script.read_text()
        # the config's lr is the best mean held-out accuracy of the committed lr check
        chk = pd.read_csv(ROOT / "experiments/results/real/lr_check.csv")
        assert (chk["dataset"] != "test").all()
        best = chk.groupby("lr")["val_acc"].mean().idxmax()
        assert tr["lr"] == pytest.approx(best), (_rel(path), tr["lr"], best)
    elif rule == "paper":
        assert tr.get("lr") == pytest.approx(PAPER_LR)
    elif rule == "band":
        band = sorted((ROOT / src).glob("*.toml"))
        lrs = {read_toml(p)["train"]["lr"] for p in band}
        assert len(lrs) == len(band) >= 3 and tr["lr"] in lrs
    elif rule == "fixed":
        assert not raw.get("lr_select", {}).get("grid")
    else:  # pragma: no cover - check_selection admits no other rule
        raise AssertionError(rule)


def test_no_rule_admits_test_data():
    assert not any("test" in name for name in SELECTION_RULES)
    with pytest.raises(ConfigError, match="rule"):
        check_selection({"rule": "test_pairs"})
    with pytest.raises(ConfigError, match="unknown key"):
        check_selection({"rule": "paper", "lr": 1})


def test_selection_is_not_a_run_parameter(tmp_path):
    """The [selection] table is checked when a config is loaded, then dropped: it cannot change
    a run key, and a bad rule is a config error naming the file."""
    from w2s_theory.pipelines.real import RealConfig, enumerate_runs

    src = (ROOT / "experiments/real/main.toml").read_text()
    a = tmp_path / "a.toml"
    a.write_text(src)
    b = tmp_path / "b.toml"
    b.write_text(src.split("[selection]")[0])
    ka = [r.key for r in enumerate_runs(RealConfig.from_toml(a))]
    kb = [r.key for r in enumerate_runs(RealConfig.from_toml(b))]
    assert ka == kb
    a.write_text(src.replace('rule = "held_out_ground_truth"', 'rule = "test_pairs"'))
    with pytest.raises(ConfigError, match=r"a\.toml.*rule"):
        RealConfig.from_toml(a)
