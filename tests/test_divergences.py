"""Divergences against independent 1200-bit mpmath formulas (hypothesis, 1000 examples each).

The references below use only ``mpmath`` and Python loops over rows and classes; they
share no code with :mod:`w2s_theory.divergences` (which uses numpy, ``log1p`` series
and scipy's ``xlogy`` and ``entr``). The binary shorthand is expanded exactly
(``1 - p`` exact in 1200 bits), so the binary functions are held to a relative ``1e-12``
with no absolute allowance. Zeros, ones and tiny probabilities are generated on purpose
(``0 log 0 = 0``; ``KL = inf`` where ``q_i = 0 < p_i``).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2s_theory.divergences import cross_entropy, entropy, kl, smooth, total_variation

PROPERTY = settings(max_examples=1000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# Probabilities and unnormalised weights: exact 0 and 1, tiny normal floats, everything between.
PROB = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-300, 1.0))
WEIGHT = st.one_of(st.just(0.0), st.floats(1e-300, 1.0))
SHAPE = st.tuples(st.integers(1, 6), st.one_of(st.none(), st.integers(2, 5)))  # k=None: binary


@st.composite
def dist_array(draw, shape):
    """Rows in the simplex (k-class) or P(class 1) values (binary), as a float64 array."""
    n, k = shape
    if k is None:
        return np.array(draw(st.lists(PROB, min_size=n, max_size=n)), dtype=np.float64)
    rows = []
    for _ in range(n):
        w = draw(st.lists(WEIGHT, min_size=k, max_size=k))
        s = math.fsum(w)
        if s == 0.0:
            w[draw(st.integers(0, k - 1))] = 1.0
            s = 1.0
        rows.append([x / s for x in w])
    return np.array(rows, dtype=np.float64)


@st.composite
def dist_pair(draw):
    shape = draw(SHAPE)
    return draw(dist_array(shape)), draw(dist_array(shape))


# ----------------------------------------------------------------------------- references
# mpmath at 1200 bits (1 - p is exact for every double p, subnormals included): the binary shorthand's class-0 probability 1 - p is formed exactly
# (no float64 rounding), and logs of ratios never over- or underflow.
mpmath.mp.prec = 1200


class Row(list):
    """Exact (mpmath) class probabilities of one example; ``kclass`` if given as a row.

    A k-class row sums to 1 only up to float64 round-off (the function renormalises it,
    the reference does not): the error scale of such a row gets an absolute ``1e-15``
    (``1e-3`` of the mass, times the relative ``1e-12`` of :func:`assert_rows_close`).
    A binary row ``[1 - p, p]`` is an exact distribution: no absolute allowance.
    """

    def __init__(self, values, kclass):
        super().__init__(values)
        self.residue = 1e-3 * float(sum(values)) if kclass else 0.0


def rows(a):
    """Exact (mpmath) class probabilities per example (binary shorthand expanded exactly)."""
    mpf = mpmath.mpf
    if a.ndim == 1:
        return [Row([1 - mpf(float(v)), mpf(float(v))], False) for v in a]
    return [Row([mpf(float(x)) for x in r], True) for r in a]


def ref_kl_row(p, q):
    """(KL(p||q), error scale) for one row.

    The error scale is the sum of |terms| (cancellation) plus the mass ``sum p_i``: a
    log-ratio near 0 carries an absolute rounding error of about one ulp of 1.
    """
    total, mag = mpmath.mpf(0), 0.0
    for pi, qi in zip(p, q):
        if pi == 0:
            continue
        if qi == 0:
            return math.inf, math.inf
        t = pi * mpmath.log(pi / qi)
        total += t
        mag += abs(float(t))
    return float(total), mag + p.residue


def ref_ce_row(p, q):
    total, mag = mpmath.mpf(0), 0.0
    for pi, qi in zip(p, q):
        if pi == 0:
            continue
        if qi == 0:
            return math.inf, math.inf
        t = -pi * mpmath.log(qi)
        total += t
        mag += abs(float(t))
    return float(total), mag + p.residue


def ref_entropy_row(p):
    total = mpmath.mpf(0)
    for pi in p:
        if pi > 0:
            total -= pi * mpmath.log(pi)
    return float(total), abs(float(total)) + p.residue


def ref_tv_row(p, q):
    t = float(sum(abs(pi - qi) for pi, qi in zip(p, q)) / 2)
    return t, t + p.residue


def ref_tv(p, q):
    return [ref_tv_row(a, b) for a, b in zip(rows(p), rows(q))]


def assert_rows_close(got, refs, rel=1e-12):
    """``got[i]`` equals ``refs[i][0]`` up to ``rel`` times the row's sum of |terms|."""
    assert got.shape == (len(refs),)
    for g, (r, mag) in zip(got, refs):
        if math.isinf(r):
            assert g == r
        else:
            assert abs(g - r) <= rel * mag + 1e-300, (g, r, mag)


# ----------------------------------------------------------------------------- properties
# One hypothesis example checks every divergence on the same pair (1000 examples, each
# divergence checked on every one of them), which keeps the suite fast.
@PROPERTY
@given(dist_pair())
def test_divergences_match_reference(pq):
    p, q = pq
    rp, rq = rows(p), rows(q)
    assert_rows_close(kl(p, q), [ref_kl_row(a, b) for a, b in zip(rp, rq)])
    assert_rows_close(kl(q, p), [ref_kl_row(b, a) for a, b in zip(rp, rq)])
    assert_rows_close(cross_entropy(p, q), [ref_ce_row(a, b) for a, b in zip(rp, rq)])
    assert_rows_close(entropy(p), [ref_entropy_row(a) for a in rp])
    assert_rows_close(entropy(q), [ref_entropy_row(b) for b in rq])
    tv = total_variation(p, q)
    assert_rows_close(tv, ref_tv(p, q))
    assert np.all((tv >= 0) & (tv <= 1 + 1e-15))
    # identities: CE = KL + H; KL >= 0; Pinsker TV <= sqrt(KL/2) in both directions
    d, h, ce = kl(p, q), entropy(p), cross_entropy(p, q)
    finite = np.isfinite(d)
    np.testing.assert_allclose(ce[finite], (d + h)[finite], rtol=1e-12, atol=1e-12)
    assert np.all(ce[~finite] == np.inf)
    assert np.all(d >= -1e-15)
    assert np.all(tv <= np.sqrt(np.maximum(d, 0) / 2) + 1e-12)
    assert np.all(tv <= np.sqrt(np.maximum(kl(q, p), 0) / 2) + 1e-12)


@PROPERTY
@given(SHAPE.flatmap(dist_array), st.floats(1e-12, 1.0))
def test_smooth_matches_reference(p, frac):
    k = 2 if p.ndim == 1 else p.shape[1]
    gamma = frac / k                          # any gamma in (0, 1/k]
    s = smooth(p, gamma)
    assert s.shape == p.shape
    # (binary: rows() forms the class-0 probability 1 - s exactly, in mpmath)
    for row_s, row_p in zip(rows(s), rows(p)):
        for si, pi in zip(row_s, row_p):
            ref = (1.0 - k * gamma) * pi + gamma
            assert abs(si - ref) <= 4e-16 * (1 + abs(ref))
            assert si >= gamma                 # Lemma 1's assumption is met exactly ...
        assert abs(math.fsum(row_s) - 1.0) <= 1e-14  # ... and rows still sum to 1


# ----------------------------------------------------------------------------- fixed cases
def test_binary_shorthand_equals_two_class_form():
    rng = np.random.default_rng(0)
    p, q = rng.uniform(size=50), rng.uniform(size=50)
    p2, q2 = np.stack([1 - p, p], 1), np.stack([1 - q, q], 1)
    for f in (kl, cross_entropy, total_variation):
        np.testing.assert_allclose(f(p, q), f(p2, q2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(entropy(p), entropy(p2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(smooth(p, 0.1), smooth(p2, 0.1)[:, 1], rtol=1e-15)


def test_zero_conventions():
    assert kl([[1.0, 0.0]], [[0.5, 0.5]])[0] == pytest.approx(math.log(2))   # 0 log 0 = 0
    assert kl([[0.5, 0.5]], [[1.0, 0.0]])[0] == math.inf                    # q_i = 0 < p_i
    assert cross_entropy([[0.5, 0.5]], [[1.0, 0.0]])[0] == math.inf
    assert cross_entropy([[1.0, 0.0]], [[1.0, 0.0]])[0] == 0.0
    assert entropy([[1.0, 0.0, 0.0]])[0] == 0.0
    # q subnormal: p/q overflows in float64, the divergence does not
    assert kl([[1.0, 0.0]], [[1e-320, 1.0]])[0] == pytest.approx(320 * math.log(10), abs=1e-3)


def test_smooth_gamma_one_over_k_gives_uniform():
    np.testing.assert_allclose(smooth([[1.0, 0.0, 0.0, 0.0]], 0.25), [[0.25] * 4])
