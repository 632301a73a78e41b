"""The f-divergence student losses of the registry (alpha-divergences, Jensen-Shannon).

Checked against independent float64 numpy formulas (hypothesis, 1000 cases each, binary and
k-class), their limits (alpha -> 1 forward KL, alpha -> 0 reverse KL, alpha = 1/2 four times the
squared Hellinger distance), ``torch.autograd.gradcheck``, and every registry entry's closed-form
gradient against autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2s_theory import losses
from w2s_theory.losses import REGISTRY, alpha_divergence, get_loss, js_divergence, loss_names

PROPERTY = settings(max_examples=1000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
#: fewer cases where a test repeats checks already made at 1000 cases, or loops over the registry
FEWER = settings(max_examples=200, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])
D = torch.float64
FDIV = loss_names(family="alpha") + loss_names(family="js")


# ----------------------------------------------------------------------------- references
def _dists(z, y):
    """numpy (n, k) student and teacher distributions; binary -> two columns."""
    z, y = np.asarray(z, float), np.asarray(y, float)
    if z.ndim == 1:
        p = 1 / (1 + np.exp(-z))
        return np.stack([1 - p, p], 1), np.stack([1 - y, y], 1)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True), y


def ref_alpha(z, y, a, direction):
    """D_a(P || Q) = (1 - sum P^a Q^(1-a)) / (a(1-a)), P the teacher (forward) or the student."""
    p, t = _dists(z, y)
    P, Q = (t, p) if direction == "forward" else (p, t)
    return (1 - (P ** a * Q ** (1 - a)).sum(1)) / (a * (1 - a))


def ref_js(z, y):
    p, t = _dists(z, y)
    m = (p + t) / 2

    def kl(u, v):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(u > 0, u * np.log(u / v), 0.0).sum(1)

    return kl(t, m) / 2 + kl(p, m) / 2


def ref_kl(z, y, reverse=False):
    p, t = _dists(z, y)
    u, v = (p, t) if reverse else (t, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > 0, u * np.log(u / v), 0.0).sum(1)


# ----------------------------------------------------------------------------- strategies
logit = st.floats(-8, 8, allow_nan=False)
prob = st.floats(0, 1, allow_nan=False)


@st.composite
def binary_case(draw):
    n = draw(st.integers(1, 6))
    return (np.array(draw(st.lists(logit, min_size=n, max_size=n))),
            np.array(draw(st.lists(prob, min_size=n, max_size=n))))


@st.composite
def kclass_case(draw):
    n, k = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    z = np.array(draw(st.lists(logit, min_size=n * k, max_size=n * k))).reshape(n, k)
    w = np.array(draw(st.lists(st.floats(0, 1), min_size=n * k, max_size=n * k))).reshape(n, k)
    w[:, 0] += 1e-3                                     # rows may hold exact zeros, never all
    return z, w / w.sum(1, keepdims=True)


alphas = st.floats(0.02, 0.98)


def _torch(z, y):
    return torch.tensor(z, dtype=D), torch.tensor(y, dtype=D)


def _close(got, want, scale=1.0):
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11 * scale)


# ----------------------------------------------------------------------------- values
@PROPERTY
@given(case=st.one_of(binary_case(), kclass_case()), a=alphas)
def test_alpha_divergence_matches_float64_formula(case, a):
    """Both directions against the float64 formula; D_a(p||y) = D_(1-a)(y||p); alpha = 1/2 is
    four times the squared Hellinger distance."""
    z, y = case
    zt, yt = _torch(z, y)
    fwd = alpha_divergence(a, "forward")(zt, yt, reduction="none").numpy()
    rev = alpha_divergence(a, "reverse")(zt, yt, reduction="none").numpy()
    _close(fwd, ref_alpha(z, y, a, "forward"), scale=1 / (a * (1 - a)))
    _close(rev, ref_alpha(z, y, a, "reverse"), scale=1 / (a * (1 - a)))
    assert (fwd >= -1e-12).all() and (rev >= -1e-12).all()
    np.testing.assert_allclose(rev, alpha_divergence(1 - a, "forward")(zt, yt, reduction="none").numpy(),
                               rtol=1e-12, atol=1e-13)
    p, t = _dists(z, y)
    h2 = 0.5 * ((np.sqrt(p) - np.sqrt(t)) ** 2).sum(1)
    _close(get_loss("alpha_0.5")(zt, yt, reduction="none").numpy(), 4 * h2, scale=4)


@PROPERTY
@given(case=st.one_of(binary_case(), kclass_case()))
def test_js_matches_float64_formula_and_is_bounded(case):
    z, y = case
    got = js_divergence(*_torch(z, y), reduction="none").numpy()
    _close(got, ref_js(z, y))
    assert (got >= -1e-12).all() and (got <= math.log(2) + 1e-12).all()


@FEWER
@given(case=st.one_of(binary_case(), kclass_case()))
def test_registered_fdivergences_match_their_formulas(case):
    z, y = case
    zt, yt = _torch(z, y)
    for name in FDIV:
        spec = REGISTRY[name]
        got = spec.fn(zt, yt, reduction="none").numpy()
        if spec.family == "js":
            want = ref_js(z, y)
        else:
            d = "forward" if spec.direction == "symmetric" else spec.direction
            want = ref_alpha(z, y, spec.alpha, d)
        _close(got, want, scale=20)


# ----------------------------------------------------------------------------- limits
@FEWER
@given(case=st.one_of(binary_case(), kclass_case()))
def test_limits_are_forward_and_reverse_kl(case):
    z, y = case
    p, t = _dists(z, y)
    if (t < 1e-3).any() or (p < 1e-3).any():     # the limits converge at rate ~ a |log|^2
        return
    zt, yt = _torch(z, y)
    fkl, rkl = ref_kl(z, y), ref_kl(z, y, reverse=True)
    eps = 1e-6
    for direction, near1, near0 in (("forward", fkl, rkl), ("reverse", rkl, fkl)):
        hi = alpha_divergence(1 - eps, direction)(zt, yt, reduction="none").numpy()
        lo = alpha_divergence(eps, direction)(zt, yt, reduction="none").numpy()
        np.testing.assert_allclose(hi, near1, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(lo, near0, rtol=1e-4, atol=1e-6)


def test_limits_against_the_registered_kl_losses():
    torch.manual_seed(1)
    z = torch.randn(50, 3, dtype=D)
    y = torch.softmax(torch.randn(50, 3, dtype=D), 1)
    np.testing.assert_allclose(alpha_divergence(1 - 1e-7)(z, y).item(), losses.forward_kl(z, y).item(),
                               rtol=1e-5)
    np.testing.assert_allclose(alpha_divergence(1e-7)(z, y).item(), losses.reverse_kl(z, y).item(),
                               rtol=1e-5)
    # and the limits are not reached at a = 1/2 (the check above can fail)
    assert abs(alpha_divergence(0.5)(z, y).item() - losses.forward_kl(z, y).item()) > 1e-3


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", loss_names())
@pytest.mark.parametrize("shape", [(6,), (5, 3)])
def test_gradcheck(name, shape):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(*shape, dtype=D, generator=g, requires_grad=True)
    y = torch.rand(*shape, dtype=D, generator=g) * 0.9 + 0.05
    if len(shape) == 2:
        y = y / y.sum(1, keepdim=True)
    fn = get_loss(name)
    assert torch.autograd.gradcheck(lambda t: fn(t, y, reduction="none"), (z,))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(binary_case(), kclass_case()))
def test_closed_form_gradients_equal_autograd(case):
    """Every registered loss: per-example d loss / d logits, closed form vs autograd."""
    z, y = case
    y = np.clip(y, 1e-3, 1 - 1e-3) if y.ndim == 1 else (y + 1e-3) / (y + 1e-3).sum(1, keepdims=True)
    for name, spec in REGISTRY.items():
        zt = torch.tensor(z, dtype=D, requires_grad=True)
        yt = torch.tensor(y, dtype=D)
        spec.fn(zt, yt, reduction="sum").backward()
        np.testing.assert_allclose(zt.grad.numpy(), spec.grad(zt.detach(), yt).numpy(),
                                   rtol=1e-7, atol=1e-10, err_msg=name)


def test_registry_entries_are_complete_and_names_unique():
    assert set(FDIV) == {"alpha_0.25_forward", "alpha_0.25_reverse", "alpha_0.5", "js"}
    assert loss_names()[:4] == losses.PAPER_LOSSES
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.binary and spec.kclass
        assert spec.direction in ("forward", "reverse", "symmetric")
    with pytest.raises(ValueError, match="already registered"):
        losses.register(REGISTRY["js"])
    with pytest.raises(ValueError, match="alpha"):
        alpha_divergence(1.0)


# ----------------------------------------------------------------------------- the trainers
@pytest.mark.parametrize("name", FDIV)
def test_every_trainer_takes_the_new_losses(name):
    """Through the registry alone: the batched head trainer, the tight softmax fit, and the
    fine-tuning config accept the names; fits move towards the weak labels."""
    from w2s_theory.finetune import FinetuneConfig
    from w2s_theory.heads import fit_softmax_head
    from w2s_theory.training import HeadSpec, TrainConfig, train_heads

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 1 / (1 + np.exp(-(x @ np.array([2.0, -1.0, 0.5]))))
    head = fit_softmax_head(x, y, loss=name)
    assert head.report.converged
    assert np.corrcoef(head.predict(x), y)[0, 1] > 0.99
    w = train_heads([x], y[None], [HeadSpec(name)], TrainConfig(lr=0.05, dtype="float64")).weights[0]
    assert np.corrcoef(x @ w, x @ np.array([2.0, -1.0, 0.5]))[0, 1] > 0.9
    assert FinetuneConfig(loss=name).loss == name
