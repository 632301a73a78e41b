"""The one batched loop of last-layer heads (``w2s_theory.heads.softmax.loop.fit_heads``)
against plain one-head loops written here: Adam or SGD on one weight tensor, the library's
losses, `Objective` with its `BalanceThreshold` buffer for the confidence loss."""

import numpy as np
import pytest
import torch
from scipy.special import softmax

from w2s_theory.heads import fit_head_minibatch
from w2s_theory.heads.design import standardize
from w2s_theory.heads.softmax.loop import fit_heads
from w2s_theory.losses import confidence_alpha, get_loss, loss_names
from w2s_theory.training import (
    HeadSpec,
    TrainConfig,
    epoch_orders,
    step_bounds,
    train_head,
    train_heads,
)


def _plain_head(x, y, spec, cfg, *, order, reference=False, optimizer="adam", l2=0.0):
    """One head, one step at a time: ``z = x_b w`` (class 0's logit 0 when ``reference``),
    the loss's mean (binary confidence: `Objective` and its buffer; k-class: argmax hardening)."""
    dt = cfg.torch_dtype
    X, Y = torch.as_tensor(x, dtype=dt), torch.as_tensor(y, dtype=dt)
    n, d = X.shape
    kc = Y.ndim == 2
    shape = (d, Y.shape[1] - (1 if reference else 0)) if kc else ((d, 1) if reference else (d,))
    w = torch.zeros(shape, dtype=dt, requires_grad=True)
    opt = (torch.optim.Adam([w], lr=cfg.lr, betas=cfg.betas, eps=cfg.adam_eps)
           if optimizer == "adam" else torch.optim.SGD([w], lr=cfg.lr))
    objective, fn = cfg.objective(spec), get_loss(spec.loss)
    buf = objective.new_buffer()
    bounds = step_bounds(n, cfg.epochs, cfg.batch_size)
    for step, (a, b) in enumerate(bounds):
        idx = torch.as_tensor(order[a:b])
        z = X[idx] @ w
        if reference and not kc:
            z = z[:, 0]
        if reference and kc:
            z = torch.cat([torch.zeros(len(idx), 1, dtype=dt), z], dim=1)
        if not kc:
            loss = objective(z, Y[idx], step=step, total_steps=len(bounds), buffer=buf)
        else:
            t = Y[idx]
            if spec.confidence:
                alpha = confidence_alpha(step, len(bounds), alpha_max=cfg.alpha_max,
                                         warmup_frac=cfg.warmup_frac)
                hard = torch.nn.functional.one_hot(z.detach().argmax(dim=1), Y.shape[1])
                t = (1 - alpha) * t + alpha * hard.to(dt)
            loss = fn(z, t, reduction="mean", eps=cfg.eps)
        if l2 > 0:
            loss = loss + 0.5 * l2 * (w[:-1] ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach().numpy()


def _data(seed=0, n=45, d=4, k=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    u = x[:, 0] + 0.5 * rng.normal(size=n)
    if k is None:
        return x, 1 / (1 + np.exp(-2 * u))
    return x, softmax(np.outer(u, np.arange(k) - 1.0) + rng.normal(size=(n, k)), axis=1)


# n = 45, batch 8: a ragged last batch; two epochs; min_count reached after 2 steps.
CFG = TrainConfig(epochs=2, batch_size=8, lr=0.05, dtype="float64", buffer_size=24,
                  min_count=16, warmup_frac=0.2)


@pytest.mark.parametrize("k", [None, 3])
@pytest.mark.parametrize("conf", [False, True])
def test_train_head_equals_a_plain_loop(k, conf):
    x, y = _data(k=k)
    moved = []
    for loss in loss_names():
        spec = HeadSpec(loss, conf, seed=5)
        got = train_head(x, y, spec, CFG)
        want = _plain_head(x, y, spec, CFG, order=epoch_orders(len(x), CFG.epochs, 5))
        assert got.shape == want.shape == ((4,) if k is None else (4, 3))
        assert np.abs(got - want).max() < 1e-12, loss
        moved.append(np.abs(got).max())
    assert min(moved) > 1e-2          # the heads moved: the comparison is not of zeros


@pytest.mark.parametrize("k", [None, 3])
def test_batched_reference_heads_with_sgd_and_l2_equal_plain_loops(k):
    # B heads at once, class 0 as the reference logit, SGD, an L2 term that spares the bias row
    x, y = _data(seed=1, k=k)
    _, _, design = standardize(x)
    specs = [HeadSpec(loss, conf) for loss in loss_names()[:3] for conf in (False, True)]
    B, n = len(specs), len(x)
    orders = np.stack([epoch_orders(n, CFG.epochs, b) for b in range(B)])
    X = torch.as_tensor(design)[None]
    Y = torch.as_tensor(np.stack([y] * B))
    w = fit_heads(X, torch.zeros(B, dtype=torch.long), Y, torch.as_tensor(orders),
                  step_bounds(n, CFG.epochs, CFG.batch_size), specs, CFG, reference=True,
                  optimizer="sgd", l2=0.3)
    assert tuple(w.shape) == (B, 5, 1 if k is None else k - 1)
    for b, spec in enumerate(specs):
        want = _plain_head(design, y, spec, CFG, order=orders[b], reference=True,
                           optimizer="sgd", l2=0.3)
        assert np.abs(w[b].numpy().reshape(want.shape) - want).max() < 1e-12, spec
    # the L2 term acts: without it the weights differ, and the bias row is not shrunk to 0
    w0 = fit_heads(X, torch.zeros(B, dtype=torch.long), Y, torch.as_tensor(orders),
                   step_bounds(n, CFG.epochs, CFG.batch_size), specs, CFG, reference=True,
                   optimizer="sgd")
    assert (w0 - w)[:, :-1].abs().max() > 1e-3


@pytest.mark.parametrize("k", [None, 3])
def test_fit_head_minibatch_is_the_loop_on_the_design(k):
    # the minibatch head = one reference head of the loop on [z, 1], in torch.randperm's order
    x, y = _data(seed=2, n=49, k=k)
    h = fit_head_minibatch(x, y, loss="reverse_kl", lr=0.05, batch_size=16, epochs=2, seed=7,
                           l2=0.1)
    mu, sd, design = standardize(x)
    gen = torch.Generator().manual_seed(7)
    order = torch.cat([torch.randperm(49, generator=gen) for _ in range(2)]).numpy()
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, dtype="float64")
    theta = _plain_head(design, y, HeadSpec("reverse_kl"), cfg, order=order, reference=True,
                        l2=0.1)
    coef = theta[:-1] / sd[:, None]
    intercept = theta[-1] - mu @ coef
    if k is None:
        coef, intercept = coef[:, 0], intercept[0]
    assert np.abs(h.coef - coef).max() < 1e-12 and np.abs(h.intercept - intercept).max() < 1e-12
    assert h.report.iterations == 8 and h.report.method == "minibatch/adam"


def test_batched_k_class_heads_equal_train_head_one_by_one():
    x, y = _data(seed=3, k=4)
    specs = [HeadSpec(loss, conf, seed=s) for loss in loss_names() for conf in (False, True)
             for s in (0, 1)]
    r = train_heads(x, np.stack([y] * len(specs)), specs, CFG, device="cpu")
    for w, spec in zip(r.weights, specs):
        assert w.shape == (4, 4)
        assert np.abs(w - train_head(x, y, spec, CFG)).max() < 1e-12, spec


def test_loop_argument_errors_name_the_argument():
    x, y = _data()
    with pytest.raises(ValueError, match="^optimizer: "):
        fit_heads(torch.as_tensor(x)[None], torch.zeros(1, dtype=torch.long),
                  torch.as_tensor(y)[None], torch.arange(45)[None], [(0, 45)],
                  [HeadSpec("forward_kl")], CFG, optimizer="lbfgs")
    with pytest.raises(ValueError, match="^optimizer: "):
        fit_head_minibatch(x, y, optimizer="rmsprop")
