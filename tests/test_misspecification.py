"""Tests for w2s_theory.misspecification: Theorem 2 without realizability (``d_rev - 2 eps``).

Every term is recomputed independently (plain float64 loops; the epsilon LP re-solved by
scipy's HiGHS), the bound is checked on randomized synthetic instances, realizable or not,
and the realizable statement (no ``2 eps``) is shown to fail on misspecified instances, so
the check is one that can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from w2s_theory.bounds import theorem2
from w2s_theory.heads import fit_convex_head
from w2s_theory.misspecification import (
    log_ratio_weights,
    misspecification_epsilon,
    theorem2_misspecified,
)
from w2s_theory.synthetic import SyntheticConfig, make_instance


def _design(x):
    sd = x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return np.hstack([(x - x.mean(0)) / sd, np.ones((x.shape[0], 1))])


def _cat(p):
    p = np.asarray(p, dtype=np.float64)
    return np.stack([1 - p, p], axis=1) if p.ndim == 1 else p


def _epsilon_highs(x, f_star, w, gamma):
    """The epsilon LP written out by hand and solved by HiGHS (independent of cvxpy/Clarabel).

    Variables: theta (d+1, k-1) then t (n, k) >= |P - F*|; minimise sum_x w_x/2 sum_i t_xi / n.
    """
    fc = _cat(f_star)
    n, k = fc.shape
    D = _design(x)
    p_ = D.shape[1]
    nth = p_ * (k - 1)
    nv = nth + n * k
    c = np.zeros(nv)
    c[nth:] = (np.repeat(w, k) / 2.0) / n
    rows, b = [], []

    def p_row(i, cls):
        """Coefficients of P_{i,cls} in theta and its constant."""
        r = np.zeros(nv)
        if cls == 0:
            for j in range(k - 1):
                r[j * p_:(j + 1) * p_] = -D[i]
            return r, 1.0
        r[(cls - 1) * p_:cls * p_] = D[i]
        return r, 0.0

    for i in range(n):
        for cls in range(k):
            r, const = p_row(i, cls)
            t = np.zeros(nv)
            t[nth + i * k + cls] = 1.0
            rows.append(r - t)                 # P - t <= F* - const
            b.append(fc[i, cls] - const)
            rows.append(-r - t)                # -P - t <= -F* + const
            b.append(-fc[i, cls] + const)
            rows.append(-r)                    # P >= gamma
            b.append(const - gamma)
    bounds = [(None, None)] * nth + [(0, None)] * (n * k)
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(b), bounds=bounds, method="highs")
    assert res.status == 0, res.message
    return res.fun


def _instance(k=2, misspec=0.0, truth="affine", seed=0, weak_noise=0.5, n=160, d=5):
    cfg = SyntheticConfig(k=k, d_strong=d, d_weak=2, n_gt=200, n_w2s=n, n_test=5, truth=truth,
                          truth_scale=0.9 if truth == "affine" else 3.0, misspec=misspec,
                          weak_noise=weak_noise)
    inst = make_instance(cfg, seed)
    h = fit_convex_head(inst.w2s.h_strong, inst.weak_probs, divergence="reverse_kl",
                        gamma=cfg.gamma)
    return cfg, inst, h


@pytest.mark.parametrize("k, misspec, seed", [(2, 0.0, 0), (2, 0.6, 1), (3, 0.6, 2),
                                              (3, 0.0, 3)])
def test_every_term_matches_an_independent_float64_computation(k, misspec, seed):
    cfg, inst, h = _instance(k=k, misspec=misspec, seed=seed, n=60, d=3)
    fs, fw, fsw, x = inst.w2s.f_star, inst.weak_probs, h.probs, inst.w2s.h_strong
    r = theorem2_misspecified(fs, fw, fsw, x, cfg.gamma, head=h)
    fit = misspecification_epsilon(x, fs, log_ratio_weights(fw, fsw)[1], cfg.gamma)
    F, W, S, P = _cat(fs), _cat(fw), _cat(fsw), fit.probs
    n = F.shape[0]
    rw = rs = drev = eps = tv = c_term = h_inner = 0.0
    mmax = 0.0
    for i in range(n):
        g = [math.log(S[i, j] / W[i, j]) for j in range(k)]
        m = max(abs(v) for v in g)
        mmax = max(mmax, m)
        rw += sum(F[i, j] * math.log(F[i, j] / W[i, j]) for j in range(k) if F[i, j] > 0)
        rs += sum(F[i, j] * math.log(F[i, j] / S[i, j]) for j in range(k) if F[i, j] > 0)
        drev += sum(S[i, j] * g[j] for j in range(k))
        t = 0.5 * sum(abs(P[i, j] - F[i, j]) for j in range(k))
        tv += t
        eps += t * m
        c_term += sum((P[i, j] - S[i, j]) * g[j] for j in range(k))
        h_inner += sum((P[i, j] - F[i, j]) * g[j] for j in range(k))
    rw, rs, drev, eps, tv, c_term, h_inner = (v / n for v in (rw, rs, drev, eps, tv, c_term,
                                                               h_inner))
    assert r.risk_weak == pytest.approx(rw, abs=1e-12)
    assert r.risk_strong == pytest.approx(rs, abs=1e-12)
    assert r.gain == pytest.approx(rw - rs, abs=1e-12)
    assert r.d_reverse == pytest.approx(drev, abs=1e-12)
    assert r.epsilon == pytest.approx(eps, abs=1e-12)
    assert r.tv_to_class == pytest.approx(tv, abs=1e-12)
    assert r.max_log_ratio == pytest.approx(mmax, abs=1e-12)
    assert r.guaranteed_gain == pytest.approx(drev - 2 * eps, abs=1e-12)
    assert r.slack == pytest.approx((rw - rs) - (drev - 2 * eps), abs=1e-11)
    assert r.csiszar_term == pytest.approx(c_term, abs=1e-12)
    assert r.holder_term == pytest.approx(2 * eps - h_inner, abs=1e-12)
    assert r.slack == pytest.approx(r.csiszar_term + r.holder_term, abs=1e-11)
    assert r.realizable_slack == pytest.approx(theorem2(fs, fw, fsw).slack, abs=1e-12)
    # The LP's optimum, re-solved by HiGHS from a hand-written constraint matrix.
    assert fit.epsilon == pytest.approx(_epsilon_highs(x, fs, log_ratio_weights(fw, fsw)[1],
                                                       cfg.gamma), abs=1e-7)
    assert fit.status == "Solved" and fit.duality_gap < 1e-8


def test_lp_member_is_exactly_in_the_class():
    """P is affine in [z; 1], rows sum to 1, every coordinate >= gamma (no round-off below)."""
    cfg, inst, h = _instance(k=3, misspec=0.8, seed=4, n=80, d=4)
    x = inst.w2s.h_strong
    fit = misspecification_epsilon(x, inst.w2s.f_star, np.ones(80), cfg.gamma)
    assert fit.probs.min() >= cfg.gamma
    assert np.allclose(fit.probs.sum(axis=1), 1.0, atol=1e-14)
    D = _design(x)
    assert np.allclose(D @ fit.theta, fit.probs[:, 1:], atol=1e-12)
    # Known answer: a one-hot truth on a non-affine pattern cannot be fitted exactly.
    xx = np.array([[0.0], [1.0], [2.0], [3.0]])
    f2 = misspecification_epsilon(xx, np.array([0.0, 1.0, 0.0, 1.0]), np.ones(4), 0.01)
    assert f2.epsilon == pytest.approx(_epsilon_highs(xx, np.array([0.0, 1.0, 0.0, 1.0]),
                                                      np.ones(4), 0.01), abs=1e-9)


def test_line_one_at_p_equal_student_is_an_identity():
    """With P = F_sw the first line reads R(F_sw) <= R(F_sw): true for ANY F_sw (proves nothing)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        fs, fw, fsw = (rng.dirichlet(np.ones(3), size=30) for _ in range(3))
        g = np.log(fsw / fw)
        rw = np.sum(fs * np.log(fs / fw)) / 30
        rs = np.sum(fs * np.log(fs / fsw)) / 30
        drev = np.sum(fsw * g) / 30
        line1 = rw - drev + np.sum((fsw - fs) * g) / 30
        assert line1 == pytest.approx(rs, abs=1e-12)


def _family(n_instances):
    """Randomized synthetic instances: realizable (affine truth) and misspecified ones."""
    rng = np.random.default_rng(2025)
    for i in range(n_instances):
        k = int(rng.choice([2, 3]))
        kind = ["realizable", "affine_misspec", "softmax_truth"][i % 3]
        misspec = 0.0 if kind != "affine_misspec" else float(rng.uniform(0.2, 1.0))
        truth = "softmax" if kind == "softmax_truth" else "affine"
        yield kind, _instance(k=k, misspec=misspec, truth=truth, seed=i,
                              weak_noise=float(rng.uniform(0.1, 2.0)), n=150, d=5)


def test_bound_holds_on_every_synthetic_instance_and_the_realizable_form_fails_when_misspecified():
    results = {"realizable": [], "affine_misspec": [], "softmax_truth": []}
    for kind, (cfg, inst, h) in _family(24):
        r = theorem2_misspecified(inst.w2s.f_star, inst.weak_probs, h.probs, inst.w2s.h_strong,
                                  cfg.gamma, head=h)
        results[kind].append(r)
    for kind, rs in results.items():
        assert all(r.holds for r in rs), (kind, [r.slack for r in rs if not r.holds])
        # each part of the slack is non-negative up to the projection's own accuracy
        assert all(r.csiszar_term >= -r.tol and r.holder_term >= -1e-12 for r in rs)
    # Realizable: eps ~ 0 (F* is in the class), so the bound is Theorem 2 and the gain d_rev > 0.
    assert all(r.epsilon < 1e-9 for r in results["realizable"])
    assert all(r.realizable_slack >= -r.tol for r in results["realizable"])
    assert all(r.gain_positive for r in results["realizable"])
    # Misspecified: eps > 0, and the deliberately wrong version (no 2 eps) fails somewhere.
    mis = results["affine_misspec"] + results["softmax_truth"]
    assert all(r.epsilon > 1e-6 for r in mis)
    wrong_fails = [r for r in mis if r.realizable_slack < -r.tol]
    assert len(wrong_fails) >= 3, [r.realizable_slack for r in mis]


def test_check_fails_when_the_student_is_not_the_reverse_kl_projection():
    """The forward-KL (M-) projection is not covered: the same check reports violations."""
    fails = 0
    for seed in range(6):
        cfg, inst, _ = _instance(k=2, misspec=0.0, seed=seed, n=150, weak_noise=1.5)
        hf = fit_convex_head(inst.w2s.h_strong, inst.weak_probs, divergence="forward_kl",
                             gamma=cfg.gamma)
        r = theorem2_misspecified(inst.w2s.f_star, inst.weak_probs, hf.probs,
                                  inst.w2s.h_strong, cfg.gamma, tol=hf.report.duality_gap)
        fails += not r.holds
    assert fails >= 1


def test_input_validation():
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([0.2, 0.5, 0.8])
    h = fit_convex_head(x, y, divergence="forward_kl", gamma=0.01)
    with pytest.raises(ValueError, match="head: must be a reverse_kl fit"):
        theorem2_misspecified(y, y, h.probs, x, 0.01, head=h)
    with pytest.raises(ValueError, match="f_strong: shape"):
        theorem2_misspecified(y, y, y[:2], x, 0.01)
    with pytest.raises(ValueError, match="strictly positive"):
        theorem2_misspecified(y, np.array([0.0, 0.5, 0.8]), y, x, 0.01)
    with pytest.raises(ValueError, match="gamma"):
        theorem2_misspecified(y, y, y, x, 0.9)
    with pytest.raises(ValueError, match="features: has 2 rows"):
        theorem2_misspecified(y, y, y, x[:2], 0.01)
    with pytest.raises(ValueError, match="weights"):
        misspecification_epsilon(x, y, -np.ones(3), 0.01)
    hr = fit_convex_head(x, y, divergence="reverse_kl", gamma=0.01)
    with pytest.raises(ValueError, match="head.probs must equal"):
        theorem2_misspecified(y, y, y, x, 0.01, head=hr)


def test_result_prints_as_a_table_and_converts_to_dict():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.2, 0.45, 0.55, 0.8])
    h = fit_convex_head(x, y, divergence="reverse_kl", gamma=0.01)
    r = theorem2_misspecified(np.array([0.0, 1.0, 0.0, 1.0]), y, h.probs, x, 0.01, head=h)
    d = r.to_dict()
    assert list(d)[:6] == ["risk_weak", "risk_strong", "gain", "d_reverse", "epsilon",
                           "guaranteed_gain"]
    assert "guaranteed_gain" in str(r) and "MisspecifiedTheorem2Result" in str(r)


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("one_hot", [True, False])
def test_epsilon_highs_equals_clarabel(k, one_hot):
    """Two independent LP solvers (HiGHS interior point + crossover, Clarabel) reach the same
    optimum of the eps program, binary and k-class, one-hot and soft truth."""
    rng = np.random.default_rng(10 * k + one_hot)
    n = 200
    x = rng.normal(size=(n, 4))
    f = np.eye(k)[rng.integers(0, k, n)] if one_hot else rng.dirichlet(np.ones(k), size=n)
    if k == 2:
        f = f[:, 1]
    w = rng.exponential(size=n)
    a = misspecification_epsilon(x, f, w, 0.01, solver="highs")
    b = misspecification_epsilon(x, f, w, 0.01, solver="clarabel")
    assert a.status == "Solved"
    assert abs(a.epsilon - b.epsilon) <= 1e-8 * max(1.0, b.epsilon)
    assert a.probs.min() >= 0.01 and np.allclose(a.probs.sum(axis=1), 1.0)


def test_epsilon_solver_name_checked():
    with pytest.raises(ValueError, match="solver"):
        misspecification_epsilon(np.zeros((3, 1)), np.array([0.2, 0.5, 0.7]), np.ones(3), 0.01,
                                 solver="glpk")
