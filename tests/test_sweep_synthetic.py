"""End-to-end tests of ``w2s-theory synthetic``: a tiny sweep, resuming, config errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

from w2s_theory.pipelines import synthetic as sw

TINY = textwrap.dedent("""
    [sweep]
    name = "tiny"
    kind = "theorem2"
    seeds = 2
    results = "@OUT@/tiny.csv"
    figures_dir = "figs"

    [base]
    n_gt = 60
    n_w2s = 50
    n_test = 40
    d_strong = 4
    d_weak = 2
    truth = "affine"
    truth_scale = 0.9

    [random]
    k = { choices = [2, 3] }
    weak_noise = [0.0, 1.0]

    [minibatch]
    lr = 0.05

    [[variant]]
    name = "realizable"
    methods = ["convex/reverse_kl", "convex/forward_kl", "minibatch/reverse_kl"]

    [[variant]]
    name = "unrealizable"
    methods = ["convex/reverse_kl"]
    [variant.overrides]
    misspec = 0.5

    [ci]
    seeds = 1
""")


def _write(tmp_path, text=TINY):
    p = tmp_path / "tiny.toml"
    p.write_text(text.replace("@OUT@", str(tmp_path / "out")))
    return p


def test_cli_runs_a_tiny_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg_path = _write(tmp_path)
    from w2s_theory.cli import main as cli_main

    assert cli_main(["synthetic", "--config", str(cfg_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "8 new runs, 0 already done" in out
    # a summary like the demo's, the cases that break an assumption marked as expected to fail
    assert out.startswith("Theorem 2: slack = R(F_w) - d_reverse - R(F_sw) >= -tol")
    assert "no (expected to fail)" in out and "violated" in out
    # where the config's [sweep] results points (every CLI honours its config's output key;
    # relative to the project root, so the test's config names an absolute path)
    local = tmp_path / "out"
    df = pd.read_csv(local / "tiny.csv")
    assert not (tmp_path / "figs").exists()     # figures go beside the table
    assert len(df) == 8 and df["run_key"].is_unique
    assert (local / "synthetic_tiny.png").stat().st_size > 10_000
    assert (local / "synthetic_tiny.pdf").read_bytes()[:5] == b"%PDF-"
    for col in ("seed", "k", "method", "risk_weak", "risk_strong", "d_forward", "d_reverse",
                "slack_rev", "slack_fwd", "tol", "l1_gap", "l1_tv", "l1_sqrt_forward",
                "test_acc_strong", "fit_status", "fit_duality_gap"):
        assert col in df.columns, col
    # the row's numbers are the instance's, recomputed independently
    r = df[(df["variant"] == "realizable") & (df["method"] == "convex/reverse_kl")].iloc[0]
    from w2s_theory.divergences import kl
    from w2s_theory.synthetic import make_instance

    cfg = sw.load_sweep_config(cfg_path)
    run = next(x for x in sw.expand_runs(cfg) if x.key == r["run_key"])
    inst = make_instance(run.config, run.seed)
    head = sw.fit_method(run.method, inst.w2s.h_strong, inst.weak_probs, gamma=run.config.gamma)
    np.testing.assert_allclose(r["risk_weak"], kl(inst.w2s.f_star, inst.weak_probs).mean(),
                               rtol=1e-12)
    np.testing.assert_allclose(r["d_reverse"], kl(head.probs, inst.weak_probs).mean(), rtol=1e-6)
    assert abs(r["slack_rev"] - (r["risk_weak"] - r["d_reverse"] - r["risk_strong"])) < 1e-12
    # Theorem 2 holds for the realizable reverse projection, within the solver's tolerance
    ok = df[(df["variant"] == "realizable") & (df["method"] == "convex/reverse_kl")]
    assert (ok["slack_rev"] >= -ok["tol"]).all() and (ok["tol"] < 1e-6).all()
    # CI mode applies [ci] and writes a separate table
    assert cli_main(["synthetic", "--config", str(cfg_path), "--ci", "--quiet",
                     "--no-figures"]) == 0
    assert len(pd.read_csv(local / "tiny_ci.csv")) == 4
    # --out asks for another folder (e.g. the committed tables')
    assert cli_main(["synthetic", "--config", str(cfg_path), "--ci", "--quiet", "--no-figures",
                     "--out", str(tmp_path / "elsewhere")]) == 0
    assert len(pd.read_csv(tmp_path / "elsewhere" / "tiny_ci.csv")) == 4


def test_killed_sweep_resumes_without_recomputation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = sw.load_sweep_config(_write(tmp_path))
    first = sw.run_sweep(cfg, limit=3, progress=False)          # "killed" after 3 runs
    assert first["computed"] == 3
    partial = pd.read_csv(cfg.results)
    assert len(partial) == 3

    calls = []
    real_fit = sw.fit_method

    def counting_fit(*a, **kw):
        calls.append(a[0])
        return real_fit(*a, **kw)

    monkeypatch.setattr(sw, "fit_method", counting_fit)
    second = sw.run_sweep(cfg, progress=False)
    assert second["computed"] == 5 and second["skipped"] == 3 and len(calls) == 5
    full = pd.read_csv(cfg.results)
    # the 3 rows written before the "kill" are unchanged
    pd.testing.assert_frame_equal(full.iloc[:3][partial.columns], partial)

    third = sw.run_sweep(cfg, progress=False)
    assert third["computed"] == 0 and third["skipped"] == 8 and len(calls) == 5
    pd.testing.assert_frame_equal(pd.read_csv(cfg.results), full)


def test_a_failed_fit_is_recorded_not_fatal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = sw.load_sweep_config(_write(tmp_path), ci=True)
    real_fit = sw.fit_method

    def flaky(method, *a, **kw):
        if method == "convex/forward_kl":
            raise RuntimeError("Clarabel returned no solution (status NumericalError)")
        return real_fit(method, *a, **kw)

    monkeypatch.setattr(sw, "fit_method", flaky)
    out = sw.run_sweep(cfg, progress=False)
    df = out["table"].frame()
    assert out["computed"] == 4 and out["errors"] == 1 and len(df) == 4
    bad = df[df["method"] == "convex/forward_kl"].iloc[0]
    assert bad["fit_status"].startswith("error: RuntimeError") and np.isnan(bad["slack_rev"])
    s = sw.summarize_theorem2(df).set_index(["variant", "method"])
    assert s.loc[("realizable", "convex/forward_kl"), "errors"] == 1
    assert not s.loc[("realizable", "convex/forward_kl"), "all_solved"]


def test_same_config_same_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = sw.load_sweep_config(_write(tmp_path), ci=True)
    a = sw.run_sweep(cfg, results=tmp_path / "a.csv", progress=False)["table"].frame()
    b = sw.run_sweep(cfg, results=tmp_path / "b.csv", progress=False)["table"].frame()
    cols = [c for c in a.columns if c != "fit_time_s"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_summaries_and_curve_figure(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        for x in (0.0, 0.5):
            for m in ("softmax/forward_kl", "minibatch/reverse_kl"):
                rows.append({"seed": seed, "noise_frac": x, "method": m, "head": m.split("/")[0],
                             "test_acc_strong": 0.8 - x * 0.5 + rng.normal(0, 0.01),
                             "test_risk_strong": 0.2 + x, "test_acc_weak": 0.7,
                             "test_risk_weak": 0.3})
    df = pd.DataFrame(rows)
    s = sw.summarize_curve(df, "noise_frac")
    g = df[(df["method"] == "softmax/forward_kl") & (df["noise_frac"] == 0.0)]["test_acc_strong"]
    row = s[(s["method"] == "softmax/forward_kl") & (s["noise_frac"] == 0.0)].iloc[0]
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * g.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([row["test_acc_strong_mean"], row["test_acc_strong_ci95"]],
                               [g.mean(), half])
    from w2s_theory.plotting import plot_curve

    fig = plot_curve(df, "noise_frac")
    assert len(fig.axes) == 4
    t2 = pd.DataFrame({"variant": ["a"] * 3, "method": ["convex/reverse_kl"] * 3,
                       "slack_rev": [1e-3, -1e-12, -1e-3], "slack_fwd": [0.0] * 3,
                       "tol": [1e-10] * 3, "risk_weak": [1.0] * 3, "fit_status": ["Solved"] * 3})
    s2 = sw.summarize_theorem2(t2)
    assert s2.loc[0, "violations_rev"] == 1 and s2.loc[0, "worst_violation_rev"] == 1e-3


@pytest.mark.parametrize("old, new", [
    ('kind = "theorem2"', 'kind = "nope"'),
    ('methods = ["convex/reverse_kl"]\n', 'methods = ["convex/reverse_ce"]\n'),
    ("weak_noise = [0.0, 1.0]", "noise_level = [0.0, 1.0]"),
    ("misspec = 0.5", "missspec = 0.5"),
])
def test_config_errors_are_reported(tmp_path, old, new, capsys):
    assert old in TINY
    p = _write(tmp_path, TINY.replace(old, new))
    from w2s_theory.cli import main

    assert main(["synthetic", "--config", str(p)]) == 2
    assert "w2s-theory synthetic:" in capsys.readouterr().err


def test_curve_sweep_needs_x():
    with pytest.raises(ValueError, match="x"):
        sw.sweep_config_from_dict({"sweep": {"name": "c", "kind": "curve", "methods": [
            "softmax/forward_kl"]}, "grid": {"noise_frac": [0.0]}})
