"""One standardisation (issue 19): heads' design, the protocol, the partial pipeline's
Bradley--Terry rows and the misspecified Theorem 2 design all go through one ``column_scale``,
and each gives the numbers of the formula written out here in plain numpy."""

from __future__ import annotations

import numpy as np

from w2s_theory import misspecification, partial, protocol
from w2s_theory.heads import design


def _x(rng, n=40, d=5):
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(size=d)
    x[:, 2] = 3.25                                   # a constant column keeps scale 1
    return x


def test_one_implementation():
    assert protocol.column_scale is design.column_scale
    assert misspecification.standardize is design.standardize


def test_heads_design_is_the_plain_formula():
    x = _x(np.random.default_rng(0))
    mu, sd, z1 = design.standardize(x)
    mu_ref = x.sum(axis=0) / len(x)
    sd_ref = np.sqrt(((x - mu_ref) ** 2).sum(axis=0) / len(x))
    sd_ref[sd_ref == 0] = 1.0
    assert sd[2] == 1.0
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(sd, sd_ref, rtol=1e-13)
    np.testing.assert_allclose(z1, np.hstack([(x - mu_ref) / sd_ref, np.ones((len(x), 1))]),
                               rtol=1e-12, atol=1e-12)
    # the protocol's splits use the same statistics of the reference split
    out = protocol.standardize_splits({"train_gt": x, "test": x[:7] * 2})
    assert np.array_equal(out["train_gt"], z1)
    assert np.array_equal(out["test"][:, :-1], (x[:7] * 2 - mu) / sd)


def test_partial_rows_are_the_protocols_and_the_formula():
    rng = np.random.default_rng(1)
    pooled = {s: (_x(rng, n).astype(np.float32), _x(rng, n).astype(np.float32))
              for s, n in (("train_gt", 30), ("test", 11))}
    got = partial.last_layer_features(pooled)
    a, b = (np.asarray(v, np.float64) for v in pooled["train_gt"])
    both = np.concatenate([a, b])
    sd = np.sqrt(((both - both.mean(axis=0)) ** 2).mean(axis=0))
    sd[sd == 0] = 1.0
    for s, (ca, cb) in pooled.items():
        np.testing.assert_allclose(got[s], (ca.astype(np.float64) - cb.astype(np.float64)) / sd,
                                   rtol=1e-12, atol=1e-12)
        assert np.array_equal(got[s], protocol.standardize_pairs(
            {k: v[0] for k, v in pooled.items()}, {k: v[1] for k, v in pooled.items()})[s])
