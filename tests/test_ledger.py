"""Tests for w2s_theory.ledger: the statistics helpers against independent computations, the
paper's reference patterns, and the committed ledger CSVs against a rebuild from the declared
plan (`build`; its own tests are in tests/test_plan.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2s_theory.ledger import (
    build,
    gap_filter,
    holm,
    paired_effect,
    paper_patterns,
    pgr_interval,
    symmetric_loss_defect,
)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("n", [2, 3, 5, 20])
def test_paired_effect_matches_scipy_ttest_rel(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        a = rng.normal(0.6, 0.02, n)
        b = a - rng.normal(0.01, 0.02, n)
        e = paired_effect(a, b)
        ref = stats.ttest_rel(a, b)
        ci = ref.confidence_interval(0.95)
        assert e.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-15)
        assert (e.ci_low, e.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
        assert e.mean == pytest.approx(np.mean(a - b), abs=1e-15)


def test_paired_effect_edge_cases():
    e = paired_effect([0.5], [0.4])
    assert e.n == 1 and math.isnan(e.p_value) and math.isnan(e.ci_low)
    e = paired_effect([0.5, 0.6], [0.5, 0.6])                    # identical arms
    assert e.p_value == 1.0 and e.ci_low == e.ci_high == 0.0
    with pytest.raises(ValueError, match="shape"):
        paired_effect([1, 2, 3], [1, 2])


def _holm_by_hand(p):
    p = np.asarray(p, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def test_holm_known_example_and_random_families():
    # sorted 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, but >= 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 30):
        p = rng.uniform(0, 0.2, m)
        assert holm(p) == pytest.approx(_holm_by_hand(p), abs=1e-14)
    out = holm([0.01, np.nan, 0.02])            # nan: a test without a p-value, counted as p = 1
    assert np.isnan(out[1]) and out[[0, 2]].tolist() == pytest.approx([0.03, 0.04])
    assert out[[0, 2]].tolist() == pytest.approx(_holm_by_hand([0.01, 1.0, 0.02])[[0, 2]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def test_holm_equals_statsmodels_multipletests_with_ties_ones_and_nan(monkeypatch):
    import gc

    from statsmodels.stats.multitest import multipletests

    # multipletests calls gc.collect() on every call: seconds each late in a full test run
    # (a large heap); it frees memory only, the p-values do not depend on it
    monkeypatch.setattr(gc, "collect", lambda *a, **k: 0)
    rng = np.random.default_rng(3)
    for k in range(120):
        m = int(rng.integers(1, 40))
        p = rng.uniform(0, 1, m)
        if k % 3 == 0:
            p = np.round(p, 1)                                      # ties
        if k % 5 == 0:
            p[rng.random(m) < 0.3] = 1.0                             # forced p = 1 entries
        np.testing.assert_array_equal(holm(p), multipletests(p, method="holm")[1])
        q = p.copy()
        q[rng.random(m) < 0.2] = np.nan
        ok = ~np.isnan(q)
        ref = multipletests(np.where(ok, q, 1.0), method="holm")[1]
        np.testing.assert_array_equal(holm(q)[ok], ref[ok])
        assert np.isnan(holm(q)[~ok]).all()
    assert holm([]).shape == (0,)


@pytest.mark.parametrize("bad, shown", [(math.inf, "inf"), (-math.inf, "-inf"), (-0.01, "-0.01"),
                                        (1.0000001, "1.0000001")])
def test_holm_refuses_p_values_outside_0_1_instead_of_dropping_them(bad, shown):
    # the old code dropped inf from the family (m = 2): anti-conservative adjustments
    with pytest.raises(ValueError, match=rf"^pvalues: must lie in \[0, 1\].*got {shown} at index 2"):
        holm([0.01, 0.04, bad])


def test_holm_counts_nan_conservatively_never_smaller_than_without_it():
    rng = np.random.default_rng(5)
    for m in (2, 5, 9):
        p = rng.uniform(0, 0.1, m)
        with_nan = holm(np.append(p, np.nan))[:-1]
        assert np.all(with_nan >= holm(p) - 1e-15)
        assert with_nan == pytest.approx(_holm_by_hand(np.append(p, 1.0))[:-1], abs=1e-14)


def test_gap_filter_needs_a_ci_above_zero():
    ok, e = gap_filter([0.70, 0.71, 0.69, 0.70], [0.60, 0.61, 0.60, 0.60])
    assert ok and e.ci_low > 0
    ok, e = gap_filter([0.64, 0.6475, 0.6225], [0.6375] * 3)       # cpu_medium's full ceiling
    assert not ok and e.ci_low < 0 < e.ci_high
    ok, _ = gap_filter([0.55, 0.56, 0.55], [0.60, 0.60, 0.61])     # ceiling below weak
    assert not ok


def test_pgr_fieller_endpoints_are_where_the_t_test_of_a_minus_theta_b_stops_rejecting():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(200):
        n = int(rng.integers(3, 21))
        w = rng.normal(0.60, 0.01, n)
        c = w + rng.normal(rng.choice([0.05, -0.05]), rng.uniform(0.005, 0.05), n)
        s = w + rng.normal(0.02, 0.02, n)
        r = pgr_interval(s, w, c)
        has_gap, _ = gap_filter(c, w)
        assert r.defined == has_gap                                  # the same rule
        if not r.defined:
            assert math.isnan(r.pgr)
            assert ("CI includes 0" in r.reason) or ("below weak" in r.reason
                                                     and np.mean(c - w) < 0)
            continue
        a, b = s - w, c - w
        assert r.pgr == pytest.approx(a.mean() / b.mean())
        for theta in (r.ci_low, r.ci_high):
            assert stats.ttest_1samp(a - theta * b, 0.0).pvalue == pytest.approx(0.05, abs=1e-7)
        mid = 0.5 * (r.ci_low + r.ci_high)
        assert stats.ttest_1samp(a - mid * b, 0.0).pvalue > 0.05
        width = r.ci_high - r.ci_low
        for theta in (r.ci_low - 0.1 * width, r.ci_high + 0.1 * width):
            assert stats.ttest_1samp(a - theta * b, 0.0).pvalue < 0.05
        checked += 1
    assert checked > 50


def _sym_defect_by_hand(loss, y, z):
    """max - min over z of l(p, y) + l(p, 1 - y), p = sigmoid(z), from the closed forms (numpy)."""
    p = 1.0 / (1.0 + np.exp(-z))

    def kl(a, b):
        return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))

    def ce(a, b):
        return -(a * np.log(b) + (1 - a) * np.log(1 - b))

    f = {"reverse_kl": lambda y: kl(p, y), "forward_kl": lambda y: kl(y, p),
         "reverse_ce": lambda y: ce(p, y), "forward_ce": lambda y: ce(y, p)}[loss]
    tot = f(y) + f(1 - y)
    return float(tot.max() - tot.min())


@pytest.mark.parametrize("loss", ["reverse_kl", "forward_kl", "forward_ce"])
@pytest.mark.parametrize("n_grid", [3, 5, 101])
def test_symmetric_loss_defect_matches_an_independent_computation(loss, n_grid):
    # on [-4, 4] the sums are even in z and monotone on each side: extremes at 0 and at +-4
    dense = np.concatenate([np.linspace(-4, 4, 200_001), [0.0]])
    want = _sym_defect_by_hand(loss, 0.3, dense)
    assert symmetric_loss_defect(loss, 0.3, n_grid) == pytest.approx(want, rel=1e-9)
    if loss == "reverse_kl":                 # 2 (H(1/2) - H(sigmoid(4))): the 1.21
        h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
        assert want == pytest.approx(2 * (h(0.5) - h(1 / (1 + np.exp(-4.0)))), rel=1e-9)
        assert round(want, 2) == 1.21


@pytest.mark.parametrize("n_grid", [1, 2, 4, 100, 0, -3])
def test_symmetric_loss_defect_refuses_grids_that_miss_the_extremes(n_grid):
    # n_grid=1 returned 0.0 (a single point), even grids miss z = 0 (n_grid=2 gave 0.0 too)
    with pytest.raises(ValueError, match=r"^n_grid: "):
        symmetric_loss_defect("reverse_kl", n_grid=n_grid)


@pytest.mark.parametrize("kwargs, name", [({"n_grid": 3.0}, "n_grid"), ({"y": 0.0}, "y"),
                                          ({"y": 1.0}, "y"), ({"y": "0.3"}, "y"),
                                          ({"loss": 5}, "loss")])
def test_symmetric_loss_defect_names_bad_arguments(kwargs, name):
    kw = {"loss": "reverse_kl", **kwargs}
    with pytest.raises((ValueError, TypeError), match=rf"^{name}: "):
        symmetric_loss_defect(**kw)


def test_symmetric_loss_property():
    """Reverse CE: l(p,y) + l(p,1-y) = -log y - log(1-y) for every p; the others vary with p."""
    for y in (0.1, 0.3, 0.45):
        assert symmetric_loss_defect("reverse_ce", y) < 1e-12
        for loss in ("reverse_kl", "forward_kl", "forward_ce"):
            assert symmetric_loss_defect(loss, y) > 1e-2


# ----------------------------------------------------------------------------- paper patterns
def test_paper_patterns_from_reference_csvs():
    ref = pd.read_csv(ROOT / "experiments" / "paper_reference" / "main_gpt2_cai_harmless.csv")
    pp = paper_patterns()
    piv = ref.pivot_table(index=["weak", "strong"], columns="loss", values="test_accuracy_pct")
    assert pp[(1, "reverse_ce - forward_ce")][0] == pytest.approx(
        (piv["reverse_ce"] - piv["forward_ce"]).mean())
    qwen = pd.read_csv(ROOT / "experiments" / "paper_reference" / "qwen25.csv")
    qp = qwen.pivot_table(index=["weak", "strong"], columns="loss", values="test_accuracy_pct")
    d = pd.concat([piv["reverse_kl"] - piv["forward_kl"], qp["reverse_kl"] - qp["forward_kl"]])
    value, note = pp[(1, "reverse_kl - forward_kl")]
    assert value == pytest.approx(d.mean())
    assert f"reverse > forward in {int((d > 0).sum())} of {len(d)}" in note
    assert all("as reported (summary of arXiv 2502.11107)" in v[1] for v in pp.values())


# ----------------------------------------------------------------------------- committed ledger
def test_committed_ledger_is_rebuilt_from_the_committed_tables(tmp_path):
    """The four committed ledger CSVs (experiments/results/ledger*.csv) equal a fresh build
    from the declared plan and the committed tables (plus their re-split tables); if a
    result table changed (the background sweeps add rows), rerun ``python -m
    w2s_theory.ledger`` and commit the result."""
    from w2s_theory.ledger import LEDGER_FILES, build, write
    from w2s_theory.plan import load_plan

    fresh = write(build(load_plan(ROOT / "experiments" / "analysis.toml"), root=ROOT), tmp_path)
    for p in fresh:
        committed = pd.read_csv(ROOT / "experiments" / "results" / p.name)
        again = pd.read_csv(p)
        pd.testing.assert_frame_equal(committed, again, check_dtype=False, rtol=1e-9,
                                      obj=p.name)
    assert [p.name for p in fresh] == list(LEDGER_FILES)


def test_claim6_checks_match_an_independent_count_on_the_committed_tables():
    checks = pd.read_csv(ROOT / "experiments" / "results" / "ledger_checks.csv")
    main = pd.read_csv(ROOT / "experiments" / "results" / "real" / "main.csv")
    units = main[~main["confidence"]].drop_duplicates(["dataset", "weak", "strong", "noise",
                                                       "seed"])
    units = units.dropna(subset=["cvx_rkl_t2test_truth_slack"])
    r = checks[(checks["table"] == "experiments/results/real/main.csv")
               & (checks["column"] == "cvx_rkl_t2test_truth_slack")
               & (checks["scope"] == "split 0")].iloc[0]
    assert r["n"] == len(units)
    assert r["n_holds"] == int((units["cvx_rkl_t2test_truth_slack"]
                                >= -units["cvx_rkl_duality_gap"].fillna(0)).sum())
    assert r["word"] == "descriptive"            # one-hot truth is not in the class
    ceil = checks[checks["column"] == "cvx_rkl_t2fit_ceil_holds"]
    assert len(ceil) and ceil["covered"].all() and (ceil["word"] == "holds").all()
    # fdiv.csv (a sensitivity table) and cpu_reduced (a pipeline check) are never read
    assert not checks["table"].str.contains("fdiv|cpu_reduced").any()


# ----------------------------------------------------------------------------- failures are loud
def _tiny_plan_and_table():
    from w2s_theory.plan import default_plan

    t = pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 4, "seed": [0, 0, 1, 1] * 2,
                      "split": [0] * 4 + [1] * 4,
                      "student_acc": [.60, .61, .60, .62, .61, .62, .60, .61]})
    return default_plan(t), t


@pytest.mark.parametrize("root", ["/nope", "/nope/experiments"])
def test_build_refuses_a_root_that_is_not_a_repository(root, tmp_path):
    plan, t = _tiny_plan_and_table()
    with pytest.raises(FileNotFoundError, match=r"^root: folder not found: /nope"):
        build(plan, {"results.csv": t}, root=root)
    with pytest.raises(FileNotFoundError, match=r"^root: .* has no experiments/ folder"):
        build(plan, {"results.csv": t}, root=tmp_path)
    with pytest.raises(TypeError, match=r"^root: must be a path"):
        build(plan, {"results.csv": t}, root=5)


def test_ledger_help_prints_usage_and_writes_nothing():
    import os
    import subprocess
    import sys

    led = ROOT / "experiments" / "results" / "ledger.csv"
    before = (led.read_bytes(), led.stat().st_mtime_ns)
    r = subprocess.run([sys.executable, "-m", "w2s_theory.ledger", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m w2s_theory.ledger")
    assert "--readme" in r.stdout
    assert (led.read_bytes(), led.stat().st_mtime_ns) == before
    r = subprocess.run([sys.executable, "-m", "w2s_theory.ledger", "--bogus"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unrecognized arguments: --bogus" in r.stderr
    assert (led.read_bytes(), led.stat().st_mtime_ns) == before


@pytest.mark.parametrize("call, name", [
    (lambda: paired_effect("abc", [1.0]), "a"),
    (lambda: paired_effect([1.0, 2.0], [1.0, None]), "b"),
    (lambda: paired_effect([[1.0]], [[1.0]]), "a"),
    (lambda: pgr_interval([0.6, 0.7], [0.5, np.inf], [0.8, 0.8]), "weak"),
    (lambda: pgr_interval([0.6], [0.5, 0.5], [0.8, 0.8]), "weak"),
    (lambda: holm("0.01"), "pvalues"),
    (lambda: holm([True, False]), "pvalues"),
    (lambda: paper_patterns(ref_dir="/nope"), "ref_dir"),
    (lambda: build("experiments/analysis.toml"), "plan"),
    (lambda: build(_tiny_plan_and_table()[0], [1, 2]), "tables"),
    (lambda: build(_tiny_plan_and_table()[0], {"results.csv": [1, 2]}), "tables"),
])
def test_ledger_functions_name_the_bad_argument(call, name):
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=rf"^{name}: "):
        call()


def test_ledger_docstrings_parse_without_griffe_warnings(caplog):
    """mkdocs --strict failed on ``ledger.py:76: Failed to get 'name: description' pair`` (a
    continuation line of PairedEffect's Attributes without indentation)."""
    import inspect
    import logging

    import griffe

    import w2s_theory.ledger as ledger

    caplog.set_level(logging.WARNING)
    objs = [getattr(ledger, n) for n in ledger.__all__]
    docs = {o.__name__: inspect.getdoc(o) for o in objs if callable(o) and inspect.getdoc(o)}
    assert {"PairedEffect", "PGRInterval", "holm", "symmetric_loss_defect"} <= set(docs)
    for doc in docs.values():
        griffe.Docstring(doc, lineno=1, parser="google").parse()
    # (without the objects' signatures griffe also notes missing return annotations: not ours)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
                and "No type or annotation" not in r.getMessage()]


def test_committed_ledger_has_the_synthetic_sensitivity_rows_per_head():
    """The plan's synthetic sweeps (noise.csv, strength.csv) give sens.* rows, one per head
    (never pooled), with the effect recomputed here from the committed table; reverse CE on
    the exact softmax head has no minimiser: listed, not silent."""
    rows = pd.read_csv(ROOT / "experiments" / "results" / "ledger.csv")
    ex = pd.read_csv(ROOT / "experiments" / "results" / "ledger_excluded.csv",
                     keep_default_na=False)
    for sid in ("synthetic_noise", "synthetic_strength"):
        r = rows[rows.family.str.startswith(f"sens.{sid}.")]
        assert {s.rsplit("->", 1)[1] for s in r.setting} == {"softmax", "minibatch"}, sid
        e = ex[ex.family.str.startswith(f"sens.{sid}.")]
        assert e.reason.str.startswith("no_minimizer").any(), sid
    syn = pd.read_csv(ROOT / "experiments" / "synthetic" / "results" / "noise.csv")
    g = syn[(syn["head"] == "minibatch") & (syn.noise_frac.round(10) == 0.4)]
    w = g.pivot(index="seed", columns="loss", values="test_acc_strong")
    d = 100 * (w["reverse_kl"] - w["forward_kl"])
    r = rows[(rows.family == "sens.synthetic_noise.c2.minibatch.reverse_kl.acc.0.4")
             & (rows.setting == "synthetic:weak_noise=1.0->minibatch")]
    assert len(r) == 1
    assert r.iloc[0]["effect_pts"] == pytest.approx(d.mean(), abs=1e-4)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert r.iloc[0]["seed_ci_low"] == pytest.approx(d.mean() - half, abs=1e-4)
