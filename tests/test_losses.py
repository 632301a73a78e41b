"""The four W2SG losses and the confidence loss against independent float64 formulas.

References are plain Python (``math`` only): log-sigmoid / log-softmax written out,
``0 log 0 = 0``, weak labels clipped into ``[eps, 1 - eps]`` inside the reverse losses'
``log y``. Gradients: ``torch.autograd.gradcheck`` in float64, and the closed forms of
``docs/theory.md`` (binary): forward ``p - y``, reverse KL ``p(1-p)(z - logit y)``, reverse
CE ``-p(1-p) logit y``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import w2s_theory
from w2s_theory import losses
from w2s_theory.losses import (
    DEFAULT_EPS,
    LOSS_NAMES,
    BalanceThreshold,
    confidence_alpha,
    confidence_loss,
    forward_ce,
    forward_kl,
    get_loss,
    loss_names,
    reverse_ce,
    reverse_kl,
)

PROPERTY = settings(max_examples=1000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
LOSSES = {"forward_kl": forward_kl, "reverse_kl": reverse_kl,
          "forward_ce": forward_ce, "reverse_ce": reverse_ce}
D = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: intra-op threads only add synchronisation (100x slower on a busy box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

LOGIT = st.floats(-30.0, 30.0)
PROB = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))
EPS = st.sampled_from([DEFAULT_EPS, 1e-3, 0.1])


@st.composite
def batch(draw, binary=None):
    """(logits, weak probs, eps) as nested Python lists; binary or k-class rows."""
    n = draw(st.integers(1, 6))
    if binary is None:
        binary = draw(st.booleans())
    if binary:
        z = draw(st.lists(LOGIT, min_size=n, max_size=n))
        y = draw(st.lists(PROB, min_size=n, max_size=n))
    else:
        k = draw(st.integers(2, 5))
        z = [draw(st.lists(LOGIT, min_size=k, max_size=k)) for _ in range(n)]
        y = []
        for _ in range(n):
            w = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-300, 1.0)), min_size=k, max_size=k))
            s = math.fsum(w)
            if s == 0.0:
                w[draw(st.integers(0, k - 1))], s = 1.0, 1.0
            y.append([x / s for x in w])
    return z, y, draw(EPS)


# ----------------------------------------------------------------------------- references
def log_sigmoid(z):
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


def xlogx(a):
    return 0.0 if a == 0.0 else a * math.log(a)


def log_clip_pair(y, eps):
    """(log yc, log(1 - yc)) for yc = y clipped into [eps, 1 - eps], decided in exact rationals
    (``1 - eps`` is not a float: the clip must not round it)."""
    fy, fe = Fraction(y), Fraction(eps)
    if fy < fe:
        return math.log(eps), math.log1p(-eps)
    if 1 - fy < fe:
        return math.log1p(-eps), math.log(eps)
    return math.log(y), math.log1p(-y)


def ref_binary(name, z, y, eps):
    """(loss, error scale) for one binary example."""
    lp, lq = log_sigmoid(z), log_sigmoid(-z)
    p, q = math.exp(lp), math.exp(lq)
    ly, l1y = log_clip_pair(y, eps)
    terms = {
        "forward_ce": [-y * lp, -(1 - y) * lq],
        "forward_kl": [xlogx(y), -y * lp, xlogx(1 - y), -(1 - y) * lq],
        "reverse_kl": [p * lp, -p * ly, q * lq, -q * l1y],
        "reverse_ce": [-p * ly, -q * l1y],
    }[name]
    return math.fsum(terms), sum(map(abs, terms))


def ref_kclass(name, z, y, eps):
    m = max(z)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in z))
    lp = [v - lse for v in z]
    p = [math.exp(v) for v in lp]
    if name == "forward_ce":
        terms = [-yi * li for yi, li in zip(y, lp)]
    elif name == "forward_kl":
        terms = [t for yi, li in zip(y, lp) for t in (xlogx(yi), -yi * li)]
    elif name == "reverse_kl":
        terms = [t for pi, li, yi in zip(p, lp, y) for t in (pi * li, -pi * log_clip_pair(yi, eps)[0])]
    else:
        terms = [-pi * log_clip_pair(yi, eps)[0] for pi, yi in zip(p, y)]
    return math.fsum(terms), sum(map(abs, terms))


def ref_loss(name, z, y, eps):
    f = ref_binary if not isinstance(z[0], list) else ref_kclass
    return [f(name, zi, yi, eps) for zi, yi in zip(z, y)]


def sigmoid(z):
    return math.exp(log_sigmoid(z))


def ref_grad_binary(name, z, y, eps):
    """Closed-form d loss / d z of docs/theory.md for one binary example."""
    p = sigmoid(z)
    pq = math.exp(log_sigmoid(z) + log_sigmoid(-z))          # p (1 - p)
    ly, l1y = log_clip_pair(y, eps)
    logit_y = ly - l1y
    if name in ("forward_ce", "forward_kl"):
        return p - y
    if name == "reverse_kl":
        return pq * (z - logit_y)
    return -pq * logit_y


# ----------------------------------------------------------------------------- values
@PROPERTY
@given(batch())
def test_losses_match_reference_all_reductions(data):
    z, y, eps = data
    zt, yt = torch.tensor(z, dtype=D), torch.tensor(y, dtype=D)
    n = len(z)
    for name, fn in LOSSES.items():
        ref = ref_loss(name, z, y, eps)
        per = fn(zt, yt, reduction="none", eps=eps)
        assert per.shape == (n,) and per.dtype == D
        for got, (r, mag) in zip(per.tolist(), ref):
            assert abs(got - r) <= 1e-12 * (1.0 + mag), (name, got, r)
        total = math.fsum(r for r, _ in ref)
        scale = 1e-12 * (1.0 + sum(mag for _, mag in ref))
        assert abs(fn(zt, yt, reduction="sum", eps=eps).item() - total) <= scale
        # mean over EXAMPLES (n), never over classes (n * k)
        assert abs(fn(zt, yt, reduction="mean", eps=eps).item() - total / n) <= scale / n


def test_mean_is_over_examples_not_classes():
    """``kl_div(reduction='mean')`` averages over n*k entries: the test above would catch it."""
    z = torch.tensor([0.3, -1.2, 2.0], dtype=D)
    y = torch.tensor([0.9, 0.2, 0.5], dtype=D)
    ref = np.mean([ref_binary("forward_kl", a, b, DEFAULT_EPS)[0] for a, b in zip(z.tolist(), y.tolist())])
    ours = forward_kl(z, y).item()
    assert ours == pytest.approx(ref, rel=1e-12)
    logp2 = torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], 1)
    y2 = torch.stack([1 - y, y], 1)
    with pytest.warns(UserWarning):   # torch itself warns about this reduction
        class_avg = F.kl_div(logp2, y2, reduction="mean").item()
    assert class_avg == pytest.approx(ref / 2, rel=1e-12)      # the halving pitfall ...
    assert abs(class_avg - ref) > 1e-3                          # ... which our check rejects
    assert F.kl_div(logp2, y2, reduction="batchmean").item() == pytest.approx(ours, rel=1e-12)
    # k-class: mean = sum / n, not sum / (n k)
    zk, yk = torch.randn(4, 5, dtype=D), torch.softmax(torch.randn(4, 5, dtype=D), 1)
    for fn in LOSSES.values():
        assert fn(zk, yk).item() == pytest.approx(fn(zk, yk, reduction="sum").item() / 4, rel=1e-14)


def test_reverse_losses_are_finite_at_hard_weak_labels():
    """log 0 pitfall: y in {0, 1} is clipped into [eps, 1 - eps] inside log y."""
    z = torch.tensor([3.0, -2.0, 0.0], dtype=D, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0], dtype=D)
    for fn in (reverse_kl, reverse_ce):
        loss = fn(z, y, reduction="sum")
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        ref = math.fsum(ref_binary(fn.__name__, a, b, DEFAULT_EPS)[0] for a, b in zip(z.tolist(), y.tolist()))
        assert loss.item() == pytest.approx(ref, rel=1e-12)
        z.grad = None


def test_float32_inputs_work_and_agree():
    z, y = torch.randn(8), torch.rand(8)
    for fn in LOSSES.values():
        a = fn(z, y).item()
        b = fn(z.double(), y.double()).item()
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


# ----------------------------------------------------------------------------- gradients
@PROPERTY
@given(batch(binary=True))
def test_binary_gradients_match_closed_forms_and_two_class_form(data):
    z, y, eps = data
    yt = torch.tensor(y, dtype=D)
    for name, fn in LOSSES.items():
        zt = torch.tensor(z, dtype=D, requires_grad=True)
        fn(zt, yt, reduction="sum", eps=eps).backward()
        for g, zi, yi in zip(zt.grad.tolist(), z, y):
            ref = ref_grad_binary(name, zi, yi, eps)
            assert abs(g - ref) <= 1e-12 * (1.0 + abs(ref) + abs(zi)), (name, zi, yi, g, ref)
    # and the binary form agrees with the two-class form on the same example
    check_two_class_form_agrees(z, y, eps)


def check_two_class_form_agrees(z, y, eps):
    """Binary logit z, label y  ==  two-class logits (0, z), labels (1 - y, y): values, gradients."""
    yt = torch.tensor(y, dtype=D)
    y2 = torch.stack([1 - yt, yt], 1)
    for name, fn in LOSSES.items():
        zb = torch.tensor(z, dtype=D, requires_grad=True)
        z2 = torch.stack([torch.zeros_like(zb), zb], 1)
        vb = fn(zb, yt, reduction="none", eps=eps)
        v2 = fn(z2, y2, reduction="none", eps=eps)
        # round-off: ~1e-12 relative, plus the float64 representation of 1 - y near the clip
        # (an ulp of 1 in y moves log(1 - y) by ulp / (1 - y))
        yc = yt.clamp(eps, 1 - eps)
        scale = 1e-12 * (1.0 + torch.tensor(z, dtype=D).abs()) + 1e-15 / torch.minimum(yc, 1 - yc)
        assert torch.all((vb - v2).abs() <= scale), name
        gb, = torch.autograd.grad(vb.sum(), zb)
        g2, = torch.autograd.grad(v2.sum(), zb)   # through the second logit only
        assert torch.all((gb - g2).abs() <= scale), name


def _inputs(binary: bool, seed: int, n: int = 5, k: int = 3):
    g = torch.Generator().manual_seed(seed)
    if binary:
        z = (3 * torch.randn(n, generator=g, dtype=D)).requires_grad_()
        y = torch.rand(n, generator=g, dtype=D) * 0.9 + 0.05
    else:
        z = (3 * torch.randn(n, k, generator=g, dtype=D)).requires_grad_()
        y = torch.softmax(2 * torch.randn(n, k, generator=g, dtype=D), 1)
    return z, y


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradcheck(name, binary, reduction):
    fn = LOSSES[name]
    for seed in range(2):
        z, y = _inputs(binary, seed)
        assert torch.autograd.gradcheck(lambda t: fn(t, y, reduction=reduction), (z,), eps=1e-6, atol=1e-7)  # noqa: B023
        assert torch.autograd.gradgradcheck(lambda t: fn(t, y, reduction=reduction), (z,), eps=1e-6,  # noqa: B023
                                            atol=1e-6)


@pytest.mark.parametrize("base", list(LOSSES))
@pytest.mark.parametrize("binary", [True, False])
def test_gradcheck_confidence_loss(base, binary):
    z, y = _inputs(binary, 3)
    kw = dict(threshold=0.5) if binary else {}
    # keep logits away from the hardening boundary so finite differences do not cross it
    with torch.no_grad():
        if binary:
            z[z.abs() < 0.1] += 0.5
    assert torch.autograd.gradcheck(
        lambda t: confidence_loss(t, y, alpha=0.3, base=base, **kw), (z,), eps=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- confidence loss
@pytest.mark.parametrize("base", list(LOSSES))
@pytest.mark.parametrize("binary", [True, False])
def test_confidence_alpha_zero_is_base_loss(base, binary):
    z, y = _inputs(binary, 4, n=40)
    kw = dict(threshold=0.3) if binary else {}
    for red in ("none", "mean", "sum"):
        a = confidence_loss(z, y, alpha=0.0, base=base, reduction=red, **kw)
        b = LOSSES[base](z, y, reduction=red)
        assert torch.equal(a, b)
    if binary:  # in-batch threshold (n = 40 >= min_batch) too
        assert torch.equal(confidence_loss(z, y, alpha=0.0, base=base), LOSSES[base](z, y))


def ref_hard(z, threshold=None, y=None):
    """Hardened student prediction, computed with numpy (independent of torch.quantile)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 2:
        return np.eye(z.shape[1])[z.argmax(1)]
    p = 1.0 / (1.0 + np.exp(-z))
    if threshold is None:
        threshold = np.quantile(p, 1.0 - np.mean(y))   # numpy's default: linear interpolation
    return (p > threshold).astype(np.float64)


@pytest.mark.parametrize("base", list(LOSSES))
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("alpha", [0.25, 1.0])
def test_confidence_loss_matches_reference_target(base, binary, alpha):
    """loss = base(z, (1 - alpha) y + alpha hard(p)), reverse variants included."""
    z, y = _inputs(binary, 5, n=64)
    zl, yl = z.detach().tolist(), y.tolist()
    for thr in ((None, 0.4) if binary else (None,)):
        hard = ref_hard(zl, thr, yl)
        target = (1 - alpha) * np.asarray(yl) + alpha * hard
        ref = ref_loss(base, zl, target.tolist(), DEFAULT_EPS)
        kw = {} if thr is None else dict(threshold=thr)
        got = confidence_loss(z, y, alpha=alpha, base=base, reduction="none", **kw).tolist()
        for g, (r, mag) in zip(got, ref):
            assert abs(g - r) <= 1e-12 * (1 + mag)


def test_confidence_threshold_keeps_class_balance():
    """With alpha = 1 the forward-CE gradient is p - target: read the hardened labels back."""
    g = torch.Generator().manual_seed(0)
    for n, mu in ((101, 0.3), (64, 0.5), (200, 0.85)):
        z = (2 * torch.randn(n, generator=g, dtype=D)).requires_grad_()
        y = (torch.rand(n, generator=g, dtype=D) < mu).to(D)
        confidence_loss(z, y, alpha=1.0, reduction="sum").backward()
        target = torch.sigmoid(z.detach()) - z.grad
        hard = target.round()
        assert torch.allclose(target, hard, atol=1e-12)             # labels are 0/1
        assert abs(hard.sum().item() - y.sum().item()) <= 2         # balance of the weak labels


def test_confidence_in_batch_threshold_refuses_small_batches():
    z, y = _inputs(True, 6, n=8)
    with pytest.raises(ValueError, match=r"^threshold: .*min_batch=32"):
        confidence_loss(z, y, alpha=0.5)
    assert torch.isfinite(confidence_loss(z, y, alpha=0.5, min_batch=8))
    with pytest.raises(ValueError, match=r"^threshold: only for binary"):
        confidence_loss(*_inputs(False, 6), alpha=0.5, threshold=0.5)


def test_balance_threshold_with_small_batches():
    """A rolling buffer over minibatches of 1 and 4 equals the quantile of the last ``size``."""
    rng = np.random.default_rng(1)
    p_all, y_all = rng.uniform(size=300), (rng.uniform(size=300) < 0.3).astype(float)
    buf = BalanceThreshold(size=64, min_count=32)
    i = 0
    for step in range(120):
        bs = 1 if step % 2 else 4
        buf.update(torch.tensor(p_all[i:i + bs]), torch.tensor(y_all[i:i + bs]))
        i += bs
        if i < 32:
            with pytest.raises(ValueError, match=r"^BalanceThreshold: only \d+ predictions"):
                _ = buf.threshold
            continue
        lo = max(0, i - 64)
        ref = np.quantile(p_all[lo:i], 1 - y_all[lo:i].mean())
        assert len(buf) == i - lo
        assert buf.threshold == pytest.approx(ref, rel=1e-14, abs=1e-15)
        if i >= 200:
            break
    # usable with a minibatch of 4, which the in-batch threshold refuses
    z = torch.tensor([0.2, -1.0, 1.5, 0.0], dtype=D)
    loss = confidence_loss(z, torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=D), alpha=0.5,
                           threshold=buf.threshold)
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------- warm-up
def check_linear_warmup(alpha_fn, total, frac, alpha_max=0.5):
    """The ramp is 0 at step 0, linear, reaches alpha_max exactly at frac * total, then flat."""
    warm = frac * total
    vals = [alpha_fn(t, total, alpha_max=alpha_max, warmup_frac=frac) for t in range(total + 1)]
    end = math.ceil(warm - 1e-9)                      # first step at or past the warm-up
    if warm > 0:
        assert vals[0] == 0.0
    for t, v in enumerate(vals):
        if t < end:
            assert abs(v - alpha_max * t / warm) <= 1e-12, (t, v)
        else:
            assert v == alpha_max, (t, v)             # reached exactly, and stays
    steps = np.diff(vals)
    assert np.all(steps >= 0)
    if warm > 0:
        assert steps.max() <= alpha_max / warm + 1e-12  # no jump anywhere


def buggy_public_ramp(step, total, *, alpha_max=0.5, warmup_frac=0.1):
    """Burns et al.'s public code: coef = step_frac during warm-up, then 1 (x alpha_max)."""
    frac = step / total
    return alpha_max * (1.0 if frac > warmup_frac else frac)


@pytest.mark.parametrize("total, frac", [(1000, 0.1), (10, 0.3), (7, 0.5), (1, 1.0), (100, 0.0),
                                         (3, 1.0), (1000, 0.25)])
def test_confidence_alpha_warmup_is_linear(total, frac):
    check_linear_warmup(confidence_alpha, total, frac)


def test_buggy_public_ramp_fails_the_warmup_check():
    assert buggy_public_ramp(100, 1000) == pytest.approx(0.05)   # climbs to only 0.05 ...
    assert buggy_public_ramp(101, 1000) == 0.5                   # ... then jumps to 0.5
    with pytest.raises(AssertionError):
        check_linear_warmup(buggy_public_ramp, 1000, 0.1)


# ----------------------------------------------------------------------------- registry
def test_get_loss():
    for name in LOSSES:
        assert get_loss(name) is LOSSES[name]
    assert get_loss("confidence") is confidence_loss
    assert set(LOSSES) <= set(LOSS_NAMES) and "confidence" in LOSS_NAMES
    assert set(LOSS_NAMES) == set(loss_names()) | {"confidence"}
    with pytest.raises(ValueError, match="^name: unknown loss"):
        get_loss("kl_div")


# ------------------------------------------------------------------ the registry finds a new file
_BRIER = '''"""The Brier score ``sum_i (p_i - y_i)^2`` (a loss added as one file, by the test)."""

from __future__ import annotations

import torch

from ._common import DEFAULT_EPS, check_inputs, pair, reduce_loss, softmax_chain, unpair
from .registry import LossSpec


def brier(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    z, y = check_inputs(student_logits, weak_probs, reduction, eps)
    p, y2 = pair(z, y)
    return reduce_loss(((p - y2) ** 2).sum(dim=1), reduction)


def _grad(z, y, eps=DEFAULT_EPS):
    p, y2 = pair(z, y)
    return unpair(z, softmax_chain(p, 2.0 * (p - y2)))


LOSSES = (LossSpec("brier", brier, _grad, direction="symmetric", family="brier"),)
'''

_PROBE = '''
import json, sys, torch
from w2s_theory import losses
z = torch.tensor([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5]], dtype=torch.float64, requires_grad=True)
y = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=torch.float64)
per = losses.get_loss("brier")(z, y, reduction="none")
auto = torch.autograd.grad(per.sum(), z)[0]
# `w2s-theory report` on a table with the new loss: its default plan compares it to forward KL
import pandas as pd
from w2s_theory.cli import main
acc = [0.60, 0.63, 0.61, 0.62, 0.59, 0.64, 0.60, 0.61]
pd.DataFrame({"loss": ["forward_kl", "brier"] * 4, "seed": [0, 0, 1, 1, 2, 2, 3, 3],
              "noise": 0.0, "student_acc": acc}).to_csv("t.csv", index=False)
rc = main(["report", "t.csv", "--out", "rep"])
led = pd.read_csv("rep/ledger.csv")
json.dump({"names": list(losses.loss_names()), "ordered": losses.ordered({"brier", "reverse_kl"}),
           "per": per.tolist(), "auto": auto.tolist(),
           "closed": losses.loss_spec("brier").grad(z.detach(), y).tolist(),
           "report_rc": rc, "families": led["family"].tolist(),
           "effect_pts": led["effect_pts"].tolist()}, sys.stderr)
'''


def test_a_new_loss_is_one_file_in_the_package(tmp_path):
    """Drop ``brier.py`` into a copy of the package: the registry, `get_loss`, `ordered`, the
    gradient check and ``w2s-theory report`` (its default plan and the ledger) pick it up with
    no other file touched."""
    src = Path(w2s_theory.__file__).parent
    shutil.copytree(src, tmp_path / "w2s_theory", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "w2s_theory" / "losses" / "brier.py").write_text(_BRIER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stderr.strip().splitlines()[-1])
    assert got["names"] == list(loss_names()) + ["brier"]      # after the built-ins, in order
    assert got["ordered"] == ["reverse_kl", "brier"]
    z = np.array([[0.3, -1.0, 2.0], [1.5, 0.0, -0.5]])
    y = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got["per"], ((p - y) ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(got["closed"], got["auto"], rtol=1e-10, atol=1e-12)
    assert got["report_rc"] == 0 and got["families"] == ["brier.vs.forward_kl.noise0"]
    # mean paired difference brier - forward KL over the four seeds, in points
    assert got["effect_pts"][0] == pytest.approx(100 * np.mean([0.03, 0.01, 0.05, 0.01]))


def test_builtin_families_register_first_in_the_paper_order():
    mods = losses.family_modules(losses.__path__, "w2s_theory.losses")
    assert mods[:3] == ["w2s_theory.losses.paper", "w2s_theory.losses.alpha", "w2s_theory.losses.js"]
    assert all(not m.rpartition(".")[2].startswith("_") for m in mods)
    assert loss_names()[:4] == ("forward_kl", "reverse_kl", "forward_ce", "reverse_ce")
