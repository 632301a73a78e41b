"""Tests for w2s_theory.synthetic: the generative model does what its docstring says."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_theory.synthetic import (
    SyntheticConfig,
    apply_label_noise,
    config_from_dict,
    make_instance,
)

SMALL = dict(n_gt=200, n_w2s=150, n_test=100, d_strong=6, d_weak=3)


def _cat(p):
    return np.stack([1 - p, p], 1) if p.ndim == 1 else p


def _all(inst, attr):
    return np.concatenate([getattr(s, attr) for s in (inst.gt, inst.w2s, inst.test)])


def test_same_seed_same_instance_and_streams_are_independent():
    cfg = SyntheticConfig(k=3, truth="affine", truth_scale=0.8, noise_frac=0.2, **SMALL)
    a, b = make_instance(cfg, 5), make_instance(cfg, 5)
    c = make_instance(cfg, 6)
    for f in ("h_strong", "h_weak", "f_star", "labels"):
        np.testing.assert_array_equal(getattr(a.w2s, f), getattr(b.w2s, f))
    np.testing.assert_array_equal(a.weak_probs, b.weak_probs)
    assert not np.allclose(a.w2s.h_strong, c.w2s.h_strong)
    # changing the noise leaves features, truth and the clean weak labels unchanged
    d = make_instance(cfg.replace(noise_frac=0.4), 5)
    np.testing.assert_array_equal(a.w2s.h_strong, d.w2s.h_strong)
    np.testing.assert_array_equal(a.test.f_star, d.test.f_star)
    np.testing.assert_array_equal(a.weak_probs_clean, d.weak_probs_clean)
    assert d.noise_mask.sum() == 60 and a.noise_mask.sum() == 30


@pytest.mark.parametrize("k", [2, 4])
def test_affine_truth_is_realizable_with_its_floor(k):
    cfg = SyntheticConfig(k=k, truth="affine", truth_scale=0.7, truth_floor=0.02, **SMALL)
    inst = make_instance(cfg, 0)
    fs = _cat(_all(inst, "f_star"))
    h = _all(inst, "h_strong")
    np.testing.assert_allclose(fs.sum(1), 1.0, atol=1e-12)
    # min over all splits is exactly 1/k - scale (1/k - floor) >= floor
    np.testing.assert_allclose(fs.min(), 1 / k - 0.7 * (1 / k - 0.02), rtol=1e-12)
    # exactly affine in [h_s; 1]
    dmat = np.hstack([h, np.ones((len(h), 1))])
    coef, *_ = np.linalg.lstsq(dmat, fs, rcond=None)
    assert np.abs(dmat @ coef - fs).max() < 1e-12
    # misspecified: not affine any more (residual of the order of the signal)
    bad = make_instance(cfg.replace(misspec=0.6), 0)
    fb = _cat(_all(bad, "f_star"))
    coef, *_ = np.linalg.lstsq(dmat, fb, rcond=None)
    assert np.abs(dmat @ coef - fb).max() > 1e-2
    assert fb.min() >= 0.02 - 1e-12


def test_softmax_truth_log_odds_are_linear():
    cfg = SyntheticConfig(k=3, truth="softmax", truth_scale=2.0, **SMALL)
    for m, linear in ((0.0, True), (0.5, False)):
        inst = make_instance(cfg.replace(misspec=m), 1)
        fs, h = _all(inst, "f_star"), _all(inst, "h_strong")
        lo = np.log(fs[:, 1:]) - np.log(fs[:, :1])
        dmat = np.hstack([h, np.ones((len(h), 1))])
        coef, *_ = np.linalg.lstsq(dmat, lo, rcond=None)
        resid = np.abs(dmat @ coef - lo).max()
        assert (resid < 1e-9) if linear else (resid > 1e-2)


def test_covariance_spectrum():
    cfg = SyntheticConfig(d_strong=5, d_weak=2, cov_decay=1.5, n_gt=20000, n_w2s=10, n_test=10,
                          truth="affine", truth_scale=0.5)
    inst = make_instance(cfg, 2)
    ev = np.sort(np.linalg.eigvalsh(np.cov(inst.gt.h_strong.T)))[::-1]
    lam = (np.arange(5) + 1.0) ** -1.5
    lam *= 5 / lam.sum()
    # sampling error of a covariance eigenvalue ~ lam * sqrt(2/n) ~ 1%; allow 5 sigma
    np.testing.assert_allclose(ev, lam, rtol=0.05)


def test_weak_view_is_a_lossy_projection():
    cfg = SyntheticConfig(d_strong=6, d_weak=6, weak_noise=0.0, n_gt=300, n_w2s=10, n_test=10,
                          truth="affine", truth_scale=0.5)
    inst = make_instance(cfg, 3)
    hs, hw = inst.gt.h_strong, inst.gt.h_weak
    # full-rank orthonormal view without noise: a rotation (Gram matrices agree)
    np.testing.assert_allclose(hw @ hw.T, hs @ hs.T, atol=1e-9)
    noisy = make_instance(cfg.replace(d_weak=2, weak_noise=0.7, n_gt=20000), 3)
    hs, hw = noisy.gt.h_strong, noisy.gt.h_weak
    coef, *_ = np.linalg.lstsq(hs, hw, rcond=None)
    resid = hw - hs @ coef
    np.testing.assert_allclose(resid.var(0), 0.49, rtol=0.05)


def test_sampled_labels_follow_the_truth():
    cfg = SyntheticConfig(k=3, truth="softmax", truth_scale=1.0, labels="sampled",
                          n_gt=20000, n_w2s=10, n_test=10, d_strong=4, d_weak=2)
    inst = make_instance(cfg, 4)
    freq = np.bincount(inst.gt.labels, minlength=3) / 20000
    mean = inst.gt.f_star.mean(0)
    assert np.abs(freq - mean).max() < 5 * np.sqrt(0.25 / 20000)
    soft = make_instance(cfg.replace(labels="soft"), 4)
    np.testing.assert_array_equal(soft.gt.labels, soft.gt.f_star.argmax(1))


def test_weak_probs_floor_and_strength():
    base = SyntheticConfig(k=2, d_strong=8, truth="softmax", truth_scale=3.0,
                           n_gt=1000, n_w2s=500, n_test=1000)
    weak = make_instance(base.replace(d_weak=2, weak_noise=2.0), 0)
    strong = make_instance(base.replace(d_weak=8, weak_noise=0.0), 0)
    for inst in (weak, strong):
        assert inst.weak_probs.min() >= 1e-3 and inst.weak_probs.max() <= 1 - 1e-3
        assert inst.weak_report.converged
    acc = lambda i: np.mean((i.weak_test_probs > 0.5) == i.test.labels)  # noqa: E731
    assert acc(strong) > acc(weak) + 0.1


def test_weak_temperature_scales_the_weak_logits():
    from scipy.special import logit

    cfg = SyntheticConfig(k=2, truth="affine", truth_scale=0.9, weak_noise=0.3, **SMALL)
    a = make_instance(cfg, 8)
    b = make_instance(cfg.replace(weak_temperature=0.25), 8)
    g = cfg.gamma
    unsmooth = lambda p: (p - g) / (1 - 2 * g)  # noqa: E731
    za, zb = logit(unsmooth(a.weak_probs_clean)), logit(unsmooth(b.weak_probs_clean))
    keep = np.abs(zb) < 20                      # away from float saturation
    np.testing.assert_allclose(zb[keep], za[keep] / 0.25, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(a.w2s.f_star, b.w2s.f_star)
    with pytest.raises(ValueError, match="weak_temperature"):
        cfg.replace(weak_temperature=0.0)


def test_label_noise_affine_binary():
    y = np.linspace(0.01, 0.99, 101)
    flipped, m = apply_label_noise(y, 1.0, kind="affine", a=-1.0, rng=0)
    np.testing.assert_allclose(flipped, 1 - y, atol=1e-15)
    erased, m = apply_label_noise(y, 0.3, kind="affine", a=0.0, rng=1)
    assert m.sum() == 30
    np.testing.assert_array_equal(erased[m], 0.5)
    np.testing.assert_array_equal(erased[~m], y[~m])
    half, _ = apply_label_noise(y, 1.0, kind="affine", a=0.5, rng=0)
    np.testing.assert_allclose(half, 0.5 + 0.5 * (y - 0.5))


def test_label_noise_flip_kclass_is_symmetric():
    rng = np.random.default_rng(0)
    n, k = 30000, 4
    hard = np.eye(k)[rng.integers(0, k, n)]
    noisy, m = apply_label_noise(hard, 0.5, kind="flip", rng=2)
    assert m.sum() == n // 2
    a, b = hard.argmax(1), noisy.argmax(1)
    assert np.all(a[~m] == b[~m]) and np.all(a[m] != b[m])
    shift = (b[m] - a[m]) % k
    counts = np.bincount(shift, minlength=k)[1:] / m.sum()
    assert np.abs(counts - 1 / 3).max() < 5 * np.sqrt((1 / 3) * (2 / 3) / m.sum())
    soft = rng.dirichlet(np.ones(k), size=50)
    ns, ms = apply_label_noise(soft, 1.0, kind="flip", rng=3)
    np.testing.assert_allclose(np.sort(ns, 1), np.sort(soft, 1))   # a permutation per row
    assert not np.allclose(ns, soft)


def test_label_noise_validation():
    p = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match="a"):
        apply_label_noise(p, 0.5, kind="affine", a=-0.9)            # rows would leave the simplex
    out, _ = apply_label_noise(p, 0.5, kind="affine", a=-0.5)
    assert out.min() >= 0
    with pytest.raises(ValueError, match="frac"):
        apply_label_noise(p, 1.5)
    with pytest.raises(ValueError, match="kind"):
        apply_label_noise(p, 0.5, kind="gauss")


@pytest.mark.parametrize("bad, match", [
    (dict(k=1), "k"), (dict(d_weak=20), "d_weak"), (dict(truth="mlp"), "truth"),
    (dict(labels="hard"), "labels"), (dict(noise_frac=1.2), "noise_frac"),
    (dict(truth="affine", truth_scale=1.5), "truth_scale"), (dict(truth_floor=0.5), "truth_floor"),
    (dict(k=3, noise_kind="affine", noise_a=-0.8), "noise_a"), (dict(gamma=0.6), "gamma"),
    (dict(n_w2s=0), "n_w2s"), (dict(misspec=-0.1), "misspec"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        SyntheticConfig(**bad)


def test_config_from_dict_and_seed_validation():
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"k": 2, "n": 3})
    cfg = config_from_dict({"truth": "affine", "truth_scale": 0.5, **SMALL})
    with pytest.raises(ValueError, match="seed"):
        make_instance(cfg, -1)
    with pytest.raises(ValueError, match="config"):
        make_instance({"k": 2}, 0)
    assert cfg.to_dict()["n_w2s"] == 150


def test_theorem2_on_an_instance_reverse_convex_head():
    """End to end: the simulator's affine truth is in the convex class on the w2s split."""
    from w2s_theory.bounds import theorem2
    from w2s_theory.heads import fit_convex_head

    cfg = SyntheticConfig(k=3, truth="affine", truth_scale=0.9, weak_noise=1.0,
                          **{**SMALL, "d_weak": 2})
    inst = make_instance(cfg, 7)
    head = fit_convex_head(inst.w2s.h_strong, inst.weak_probs, gamma=cfg.gamma)
    r = theorem2(inst.w2s.f_star, inst.weak_probs, head.probs,
                 tol=head.theorem2_tolerance(inst.w2s.f_star))
    assert r.holds and r.risk_strong < r.risk_weak
