"""``w2s-theory report`` (issue 18's Done-when): a table made here (two losses, three splits, four
seeds) -> the command prints the answer and writes the ledger, the figure and the tables; the
printed effect and interval equal an independent numpy / scipy computation of the split-mean
effect. Bad input: one line on stderr, exit 2. And the sweeps end with the same answer lines."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2s_theory.cli import main

NUM = r"[+−-]\d+\.\d+"


def _nums(text):
    return [float(x.replace("−", "-")) for x in re.findall(NUM, text)]


def _table(seed=0, n_splits=3, n_seeds=4, shift=0.012):
    """Two losses x three splits x four seeds, one setting; reverse KL ahead by ~1.2 points with
    a split effect."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_splits):
        split_shift = rng.normal(0, 0.004)
        for r in range(n_seeds):
            base = 0.62 + rng.normal(0, 0.01)
            rows.append({"dataset": "mine", "weak": "w", "strong": "s", "loss": "forward_kl",
                         "split": s, "seed": r, "student_acc": base})
            rows.append({"dataset": "mine", "weak": "w", "strong": "s", "loss": "reverse_kl",
                         "split": s, "seed": r,
                         "student_acc": base + shift + split_shift + rng.normal(0, 0.002)})
    return pd.DataFrame(rows)


def _split_mean_effect(t):
    """Independent: per split the mean over seeds of acc(reverse) - acc(forward) (points), then
    the mean over splits and its 95 % t interval (df = splits - 1)."""
    w = t.pivot_table(index=["split", "seed"], columns="loss", values="student_acc")
    d = 100.0 * (w["reverse_kl"] - w["forward_kl"])
    means = d.groupby(level="split").mean().to_numpy()
    m = means.mean()
    half = stats.t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means))
    return m, m - half, m + half


def test_report_prints_the_answer_and_writes_the_figure(tmp_path, capsys):
    t = _table()
    csv = tmp_path / "results.csv"
    t.to_csv(csv, index=False)
    out = tmp_path / "rep"
    rc = main(["report", str(csv), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = [ln for ln in captured.out.splitlines() if " − forward KL: " in ln]
    assert len(lines) == 1, captured.out
    line = lines[0]
    assert line.startswith("Reverse KL − forward KL: ") and "without noise" in line
    eff, lo, hi = _split_mean_effect(t)
    got = _nums(line)
    assert got[:3] == pytest.approx([eff, lo, hi], abs=0.0051)
    assert abs(eff) > 0.5                       # the test's effect is not trivially 0
    for name in ("ledger.csv", "ledger_summary.csv", "ledger_excluded.csv", "ledger_checks.csv",
                 "answer.png", "answer.pdf", "answer.md", "answer.tex"):
        assert (out / name).is_file(), name
    assert (out / "answer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "answer.pdf").read_bytes()[:5] == b"%PDF-"
    summ = pd.read_csv(out / "ledger_summary.csv")
    assert summ["effect_pts"].iloc[0] == pytest.approx(eff, abs=1e-4)
    assert f"- {line}" in (out / "answer.md").read_text()
    assert "\\begin{tabular}" in (out / "answer.tex").read_text()


def test_report_several_tables_and_a_third_loss(tmp_path, capsys):
    """Two files concatenated; reverse CE and reverse KL each against forward KL."""
    t = _table(seed=1)
    ce = t[t["loss"] == "reverse_kl"].assign(loss="reverse_ce")
    ce["student_acc"] -= 0.02
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    t.to_csv(a, index=False)
    ce.to_csv(b, index=False)
    rc = main(["report", str(a), str(b), "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0
    kl = [ln for ln in out.splitlines() if ln.startswith("Reverse KL − forward KL: ")]
    rce = [ln for ln in out.splitlines() if ln.startswith("Reverse CE − forward KL: ")]
    assert len(kl) == len(rce) == 1
    both = pd.concat([t[t["loss"] == "forward_kl"], ce])
    eff, lo, hi = _split_mean_effect(both.replace({"reverse_ce": "reverse_kl"}))
    assert _nums(rce[0])[:3] == pytest.approx([eff, lo, hi], abs=0.0051)


PLAN = """
[replication]
split_column = "split"
resplit_table_pattern = "splits/{stem}.csv"
[statistics]
confidence = 0.95
alpha = 0.05
[margins]
mine = 0.5
[verdicts]
words = ["equivalent within margin", "better", "worse", "inconclusive"]
order = ["equivalent within margin", "better", "worse", "inconclusive"]
[[family]]
id = "c1.mine.reverse_kl"
claim = 1
regime = "last_layer_minibatch"
contrast = "acc(reverse_kl) - acc(forward_kl)"
arms = ["reverse_kl", "forward_kl"]
direction = "+"
margin = "mine"
paper_pts = [1.8]
[[family.member]]
table = "res.csv"
dataset = ["mine"]
"""


def test_report_with_a_plan_reads_the_committed_table_and_its_resplits(tmp_path, monkeypatch,
                                                                       capsys):
    """--plan: split 0 in the table the plan names, splits 1-2 in its re-split table; the
    answer is the paper-plan line with the plan's paper value."""
    monkeypatch.chdir(tmp_path)
    t = _table(seed=4)
    (tmp_path / "splits").mkdir()
    t[t["split"] == 0].drop(columns="split").to_csv("res.csv", index=False)
    t[t["split"] > 0].to_csv("splits/res.csv", index=False)
    (tmp_path / "plan.toml").write_text(PLAN)
    assert main(["report", "res.csv", "--plan", "plan.toml", "--out", "o"]) == 0
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if " − forward KL: " in ln][0]
    assert line.startswith("Last layer, trained (1 epoch), reverse KL − forward KL: ")
    eff, lo, hi = _split_mean_effect(t)
    assert _nums(line) == pytest.approx([eff, lo, hi, 1.8], abs=0.0051)
    assert (tmp_path / "o" / "answer.png").is_file()
    t.to_csv("other.csv", index=False)
    _one_line_exit_2(capsys, ["report", "other.csv", "--plan", "plan.toml"],
                     r"other\.csv: not a table the plan reads .*res\.csv")


def _one_line_exit_2(capsys, argv, *patterns):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("w2s-theory report: "), err
    for p in patterns:
        assert re.search(p, err), (p, err)
    return err


def test_report_errors_are_one_line_exit_2(tmp_path, capsys):
    _one_line_exit_2(capsys, ["report", str(tmp_path / "nope.csv")], r"nope\.csv: file not found")
    t = _table()
    bad = tmp_path / "bad.csv"
    t.drop(columns=["student_acc", "seed"]).to_csv(bad, index=False)
    _one_line_exit_2(capsys, ["report", str(bad)], r"bad\.csv: lacks the columns seed, student_acc",
                     "loss, seed, student_acc", "dataset, weak, strong")
    unk = tmp_path / "unk.csv"
    t.replace({"reverse_kl": "my_loss"}).to_csv(unk, index=False)
    _one_line_exit_2(capsys, ["report", str(unk)], r"unknown loss name 'my_loss'", "register")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _one_line_exit_2(capsys, ["report", str(empty)], "is empty")
    good = tmp_path / "good.csv"
    t.to_csv(good, index=False)
    _one_line_exit_2(capsys, ["report", str(good), "--plan", str(tmp_path / "p.toml")],
                     r"p\.toml: plan file not found")
    plan = tmp_path / "p.toml"
    plan.write_text("[[family]]\nid = 3\n")
    _one_line_exit_2(capsys, ["report", str(good), "--plan", str(plan)], r"p\.toml: plan")
    plan.write_text("not toml [[[")
    _one_line_exit_2(capsys, ["report", str(good), "--plan", str(plan)], r"p\.toml: ")
    _one_line_exit_2(capsys, ["report", str(good), "--reference", "reverse_ce"],
                     "reference: 'reverse_ce' is not a loss of the table")
    # the same run twice with different results: named, not averaged
    twice = tmp_path / "twice.csv"
    pd.concat([t, t.assign(student_acc=t["student_acc"] + 0.01)]).to_csv(twice, index=False)
    _one_line_exit_2(capsys, ["report", str(twice), "--out", str(tmp_path / "rep")],
                     r"twice\.csv: .*appears twice with different results")
    assert not (tmp_path / "rep").exists()          # nothing written on an error


def test_report_design_columns_keep_runs_apart(tmp_path, capsys):
    """Two learning rates in one table: two settings (never paired across lrs), each effect
    its own; the family's effect is the mean of the two setting effects."""
    a, b = _table(seed=2), _table(seed=3, shift=0.03)
    t = pd.concat([a.assign(lr=1e-3), b.assign(lr=1e-2)])
    csv = tmp_path / "lrs.csv"
    t.to_csv(csv, index=False)
    assert main(["report", str(csv), "--out", str(tmp_path / "o")]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if " − forward KL: " in ln][0]
    rows = pd.read_csv(tmp_path / "o" / "ledger.csv")
    assert len(rows) == 2 and rows["setting"].str.contains("lr=0.001").sum() == 1
    ea, eb = _split_mean_effect(a)[0], _split_mean_effect(b)[0]
    assert sorted(rows["effect_pts"]) == pytest.approx(sorted([ea, eb]), abs=1e-4)
    assert _nums(line)[0] == pytest.approx((ea + eb) / 2, abs=0.0051)


def test_real_sweep_ends_with_the_answer_lines(tmp_path, capsys, hub_env):
    """The last lines a `real` run prints are the answer lines of the table it wrote."""
    from conftest import write_tiny_real_config

    cfg = write_tiny_real_config(tmp_path, cache=tmp_path / "cache")
    text = cfg.read_text().replace('losses = ["forward_kl"]', 'losses = ["forward_kl", "reverse_kl"]')
    text = text.replace("seeds = [0]", "seeds = [0, 1, 2]")
    cfg.write_text(text)
    table = tmp_path / "out.csv"
    rc = main(["real", "--config", str(cfg), "--out", str(table)])
    out = capsys.readouterr().out
    assert rc == 0
    rc = main(["report", str(table), "--out", str(tmp_path / "rep")])
    report_out = capsys.readouterr().out
    assert rc == 0
    answer = [ln for ln in report_out.splitlines() if " − forward KL: " in ln]
    assert answer and out.rstrip("\n").splitlines()[-len(answer):] == answer
    # --quiet: no answer
    table.unlink()
    rc = main(["real", "--config", str(cfg), "--out", str(table), "--quiet"])
    assert rc == 0 and " − forward KL: " not in capsys.readouterr().out
    # one loss: no question, no answer (and no error)
    cfg.write_text(text.replace('losses = ["forward_kl", "reverse_kl"]', 'losses = ["reverse_kl"]'))
    rc = main(["real", "--config", str(cfg), "--out", str(tmp_path / "one.csv")])
    captured = capsys.readouterr()
    assert rc == 0 and "answer" not in captured.out and "short answer" not in captured.err
