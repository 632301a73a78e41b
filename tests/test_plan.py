"""The analysis plan (w2s_theory.plan) and the ledger built from it (w2s_theory.ledger.build).

Every number is checked against an independent computation written here (numpy / scipy /
statsmodels on the same small tables): the split-aware interval on split means, the seed-only
interval of split 0, the mixed model's interval, TOST, Holm within a family, the full
fine-tuning interval with its test-set bootstrap, the minimum detectable effect and claim 6's
Clopper-Pearson intervals. The no-silent-drop cases (a failed convex fit, a duplicated run, a
pending fit, an unpaired seed, a missing table) are built and each must be listed; claim 4 must
read capacity from the model registry (swapping the registry's parameter counts swaps the sign).
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2s_theory.config import ConfigError
from w2s_theory.ledger import (
    CHECK_COLUMNS,
    EXCLUDED_COLUMNS,
    LEDGER_FILES,
    ROW_COLUMNS,
    SUMMARY_COLUMNS,
    Ledger,
    build,
    write,
)
from w2s_theory.plan import default_plan, is_test_measured, load_plan

ROOT = Path(__file__).resolve().parents[1]
MAIN = "experiments/results/real/main.csv"
SPLITS_MAIN = "experiments/results/real/splits/main.csv"
NOISE = "experiments/results/real/noise.csv"
FT = "experiments/results/finetune/ft.csv"

HEADER = """
declared = "test"
status = "a test plan"
[replication]
split_column = "split"
committed_split = 0
resplit_table_pattern = "experiments/results/real/splits/{stem}.csv"
converged_seeds_per_split = [0, 1]
[statistics]
confidence = 0.95
alpha = 0.05
bootstrap_resamples = 2000
[margins]
m = 0.5
[verdicts]
words = ["better", "worse", "equivalent within margin", "inconclusive"]
order = ["equivalent within margin", "better", "worse", "inconclusive"]
summary_rule = "as analysis.toml"
[duplicates]
identity_columns = ["dataset", "weak", "strong", "loss", "confidence", "noise", "seed", "lr"]
[models]
aliases = { "SmolLM2-135M-layer15" = "SmolLM2-135M" }
[claim4]
weak_order = ["wordllama", "all-MiniLM-L6-v2"]
order_by = "model_registry_params"
[finetune_extension]
regime = "full_finetune"
mde_power = 0.8
"""

ACC_FAMILY = """
[[family]]
id = "c1.acc"
claim = 1
regime = "last_layer_minibatch"
contrast = "acc(reverse_kl) - acc(forward_kl)"
arms = ["reverse_kl", "forward_kl"]
direction = "+"
margin = "m"
paper_pts = [1.8]
[[family.member]]
table = "experiments/results/real/main.csv"
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"], ["all-MiniLM-L6-v2", "SmolLM2-135M-layer15"]]
confidence = false
noise = [0.0]
"""

COLUMN_FAMILY = """
[[family]]
id = "c1.converged"
claim = 1
regime = "last_layer_converged"
contrast = "cvx_rkl_acc - cvx_fkl_acc"
columns = ["cvx_rkl_acc", "cvx_fkl_acc"]
direction = "+"
margin = "m"
[[family.member]]
table = "experiments/results/real/main.csv"
unit_key = ["dataset", "weak", "strong", "noise", "seed"]
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0]
"""

SETTINGS = [("harmless", "wordllama", "all-MiniLM-L6-v2"),
            ("harmless", "all-MiniLM-L6-v2", "SmolLM2-135M-layer15")]


def _plan(tmp_path, body: str, header: str = HEADER):
    p = tmp_path / "plan.toml"
    p.write_text(header + body)
    return load_plan(p)


def _rows(settings=SETTINGS, splits=(0, 1, 2, 3), seeds=(0, 1, 2), losses=("forward_kl",
          "reverse_kl"), noises=(0.0,), effect=None, seed=0):
    """A small real-sweep table: split shifts, seed noise, and a per-setting effect."""
    rng = np.random.default_rng(seed)
    effect = effect or {}
    out = []
    for k, (ds, w, s) in enumerate(settings):
        for sp in splits:
            shift = rng.normal(0, 0.01)
            for sd in seeds:
                base = 0.6 + shift + rng.normal(0, 0.004)
                for q in noises:
                    for loss in losses:
                        e = effect.get((k, loss), 0.0) + (rng.normal(0, 0.003)
                                                          if loss != "forward_kl" else 0.0)
                        acc = base - 0.1 * q + e
                        out.append(dict(
                            run_key=f"{ds}|{w}|{s}|{loss}|{q}|{sd}|{sp}", dataset=ds, weak=w,
                            strong=s, loss=loss, confidence=False, noise=q, seed=sd, lr=1e-3,
                            student_acc=acc, weak_acc=0.55 + 0.01 * (w == "wordllama"),
                            ceiling_acc=0.66, cvx_rkl_acc=base + 0.002 + rng.normal(0, 0.001),
                            cvx_fkl_acc=base, cvx_rkl_status="Solved", cvx_fkl_status="Solved",
                            split=sp))
    return pd.DataFrame(out)


def _tables(df, committed=MAIN, resplit=SPLITS_MAIN):
    c = df[df["split"] == 0].drop(columns="split")
    t = {committed: c}
    if (df["split"] > 0).any():
        t[resplit] = df[df["split"] > 0]
    return t


def _diffs(df, a="reverse_kl", b="forward_kl", setting=SETTINGS[0], q=0.0):
    ds, w, s = setting
    g = df[(df.dataset == ds) & (df.weak == w) & (df.strong == s) & (df.noise == q)]
    wide = g.pivot_table(index=["split", "seed"], columns="loss", values="student_acc")
    return (100 * (wide[a] - wide[b])).rename("d").reset_index()


# ------------------------------------------------------------------------------ the plan file
def test_committed_plan_loads_with_its_families_kinds_and_margins():
    plan = load_plan(ROOT / "experiments" / "analysis.toml")
    kinds = {f.id: f.kind for f in plan.families}
    assert kinds["c1.minibatch.reverse_kl"] == "acc"
    assert kinds["c2.minibatch.reverse_ce.drop.0.4"] == "drop"
    assert kinds["c2.converged.reverse_kl.drop.0.4"] == "drop"
    assert kinds["c1.converged.reverse_kl"] == "column"
    assert kinds["c4.minibatch.forward_kl"] == "capacity"
    assert {f.margin for f in plan.families} == {0.5}
    assert plan.family("c5.minibatch.reverse_kl_vs_forward_at_0.5").direction == "-"
    assert plan.family("c2.minibatch.reverse_kl.acc.0.4").noise_level == 0.4
    assert plan.claim4_weak_order == ("wordllama", "all-MiniLM-L6-v2")
    assert {s.id for s in plan.sensitivity} >= {"lr_band", "other_trainers"}
    assert "read by the ledger" in plan.status
    assert plan.finetune["table"].endswith("cpu_4k_n4000.csv")
    assert all(m.table == plan.finetune["table"]
               for f in plan.families if f.regime == "full_finetune" for m in f.members)


@pytest.mark.parametrize("key", ["student_acc", "weak_acc", "ceiling_acc", "ceiling_auroc",
                                 "weak_auroc", "pgr", "student_ece", "t2test_truth_slack"])
def test_a_member_filter_on_a_test_measured_column_is_refused(tmp_path, key):
    body = ACC_FAMILY.replace("noise = [0.0]", f"noise = [0.0]\n{key} = [0.6]")
    with pytest.raises(ConfigError, match=rf"^plan: .*{key}.*test data"):
        _plan(tmp_path, body)


@pytest.mark.parametrize("key", ["select_by", "order_by", "best_by"])
def test_a_member_that_would_choose_by_a_key_is_refused(tmp_path, key):
    body = ACC_FAMILY.replace("noise = [0.0]", f'noise = [0.0]\n{key} = "student_acc"')
    with pytest.raises(ConfigError, match=rf"^plan: .*{key}.*chooses nothing"):
        _plan(tmp_path, body)


def test_is_test_measured_separates_measurements_from_coordinates():
    for c in ("student_acc", "ceiling_auroc", "weak_ece", "pgr", "cvx_rkl_t2fit_truth_slack"):
        assert is_test_measured(c), c
    for c in ("lr", "noise", "dataset", "weak", "strong", "seed", "n_test", "confidence",
              "role", "regime", "subset", "loss"):
        assert not is_test_measured(c), c


def test_claim4_ordered_by_accuracy_is_refused(tmp_path):
    header = HEADER.replace('order_by = "model_registry_params"', 'order_by = "weak_acc"')
    with pytest.raises(ConfigError, match=r"^plan: claim4.order_by"):
        _plan(tmp_path, ACC_FAMILY, header)


@pytest.mark.parametrize("edit, key", [
    (('margin = "m"', 'margin = "nope"'), "margin"),
    (('direction = "+"', 'direction = "up"'), "direction"),
    (('arms = ["reverse_kl", "forward_kl"]', 'arms = ["reverse_kl"]'), "arms"),
    (('id = "c1.acc"\n', ''), "id"),
])
def test_bad_plan_keys_are_named(tmp_path, edit, key):
    with pytest.raises(ConfigError, match=rf"^plan: .*{key}"):
        _plan(tmp_path, ACC_FAMILY.replace(*edit))


def test_missing_plan_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="^plan: "):
        load_plan(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[[family]\n")
    with pytest.raises(ConfigError, match="^plan: .*TOML"):
        load_plan(tmp_path / "bad.toml")


def test_default_plan_one_family_per_loss_and_noise_level():
    t = _rows(losses=("forward_kl", "reverse_kl", "reverse_ce"), noises=(0.0, 0.4))
    plan = default_plan(t)
    assert sorted(f.id for f in plan.families) == [
        "reverse_ce.vs.forward_kl.noise0", "reverse_ce.vs.forward_kl.noise0.4",
        "reverse_kl.vs.forward_kl.noise0", "reverse_kl.vs.forward_kl.noise0.4"]
    assert {f.margin for f in plan.families} == {0.5}
    assert {f.claim for f in plan.families} == {1, 2}
    with pytest.raises(ValueError, match="^frame: .*student_acc"):
        default_plan(t.drop(columns="student_acc"))
    with pytest.raises(ValueError, match="^frame: .*not a registered loss"):
        default_plan(t.assign(loss="my_loss"))
    with pytest.raises(ValueError, match="^reference: "):
        default_plan(t, reference="forward_ce")
    with pytest.raises(ValueError, match="^margin"):
        default_plan(t, margin=0)


# ------------------------------------------------------------------------------ statistics
def test_split_aware_ci_equals_an_independent_computation(tmp_path):
    df = _rows(effect={(0, "reverse_kl"): 0.004})
    led = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    r = led.rows.set_index("setting").loc["harmless:wordllama->all-MiniLM-L6-v2"]
    d = _diffs(df)
    means = d.groupby("split")["d"].mean().to_numpy()
    s = len(means)
    se = means.std(ddof=1) / math.sqrt(s)
    t = stats.t.ppf(0.975, s - 1)
    assert r["n_splits"] == 4 and r["n_pairs"] == 12
    assert r["effect_pts"] == pytest.approx(means.mean(), abs=1e-10)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((means.mean() - t * se,
                                                         means.mean() + t * se), abs=1e-10)
    assert r["p"] == pytest.approx(stats.ttest_1samp(means, 0).pvalue, rel=1e-9)
    # seed-only interval of split 0 beside it: scipy's one-sample t interval
    ci0 = stats.ttest_1samp(d[d.split == 0]["d"], 0).confidence_interval(0.95)
    assert (r["seed_ci_low"], r["seed_ci_high"]) == pytest.approx((ci0.low, ci0.high), abs=1e-10)
    # mixed model: statsmodels' own fit, t with S - 1 df
    import statsmodels.formula.api as smf

    fit = smf.mixedlm("d ~ 1", d, groups=d["split"]).fit(reml=True)
    mu, mse = float(fit.fe_params.iloc[0]), float(fit.bse_fe.iloc[0])
    assert (r["mixed_ci_low"], r["mixed_ci_high"]) == pytest.approx((mu - t * mse, mu + t * mse),
                                                                    rel=1e-4, abs=1e-6)


def test_tost_and_holm_within_the_family_against_scipy_and_statsmodels(tmp_path):
    from statsmodels.stats.multitest import multipletests

    df = _rows(effect={(0, "reverse_kl"): 0.001, (1, "reverse_kl"): 0.02}, seed=3)
    led = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    rows = led.rows.set_index("setting")
    ps, pts = [], []
    for setting in SETTINGS:
        means = _diffs(df, setting=setting).groupby("split")["d"].mean().to_numpy()
        lo = stats.ttest_1samp(means, -0.5, alternative="greater").pvalue
        hi = stats.ttest_1samp(means, 0.5, alternative="less").pvalue
        r = rows.loc[f"{setting[0]}:{setting[1]}->{setting[2]}"]
        assert r["p_tost"] == pytest.approx(max(lo, hi), rel=1e-9)
        ps.append(r["p"])
        pts.append(r["p_tost"])
    for col, raw in (("p_holm", ps), ("p_tost_holm", pts)):
        ref = multipletests(raw, method="holm")[1]
        got = [rows.loc[f"{s[0]}:{s[1]}->{s[2]}", col] for s in SETTINGS]
        assert got == pytest.approx(ref, rel=1e-12)
    words = dict(zip(led.rows["setting"], led.rows["word"]))
    assert words["harmless:all-MiniLM-L6-v2->SmolLM2-135M-layer15"] == "better"   # +2 points
    assert words["harmless:wordllama->all-MiniLM-L6-v2"] == "equivalent within margin"
    s = led.summary.iloc[0]
    assert (s["n_better"], s["n_equivalent"], s["word"]) == (1, 1, "better")
    assert bool(led.rows.set_index("setting").loc[
        "harmless:all-MiniLM-L6-v2->SmolLM2-135M-layer15", "holds"])


def test_summary_ci_is_split_aware_over_settings(tmp_path):
    df = _rows(effect={(0, "reverse_kl"): 0.004, (1, "reverse_kl"): -0.002}, seed=5)
    led = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    s = led.summary.iloc[0]
    per = pd.concat([_diffs(df, setting=x).assign(k=i) for i, x in enumerate(SETTINGS)])
    split_means = per.groupby(["split", "k"])["d"].mean().groupby(level=0).mean().to_numpy()
    eff = led.rows["effect_pts"].mean()
    half = stats.t.ppf(0.975, 3) * split_means.std(ddof=1) / 2
    assert s["effect_pts"] == pytest.approx(eff, abs=1e-10)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((eff - half, eff + half), abs=1e-10)


def test_split_0_only_is_inconclusive_with_its_seed_only_ci_visible(tmp_path):
    df = _rows(splits=(0,), seeds=tuple(range(6)), effect={(0, "reverse_kl"): 0.03})
    led = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    r = led.rows.set_index("setting").loc["harmless:wordllama->all-MiniLM-L6-v2"]
    ci = stats.ttest_1samp(_diffs(df)["d"], 0).confidence_interval(0.95)
    assert r["n_splits"] == 1 and r["word"] == "inconclusive"
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert r["ci_low"] > 0                       # the seed-only effect stays visible
    assert "split 0 only: seed-only CI" in r["note"]
    assert math.isnan(r["p_holm"])
    assert "split 0 only" in led.summary.iloc[0]["note"]


# ------------------------------------------------------------------------------ no silent drops
def test_failed_fit_and_duplicated_run_are_both_reported(tmp_path):
    body = COLUMN_FAMILY + ACC_FAMILY + """[[family.member]]
table = "experiments/results/real/noise.csv"
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0]
"""
    df = _rows()
    i = df.index[(df.split == 2) & (df.seed == 1) & (df.weak == "wordllama")]
    df.loc[i, "cvx_fkl_status"] = "error: RuntimeError: Clarabel returned no solution"
    df.loc[i, "cvx_fkl_acc"] = np.nan
    tables = _tables(df)
    # noise.csv repeats one run of main.csv (same run key, same result): a duplicate
    dup = tables[MAIN].iloc[[0]]
    tables[NOISE] = dup.copy()
    led = build(_plan(tmp_path, body), tables)
    ex = led.excluded
    failed = ex[ex.reason.str.startswith("failed fit")]
    assert len(failed) == 1 and failed.iloc[0]["family"] == "c1.converged"
    assert (failed.iloc[0]["split"], failed.iloc[0]["seed"]) == (2, 1)
    dups = ex[ex.reason.str.startswith("duplicate of")]
    assert len(dups) == 1 and dups.iloc[0]["run_key"] == dup.iloc[0]["run_key"]
    assert dups.iloc[0]["family"] == "c1.acc" and MAIN in dups.iloc[0]["reason"]
    # the failed fit's pair is out of the converged row, the duplicate counted once
    conv = led.rows[led.rows.family == "c1.converged"].iloc[0]
    assert conv["n_pairs"] == 4 * 3 - 1
    acc = led.rows[(led.rows.family == "c1.acc")].set_index("setting")
    assert acc.loc["harmless:wordllama->all-MiniLM-L6-v2", "n_pairs"] == 12
    assert list(ex.columns) == EXCLUDED_COLUMNS


def test_same_run_key_with_a_different_result_fails_loudly(tmp_path):
    body = ACC_FAMILY + """[[family.member]]
table = "experiments/results/real/noise.csv"
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0]
"""
    tables = _tables(_rows())
    dup = tables[MAIN].iloc[[0]].copy()
    dup["student_acc"] += 0.01
    tables[NOISE] = dup
    with pytest.raises(ValueError, match=r"family c1.acc: run .* appears twice with different"):
        build(_plan(tmp_path, body), tables)


def test_same_coordinates_under_another_run_key_are_a_duplicate(tmp_path):
    body = ACC_FAMILY + """[[family.member]]
table = "experiments/results/real/noise.csv"
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0]
"""
    tables = _tables(_rows())
    dup = tables[MAIN].iloc[[0, 1]].copy()
    dup["run_key"] = ["other1", "other2"]           # band.csv's case: other keys, same runs
    tables[NOISE] = dup
    led = build(_plan(tmp_path, body), tables)
    d = led.excluded[led.excluded.reason.str.contains("same coordinates")]
    assert sorted(d["run_key"]) == ["other1", "other2"]


def test_pending_fits_unpaired_seeds_and_missing_tables_are_listed(tmp_path):
    body = COLUMN_FAMILY + ACC_FAMILY.replace('id = "c1.acc"', 'id = "c1.b"') + """
[[family.member]]
table = "experiments/results/real/vader.csv"
dataset = ["vader"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0]
"""
    df = _rows()
    df.loc[(df.split == 3) & (df.seed == 2), ["cvx_rkl_acc", "cvx_fkl_acc"]] = np.nan
    df = df[~((df.split == 1) & (df.seed == 0) & (df.loss == "reverse_kl")
              & (df.weak == "wordllama"))]
    # a table not run yet is given as None (a dict lacking it is refused: see below)
    led = build(_plan(tmp_path, body), {**_tables(df), "experiments/results/real/vader.csv": None})
    ex = led.excluded
    pend = ex[(ex.family == "c1.converged")]
    assert list(pend.reason) == ["no convex fit planned for this seed (converged seeds per "
                                 "split: [0, 1])"]
    assert (pend.iloc[0]["split"], pend.iloc[0]["seed"]) == (3, 2)
    un = ex[(ex.family == "c1.b") & ex.reason.str.startswith("unpaired seed")]
    assert len(un) == 1 and (un.iloc[0]["split"], un.iloc[0]["seed"]) == (1, 0)
    assert "reverse_kl" in un.iloc[0]["reason"]
    miss = ex[(ex.family == "c1.b") & (ex.table == "experiments/results/real/vader.csv")]
    assert list(miss.reason) == ["missing table"]
    # seeds 0-1 without a fit are "pending"; seed 2 of a re-split has none planned
    df2 = _rows()
    df2.loc[(df2.split == 3) & (df2.seed == 1), "cvx_fkl_acc"] = np.nan
    led2 = build(_plan(tmp_path, COLUMN_FAMILY), _tables(df2))
    assert (led2.excluded.reason == "convex fit pending").sum() == 1


def test_missing_splits_and_seeds_of_the_replication_are_listed(tmp_path):
    header = HEADER.replace("converged_seeds_per_split = [0, 1]",
                            "converged_seeds_per_split = [0, 1]\nseeds_per_split = [0, 1, 2]"
                            "\nmin_random_splits = 3")
    df = pd.concat([_rows(settings=SETTINGS[:1], splits=(0, 1, 2)),
                    _rows(settings=SETTINGS[1:], splits=(0,))])
    df = df[~((df.split == 2) & (df.seed == 1))]
    led = build(_plan(tmp_path, ACC_FAMILY, header), _tables(df))
    ex = led.excluded.set_index("reason")
    assert ex.loc["no re-split rows (split 0 only): the split-aware interval cannot be formed",
                  "setting"] == "harmless:all-MiniLM-L6-v2->SmolLM2-135M-layer15"
    assert ex.loc["split absent (not run yet)", "split"] == 3
    assert (ex.loc["seed absent from the split (not run yet)", ["split", "seed"]].tolist()
            == [2, 1])
    assert len(led.excluded) == 3


def test_a_named_setting_absent_from_its_table_is_listed(tmp_path):
    df = _rows(settings=SETTINGS[:1])
    led = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    ex = led.excluded
    assert list(ex[ex.reason == "setting absent from table"]["setting"]) == [
        "harmless:all-MiniLM-L6-v2->SmolLM2-135M-layer15"]


# ------------------------------------------------------------------------------ claim 4
C4_FAMILY = """
[[family]]
id = "c4.fkl"
claim = 4
regime = "last_layer_minibatch"
contrast = "student(all-MiniLM-L6-v2) - student(wordllama), forward_kl"
loss = "forward_kl"
direction = "+"
margin = "m"
[[family.member]]
table = "experiments/results/real/main.csv"
dataset = ["harmless"]
weak = ["wordllama", "all-MiniLM-L6-v2"]
strong = ["SmolLM2-135M-layer15"]
confidence = false
noise = [0.0]
"""


def test_claim4_reads_capacity_from_the_registry_never_accuracies(tmp_path, monkeypatch):
    from w2s_theory import models

    settings = [("harmless", "wordllama", "SmolLM2-135M-layer15"),
                ("harmless", "all-MiniLM-L6-v2", "SmolLM2-135M-layer15")]
    # the higher-capacity weak model (MiniLM) gives +1 point; its weak accuracy is LOWER
    df = _rows(settings=settings, losses=("forward_kl",), effect={(1, "forward_kl"): 0.01})
    plan = _plan(tmp_path, C4_FAMILY)
    r = build(plan, _tables(df)).rows.iloc[0]
    ref = df.pivot_table(index=["split", "seed"], columns="weak", values="student_acc")
    d = 100 * (ref["all-MiniLM-L6-v2"] - ref["wordllama"])
    assert r["effect_pts"] == pytest.approx(d.groupby(level=0).mean().mean(), abs=1e-10)
    assert r["weak"] == "all-MiniLM-L6-v2 - wordllama" and r["effect_pts"] > 0
    assert "not used to order" in r["context"]
    # swap the registry's parameter counts: the order, hence the sign, follows the registry
    reg = dict(models.REGISTRY)
    w, m = reg["wordllama"], reg["all-MiniLM-L6-v2"]
    reg["wordllama"], reg["all-MiniLM-L6-v2"] = replace(w, params=m.params), replace(
        m, params=w.params)
    monkeypatch.setattr(models, "REGISTRY", reg)
    r2 = build(plan, _tables(df)).rows.iloc[0]
    assert r2["weak"] == "wordllama - all-MiniLM-L6-v2"
    assert r2["effect_pts"] == pytest.approx(-r["effect_pts"], abs=1e-12)


# ------------------------------------------------------------------------------ claim 2, 5, 6
def _noise_family(fid, contrast, noise):
    """A claim-2 family on one noise-table setting at 40 % flips, reading the given noise levels."""
    return f"""
[[family]]
id = "{fid}"
claim = 2
regime = "last_layer_minibatch"
contrast = "{contrast}"
arms = ["reverse_ce", "forward_kl"]
noise_level = 0.4
direction = "+"
margin = "m"
[[family.member]]
table = "experiments/results/real/noise.csv"
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = {noise}
"""


DROP_FAMILY = (_noise_family("c2.drop", "drop(forward_kl) - drop(reverse_ce) @ 0.4", [0.0, 0.4])
               + _noise_family("c2.acc", "acc(reverse_ce @ 0.4) - acc(forward_kl @ 0.4)", [0.4]))


def test_claim2_reports_drop_and_accuracy_under_noise(tmp_path):
    df = _rows(settings=SETTINGS[:1], losses=("forward_kl", "reverse_ce"), noises=(0.0, 0.4))
    # reverse CE starts 1 point lower and loses 3 points less under 40 % flips
    df.loc[(df.loss == "reverse_ce") & (df.noise == 0.0), "student_acc"] -= 0.01
    df.loc[(df.loss == "reverse_ce") & (df.noise == 0.4), "student_acc"] += 0.02
    led = build(_plan(tmp_path, DROP_FAMILY), _tables(df, NOISE,
                                                      "experiments/results/real/splits/noise.csv"))
    rows = led.rows.set_index("family")
    a4 = _diffs(df, "reverse_ce", q=0.4)
    a0 = _diffs(df, "reverse_ce", q=0.0)
    drop = a4.assign(d=a4["d"] - a0["d"])
    assert rows.loc["c2.drop", "effect_pts"] == pytest.approx(
        drop.groupby("split")["d"].mean().mean(), abs=1e-10)
    assert rows.loc["c2.acc", "effect_pts"] == pytest.approx(
        a4.groupby("split")["d"].mean().mean(), abs=1e-10)
    assert rows.loc["c2.drop", "effect_pts"] == pytest.approx(3.0, abs=0.5)
    assert rows.loc["c2.acc", "effect_pts"] == pytest.approx(2.0, abs=0.5)


def test_claim6_checks_count_with_clopper_pearson_from_the_named_tables(tmp_path):
    body = ACC_FAMILY + """
[[claim6]]
table = "experiments/results/real/main.csv"
unit_key = ["dataset", "weak", "strong", "noise", "seed"]
columns = ["cvx_rkl_t2fit_ceil_holds", "cvx_rkl_t2fit_truth_slack"]
confidence = false
covered = "cvx_rkl_t2fit_ceil_holds; the truth check is descriptive"
"""
    df = _rows()
    rng = np.random.default_rng(1)
    df["cvx_rkl_t2fit_ceil_holds"] = True
    df["cvx_rkl_duality_gap"] = 1e-9
    slack = rng.normal(0, 1, len(df))
    df["cvx_rkl_t2fit_truth_slack"] = slack
    led = build(_plan(tmp_path, body), _tables(df))
    ch = led.checks.set_index(["column", "scope"])
    units = df[df.split == 0].drop_duplicates(["dataset", "weak", "strong", "noise", "seed"])
    n = len(units)
    k = int((units["cvx_rkl_t2fit_truth_slack"] >= -1e-9).sum())
    r = ch.loc[("cvx_rkl_t2fit_truth_slack", "split 0")]
    assert (r["n"], r["n_holds"]) == (n, k)
    # Clopper-Pearson from beta quantiles
    lo = stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0
    hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi), rel=1e-8)
    assert r["word"] == "descriptive" and not r["covered"]
    c = ch.loc[("cvx_rkl_t2fit_ceil_holds", "split 0")]
    assert c["covered"] and c["word"] == "holds"
    assert ch.loc[("cvx_rkl_t2fit_ceil_holds", "re-splits"), "n"] == len(
        df[df.split > 0].drop_duplicates(["dataset", "weak", "strong", "noise", "seed", "split"]))
    assert list(led.checks.columns) == CHECK_COLUMNS
    assert set(led.checks["table"]) == {MAIN}


def test_claim5_statement_reports_every_loss_against_chance(tmp_path):
    body = ACC_FAMILY.replace('id = "c1.acc"', 'id = "c5"').replace("claim = 1", "claim = 5") \
        .replace('direction = "+"', 'direction = "-"\nnoise_level = 0.5') \
        .replace("noise = [0.0]", "noise = [0.5]")
    header = HEADER + '[claim5]\nchance_statement = "every loss reaches chance"\n'
    df = _rows(noises=(0.5,), losses=("forward_kl", "reverse_kl", "reverse_ce"))
    df["student_acc"] = 0.5 + (df["student_acc"] - 0.55)
    led = build(_plan(tmp_path, body, header), _tables(df))
    st = led.statements[0]
    assert st.startswith("claim 5 (stated, not tested): every loss reaches chance")
    for loss in ("forward_kl", "reverse_kl", "reverse_ce"):
        per = (100 * (df[df.loss == loss]["student_acc"] - 0.5)).groupby(
            [df["split"], df["seed"]]).mean().groupby(level=0).mean()
        assert f"{loss} {per.mean():+.2f}" in st
    assert led.rows.iloc[0]["direction"] == "-"


# ------------------------------------------------------------------------------ sensitivity
def test_sensitivity_families_are_their_own_holm_family_never_pooled(tmp_path):
    sens = """
[[sensitivity]]
id = "band"
what = "other lrs"
table = "experiments/results/real/band.csv"
lr = [1e-4, 1e-2]
pooled = false
"""
    df = _rows(seed=7)
    band = pd.concat([_rows(seed=8).assign(lr=1e-4), _rows(seed=9).assign(lr=1e-2)])
    band = band[band.split == 0].drop(columns="split")
    band["run_key"] = band["run_key"] + "|" + band["lr"].astype(str)
    base = build(_plan(tmp_path, ACC_FAMILY), _tables(df))
    led = build(_plan(tmp_path, ACC_FAMILY + sens),
                {**_tables(df), "experiments/results/real/band.csv": band})
    fams = set(led.summary["family"])
    assert fams == {"c1.acc", "sens.band.lr0.0001.c1.acc", "sens.band.lr0.01.c1.acc"}
    prim = led.rows[led.rows.family == "c1.acc"].reset_index(drop=True)
    pd.testing.assert_frame_equal(prim, base.rows.reset_index(drop=True))
    with pytest.raises(ConfigError, match="^plan: sensitivity.*pooled"):
        _plan(tmp_path, ACC_FAMILY + sens.replace("pooled = false", "pooled = true"))


# ------------------------------------------------------------------------------ fine-tuning
FT_FAMILY = """
[[family]]
id = "c1.ft"
claim = 1
regime = "full_finetune"
contrast = "acc(reverse_kl) - acc(forward_kl)"
arms = ["reverse_kl", "forward_kl"]
direction = "+"
margin = "m"
[[family.member]]
table = "experiments/results/finetune/ft.csv"
subset = ["harmless"]
regime = ["full"]
role = ["student"]
noise = [0.0]
"""


def _ft_tables(tmp_path, noises):
    rng = np.random.default_rng(4)
    n_test, seeds = 400, range(5)
    y = rng.integers(0, 2, n_test)
    rows, keys, logits = [], [], []
    for sd in seeds:
        for q in noises:
            for loss in ("forward_kl", "reverse_kl"):
                z = (2 * y - 1) * rng.normal(0.3 - 0.3 * q, 1.0, n_test)     # ~62 % correct
                k = f"{loss}{sd}@{q}"
                keys.append(k)
                logits.append(z.astype(np.float32))
                rows.append(dict(run_key=k, subset="harmless", weak="wordllama",
                                 strong="all-MiniLM-L6-v2", regime="full", role="student",
                                 loss=loss, noise=q, seed=sd,
                                 student_acc=float(((z > 0) == y).mean())))
    (tmp_path / "experiments" / "results" / "finetune").mkdir(parents=True)
    np.savez(tmp_path / "experiments/results/finetune/ft.preds.npz", keys=np.array(keys),
             logits=np.stack(logits))
    t = pd.DataFrame(rows)
    t.to_csv(tmp_path / FT, index=False)
    corr = {k: ((np.asarray(z) > 0) == y).astype(float) for k, z in zip(keys, logits)}
    return t, corr, seeds, n_test


def test_finetune_drop_ci_adds_the_test_bootstrap_of_the_drop(tmp_path):
    t, corr, seeds, n_test = _ft_tables(tmp_path, (0.0, 0.4))
    body = FT_FAMILY.replace('contrast = "acc(reverse_kl) - acc(forward_kl)"',
                             'contrast = "drop(forward_kl) - drop(reverse_kl) @ 0.4"\n'
                             'noise_level = 0.4').replace("noise = [0.0]", "noise = [0.0, 0.4]")
    r = build(_plan(tmp_path, body), root=tmp_path).rows.iloc[0]
    assert r["kind"] == "drop"
    delta = np.mean([(corr[f"reverse_kl{s}@0.4"] - corr[f"forward_kl{s}@0.4"])
                     - (corr[f"reverse_kl{s}@0.0"] - corr[f"forward_kl{s}@0.0"])
                     for s in seeds], axis=0)
    acc = t.set_index(["loss", "noise", "seed"])["student_acc"]
    d = np.array([100 * ((acc["reverse_kl", 0.4, s] - acc["forward_kl", 0.4, s])
                         - (acc["reverse_kl", 0.0, s] - acc["forward_kl", 0.0, s]))
                  for s in seeds])
    se = math.sqrt(d.var(ddof=1) / 5 + 1e4 * delta.var() / n_test)
    half = stats.t.ppf(0.975, 4) * se
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half),
                                                        rel=1e-6)


def test_finetune_ci_adds_the_test_bootstrap_from_stored_logits(tmp_path):
    t, corr, seeds, n_test = _ft_tables(tmp_path, (0.0,))
    plan = _plan(tmp_path, FT_FAMILY)
    r = build(plan, root=tmp_path).rows.iloc[0]
    # independent: per-pair paired differences with the true labels
    delta = np.mean([corr[f"reverse_kl{s}@0.0"] - corr[f"forward_kl{s}@0.0"] for s in seeds],
                    axis=0)
    var_boot = 1e4 * delta.var() / n_test
    d = 100 * (t[t.loss == "reverse_kl"]["student_acc"].to_numpy()
               - t[t.loss == "forward_kl"]["student_acc"].to_numpy())
    se = math.sqrt(d.var(ddof=1) / 5 + var_boot)
    half = stats.t.ppf(0.975, 4) * se
    assert r["effect_pts"] == pytest.approx(d.mean(), abs=1e-9)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half),
                                                        rel=1e-6)
    mde = (stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * se
    assert f"minimum detectable effect {mde:.2f} pts" in r["note"]
    assert "seed + test-bootstrap" in r["note"]
    # a plain bootstrap over the test pairs agrees with the closed form
    idx = np.random.default_rng(0).integers(0, n_test, (4000, n_test))
    assert 1e4 * delta[idx].mean(axis=1).var() == pytest.approx(var_boot, rel=0.1)
    # without the prediction store: the seed-only interval, said in the note
    (tmp_path / "experiments/results/finetune/ft.preds.npz").unlink()
    r2 = build(plan, root=tmp_path).rows.iloc[0]
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (r2["ci_low"], r2["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert "test-bootstrap not computed: ft.preds.npz missing" in r2["note"]


# ------------------------------------------------------------------------------ build / write
def test_default_plan_on_a_user_table_builds_and_writes(tmp_path):
    t = _rows(losses=("forward_kl", "reverse_kl"), seed=2)
    plan = default_plan(t)
    led = build(plan, {"results.csv": t})
    assert isinstance(led, Ledger)
    assert list(led.rows.columns) == ROW_COLUMNS and list(led.summary.columns) == SUMMARY_COLUMNS
    assert len(led.rows) == 2 and (led.rows["n_splits"] == 4).all()
    paths = write(led, tmp_path / "out")
    assert [p.name for p in paths] == list(LEDGER_FILES)
    back = pd.read_csv(paths[0])
    assert back["effect_pts"].to_numpy() == pytest.approx(led.rows["effect_pts"].to_numpy(),
                                                          rel=1e-5)
    with pytest.raises(TypeError, match="^plan: "):
        build({"family": []})
    with pytest.raises(TypeError, match="^tables: "):
        build(plan, [t])
    with pytest.raises(TypeError, match="^ledger: "):
        write(led.rows, tmp_path)


def test_ledger_module_help_writes_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-m", "w2s_theory.ledger", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--plan" in out.stdout and "--out" in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_ledger_module_bad_plan_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[[family]\n")
    out = subprocess.run([sys.executable, "-m", "w2s_theory.ledger", "--plan", str(bad),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and out.stderr.startswith("error: plan: ")


def test_plan_docstrings_parse_without_griffe_warnings(caplog):
    import inspect
    import logging

    import griffe

    import w2s_theory.ledger as ledger
    import w2s_theory.plan as plan_mod

    caplog.set_level(logging.WARNING)
    objs = [getattr(plan_mod, n) for n in plan_mod.__all__] + [
        getattr(ledger, n) for n in ("Ledger", "build", "write", "summary_text")]
    docs = [inspect.getdoc(o) for o in objs if callable(o) and inspect.getdoc(o)]
    assert len(docs) >= 10
    for doc in docs:
        griffe.Docstring(doc, lineno=1, parser="google").parse()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                and "No type or annotation" not in r.getMessage()]


def test_claim2_lr_dependence_statement_per_lr(tmp_path):
    sens = """
[[sensitivity]]
id = "band"
what = "other lrs"
table = "experiments/results/real/band.csv"
lr = [1e-4, 1e-2]
pooled = false
"""
    parts = []
    for i, lr in enumerate((1e-4, 1e-2)):
        b = _rows(settings=SETTINGS[:1], splits=(0,), losses=("forward_kl", "reverse_ce"),
                  noises=(0.0, 0.4), seed=10 + i).assign(lr=lr)
        b.loc[b.loss == "forward_kl", "student_acc"] -= 0.02 * i      # forward KL falls with lr
        parts.append(b)
    band = pd.concat(parts).drop(columns="split")
    band["run_key"] = band["run_key"] + "|" + band["lr"].astype(str)
    df = _rows(settings=SETTINGS[:1], losses=("forward_kl", "reverse_ce"), noises=(0.0, 0.4))
    tables = {**_tables(df, NOISE, "experiments/results/real/splits/noise.csv"),
              "experiments/results/real/band.csv": band}
    led = build(_plan(tmp_path, DROP_FAMILY + sens), tables)
    st = [s for s in led.statements if s.startswith("claim 2, lr dependence")]
    assert len(st) == 1 and "40% flips" in st[0]
    q = band[band.noise == 0.4]
    ref = (100 * (q["student_acc"] - q["weak_acc"])).groupby([q["lr"], q["loss"]]).mean()
    for (lr, loss), v in ref.items():
        assert f"{loss} {v:+.2f}" in st[0].split(f"lr {lr:g}: ")[1].split(";")[0]
    assert {"sens.band.lr0.0001.c2.drop", "sens.band.lr0.01.c2.acc"} <= set(led.summary.family)


def test_converged_drop_lists_the_fit_left_without_its_partner(tmp_path):
    body = """
[[family]]
id = "c2.cvx.drop"
claim = 2
regime = "last_layer_converged"
contrast = "drop(cvx_fkl_acc) - drop(cvx_rkl_acc) @ 0.4"
columns = ["cvx_rkl_acc", "cvx_fkl_acc"]
noise_level = 0.4
direction = "+"
margin = "m"
[[family.member]]
table = "experiments/results/real/noise.csv"
unit_key = ["dataset", "weak", "strong", "noise", "seed"]
dataset = ["harmless"]
pairs = [["wordllama", "all-MiniLM-L6-v2"]]
confidence = false
noise = [0.0, 0.4]
"""
    df = _rows(settings=SETTINGS[:1], splits=(0, 1, 2), seeds=(0, 1), noises=(0.0, 0.4))
    bad = (df.split == 1) & (df.seed == 0) & (df.noise == 0.0)
    df.loc[bad, "cvx_fkl_status"] = "error: solver"
    led = build(_plan(tmp_path, body), _tables(df, NOISE,
                                               "experiments/results/real/splits/noise.csv"))
    ex = led.excluded
    assert list(ex.reason.str[:10]) == ["failed fit", "unpaired f"]
    assert ex.iloc[1]["reason"] == "unpaired fit (no usable fit at noise 0 for this split and seed)"
    r = led.rows.iloc[0]
    u = df[~bad].drop_duplicates(["split", "seed", "noise"]).assign(
        v=lambda t: 100 * (t.cvx_rkl_acc - t.cvx_fkl_acc)).pivot_table(
        index=["split", "seed"], columns="noise", values="v").dropna()
    d = (u[0.4] - u[0.0]).groupby(level=0).mean()
    assert r["n_pairs"] == 5 and r["effect_pts"] == pytest.approx(d.mean(), abs=1e-10)


# ------------------------------------------------------------------------------ bad inputs (review)
@pytest.mark.parametrize("bad", [5, None, b"experiments/analysis.toml", ["analysis.toml"]])
def test_load_plan_refuses_a_path_of_the_wrong_type_naming_it(bad):
    with pytest.raises(TypeError, match=r"^plan: path: must be a path \(str or os.PathLike\)"):
        load_plan(bad)


def test_default_plan_refuses_a_table_name_that_is_not_a_path():
    t = pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 2, "seed": [0, 0, 1, 1],
                      "student_acc": [0.6, 0.62, 0.61, 0.6]})
    for bad in (5, None, b"results.csv", ["results.csv"]):
        with pytest.raises(TypeError, match="^table: must be a path"):
            default_plan(t, table=bad)
    with pytest.raises(ValueError, match="^table: must be a path, got ''"):
        default_plan(t, table="")
    assert default_plan(t, table=Path("mine") / "r.csv").tables() == ["mine/r.csv"]


def test_build_tables_keys_are_paths_and_every_plan_table_is_given(tmp_path):
    df = _rows(settings=SETTINGS[:1], splits=(0,))
    plan = _plan(tmp_path, ACC_FAMILY)
    with pytest.raises(TypeError, match="^tables: keys must be table paths"):
        build(plan, {5: df})
    with pytest.raises(ValueError, match=f"^tables: lacks '{MAIN}'"):
        build(plan, {})
    with pytest.raises(ValueError, match=f"^tables: lacks '{MAIN}'"):
        build(plan, {"experiments/results/real/other.csv": df})
    with pytest.raises(ValueError, match="^tables: holds no DataFrame"):
        build(plan, {MAIN: None})
    two = ACC_FAMILY + ACC_FAMILY.replace('"c1.acc"', '"c1.two"').replace(MAIN, NOISE)
    with pytest.raises(ValueError, match=f"^tables: lacks '{NOISE}'"):
        build(_plan(tmp_path, two), {MAIN: df})
    # a PathLike key is the same table as its text; None: not run yet, listed
    a = build(plan, {Path(MAIN): df})
    b = build(plan, {MAIN: df})
    pd.testing.assert_frame_equal(a.rows, b.rows)
    led = build(_plan(tmp_path, two), {MAIN: df, NOISE: None})
    assert list(led.excluded[led.excluded.family == "c1.two"].reason) == ["missing table"]


def _repo(tmp_path, df=None):
    root = tmp_path / "repo"
    (root / "experiments" / "results" / "real").mkdir(parents=True)
    if df is not None:
        df.to_csv(root / MAIN, index=False)
    return root


def test_damaged_tables_stop_the_build_naming_the_file(tmp_path):
    from w2s_theory.results_table import ResultTable, ResultTableError

    df = _rows(settings=SETTINGS[:1], splits=(0,)).drop(columns="split")
    plan = _plan(tmp_path, ACC_FAMILY)
    root = _repo(tmp_path)
    # a file that does not exist: listed, not an error
    led = build(plan, root=root)
    assert "missing table" in set(led.excluded.reason) and len(led.rows) == 0
    (root / MAIN).write_bytes(b"")                                  # 0 bytes
    with pytest.raises(ResultTableError, match=r"main\.csv: empty file \(0 bytes\)"):
        build(plan, root=root)
    (root / MAIN).write_bytes(b"\x00\x01\x02binary\xff\xfe")        # not a CSV
    with pytest.raises(ValueError, match=r"main\.csv"):
        build(plan, root=root)
    g = df.astype({"student_acc": object})
    g.loc[3, "student_acc"] = "0.6x"                                 # a garbled cell
    g.to_csv(root / MAIN, index=False)
    with pytest.raises(ResultTableError, match=r"main\.csv: column 'student_acc', data row 3 "
                                               r"\(line 5\): '0\.6x' is not a number"):
        build(plan, root=root)
    with pytest.raises(ValueError, match=rf"^tables: {MAIN}: column 'student_acc', data row 3"):
        build(plan, {MAIN: g})
    # a typed table (schema sidecar) is read by results_table.read_table, strict
    (root / MAIN).unlink()
    rt = ResultTable(root / MAIN)
    for r in df.to_dict("records"):
        rt.append(r)
    ok = build(plan, root=root)
    assert len(ok.rows) == 1
    text = (root / MAIN).read_text().splitlines()
    text[2] = text[2].replace(repr(float(df.iloc[1]["student_acc"])), "garbled", 1)
    assert "garbled" in text[2]
    (root / MAIN).write_text("\n".join(text) + "\n")
    with pytest.raises(ResultTableError, match=r"main\.csv.*student_acc"):
        build(plan, root=root)


def test_genuine_nan_accuracy_stays_an_excluded_entry(tmp_path):
    df = _rows(settings=SETTINGS[:1], splits=(0,)).drop(columns="split")
    df["fit_status"] = "finished"
    i = df.index[(df.loss == "reverse_kl") & (df.seed == 1)][0]
    df.loc[i, ["student_acc", "fit_status"]] = [np.nan, "no_minimizer"]
    j = df.index[(df.loss == "reverse_kl") & (df.seed == 2)][0]
    df.loc[j, "student_acc"] = np.nan
    root = _repo(tmp_path, df)
    led = build(_plan(tmp_path, ACC_FAMILY), root=root)
    ex = led.excluded[led.excluded.seed != ""]
    assert list(ex.seed) == [1, 2, 1, 2]
    assert ex.reason.iloc[0].startswith("no_minimizer")
    assert ex.reason.iloc[1] == "no accuracy (NaN); fit_status 'finished'"
    assert list(ex.reason.iloc[2:]) == ["unpaired seed (no reverse_kl @ 0)"] * 2
    assert int(led.rows.iloc[0]["n_pairs"]) == 1


SYN = "experiments/synthetic/results/noise.csv"
SYN_SENS = f"""
[[sensitivity]]
id = "synthetic_noise"
what = "synthetic flips sweep"
table = "{SYN}"
pooled = false
"""


def _synthetic(seed=0, splits=(0,)):
    """A synthetic sweep as the committed one: method = head/loss, noise_frac, weak_noise,
    test_acc_strong; reverse CE has no minimiser on the softmax head (NaN)."""
    rng = np.random.default_rng(seed)
    out = []
    for head, sp in [(h, sp) for h in ("softmax", "minibatch") for sp in splits]:
        for q in (0.0, 0.4):
            for sd in range(4):
                base = 0.74 - 0.1 * q + rng.normal(0, 0.01)
                for loss in ("forward_kl", "reverse_kl", "reverse_ce"):
                    nomin = head == "softmax" and loss == "reverse_ce"
                    acc = np.nan if nomin else base + (0.01 if loss != "forward_kl" else 0) \
                        + rng.normal(0, 0.003)
                    out.append(dict(run_key=f"{head}|{loss}|{q}|{sd}|{sp}", split=sp,
                                    method=f"{head}/{loss}",
                                    head=head, loss=loss, noise_frac=q, weak_noise=1.0, seed=sd,
                                    test_acc_strong=acc,
                                    fit_status="no_minimizer" if nomin else "finished"))
    return pd.DataFrame(out)


def test_synthetic_sensitivity_gives_rows_per_head_with_their_own_holm(tmp_path):
    from w2s_theory.ledger import holm

    body = ACC_FAMILY + ACC_FAMILY.replace('"c1.acc"', '"c1.ce"').replace(
        '["reverse_kl", "forward_kl"]', '["reverse_ce", "forward_kl"]') + SYN_SENS
    df = _rows()
    syn = _synthetic(splits=(0, 1, 2))
    led = build(_plan(tmp_path, body), {**_tables(df), SYN: syn})
    base = build(_plan(tmp_path, body.replace(SYN_SENS, "")), _tables(df))
    prim = led.rows[~led.rows.family.str.startswith("sens.")].reset_index(drop=True)
    pd.testing.assert_frame_equal(prim, base.rows.reset_index(drop=True))
    sens = led.rows[led.rows.family == "sens.synthetic_noise.c1.acc"]
    assert sorted(sens.setting) == ["synthetic:weak_noise=1.0->minibatch",
                                    "synthetic:weak_noise=1.0->softmax"]
    for head in ("softmax", "minibatch"):
        g = syn[(syn["head"] == head) & (syn.noise_frac == 0.0)]
        w = g.pivot(index=["split", "seed"], columns="loss", values="test_acc_strong")
        d = 100 * (w["reverse_kl"] - w["forward_kl"])
        m = d.groupby(level="split").mean()
        r = sens[sens.setting.str.endswith(head)].iloc[0]
        assert r["effect_pts"] == pytest.approx(m.mean(), abs=1e-9)
        assert int(r["n_splits"]) == 3 and int(r["n_pairs"]) == 12
        assert r["ci_low"] == pytest.approx(
            m.mean() - stats.t.ppf(0.975, 2) * m.std(ddof=1) / math.sqrt(3), abs=1e-9)
        d0 = d.loc[0]
        assert r["seed_ci_low"] == pytest.approx(
            d0.mean() - stats.t.ppf(0.975, 3) * d0.std(ddof=1) / 2, abs=1e-9)
        assert r["p"] == pytest.approx(stats.ttest_1samp(m, 0.0).pvalue, rel=1e-9)
    # Holm within the sensitivity family only (never with the primary family)
    np.testing.assert_allclose(sens["p_holm"], holm(sens["p"].to_numpy(float)), rtol=1e-12)
    assert (sens["p_holm"] < 1).any()
    # reverse CE: the softmax head has no minimiser (listed), the minibatch head forms rows
    ce = led.rows[led.rows.family == "sens.synthetic_noise.c1.ce"]
    assert list(ce.setting) == ["synthetic:weak_noise=1.0->minibatch"]
    ex = led.excluded[led.excluded.family == "sens.synthetic_noise.c1.ce"]
    nomin = ex[ex.reason.str.startswith("no_minimizer")]
    assert len(nomin) == 12 and set(nomin.setting) == {"synthetic:weak_noise=1.0->softmax"}
    assert ex.reason.str.startswith("unpaired seed").sum() == 12    # forward KL left alone
    # a contrast whose noise level the table lacks is listed as not formed
    q = ACC_FAMILY.replace('"c1.acc"', '"c2.acc"').replace("claim = 1", "claim = 2").replace(
        'margin = "m"', 'margin = "m"\nnoise_level = 0.3').replace("noise = [0.0]",
                                                                   "noise = [0.3]")
    led3 = build(_plan(tmp_path, q + SYN_SENS),
                 {**_tables(_rows(noises=(0.3,))), SYN: _synthetic()})
    why = led3.excluded[led3.excluded.family == "sens.synthetic_noise.c2.acc"].reason
    assert list(why) == ["contrast not formed: noise level(s) [0.3] not in the table "
                         "(levels [0.0, 0.4])"]
