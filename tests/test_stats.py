"""`w2s_theory.stats` against independent computations (another scipy / statsmodels entry point
or the textbook formula written here), and the old names that now call it.

Old names: `ledger.paired_effect`, `ledger.holm`, `ledger.gap_filter`, `ledger.pgr_interval`,
`metrics.paired_test`, `metrics.mean_ci`, `verdicts.tost`, `verdicts.paired_effect_by_split` and
the synthetic sweep summaries (`pipelines.synthetic.summarize_curve`, its 95 % half-width).
"""

from __future__ import annotations

import ast
import gc
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from w2s_theory import ledger, metrics, stats, summaries, verdicts
from w2s_theory.pipelines import synthetic as sw

ROOT = Path(__file__).resolve().parents[1]


def _samples(seed=0):
    """Random samples of several sizes and spreads (also ties and rounded values)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (2, 3, 4, 7, 20, 60):
        for scale in (1e-3, 0.05, 3.0):
            x = rng.normal(rng.normal(0, scale), scale, n)
            out.append(x)
            out.append(np.round(x, 1) if scale > 0.1 else np.round(x, 3))
    return out


def _tq(conf, df):
    """Two-sided critical value from the inverse survival function (not ``ppf``)."""
    return float(sps.t.isf((1.0 - conf) / 2.0, df))


# ============================================================================ t interval
@pytest.mark.parametrize("conf", [0.8, 0.95, 0.99])
def test_t_interval_equals_statsmodels_on_summary_statistics(conf):
    for x in _samples():
        d = DescrStatsW(x)
        if d.std == 0:
            continue
        se = float(x.std(ddof=1)) / math.sqrt(x.size)
        lo, hi, p = stats.t_interval(float(x.mean()), se, x.size - 1, conf)
        sm_lo, sm_hi = d.tconfint_mean(alpha=1 - conf)
        _, sm_p, _ = d.ttest_mean(0.0)
        np.testing.assert_allclose([lo, hi, p], [sm_lo, sm_hi, sm_p], rtol=1e-10, atol=1e-14)


def test_t_interval_edge_cases():
    assert stats.t_interval(0.3, 0.0, 4) == (0.3, 0.3, 0.0)        # exact test, no spread
    assert stats.t_interval(0.0, 0.0, 4) == (0.0, 0.0, 1.0)
    for se, df in ((math.nan, 3), (0.1, 0), (0.1, math.nan), (math.inf, 3)):
        assert all(math.isnan(v) for v in stats.t_interval(0.3, se, df))
    # fractional df: the formula with the isf quantile
    lo, hi, p = stats.t_interval(1.0, 0.4, 2.5, 0.9)
    np.testing.assert_allclose([lo, hi], [1.0 - _tq(0.9, 2.5) * 0.4, 1.0 + _tq(0.9, 2.5) * 0.4])
    np.testing.assert_allclose(p, 2 * sps.t.cdf(-1.0 / 0.4, 2.5))
    with pytest.raises(ValueError, match=r"^confidence: "):
        stats.t_interval(1.0, 0.4, 3, 0.0)


# ============================================================================ one-sample t
@pytest.mark.parametrize("conf", [0.9, 0.95])
def test_one_sample_t_is_the_textbook_formula(conf):
    for x in _samples(1):
        n, m, s = x.size, x.sum() / x.size, math.sqrt(((x - x.mean()) ** 2).sum() / (x.size - 1))
        r = stats.one_sample_t(x, conf)
        if s == 0:
            continue
        half = _tq(conf, n - 1) * s / math.sqrt(n)
        t = m / (s / math.sqrt(n))
        assert (r.n, r.df) == (n, n - 1)
        np.testing.assert_allclose([r.mean, r.sd, r.se, r.ci_low, r.ci_high, r.p_value],
                                   [m, s, s / math.sqrt(n), m - half, m + half,
                                    2 * sps.t.cdf(-abs(t), n - 1)], rtol=1e-9, atol=1e-15)


def test_one_sample_t_edge_cases():
    r = stats.one_sample_t([])
    assert r.n == 0 and all(math.isnan(v) for v in (r.mean, r.sd, r.ci_low, r.p_value))
    r = stats.one_sample_t([0.25])
    assert (r.n, r.mean) == (1, 0.25) and all(math.isnan(v) for v in
                                              (r.sd, r.se, r.df, r.ci_low, r.ci_high, r.p_value))
    r = stats.one_sample_t([0.5, 0.5, 0.5])                   # no spread: exact test
    assert (r.sd, r.ci_low, r.ci_high, r.p_value) == (0.0, 0.5, 0.5, 0.0)
    r = stats.one_sample_t([0.0, 0.0])
    assert (r.ci_low, r.ci_high, r.p_value) == (0.0, 0.0, 1.0)
    r = stats.one_sample_t([1.0, 2.0, 4.0], 1.0)              # confidence 1: the whole line
    assert (r.ci_low, r.ci_high) == (-math.inf, math.inf)
    with pytest.raises(ValueError, match=r"^x: must be finite, got nan at index 1"):
        stats.one_sample_t([0.1, math.nan])


# ============================================================================ paired effect
def test_paired_effect_equals_ttest_rel():
    rng = np.random.default_rng(2)
    for n in (2, 3, 5, 12):
        for _ in range(5):
            a, b = rng.normal(0.7, 0.02, n), rng.normal(0.69, 0.02, n)
            e = stats.paired_effect(a, b, 0.9)
            r = sps.ttest_rel(a, b)
            ci = r.confidence_interval(0.9)
            np.testing.assert_allclose([e.mean, e.ci_low, e.ci_high, e.p_value],
                                       [np.mean(a - b), ci.low, ci.high, r.pvalue], rtol=1e-10)
            np.testing.assert_allclose(e.sd, np.std(a - b, ddof=1))


def test_paired_effect_edge_cases_as_before():
    e = stats.paired_effect([0.7], [0.6])
    assert e.n == 1 and e.mean == pytest.approx(0.1) and math.isnan(e.ci_low)
    e = stats.paired_effect([], [])
    assert e.n == 0 and math.isnan(e.mean)
    e = stats.paired_effect([0.7, 0.8, 0.9], [0.7, 0.8, 0.9])
    assert (e.sd, e.ci_low, e.ci_high, e.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"^b: contains NaN or inf at index 0"):
        stats.paired_effect([0.7, 0.8], [math.nan, 0.8])
    with pytest.raises(ValueError, match=r"^confidence: "):
        stats.paired_effect([0.7, 0.8], [0.6, 0.8], 1.0)


def test_sign_test_is_the_binomial_sum():
    rng = np.random.default_rng(3)
    for _ in range(30):
        d = rng.integers(-2, 3, rng.integers(1, 25)).astype(float)
        w, lo, ties, p = stats.sign_test(d)
        m = w + lo
        assert (w, lo, ties) == ((d > 0).sum(), (d < 0).sum(), (d == 0).sum())
        tail = sum(math.comb(m, i) for i in range(min(w, lo) + 1)) / 2.0 ** m if m else 0.5
        assert p == pytest.approx(min(1.0, 2 * tail), rel=1e-12)


# ============================================================================ TOST
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_tost_equals_two_one_sided_ttest_1samp(alpha):
    for x in _samples(4):
        if x.std() == 0:
            continue
        n, se = x.size, float(x.std(ddof=1)) / math.sqrt(x.size)
        for margin in (0.01, 0.1, 1.0):
            r = stats.tost(float(x.mean()), se, n - 1, margin, alpha)
            p_lo = sps.ttest_1samp(x, -margin, alternative="greater").pvalue
            p_hi = sps.ttest_1samp(x, margin, alternative="less").pvalue
            ci = sps.ttest_1samp(x, 0.0).confidence_interval(1 - 2 * alpha)
            np.testing.assert_allclose([r.p_lower, r.p_upper, r.p, r.ci_low, r.ci_high],
                                       [p_lo, p_hi, max(p_lo, p_hi), ci.low, ci.high],
                                       rtol=1e-9, atol=1e-15)
            assert r.equivalent == (max(p_lo, p_hi) < alpha)
            assert r.equivalent == (-margin < ci.low and ci.high < margin)


def test_tost_without_spread_is_exact():
    assert stats.tost(0.2, 0.0, 3, 0.5).p == 0.0
    r = stats.tost(0.6, 0.0, 3, 0.5)
    assert (r.p_lower, r.p_upper, r.equivalent) == (0.0, 1.0, False)


# ============================================================================ Holm
def test_holm_equals_statsmodels_on_families_with_ties_and_nan(monkeypatch):
    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)   # multipletests collects per call
    rng = np.random.default_rng(5)
    for _ in range(80):
        m = int(rng.integers(1, 15))
        p = rng.choice([rng.random(), 1.0, 0.0, 0.01, 0.05], m) if rng.random() < 0.3 else \
            rng.random(m) ** 3
        p[rng.random(m) < 0.3] = p[0]                          # ties
        p[rng.random(m) < 0.2] = np.nan                        # tests without a p-value
        ours = stats.holm(p)
        nan = np.isnan(p)
        if nan.all():
            assert np.isnan(ours).all()
            continue
        ref = multipletests(np.where(nan, 1.0, p), method="holm")[1]   # nan counted as p = 1
        np.testing.assert_allclose(ours[~nan], ref[~nan], rtol=1e-12, atol=0)
        assert np.isnan(ours[nan]).all()
    with pytest.raises(ValueError, match=r"^pvalues: must lie in \[0, 1\]"):
        stats.holm([0.1, 1.5])


# ============================================================================ Clopper-Pearson
def test_clopper_pearson_equals_the_beta_quantiles_and_statsmodels():
    for n in (1, 2, 7, 30, 500):
        for k in sorted({0, 1, n // 2, n - 1, n}):
            for conf in (0.9, 0.95):
                lo, hi = stats.clopper_pearson(k, n, conf)
                a = 1 - conf
                ref_lo = 0.0 if k == 0 else sps.beta.ppf(a / 2, k, n - k + 1)
                ref_hi = 1.0 if k == n else sps.beta.ppf(1 - a / 2, k + 1, n - k)
                # scipy finds the ends by root-finding (absolute tolerance ~1e-12)
                np.testing.assert_allclose([lo, hi], [ref_lo, ref_hi], rtol=1e-9, atol=1e-11)
                np.testing.assert_allclose([lo, hi], proportion_confint(k, n, alpha=a,
                                                                        method="beta"),
                                           rtol=1e-9, atol=1e-11)
    with pytest.raises(ValueError, match=r"^k: "):
        stats.clopper_pearson(5, 4)
    with pytest.raises(ValueError, match=r"^n: "):
        stats.clopper_pearson(0, 0)


# ============================================================================ MDE, gap, PGR
@pytest.mark.parametrize("df, power, alpha", [(2, 0.8, 0.05), (9, 0.9, 0.05), (30, 0.5, 0.1)])
def test_min_detectable_effect_has_the_stated_power(df, power, alpha):
    se = 0.7
    mde = stats.min_detectable_effect(se, df, power, alpha)
    # shifting T by mde / se puts exactly `power` of it above the two-sided critical value
    assert sps.t.sf(sps.t.isf(alpha / 2, df) - mde / se, df) == pytest.approx(power, abs=1e-12)


def test_gap_filter_is_the_ttest_rel_interval_above_zero():
    rng = np.random.default_rng(6)
    for _ in range(40):
        n = int(rng.integers(2, 8))
        c, w = rng.normal(0.7, 0.02, n), rng.normal(0.69, 0.02, n)
        has, e = stats.gap_filter(c, w)
        assert has == bool(sps.ttest_rel(c, w).confidence_interval(0.95).low > 0)
        assert e == stats.paired_effect(c, w)


def test_pgr_interval_ends_are_where_the_paired_test_rejects():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(40):
        n = int(rng.integers(3, 10))
        w = rng.normal(0.6, 0.01, n)
        c = w + rng.normal(0.1, 0.01, n)
        s = w + rng.normal(0.05, 0.02, n)
        r = stats.pgr_interval(s, w, c)
        a, b = s - w, c - w
        assert r.pgr == pytest.approx(a.mean() / b.mean())
        if not r.defined:
            assert sps.ttest_rel(c, w).confidence_interval().low <= 0 or b.mean() < 0
            continue
        # Fieller: theta is in the set iff the t-test of mean(a - theta b) = 0 has p >= 0.05
        for theta in (r.ci_low, r.ci_high):
            assert sps.ttest_1samp(a - theta * b, 0.0).pvalue == pytest.approx(0.05, abs=1e-8)
        assert sps.ttest_1samp(a - r.pgr * b, 0.0).pvalue > 0.05
        checked += 1
    assert checked > 20


# ============================================================================ the old names
A = np.array([0.70, 0.72, 0.71, 0.74, 0.69])
B = np.array([0.60, 0.61, 0.63, 0.66, 0.60])


def _plain_t(x, conf=0.95):
    """mean, low, high and p of the one-sample t by hand (numpy + the isf quantile)."""
    n, m, s = x.size, float(np.mean(x)), float(np.std(x, ddof=1))
    half = _tq(conf, n - 1) * s / math.sqrt(n)
    return m, m - half, m + half, float(2 * sps.t.sf(abs(m) / (s / math.sqrt(n)), n - 1))


def test_old_names_are_the_stats_functions():
    assert ledger.paired_effect is stats.paired_effect and ledger.holm is stats.holm
    assert ledger.gap_filter is stats.gap_filter and ledger.pgr_interval is stats.pgr_interval
    assert ledger.PairedEffect is stats.PairedEffect and ledger.PGRInterval is stats.PGRInterval
    assert verdicts.tost is stats.tost and verdicts.TOSTResult is stats.TOSTResult
    for name in ("summarize_theorem2", "summarize_dual", "summarize_lemma1", "summarize_curve",
                 "format_summary", "LEMMA1_STAGES"):
        assert getattr(sw, name) is getattr(summaries, name)


@pytest.mark.parametrize("conf", [0.9, 0.95])
def test_old_names_give_the_plain_numbers(conf):
    m, lo, hi, p = _plain_t(A - B, conf)
    e = ledger.paired_effect(A, B, conf)
    np.testing.assert_allclose([e.mean, e.ci_low, e.ci_high, e.p_value], [m, lo, hi, p], rtol=1e-12)
    t = metrics.paired_test(A, B, conf)
    np.testing.assert_allclose([t.mean_diff, t.ci_low, t.ci_high, t.t_pvalue], [m, lo, hi, p],
                               rtol=1e-12)
    assert (t.wins, t.losses, t.ties, t.sign_pvalue) == (5, 0, 0, 2 / 2 ** 5)
    np.testing.assert_allclose(metrics.mean_ci(A - B, conf), [m, lo, hi], rtol=1e-12)
    # split-aware: t on the split means; seed-only: t on every run
    frame = pd.DataFrame({"split": [0, 0, 1, 1, 2, 2], "seed": [0, 1] * 3,
                          "diff": [0.5, 0.7, -0.2, 0.1, 0.9, 1.3]})
    se_ = verdicts.paired_effect_by_split(frame, confidence=conf)
    means = frame.groupby("split")["diff"].mean().to_numpy()
    np.testing.assert_allclose([se_.effect, se_.ci_low, se_.ci_high, se_.p_value],
                               _plain_t(means, conf), rtol=1e-12)
    np.testing.assert_allclose([se_.seed_only_effect, se_.seed_only_ci_low,
                                se_.seed_only_ci_high, se_.seed_only_p_value],
                               _plain_t(frame["diff"].to_numpy(), conf), rtol=1e-12)


def test_old_names_keep_their_edge_cases():
    assert metrics.mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    t = metrics.paired_test([0.7, 0.7], [0.7, 0.7])
    assert (t.t_pvalue, t.sign_pvalue, t.ties) == (1.0, 1.0, 2)
    assert metrics.mean_ci([1.0, 2.0, 4.0], 1.0)[1:] == (-math.inf, math.inf)
    one = verdicts.paired_effect_by_split(pd.DataFrame({"split": [0], "seed": [0], "diff": [0.4]}))
    assert one.effect == 0.4 and math.isnan(one.ci_low) and one.single_split
    with pytest.raises(ValueError, match=r"^a: need a 1-D array of at least 2 values"):
        metrics.paired_test([0.7], [0.6])


def test_summarize_curve_half_width_is_the_t_formula():
    rng = np.random.default_rng(8)
    rows = [{"method": m, "noise_frac": x, "seed": s, "test_acc_strong": rng.random(),
             "test_risk_strong": rng.random(), "test_acc_weak": rng.random(),
             "test_risk_weak": (math.nan if s == 0 else rng.random())}
            for m in ("softmax/reverse_kl", "convex/forward_kl") for x in (0.0, 0.2)
            for s in range(5)]
    rows.append({**rows[0], "noise_frac": 0.4})       # one seed only (and no finite weak risk)
    df = pd.DataFrame(rows)
    out = sw.summarize_curve(df, "noise_frac").set_index(["method", "noise_frac"])
    for (m, x), g in df.groupby(["method", "noise_frac"]):
        for col in ("test_acc_strong", "test_risk_weak"):
            v = g[col].dropna().to_numpy()                     # NaN rows are left out
            mean, hw = out.loc[(m, x), f"{col}_mean"], out.loc[(m, x), f"{col}_ci95"]
            if v.size == 0:
                assert math.isnan(mean) and math.isnan(hw)
                continue
            assert mean == pytest.approx(v.mean(), rel=1e-12)
            if v.size < 2:
                assert math.isnan(hw)
            else:
                assert hw == pytest.approx(_tq(0.95, v.size - 1) * v.std(ddof=1)
                                           / math.sqrt(v.size), rel=1e-12)


# ============================================================================ one place
def test_no_t_quantile_or_binomial_interval_outside_stats():
    """The t / normal / binomial machinery of scipy.stats is called only in w2s_theory/stats.py
    (rank statistics such as ``rankdata`` are fine elsewhere)."""
    banned = {"t", "norm", "binomtest", "ttest_1samp", "ttest_rel", "multipletests",
              "proportion_confint", "beta"}
    found = []
    for p in sorted((ROOT / "w2s_theory").rglob("*.py")):
        if p.name == "stats.py" and p.parent.name == "w2s_theory":
            continue
        tree = ast.parse(p.read_text())
        scipy_aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                         and (n.module or "").startswith("scipy") for a in n.names
                         if a.name == "stats"}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith(
                    ("scipy.stats", "statsmodels.stats")):
                found += [f"{p.name}:{n.lineno} imports {a.name}" for a in n.names
                          if a.name in banned]
            if (isinstance(n, ast.Attribute) and n.attr in banned
                    and isinstance(n.value, ast.Name) and n.value.id in scipy_aliases):
                found.append(f"{p.name}:{n.lineno} uses stats.{n.attr}")
    assert not found, "\n".join(found)
