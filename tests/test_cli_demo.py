"""``w2s-theory demo`` end to end: exit code, files, their content, determinism."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from w2s_theory.cli import main
from w2s_theory.pipelines.demo import DemoConfig, hull_instance, segment_projections

SMALL = """
[demo]
seed = 3
lemma1_trials = 40
rows = 10
gammas = [0.01, 0.2]
classes = [2, 4]
hull_instances = 3
segment_instances = 6
"""


def test_demo_default_run(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Lemma 1:" in printed and "Theorem 2:" in printed and "demo.png" in printed
    for name in ("lemma1_trials.csv", "theorem2_cases.csv", "summary.csv", "config.json", "demo.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text()) == json.loads(json.dumps(asdict(DemoConfig())))

    L = pd.read_csv(out / "lemma1_trials.csv")
    assert len(L) == DemoConfig().lemma1_trials and L["holds"].all()
    finite = L[L["gap"] != 0]
    for s in ("data_dependent", "tv", "sqrt_forward", "sqrt_reverse"):
        assert (finite[f"ratio_{s}"] >= 1 - 1e-9).all()
    # the printed ratios are the stages over |gap|
    np.testing.assert_allclose(finite["ratio_tv"], finite["tv_bound"] / finite["gap"].abs(), rtol=1e-12)

    T = pd.read_csv(out / "theorem2_cases.csv")
    rev_real = T[(T["projection"] == "reverse") & T["realizable"]]
    assert len(rev_real) > 0 and rev_real["holds"].all()
    assert (~T.loc[~T["realizable"], "holds"]).all()                      # caught, every time
    assert (~T.loc[T["projection"] == "forward", "holds"]).sum() > 0       # forward KL can fail
    # every slack equals its closed form within the tolerance used
    assert ((T["slack"] - T["expected"]).abs() <= T["tol"] + 1e-15).all()

    S = pd.read_csv(out / "summary.csv")
    assert set(S["check"]) == {"lemma1", "theorem2"}
    assert S.loc[S["check"] == "lemma1", "violations"].sum() == 0


def test_demo_is_deterministic_and_reads_toml(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["demo", "--out", str(out), "--config", str(cfg), "--quiet"]) == 0
    for name in ("lemma1_trials.csv", "theorem2_cases.csv", "summary.csv", "config.json", "demo.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert len(pd.read_csv(a / "lemma1_trials.csv")) == 40
    assert json.loads((a / "config.json").read_text())["gammas"] == [0.01, 0.2]
    # a different seed gives different populations
    c = tmp_path / "c"
    assert main(["demo", "--out", str(c), "--config", str(cfg), "--seed", "4", "--quiet"]) == 0
    assert (a / "lemma1_trials.csv").read_bytes() != (c / "lemma1_trials.csv").read_bytes()


def test_demo_config_rejects_bad_settings(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lemma1_trial = 5\n")
    with pytest.raises(ValueError, match="unknown key"):
        DemoConfig.from_toml(bad)
    with pytest.raises(ValueError, match="^gammas: "):
        DemoConfig(gammas=(0.4,), classes=(2, 3))
    with pytest.raises(ValueError, match="^rows: "):
        DemoConfig(rows=0)


def test_hull_instance_projection_is_optimal_and_segment_bisection_is_exact():
    """The demo's exact instances: KKT by construction; bisection to adjacent floats."""
    rng = np.random.default_rng(0)
    G, lam, Q, phi, fw = hull_instance(rng, 6, 3)
    inner = np.einsum("jnk,nk->j", G, phi)
    np.testing.assert_allclose(inner, [0, 0, 0, 0.05 * 6], atol=1e-12)
    obj = lambda P: float(np.sum(P * np.log(P / fw)))  # noqa: E731
    assert all(obj(np.einsum("j,jnk->nk", mu, G)) >= obj(Q) - 1e-13
               for mu in rng.dirichlet(np.ones(4), 500))
    g1, g2, w = (rng.dirichlet(np.ones(3), 8) for _ in range(3))
    pr = segment_projections(g1, g2, w)
    for key in ("reverse", "forward"):
        lam_, res = pr[key]
        assert 0.0 <= lam_ <= 1.0 and res < 1e-12
    lam_r = pr["reverse"][0]
    grid = np.linspace(0, 1, 2001)
    vals = [float(np.sum((t * g1 + (1 - t) * g2) * np.log((t * g1 + (1 - t) * g2) / w))) for t in grid]
    assert abs(grid[int(np.argmin(vals))] - lam_r) <= 1e-3
