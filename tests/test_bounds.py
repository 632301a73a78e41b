"""Lemma 1 and Theorem 2: independent formulas, random populations, known-answer instances.

* Lemma 1: every field against a plain-Python float64 computation (hypothesis, 1000
  examples); every stage of the chain holds on 2000 random smoothed populations (binary
  and k-class, gamma from 1e-4 to 1/k); a deliberately wrong constant (C1/10, or 1/(10
  gamma) in the TV stage) and a broken assumption (predictions below the claimed gamma)
  are caught as violations on some of the same populations.
* Theorem 2: fields against plain Python; a convex hull class whose exact reverse-KL
  projection is known by construction (first-order conditions built in), with its
  equality cases and its exact slack; a segment class solved to machine precision by
  bisection, where the forward-KL projection and non-realizable truths give negative
  slack and the check reports it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2s_theory import bounds
from w2s_theory.bounds import (
    Lemma1Result,
    Theorem2Result,
    lemma1,
    lemma1_constant,
    strong_risk_lower_bound,
    strong_risk_upper_bound,
    theorem2,
    theorem2_risk_bound,
)
from w2s_theory.divergences import kl, smooth

PROPERTY = settings(max_examples=1000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- references
def rows(a):
    a = np.asarray(a, dtype=np.float64)
    return [[1.0 - float(v), float(v)] for v in a] if a.ndim == 1 else [list(map(float, r)) for r in a]


def xlog_ratio(p, q):
    return 0.0 if p == 0.0 else p * math.log(p / q)


def ref_lemma1(fs, fw, fsw, gamma):
    """Every Lemma 1 quantity with Python loops, plus an error scale (sum of |terms| / n)."""
    R, W, S = rows(fs), rows(fw), rows(fsw)
    n = len(R)
    gap = d_f = d_r = tv = dd = mag = 0.0
    binary = np.ndim(fs) == 1
    for r, w, s in zip(R, W, S):
        g_terms = [ri * math.log(wi / si) for ri, wi, si in zip(r, w, s)]
        f_terms = [xlog_ratio(wi, si) for wi, si in zip(w, s)]
        r_terms = [xlog_ratio(si, wi) for wi, si in zip(w, s)]
        gap += math.fsum(g_terms)
        d_f += math.fsum(f_terms)
        d_r += math.fsum(r_terms)
        mag += sum(map(abs, g_terms + f_terms + r_terms)) + 1e-3
        t = abs(w[1] - s[1]) if binary else 0.5 * sum(abs(wi - si) for wi, si in zip(w, s))
        tv += t
        dd += t / min(min(w), min(s))
    gap, d_f, d_r, tv, dd, mag = (v / n for v in (gap, d_f, d_r, tv, dd, mag))
    return dict(gap=gap, d_forward=d_f, d_reverse=d_r, tv_bound=tv / gamma, data_dependent_bound=dd,
                sqrt_bound_forward=math.sqrt(max(d_f, 0) / 2) / gamma,
                sqrt_bound_reverse=math.sqrt(max(d_r, 0) / 2) / gamma), mag


def ref_theorem2(fs, fw, fsw):
    R, W, S = rows(fs), rows(fw), rows(fsw)
    n = len(R)
    rw = sum(math.fsum(xlog_ratio(ri, wi) for ri, wi in zip(r, w)) for r, w in zip(R, W)) / n
    rs = sum(math.fsum(xlog_ratio(ri, si) for ri, si in zip(r, s)) for r, s in zip(R, S)) / n
    dr = sum(math.fsum(xlog_ratio(si, wi) for si, wi in zip(s, w)) for s, w in zip(S, W)) / n
    mag = sum(sum(abs(ri * math.log(si / wi)) + abs(si * math.log(si / wi)) + 1e-3
                  for ri, si, wi in zip(r, s, w)) for r, s, w in zip(R, S, W)) / n
    return dict(risk_weak=rw, risk_strong=rs, d_reverse=dr, slack=rw - dr - rs), mag


def sqrt_tol(d1, d2, err_d, gamma):
    """Round-off allowance for sqrt(d/2)/gamma when d is known to +-err_d.

    KL of nearly equal distributions is a difference of first-order terms: its absolute
    error (err_d, a few ulps of the terms) is large relative to d itself, and the square
    root amplifies it: |sqrt(x/2) - sqrt(y/2)| = |x - y| / (2 (sqrt(x/2) + sqrt(y/2))).
    """
    denom = math.sqrt(max(d1, 0) / 2) + math.sqrt(max(d2, 0) / 2)
    bound = math.sqrt(err_d / 2) if denom == 0 else min(err_d / (2 * denom), math.sqrt(err_d / 2))
    return (bound + 1e-12 * denom) / gamma


def assert_fields(result, ref, scale):
    for name, v in ref.items():
        got = getattr(result, name)
        # 1e-14 relative: k-class rows are renormalised at the validation boundary (each
        # entry moves by ~1 ulp; the plain-Python reference uses the rows as given), which a
        # ratio such as TV / m(x) with m(x) = 5e-7 carries as a few ulps of its own.
        assert abs(got - v) <= 1e-12 * scale + 1e-14 * abs(v), (name, got, v, scale)


# ----------------------------------------------------------------------------- generators
@st.composite
def smoothed_triple(draw):
    """(F*, smoothed F_w, smoothed F_sw, gamma) with zeros, ones and near-floor predictions."""
    n = draw(st.integers(1, 5))
    binary = draw(st.booleans())
    k = 2 if binary else draw(st.integers(2, 5))
    gamma = draw(st.sampled_from([1e-6, 1e-4, 1e-3, 1e-2, 0.1])) if draw(st.booleans()) else \
        draw(st.floats(1e-6, 1.0)) / k
    prob = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))
    weight = st.one_of(st.just(0.0), st.floats(1e-300, 1.0))

    def dist():
        if binary:
            return np.array(draw(st.lists(prob, min_size=n, max_size=n)))
        out = []
        for _ in range(n):
            w = draw(st.lists(weight, min_size=k, max_size=k))
            s = math.fsum(w)
            if s == 0.0:
                w[draw(st.integers(0, k - 1))], s = 1.0, 1.0
            out.append([x / s for x in w])
        return np.array(out)

    return dist(), smooth(dist(), gamma), smooth(dist(), gamma), gamma


def random_population(rng, binary: bool):
    """One random population: soft or one-hot truth, peaked or flat predictions, near or far."""
    n = int(rng.integers(1, 30))
    k = 2 if binary else int(rng.integers(2, 7))
    gamma = float(rng.choice([1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3 / k, 1.0 / k]))
    conc = float(rng.choice([0.05, 0.3, 1.0, 5.0]))
    f_star = np.eye(k)[rng.integers(0, k, n)] if rng.uniform() < 0.5 else rng.dirichlet(np.ones(k) * conc, n)
    fw = rng.dirichlet(np.ones(k) * conc, n)
    t = float(rng.choice([1e-3, 0.1, 1.0]))       # strong = weak moved by t towards another point
    fsw = (1 - t) * fw + t * rng.dirichlet(np.ones(k) * conc, n)
    fsw /= fsw.sum(1, keepdims=True)
    if binary:
        f_star, fw, fsw = f_star[:, 1], fw[:, 1], fsw[:, 1]
    return f_star, fw, fsw, gamma


def populations(count=1000, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        yield random_population(rng, binary=bool(i % 2))


# ----------------------------------------------------------------------------- Lemma 1
@PROPERTY
@given(smoothed_triple())
def test_lemma1_and_theorem2_fields_match_reference_and_chain_holds(data):
    fs, fw, fsw, gamma = data
    r = lemma1(fs, fw, fsw, gamma)
    ref, mag = ref_lemma1(fs, fw, fsw, gamma)
    assert_fields(r, {k: v for k, v in ref.items() if not k.startswith(("tv", "sqrt"))}, mag)
    assert r.tv_bound == pytest.approx(ref["tv_bound"], rel=1e-12, abs=1e-15 / gamma)
    err_d = 1e-12 * mag
    for name, d in (("forward", "d_forward"), ("reverse", "d_reverse")):
        got, want = getattr(r, "sqrt_bound_" + name), ref["sqrt_bound_" + name]
        assert abs(got - want) <= sqrt_tol(getattr(r, d), ref[d], err_d, gamma), name
    assert r.n == len(fs) and r.gamma == gamma
    # the chain, stage by stage, up to the round-off of each stage
    tol = 1e-12 * (1 + mag / gamma)
    assert r.holds
    assert abs(r.gap) <= r.data_dependent_bound + tol
    assert r.data_dependent_bound <= r.tv_bound + tol
    for d in (r.d_forward, r.d_reverse):
        # Pinsker can be tight to O(TV^4): compare with d enlarged by its round-off
        assert r.tv_bound <= math.sqrt((d + err_d) / 2) / gamma + tol
    # Theorem 2's fields on the same population (any population: the inequality itself
    # needs a convex class, tested below; here only the arithmetic)
    t = theorem2(fs, fw, fsw)
    ref2, mag2 = ref_theorem2(fs, fw, fsw)
    assert_fields(t, ref2, mag2)
    assert t.holds == (t.slack >= -t.tol) and t.n == len(fs)
    assert t.risk_strong - t.risk_weak == pytest.approx(r.gap, abs=1e-12 * (mag + mag2))


def _kl_magnitude(fw, fsw):
    """Mean over rows of sum_i (F_w,i + F_sw,i) |log(F_w,i / F_sw,i)| + 1: the KLs' error scale."""
    w, s = rows(fw), rows(fsw)
    return 1.0 + float(np.mean([sum((a + b) * abs(math.log(a / b)) for a, b in zip(x, y))
                                for x, y in zip(w, s)]))


def _chain_violations(r: Lemma1Result, c_scale: float = 1.0, tol: float = 1e-12):
    """Stages (scaled by ``c_scale``) that fall below |gap|."""
    a = abs(r.gap)
    return {name: v for name, v in r.stages().items() if c_scale * v < a - tol * (1 + a)}


def test_lemma1_holds_on_2000_random_populations_and_wrong_constants_are_caught():
    results = []
    for fs, fw, fsw, gamma in populations(2000):
        fw, fsw = smooth(fw, gamma), smooth(fsw, gamma)
        r = lemma1(fs, fw, fsw, gamma)
        assert r.holds and not _chain_violations(r), (r, gamma)
        assert r.data_dependent_bound <= r.tv_bound * (1 + 1e-12) + 1e-300
        err_d = 1e-13 * _kl_magnitude(fw, fsw)
        for d in (r.d_forward, r.d_reverse):
            assert r.tv_bound <= math.sqrt((d + err_d) / 2) / gamma * (1 + 1e-12)
        results.append(r)
    # a wrong constant C1/10 (and 1/(10 gamma) in the TV stage) IS caught on some populations
    wrong_sqrt = sum(bool({"sqrt_forward", "sqrt_reverse"} & _chain_violations(r, 0.1).keys())
                     for r in results)
    wrong_tv = sum("tv" in _chain_violations(r, 0.1) for r in results)
    assert wrong_sqrt >= 20 and wrong_tv >= 20, (wrong_sqrt, wrong_tv)
    # the exact constants are never violated, and the TV stage is nearly tight somewhere
    ratios = [r.tightness()["tv"] for r in results if r.gap != 0]
    assert min(ratios) >= 1 - 1e-12 and min(ratios) < 1.5


def test_lemma1_broken_assumption_is_caught():
    """Predictions below the claimed gamma: lemma1 refuses them, and the chain can fail."""
    rng = np.random.default_rng(3)
    claimed = 0.05
    fails = refused = 0
    for _ in range(300):
        fs = np.eye(3)[rng.integers(0, 3, 1)]
        fw, fsw = smooth(rng.dirichlet([0.2] * 3, 1), 1e-3), smooth(rng.dirichlet([0.2] * 3, 1), 1e-3)
        if min(fw.min(), fsw.min()) < claimed:
            with pytest.raises(ValueError, match=r"^f_(weak|strong): smallest probability .* below gamma"):
                lemma1(fs, fw, fsw, claimed)
            refused += 1
        # what the TV stage would say with the claimed gamma, against the exact gap
        r = lemma1(fs, fw, fsw, 1e-3)
        fails += abs(r.gap) > r.tv_bound * 1e-3 / claimed
    assert fails >= 5 and refused >= 200, (fails, refused)
    # clamping instead of smoothing breaks sum = 1: refused too
    with pytest.raises(ValueError, match=r"^f_strong: row 0 sums to"):
        lemma1([[1.0, 0.0]], [[0.5, 0.5]], [[1.0, 0.05]], 0.05)


def test_lemma1_uniform_predictions_at_gamma_one_over_k():
    fs = np.eye(4)[[0, 1, 3]]
    u = smooth(np.eye(4)[[2, 2, 0]], 0.25)
    r = lemma1(fs, u, u, 0.25)
    assert r.gap == 0.0 and r.tv_bound == 0.0 and r.holds


# ----------------------------------------------------------------------------- binary fast path
@pytest.mark.parametrize("n", [1, bounds._BLOCK - 1, bounds._BLOCK + 1, 3 * bounds._BLOCK + 17])
@pytest.mark.parametrize("hard", ["soft", "one-hot", "mixed"])
def test_binary_fast_paths_equal_two_class_paths(n, hard):
    """Blocked binary code vs the vectorised k-class code on the same data (k = 2).

    ``mixed``: one-hot truth except for a single soft row in the second block, so that
    one-hot blocks (one log for KL(F*||F_w)) and soft blocks (two logs) both run.
    """
    rng = np.random.default_rng(n)
    g = 1e-3
    fs = rng.uniform(size=n) if hard == "soft" else (rng.uniform(size=n) < 0.4).astype(float)
    if hard == "mixed":
        fs[min(n - 1, bounds._BLOCK + 3)] = 1e-300    # tiny but not 0: the block is soft
    fw = smooth(rng.uniform(size=n), g)
    fsw = smooth(np.clip(fw + rng.normal(0, 0.05, n), 0, 1), g)
    two = lambda p: np.stack([1 - p, p], 1)  # noqa: E731
    a, b = lemma1(fs, fw, fsw, g), lemma1(two(fs), two(fw), two(fsw), g)
    for f in ("gap", "d_forward", "d_reverse", "data_dependent_bound", "tv_bound",
              "sqrt_bound_forward", "sqrt_bound_reverse"):
        assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-10, abs=1e-13), f
    a, b = theorem2(fs, fw, fsw), theorem2(two(fs), two(fw), two(fsw))
    for f in ("risk_weak", "risk_strong", "d_reverse", "slack"):
        assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-10, abs=1e-13), f
    # and against numpy's own divergences (independent code path)
    assert a.risk_weak == pytest.approx(kl(fs, fw).mean(), rel=1e-10, abs=1e-13)
    assert a.risk_strong == pytest.approx(kl(fs, fsw).mean(), rel=1e-10, abs=1e-13)
    assert a.d_reverse == pytest.approx(kl(fsw, fw).mean(), rel=1e-10, abs=1e-13)


# ----------------------------------------------------------------------------- Theorem 2
def hull_instance(seed, n=6, k=3, m=4, delta=0.05):
    """Class C = conv(G_1..G_m); its reverse-KL projection Q of F_w is known by construction.

    Pick Q = sum_j lam_j G_j with lam > 0 on G_1..G_{m-1} and lam_m = 0, and phi (n, k) with
    <G_j, phi> = 0 for j < m and <G_m, phi> = delta * n. Set F_w = Q exp(-phi) / Z(x). Then
    log(Q/F_w) = phi + log Z(x), so the gradient of lam -> E KL(Q_lam || F_w) is
    const + <G_j, phi>/n: equal on the support, larger off it (KKT on the simplex), and
    the objective is convex in lam, so Q is the exact projection. For F* = G_j the slack is
    exactly <G_j - Q, phi>/n: 0 for j < m (equality), delta for j = m.
    """
    rng = np.random.default_rng(seed)
    G = rng.dirichlet(np.ones(k), size=(m, n))
    lam = rng.dirichlet(np.ones(m - 1))
    Q = np.einsum("j,jnk->nk", lam, G[:-1])
    M = G.reshape(m, n * k)
    phi0 = rng.normal(size=n * k)
    target = np.zeros(m)
    target[-1] = delta * n
    phi = (phi0 - M.T @ np.linalg.solve(M @ M.T, M @ phi0 - target)).reshape(n, k)
    fw = Q * np.exp(-phi)
    fw /= fw.sum(1, keepdims=True)
    return G, lam, Q, phi, fw


def _round_off(*arrays):
    """Float64 round-off scale of a slack computed from these arrays: eps x their size."""
    return 64 * np.finfo(float).eps * sum(float(np.abs(a).sum()) / a.shape[0] for a in arrays)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_theorem2_convex_hull_known_projection(seed, k):
    G, lam, Q, phi, fw = hull_instance(seed, k=k)
    tol = _round_off(phi, np.log(Q), np.log(fw))
    binary = k == 2
    cls = (lambda a: a[:, 1]) if binary else (lambda a: a)   # binary shorthand for k = 2
    # the projection is a minimiser: no member of the class does better (random members)
    n = Q.shape[0]
    obj = lambda P: float(np.sum(P * np.log(P / fw))) / n  # noqa: E731
    rng = np.random.default_rng(100 + seed)
    assert all(obj(np.einsum("j,jnk->nk", mu, G)) >= obj(Q) - 1e-14
               for mu in rng.dirichlet(np.ones(len(G)), 300))
    # equality: any truth on the support's face, including Q itself
    for j in range(len(G) - 1):
        r = theorem2(cls(G[j]), cls(fw), cls(Q), tol=tol)
        assert r.holds and abs(r.slack) <= tol, (j, r.slack)
    r = theorem2(cls(Q), cls(fw), cls(Q), tol=tol)
    assert r.holds and abs(r.slack) <= tol and abs(r.risk_strong) <= tol
    # strict: the member off the face gains exactly delta
    r = theorem2(cls(G[-1]), cls(fw), cls(Q), tol=tol)
    assert r.holds and r.slack == pytest.approx(0.05, abs=tol)
    # mixtures: slack = mu_m * delta
    mu = rng.dirichlet(np.ones(len(G)))
    r = theorem2(cls(np.einsum("j,jnk->nk", mu, G)), cls(fw), cls(Q), tol=tol)
    assert r.holds and r.slack == pytest.approx(mu[-1] * 0.05, abs=tol)
    # non-realizable truth (one-hot at argmin phi): slack = mean_x min_i phi_i(x) < 0, caught
    bad = np.eye(k)[phi.argmin(1)]
    r = theorem2(cls(bad), cls(fw), cls(Q), tol=tol)
    assert not r.holds and r.slack == pytest.approx(phi.min(1).mean(), abs=tol)
    assert r.slack < -1e-3


def test_theorem2_weak_already_in_class_is_equality():
    """F_w in C: the projection is F_w, d_reverse = 0 and R(F_sw) = R(F_w)."""
    rng = np.random.default_rng(0)
    fw = rng.dirichlet(np.ones(4), 7)
    fs = rng.dirichlet(np.ones(4), 7)
    r = theorem2(fs, fw, fw)
    assert r.d_reverse == 0.0 and r.slack == 0.0 and r.risk_strong == r.risk_weak and r.holds


# --- a segment class, solved to machine precision
def _mix(lam, g1, g2):
    return lam * g1 + (1 - lam) * g2


def rev_grad(lam, g1, g2, fw):
    """d/dlam E KL(Q_lam || F_w) for Q_lam = lam G1 + (1 - lam) G2 (the +1 term cancels)."""
    return float(np.sum((g1 - g2) * np.log(_mix(lam, g1, g2) / fw))) / len(fw)


def fwd_grad(lam, g1, g2, fw):
    """d/dlam E KL(F_w || Q_lam)."""
    return -float(np.sum(fw * (g1 - g2) / _mix(lam, g1, g2))) / len(fw)


def bisect_min(grad):
    """Minimiser on [0, 1] of a convex function from its increasing derivative; and |grad|."""
    if grad(0.0) >= 0:
        return 0.0, 0.0            # KKT at the boundary holds exactly
    if grad(1.0) <= 0:
        return 1.0, 0.0
    lo, hi = 0.0, 1.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if grad(mid) < 0 else (lo, mid)
    lam = min((lo, hi), key=lambda t: abs(grad(t)))
    return lam, abs(grad(lam))


def segment(seed, k=3, n=8):
    rng = np.random.default_rng(seed)
    g1, g2 = rng.dirichlet(np.ones(k) * 0.7, n), rng.dirichlet(np.ones(k) * 0.7, n)
    fw = rng.dirichlet(np.ones(k) * 0.7, n)
    return g1, g2, fw


def test_theorem2_segment_reverse_projection_holds_forward_can_fail():
    forward_violations = 0
    for seed in range(40):
        k = 2 + seed % 3
        g1, g2, fw = segment(seed, k)
        lam_r, res = bisect_min(lambda t: rev_grad(t, g1, g2, fw))  # noqa: B023  (called at once)
        lam_f, _ = bisect_min(lambda t: fwd_grad(t, g1, g2, fw))  # noqa: B023
        q_r, q_f = _mix(lam_r, g1, g2), _mix(lam_f, g1, g2)
        for mu in (0.0, 0.3, 0.7, 1.0, lam_r, lam_f):   # realizable truths: points of the class
            fs = _mix(mu, g1, g2)
            tol = res + _round_off(np.log(q_r), np.log(fw))   # solver residual + round-off
            r = theorem2(fs, fw, q_r, tol=tol)
            assert r.holds, (seed, mu, r.slack, tol)
            # independent closed form: slack = (mu - lam) * dL/dlam at the projection
            assert r.slack == pytest.approx((mu - lam_r) * rev_grad(lam_r, g1, g2, fw), abs=tol)
            rf = theorem2(fs, fw, q_f, tol=tol)
            assert rf.slack == pytest.approx((mu - lam_f) * rev_grad(lam_f, g1, g2, fw), abs=tol)
            forward_violations += not rf.holds
        # the truth at the reverse projection is in the class: forward fails unless equal
        if abs(lam_f - lam_r) > 1e-3:
            assert not theorem2(q_r, fw, q_f, tol=1e-12).holds
    assert forward_violations >= 10, forward_violations


# ----------------------------------------------------------------------------- result objects
def test_result_objects_print_and_convert():
    r = lemma1([1.0, 0.0], [0.7, 0.4], [0.8, 0.3], gamma=0.1)
    d = r.to_dict()
    assert list(d) == [f for f in Lemma1Result.__dataclass_fields__]
    assert d["holds"] is True and d["n"] == 2 and d["gap"] == r.gap
    s = str(r)
    lines = s.splitlines()
    assert lines[0] == "Lemma1Result" and set(lines[1]) == {"-"}
    assert len(lines) == 2 + len(d)
    for name, line in zip(d, lines[2:]):
        assert line.split()[0] == name
    assert f"{r.tv_bound:.6g}" in s and "True" in s
    t = theorem2([0.9, 0.2], [0.6, 0.5], [0.9, 0.2])
    assert isinstance(t, Theorem2Result)
    assert set(t.to_dict()) == {"risk_weak", "risk_strong", "d_reverse", "slack", "tol", "n", "holds"}
    assert str(t).splitlines()[0] == "Theorem2Result"
    assert r.tightness()["tv"] == pytest.approx(r.tv_bound / abs(r.gap))
    assert lemma1([0.5], [0.5], [0.5], 0.1).tightness()["tv"] == math.inf


# ----------------------------------------------------------------------------- scalar calculators
def test_scalar_calculators_against_closed_forms():
    for gamma in (1e-3, 0.05, 0.5):
        assert lemma1_constant(gamma) == pytest.approx(1 / (gamma * math.sqrt(2)), rel=1e-15)
        for rw, d in ((0.3, 0.02), (0.0, 0.0), (1.2, 1e-6)):
            c = math.sqrt(d / 2) / gamma
            assert strong_risk_upper_bound(rw, d, gamma) == pytest.approx(rw + c, rel=1e-14)
            assert strong_risk_lower_bound(rw, d, gamma) == pytest.approx(rw - c, rel=1e-14, abs=1e-15)
    assert theorem2_risk_bound(0.5, 0.125) == 0.375
    assert lemma1_constant(0.25, k=4) == pytest.approx(2 * math.sqrt(2))


def test_calculators_over_arrays_equal_a_loop_of_scalar_calls():
    """Arrays in: an array of the broadcast shape, each entry bit-for-bit the scalar call's."""
    rng = np.random.default_rng(3)
    gam = rng.uniform(1e-4, 0.5, size=7)
    rw = rng.uniform(0.0, 2.0, size=(5, 1))
    d = rng.uniform(0.0, 0.1, size=(5, 7))
    got = lemma1_constant(gam)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (7,)
    assert got.tolist() == [lemma1_constant(float(g)) for g in gam]
    for fn in (strong_risk_upper_bound, strong_risk_lower_bound):
        got = fn(rw, d, gam)
        assert got.shape == (5, 7)
        want = [[fn(float(rw[i, 0]), float(d[i, j]), float(gam[j])) for j in range(7)] for i in range(5)]
        assert got.tolist() == want
        # a list, a tensor and a 1-element array are arrays too; k still bounds gamma
        assert fn(0.3, [0.02], 0.1).tolist() == [fn(0.3, 0.02, 0.1)]
        assert fn(0.3, 0.02, torch.tensor([0.1, 0.2], dtype=torch.float64), k=4).tolist() == [fn(0.3, 0.02, g, 4) for g in (0.1, 0.2)]
    got = theorem2_risk_bound(rw, d)
    assert got.tolist() == [[theorem2_risk_bound(float(rw[i, 0]), float(d[i, j])) for j in range(7)]
                            for i in range(5)]
    assert lemma1_constant(np.zeros((0,)) + 0.1).shape == (0,)


def test_calculators_on_numbers_return_python_floats():
    for v in (lemma1_constant(0.1), lemma1_constant(np.float32(0.1)), lemma1_constant(np.array(0.1)),
              strong_risk_upper_bound(0.3, 0.02, torch.tensor(0.1)), strong_risk_lower_bound(0.3, 0.02, 0.1),
              theorem2_risk_bound(np.float64(0.5), 0.125)):
        assert type(v) is float


@pytest.mark.parametrize("call, name, what", [
    (lambda: lemma1_constant([0.1, 0.6]), "gamma", r"must lie in \(0, 1/k\] = \(0, 0.5\] for k=2, got 0.6 at index \(1,\)"),
    (lambda: lemma1_constant([0.1, 0.3], k=4), "gamma", r"for k=4, got 0.3 at index \(1,\)"),
    (lambda: strong_risk_upper_bound([0.3, -1.0], 0.02, 0.1), "risk_weak", r"must lie in \[0, inf\], got -1.0 at index \(1,\)"),
    (lambda: strong_risk_lower_bound(0.3, [[0.02, np.nan]], 0.1), "disagreement", r"must be finite, got nan at index \(0, 1\)"),
    (lambda: strong_risk_upper_bound(np.zeros(2), np.zeros(3), 0.1), "disagreement", r"shape \(3,\) does not broadcast"),
    (lambda: theorem2_risk_bound([0.5], ["0.1"]), "d_reverse", "expected numbers"),
    (lambda: theorem2_risk_bound(np.array([True]), 0.1), "risk_weak", "booleans"),
    (lambda: strong_risk_upper_bound([0.3], 0.02, [0.1], k=[2]), "k", "must be an integer"),
])
def test_calculators_over_arrays_refuse_bad_entries_naming_the_argument(call, name, what):
    with pytest.raises(ValueError, match=rf"^{name}: .*{what}"):
        call()


def test_scalar_calculators_bracket_measured_strong_risk():
    """On random smoothed populations R(F_sw) lies between the Lemma-1 calculators' bounds."""
    for fs, fw, fsw, gamma in populations(200, seed=7):
        fw, fsw = smooth(fw, gamma), smooth(fsw, gamma)
        t = theorem2(fs, fw, fsw)
        k = 2 if np.ndim(fs) == 1 else fs.shape[1]
        for d in (lemma1(fs, fw, fsw, gamma).d_forward, t.d_reverse):
            lo = strong_risk_lower_bound(t.risk_weak, d, gamma, k)
            hi = strong_risk_upper_bound(t.risk_weak, d, gamma, k)
            assert lo - 1e-12 <= t.risk_strong <= hi + 1e-12


def test_binary_fast_paths_do_not_depend_on_thread_count(monkeypatch):
    """Fixed segments, summed in order: bit-for-bit the same result with 1, 2 or 3 threads."""
    rng = np.random.default_rng(11)
    n = 5 * bounds._SEGMENT + 123
    fs, fw, fsw = rng.uniform(size=n), smooth(rng.uniform(size=n), 1e-3), smooth(rng.uniform(size=n), 1e-3)
    out = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("W2S_THEORY_THREADS", threads)
        out.append((lemma1(fs, fw, fsw).to_dict(), theorem2(fs, fw, fsw).to_dict()))
    assert out[0] == out[1] == out[2]
    monkeypatch.setenv("W2S_THEORY_THREADS", "many")
    with pytest.raises(ValueError, match="^W2S_THEORY_THREADS: must be an integer"):
        lemma1(fs, fw, fsw)


# ----------------------------------------------------------------------------- input checks per block
@pytest.mark.parametrize("where", [0, bounds._BLOCK - 1, bounds._BLOCK + 5, 2 * bounds._BLOCK + 3])
@pytest.mark.parametrize("arg", ["f_star", "f_weak", "f_strong"])
def test_binary_fast_paths_check_every_block(where, arg):
    n = 2 * bounds._BLOCK + 10
    ok = np.full(n, 0.5)
    for value, msg in ((np.nan, "NaN"), (1.5, "> 1"), (-0.5, "negative")):
        bad = ok.copy()
        bad[where] = value
        args = {"f_star": ok, "f_weak": ok, "f_strong": ok, arg: bad}
        with pytest.raises(ValueError, match=rf"^{arg}: .*{msg}"):
            bounds.lemma1(*args.values(), gamma=0.1)
        with pytest.raises(ValueError, match=rf"^{arg}: .*{msg}"):
            bounds.theorem2(*args.values())
    if arg != "f_star":
        bad = ok.copy()
        bad[where] = 0.99
        args = {"f_star": ok, "f_weak": ok, "f_strong": ok, arg: bad}
        with pytest.raises(ValueError, match=rf"^{arg}: smallest probability"):
            bounds.lemma1(*args.values(), gamma=0.1)
        bad[where] = 1.0
        args[arg] = bad
        with pytest.raises(ValueError, match=rf"^{arg}: probabilities must be strictly"):
            bounds.theorem2(*args.values())
