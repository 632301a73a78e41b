"""w2s_theory.verdicts: split-aware effects, TOST and the four verdict words (issue 18, step 2).

Every number is checked against an independent computation (scipy.stats one-sample t-tests,
statsmodels' formula interface for the mixed model, explicit per-split loops), never against
a stored value. The split problem of issue 18 is reproduced on a constructed table: the
seed-only interval says "better", the split-aware one "inconclusive".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2s_theory.config import toml_module
from w2s_theory.verdicts import VERDICT_WORDS, paired_effect_by_split, tost, verdict

ROOT = Path(__file__).resolve().parents[1]

#: 3 splits x 4 seeds, by hand: the split means are 1.0, -0.5 and 0.75 (points).
HAND = pd.DataFrame({
    "split": [0] * 4 + [1] * 4 + [2] * 4,
    "seed": [0, 1, 2, 3] * 3,
    "diff": [0.8, 1.2, 0.9, 1.1, -0.7, -0.2, -0.6, -0.5, 0.5, 1.0, 0.7, 0.8],
})


# ============================================================================ split-aware CI
def test_split_aware_ci_equals_an_independent_computation_on_a_hand_made_table():
    means = []
    for s in (0, 1, 2):
        vals = [d for sp, d in zip(HAND["split"], HAND["diff"]) if sp == s]
        means.append(sum(vals) / len(vals))
    assert means == pytest.approx([1.0, -0.5, 0.75])
    # by hand: mean 5/12, sd of the three means, t_{0.975, 2}
    grand = sum(means) / 3
    sd = math.sqrt(sum((m - grand) ** 2 for m in means) / 2)
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)
    ref = stats.ttest_1samp(means, 0.0)
    ci = ref.confidence_interval(0.95)

    e = paired_effect_by_split(HAND)
    assert (e.n_splits, e.n_seeds, e.n_runs, e.df, e.single_split) == (3, 4, 12, 2.0, False)
    assert e.effect == pytest.approx(grand) == pytest.approx(5 / 12)
    assert (e.ci_low, e.ci_high) == pytest.approx((grand - half, grand + half), rel=1e-12)
    assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert e.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert e.se == pytest.approx(sd / math.sqrt(3), rel=1e-12)


def test_split_means_averages_splits_not_runs_when_unbalanced():
    t = HAND.drop(index=[0, 1]).reset_index(drop=True)        # split 0 keeps seeds 2, 3
    means = [t.loc[t.split == s, "diff"].mean() for s in (0, 1, 2)]
    e = paired_effect_by_split(t)
    assert e.effect == pytest.approx(np.mean(means))
    assert e.effect != pytest.approx(t["diff"].mean())
    assert e.seed_only_effect == pytest.approx(t["diff"].mean())


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_seed_only_ci_equals_scipy_ttest_1samp(confidence):
    ref = stats.ttest_1samp(HAND["diff"].to_numpy(), 0.0)
    ci = ref.confidence_interval(confidence)
    e = paired_effect_by_split(HAND, confidence=confidence)
    assert (e.seed_only_ci_low, e.seed_only_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert e.seed_only_p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert e.seed_only_df == ref.df == 11
    assert e.confidence == confidence


def test_one_split_gives_the_seed_only_interval_and_says_so():
    one = HAND[HAND.split == 0]
    for method in ("split_means", "mixed"):
        e = paired_effect_by_split(one, method=method)
        assert e.single_split and e.n_splits == 1 and "one split" in e.note
        assert (e.effect, e.se, e.df, e.ci_low, e.ci_high, e.p_value) == (
            e.seed_only_effect, e.seed_only_se, e.seed_only_df, e.seed_only_ci_low,
            e.seed_only_ci_high, e.seed_only_p_value)
        ci = stats.ttest_1samp(one["diff"].to_numpy(), 0.0).confidence_interval()
        assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high))


def test_fewer_than_two_runs_or_splits_give_nan_intervals():
    e = paired_effect_by_split(HAND.iloc[:1])
    assert e.effect == 0.8 and math.isnan(e.ci_low) and math.isnan(e.seed_only_ci_high)
    assert verdict(e.ci_low, e.ci_high, 0.5) == "inconclusive"


def test_custom_column_names():
    t = HAND.rename(columns={"diff": "rev_minus_fwd", "split": "resplit", "seed": "s"})
    e = paired_effect_by_split(t, value="rev_minus_fwd", split="resplit", seed="s")
    assert e == paired_effect_by_split(HAND)


def test_mixed_model_equals_the_declared_statsmodels_call():
    """The plan's [statistics].mixed_model: mixedlm('d ~ 1', groups='split').fit(reml=True)."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    split_eff = rng.normal(0.3, 0.6, size=5)
    t = pd.DataFrame({"split": np.repeat(np.arange(5), 4), "seed": np.tile(np.arange(4), 5)})
    t["d"] = split_eff[t.split] + rng.normal(0, 0.2, size=len(t))
    t = t.drop(index=[3, 7]).reset_index(drop=True)               # unbalanced
    fit = smf.mixedlm("d ~ 1", t, groups="split").fit(reml=True)
    e = paired_effect_by_split(t, value="d", method="mixed")
    assert e.method == "mixed" and e.df == 4.0
    assert e.effect == pytest.approx(fit.fe_params["Intercept"], rel=1e-6)
    assert e.se == pytest.approx(fit.bse_fe["Intercept"], rel=1e-4)
    half = stats.t.ppf(0.975, 4) * e.se
    assert (e.ci_low, e.ci_high) == pytest.approx((e.effect - half, e.effect + half))


def test_mixed_equals_split_means_on_a_balanced_table_with_split_variance():
    a = paired_effect_by_split(HAND, method="split_means")
    b = paired_effect_by_split(HAND, method="mixed")
    assert b.effect == pytest.approx(a.effect, rel=1e-8)
    assert b.se == pytest.approx(a.se, rel=1e-4)
    assert (b.ci_low, b.ci_high) == pytest.approx((a.ci_low, a.ci_high), rel=1e-4)


def test_mixed_model_reports_a_zero_split_variance():
    t = pd.DataFrame({"split": [0, 0, 0, 1, 1, 1, 2, 2, 2], "seed": [0, 1, 2] * 3,
                      "diff": [0.1, 0.5, 0.3, 0.5, 0.1, 0.3, 0.3, 0.5, 0.1]})  # equal split means
    e = paired_effect_by_split(t, method="mixed")
    assert "boundary" in e.note


# ============================================================================ the split problem
def test_seed_only_says_better_where_the_split_aware_interval_is_inconclusive():
    """Issue 18: seeds vary little within a split, splits vary a lot; pooling the runs as one
    split makes the interval 3x too narrow and turns 'inconclusive' into 'better'."""
    rng = np.random.default_rng(0)
    split_effect = np.array([1.2, -0.3, 0.9, 0.2, 0.6])            # between-split sd ~0.6
    t = pd.DataFrame({"split": np.repeat(np.arange(5), 8), "seed": np.tile(np.arange(8), 5)})
    t["diff"] = split_effect[t.split] + rng.normal(0.0, 0.15, size=len(t))
    e = paired_effect_by_split(t)
    seed_only = verdict(e.seed_only_ci_low, e.seed_only_ci_high, 0.5)
    split_aware = verdict(e.ci_low, e.ci_high, 0.5)
    assert (seed_only, split_aware) == ("better", "inconclusive")
    assert (e.ci_high - e.ci_low) > 3 * (e.seed_only_ci_high - e.seed_only_ci_low)
    # the same words through the p-value path
    assert e.seed_only_p_value < 0.05 < e.p_value


# ============================================================================ TOST
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("margin", [0.2, 0.5, 1.0])
def test_tost_equals_two_shifted_scipy_one_sided_tests(seed, margin):
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.8), size=int(rng.integers(3, 12)))
    n = x.size
    r = tost(x.mean(), x.std(ddof=1) / math.sqrt(n), n - 1, margin)
    p_lower = stats.ttest_1samp(x, -margin, alternative="greater").pvalue
    p_upper = stats.ttest_1samp(x, margin, alternative="less").pvalue
    assert r.p_lower == pytest.approx(p_lower, rel=1e-9, abs=1e-300)
    assert r.p_upper == pytest.approx(p_upper, rel=1e-9, abs=1e-300)
    assert r.p == max(r.p_lower, r.p_upper)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.90)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    inside = -margin < ci.low and ci.high < margin
    assert r.equivalent == (max(p_lower, p_upper) < 0.05) == inside


def test_tost_sweep_covers_both_decisions():
    """The parametrized cases above are not all one decision (the test could not fail)."""
    seen = set()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        x = rng.normal(rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.8),
                       size=int(rng.integers(3, 12)))
        for margin in (0.2, 0.5, 1.0):
            seen.add(tost(x.mean(), x.std(ddof=1) / math.sqrt(x.size), x.size - 1, margin).equivalent)
    assert seen == {True, False}


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_tost_decision_is_the_ci_inclusion_rule_at_its_boundary(alpha):
    se, df, margin = 0.1, 7, 0.5
    q = stats.t.ppf(1 - alpha, df) * se
    inside = tost(margin - q - 1e-9, se, df, margin, alpha)
    edge = tost(margin - q + 1e-9, se, df, margin, alpha)
    assert inside.equivalent and inside.ci_high < margin
    assert not edge.equivalent and edge.ci_high > margin
    assert inside.p == pytest.approx(alpha, abs=1e-6) == pytest.approx(edge.p, abs=1e-6)


def test_tost_with_zero_standard_error():
    assert tost(0.3, 0.0, 4, 0.5).p == 0.0 and tost(0.3, 0.0, 4, 0.5).equivalent
    assert tost(0.5, 0.0, 4, 0.5).p == 1.0 and not tost(0.5, 0.0, 4, 0.5).equivalent
    assert tost(-0.7, 0.0, 4, 0.5).p_lower == 1.0


def test_tost_on_a_split_effect_uses_its_split_aware_se():
    e = paired_effect_by_split(HAND)
    r = tost(e.effect, e.se, e.df, 2.0)
    means = HAND.groupby("split")["diff"].mean().to_numpy()
    assert r.p_lower == pytest.approx(stats.ttest_1samp(means, -2.0, alternative="greater").pvalue)
    assert r.p_upper == pytest.approx(stats.ttest_1samp(means, 2.0, alternative="less").pvalue)


# ============================================================================ verdict words
def test_verdict_words_are_the_declared_plan_words_in_its_order():
    plan = toml_module().loads((ROOT / "experiments/analysis.toml").read_text())["verdicts"]
    assert set(VERDICT_WORDS) == set(plan["words"])
    assert list(VERDICT_WORDS) == plan["order"]


@pytest.mark.parametrize("lo, hi, word", [
    (0.8, 1.6, "better"),
    (-1.6, -0.8, "worse"),
    (-0.3, 0.2, "equivalent within margin"),
    (-0.3, 0.9, "inconclusive"),
    (0.1, 0.3, "equivalent within margin"),   # precedence: non-zero but within the margin
    (-0.45, -0.05, "equivalent within margin"),
    (0.0, 0.9, "inconclusive"),               # boundary: ci_low = 0 is not above 0
    (-0.9, 0.0, "inconclusive"),              # ci_high = 0 is not below 0
    (-0.2, 0.5, "inconclusive"),              # boundary: reaching the margin is not inside
    (-0.5, 0.2, "inconclusive"),
    (1e-12, 0.9, "better"),
    (-0.2, 0.5 - 1e-12, "equivalent within margin"),
    (0.3, 0.7, "better"),                     # straddles the margin, above 0
    (math.nan, math.nan, "inconclusive"),
    (-math.inf, math.inf, "inconclusive"),
])
def test_verdict_rules_on_intervals(lo, hi, word):
    assert verdict(lo, hi, 0.5) == word


def test_verdict_with_a_tost_interval():
    # the 95 % interval (0.05, 0.55) reaches the margin; the 90 % one (0.1, 0.45) does not
    assert verdict(0.05, 0.55, 0.5) == "better"
    assert verdict(0.05, 0.55, 0.5, tost_low=0.1, tost_high=0.45) == "equivalent within margin"
    assert verdict(-0.55, 0.3, 0.5, tost_low=-0.49, tost_high=0.2) == "equivalent within margin"
    assert verdict(-0.55, 0.3, 0.5, tost_low=-0.5, tost_high=0.2) == "inconclusive"


def test_verdict_with_holm_adjusted_p_values():
    # significant alone (ci above 0), not after Holm within its family
    assert verdict(0.6, 1.4, 0.5) == "better"
    assert verdict(0.6, 1.4, 0.5, p_adjusted=0.08) == "inconclusive"
    assert verdict(0.6, 1.4, 0.5, p_adjusted=0.049) == "better"
    assert verdict(-1.4, -0.6, 0.5, p_adjusted=0.01) == "worse"
    assert verdict(-1.4, -0.6, 0.5, p_adjusted=0.05) == "inconclusive"    # boundary: p = alpha
    assert verdict(-1.4, -0.6, 0.5, p_adjusted=math.nan) == "inconclusive"
    # equivalence by the adjusted TOST p, before better/worse
    assert verdict(-0.3, 0.2, 0.5, p_tost_adjusted=0.2) == "inconclusive"
    assert verdict(0.1, 0.3, 0.5, p_adjusted=0.001, p_tost_adjusted=0.01) == \
        "equivalent within margin"
    assert verdict(0.1, 0.3, 0.5, p_adjusted=0.001, p_tost_adjusted=0.05) == "better"
    assert verdict(0.1, 0.3, 0.5, alpha=0.1, p_adjusted=0.06, p_tost_adjusted=0.2) == "better"


def _sample(seed: int) -> np.ndarray:
    rng = np.random.default_rng(100 + seed)
    return rng.normal(rng.uniform(-1.0, 1.0), rng.uniform(0.05, 1.0), size=int(rng.integers(3, 16)))


@pytest.mark.parametrize("seed", range(30))
def test_verdict_agrees_with_tost_and_the_t_test(seed):
    """Family of one: the interval path and the p-value path give the same word."""
    x = _sample(seed)
    n, eff, se = x.size, x.mean(), x.std(ddof=1) / math.sqrt(x.size)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    p_two = stats.ttest_1samp(x, 0.0).pvalue
    r = tost(eff, se, n - 1, 0.5)
    by_ci = verdict(ci.low, ci.high, 0.5, tost_low=r.ci_low, tost_high=r.ci_high)
    by_p = verdict(ci.low, ci.high, 0.5, p_adjusted=p_two, p_tost_adjusted=r.p)
    assert by_ci == by_p
    assert by_ci in VERDICT_WORDS


def test_verdict_agreement_sweep_sees_every_word():
    words = set()
    for seed in range(30):
        x = _sample(seed)
        ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
        r = tost(x.mean(), x.std(ddof=1) / math.sqrt(x.size), x.size - 1, 0.5)
        words.add(verdict(ci.low, ci.high, 0.5, tost_low=r.ci_low, tost_high=r.ci_high))
    assert words == set(VERDICT_WORDS)


# ============================================================================ bad input
@pytest.mark.parametrize("call, name", [
    (lambda: paired_effect_by_split(HAND.to_dict()), "frame"),
    (lambda: paired_effect_by_split(HAND.iloc[:0]), "frame"),
    (lambda: paired_effect_by_split(pd.concat([HAND, HAND.iloc[:1]])), "frame"),
    (lambda: paired_effect_by_split(HAND, value="acc"), "value"),
    (lambda: paired_effect_by_split(HAND.assign(diff=HAND["diff"].astype(str))), "value"),
    (lambda: paired_effect_by_split(HAND.assign(diff=HAND["diff"] > 0)), "value"),
    (lambda: paired_effect_by_split(HAND.assign(diff=[math.nan] + [0.0] * 11)), "value"),
    (lambda: paired_effect_by_split(HAND.assign(diff=[math.inf] + [0.0] * 11)), "value"),
    (lambda: paired_effect_by_split(HAND, value=3), "value"),
    (lambda: paired_effect_by_split(HAND, split="fold"), "split"),
    (lambda: paired_effect_by_split(HAND.assign(split=[None] + [1] * 11)), "split"),
    (lambda: paired_effect_by_split(HAND, split="seed"), "split"),
    (lambda: paired_effect_by_split(HAND, seed="run"), "seed"),
    (lambda: paired_effect_by_split(HAND.assign(seed=[math.nan] + [1.0] * 11)), "seed"),
    (lambda: paired_effect_by_split(HAND, confidence=1.5), "confidence"),
    (lambda: paired_effect_by_split(HAND, confidence="0.95"), "confidence"),
    (lambda: paired_effect_by_split(HAND, method="bayes"), "method"),
    (lambda: tost("0.1", 0.1, 5, 0.5), "effect"),
    (lambda: tost(math.nan, 0.1, 5, 0.5), "effect"),
    (lambda: tost(0.1, -0.1, 5, 0.5), "se"),
    (lambda: tost(0.1, 0.1, 0, 0.5), "df"),
    (lambda: tost(0.1, 0.1, 5, 0.0), "margin"),
    (lambda: tost(0.1, 0.1, 5, -0.5), "margin"),
    (lambda: tost(0.1, 0.1, 5, 0.5, alpha=0.5), "alpha"),
    (lambda: tost(0.1, 0.1, 5, 0.5, alpha=True), "alpha"),
    (lambda: verdict("0", 1.0, 0.5), "ci_low"),
    (lambda: verdict(1.0, 0.0, 0.5), "ci_high"),
    (lambda: verdict(0.0, 1.0, 0.0), "margin"),
    (lambda: verdict(0.0, 1.0, None), "margin"),
    (lambda: verdict(0.0, 1.0, 0.5, tost_low=0.1), "tost_high"),
    (lambda: verdict(0.0, 1.0, 0.5, tost_low=0.4, tost_high=0.1), "tost_high"),
    (lambda: verdict(0.0, 1.0, 0.5, tost_low="a", tost_high=0.1), "tost_low"),
    (lambda: verdict(0.0, 1.0, 0.5, p_adjusted=1.5), "p_adjusted"),
    (lambda: verdict(0.0, 1.0, 0.5, p_tost_adjusted=-0.1), "p_tost_adjusted"),
    (lambda: verdict(0.0, 1.0, 0.5, alpha=0.0), "alpha"),
])
def test_bad_inputs_are_refused_naming_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=rf"^{name}: "):
        call()
