"""Metrics against independent brute-force formulas; statistics against scipy."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from w2s_theory.metrics import (
    accuracy,
    auroc,
    disagreement_rate,
    ece,
    hard_labels,
    mean_ci,
    paired_test,
    pgr,
    pgr_status,
)


def _auroc_pairs(y, s):
    """O(n^2): P(s+ > s-) + P(s+ = s-) / 2 over all positive/negative pairs."""
    pos, neg = s[y == 1], s[y == 0]
    tot = 0.0
    for a in pos:
        tot += float(np.sum(a > neg)) + 0.5 * float(np.sum(a == neg))
    return tot / (len(pos) * len(neg))


def _ece_loop(y, p, bins):
    n = len(y)
    out = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = []
        for i in range(n):
            pred = 1 if p[i] > 0.5 else 0
            conf = p[i] if pred == 1 else 1 - p[i]
            inside = (lo < conf <= hi) or (b == 0 and conf == 0.0)
            if inside:
                members.append((pred == y[i], conf))
        if members:
            acc = np.mean([m[0] for m in members])
            cf = np.mean([m[1] for m in members])
            out += len(members) / n * abs(acc - cf)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = rng.integers(0, 6, n) / 5.0          # many ties
    assert auroc(y, s) == pytest.approx(_auroc_pairs(y, s), abs=1e-12)


def test_auroc_extremes_and_monotone_invariance():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert auroc(y, s) == 1.0
    assert auroc(y, -s) == 0.0
    rng = np.random.default_rng(0)
    s2 = rng.normal(size=6)
    assert auroc(y, s2) == pytest.approx(auroc(y, np.exp(3 * s2)))
    with pytest.raises(ValueError, match="y_true"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("seed", range(5))
def test_ece_matches_loop(seed):
    rng = np.random.default_rng(seed)
    n = 200
    p = rng.uniform(size=n)
    p[:5] = [0.5, 0.0, 1.0, 0.55, 0.95]
    y = (rng.uniform(size=n) < p).astype(int)
    for bins in (1, 5, 10, 15):
        assert ece(y, p, bins) == pytest.approx(_ece_loop(y, p, bins), abs=1e-12)


def test_ece_zero_when_calibrated_and_positive_when_not():
    # 4 predictions at 0.75, 3 correct: calibrated in its bin.
    y = np.array([1, 1, 1, 0])
    assert ece(y, np.full(4, 0.75)) == pytest.approx(0.0, abs=1e-15)
    assert ece(y, np.full(4, 0.95)) == pytest.approx(0.2)


def test_accuracy_and_hard_labels():
    assert hard_labels([0.5, 0.51, 0.49]).tolist() == [0, 1, 0]
    assert accuracy([0, 1, 1], [0.2, 0.7, 0.4]) == pytest.approx(2 / 3)
    p = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    assert accuracy([1, 2], p) == 0.5
    with pytest.raises(ValueError, match="y_true"):
        accuracy([0, 2], [0.1, 0.9])
    with pytest.raises(ValueError, match="y_true"):
        accuracy([0, 1, 1], [0.1, 0.9])


def test_pgr_and_disagreement():
    assert pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert pgr(0.55, 0.6, 0.8) == pytest.approx(-0.25)
    assert math.isnan(pgr(0.7, 0.6, 0.6))
    assert disagreement_rate([0.9, 0.1, 0.6, 0.4], [0.8, 0.7, 0.3, 0.45]) == 0.5
    with pytest.raises(ValueError, match="probs_b"):
        disagreement_rate([0.9, 0.1], [0.9])


def test_pgr_is_undefined_when_the_ceiling_does_not_beat_the_weak_model():
    """Was 3.0: student and ceiling both below the weak model made a positive ratio."""
    assert math.isnan(pgr(0.49, 0.82, 0.71))
    assert pgr_status(0.49, 0.82, 0.71) == "ceiling_below_weak"
    assert math.isnan(pgr(0.9, 0.82, 0.71))                 # also when the student beats both
    assert math.isnan(pgr(0.7, 0.6, 0.6)) and pgr_status(0.7, 0.6, 0.6) == "no_gap"
    assert pgr_status(0.7, 0.6, 0.8) == "defined"
    for bad, name in (((1.2, 0.5, 0.8), "acc_student"), ((0.6, -0.1, 0.8), "acc_weak"),
                      ((0.6, 0.5, float("nan")), "acc_ceiling"), ((0.6, "0.5", 0.8), "acc_weak")):
        for f in (pgr, pgr_status):
            with pytest.raises((TypeError, ValueError), match=f"^{name}: "):
                f(*bad)


ACC = st.integers(0, 200).map(lambda k: k / 200)       # accuracies on a 200-example test set


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(ACC, ACC, ACC)
def test_pgr_rule_against_exact_rationals(s, w, c):
    """Defined iff c > w, then (s - w)/(c - w) (exact rationals); above 1 only if the student
    beats the ceiling; the status names the case."""
    r = pgr(s, w, c)
    fs, fw, fc = Fraction(s), Fraction(w), Fraction(c)
    if fc > fw:
        want = (fs - fw) / (fc - fw)
        assert r == pytest.approx(float(want), rel=1e-12, abs=1e-12)
        assert pgr_status(s, w, c) == "defined"
        if r > 1.0 + 1e-12:
            assert fs > fc
        if fs <= fc:
            assert r <= 1.0 + 1e-12
    else:
        assert math.isnan(r)
        assert pgr_status(s, w, c) == ("no_gap" if fc == fw else "ceiling_below_weak")


def test_result_rows_follow_the_pgr_rule():
    """A fine-tuning result row whose ceiling is below the weak model carries pgr = nan."""
    from scipy.special import expit

    from w2s_theory.finetune import FinetuneConfig
    from w2s_theory.pipelines.finetune import make_row

    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    pw = expit(3.0 * (2 * y - 1) + rng.normal(size=n))          # a good weak model
    z = rng.normal(size=n)                                      # a poor student ...
    zc = rng.normal(size=n) + 0.2 * (2 * y - 1)                 # ... and a poor ceiling
    rec = {"regime": "full", "role": "student", "seed": 0, "config": FinetuneConfig().to_dict()}
    row = make_row(rec, z, y, pw, zc, 1e-3)
    assert row["ceiling_acc"] < row["weak_acc"] and row["student_acc"] < row["weak_acc"]
    assert math.isnan(row["pgr"])
    assert pgr_status(row["student_acc"], row["weak_acc"], row["ceiling_acc"]) == \
        "ceiling_below_weak"


@pytest.mark.parametrize("seed", range(4))
def test_paired_test_against_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.7, 0.02, 7)
    b = a - rng.normal(0.01, 0.02, 7)
    r = paired_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert r.t_pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    d = a - b
    w = int((d > 0).sum())
    assert r.wins == w and r.losses == 7 - w and r.ties == 0
    assert r.sign_pvalue == pytest.approx(stats.binomtest(w, 7, 0.5).pvalue)
    lo, hi = stats.t.interval(0.95, 6, loc=d.mean(), scale=stats.sem(d))
    assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-10)


def test_paired_test_degenerate_and_errors():
    r = paired_test([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert r.t_pvalue == 1.0 and r.sign_pvalue == 1.0 and r.ties == 3
    r = paired_test([2.0, 2.0], [1.0, 1.0])
    assert r.t_pvalue == 0.0 and r.wins == 2
    with pytest.raises(ValueError, match="b"):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="a"):
        paired_test([1.0], [1.0])


def test_mean_ci_against_scipy():
    x = np.array([0.61, 0.64, 0.6, 0.66, 0.62])
    m, lo, hi = mean_ci(x)
    ref = stats.t.interval(0.95, 4, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(ref)
    with pytest.raises(ValueError, match="x"):
        mean_ci([1.0])


def test_committed_result_tables_follow_the_pgr_rule():
    """Every committed table's pgr column is nan exactly where the ceiling does not beat the
    weak model, and the ratio elsewhere (2,511 rows carried ratios of two negative gaps)."""
    import glob
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parent.parent / "experiments" / "results"
    files = sorted(glob.glob(str(root / "**" / "*.csv"), recursive=True))
    seen = 0
    for f in files:
        df = pd.read_csv(f)
        if "pgr" not in df:
            continue
        have = df[["student_acc", "weak_acc", "ceiling_acc"]].notna().all(axis=1)
        d = df[have]
        gap = d["ceiling_acc"] > d["weak_acc"]
        assert d.loc[~gap, "pgr"].isna().all(), f
        want = (d["student_acc"] - d["weak_acc"]) / (d["ceiling_acc"] - d["weak_acc"])
        assert np.allclose(d.loc[gap, "pgr"], want[gap], rtol=1e-9, atol=1e-12), f
        seen += 1
    assert seen >= 8
