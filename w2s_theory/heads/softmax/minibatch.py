r"""The practical regime: the softmax head trained by minibatch Adam/SGD, i.e. early stopped.

A thin wrapper of the one batched loop (`w2s_theory.heads.softmax.loop.fit_heads`, one head,
class 0 as the reference logit) on the standardised design of `w2s_theory.heads.design`.
"""

from __future__ import annotations

import time

import numpy as np

from ..._validation import check_probs, check_scalar, n_classes
from ..design import check_features, standardize, unstandardize
from ..minimizer import check_loss
from ..report import FitReport
from .config import HeadSpec, TrainConfig
from .head import SoftmaxHead, probs_from_design, small_torch_work, torch_objective

__all__ = ["fit_head_minibatch"]


@small_torch_work
def fit_head_minibatch(features, weak_probs, *, loss: str = "forward_kl",
                       optimizer: str = "adam", lr: float = 1e-3, batch_size: int = 16,
                       epochs: int = 1, l2: float = 0.0, seed: int = 0,
                       eps: float = 1e-6) -> SoftmaxHead:
    r"""Train the softmax head the practical way: minibatch Adam/SGD for a few epochs.

    Same model and losses as `fit_softmax_head` (float64, standardised
    features, zero initialisation), but optimised by ``optimizer`` with learning
    rate ``lr`` over ``epochs`` passes of shuffled minibatches of ``batch_size``
    (the last, smaller batch is kept). One epoch of batch 16 is the paper's
    regime; it stops far from the minimiser, which is the point of comparing it
    with `fit_softmax_head`. ``report.grad_norm`` is the full-batch gradient
    norm at the end; ``converged`` is always ``False`` unless that is ``<= 1e-6``.

    Args:
        features: shape ``(n, d)``. weak_probs: shape ``(n,)`` or ``(n, k)``.
        loss: a registered student loss (`w2s_theory.losses.loss_names`).
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate ``> 0``. batch_size: ``>= 1``. epochs: ``>= 1``.
        l2: L2 weight on the standardised weights. seed: shuffling seed.
        eps: clipping of weak labels inside ``log y`` (reverse losses).

    Returns:
        `SoftmaxHead`.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.heads import fit_head_minibatch
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(64, 3)); y = 1 / (1 + np.exp(-x[:, 0]))
        >>> h = fit_head_minibatch(x, y, loss="reverse_kl", lr=0.1, seed=0)
        >>> h.report.iterations, h.probs.shape
        (4, (64,))
    """
    import torch

    from .loop import OPTIMIZERS, fit_heads

    check_loss(loss)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: must be 'adam' or 'sgd', got {optimizer!r}")
    y = check_probs(weak_probs, "weak_probs")
    binary = y.ndim == 1
    k = n_classes(y)
    x = check_features(features, y.shape[0])
    lr = check_scalar(lr, "lr", low=0.0, low_open=True)
    l2 = check_scalar(l2, "l2", low=0.0)
    for name, v in (("batch_size", batch_size), ("epochs", epochs)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
    if not isinstance(seed, int):
        raise ValueError(f"seed: must be an integer, got {seed!r}")
    n, d = x.shape
    mu, sd, design = standardize(x)
    design_t = torch.from_numpy(design)
    y_t = torch.from_numpy(y)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, eps=eps, dtype="float64")
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    orders = torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)]).unsqueeze(0)
    bounds = [(e * n + s, e * n + min(s + batch_size, n))
              for e in range(epochs) for s in range(0, n, batch_size)]
    w = fit_heads(design_t.unsqueeze(0), torch.zeros(1, dtype=torch.long), y_t.unsqueeze(0),
                  orders, bounds, [HeadSpec(loss)], config, reference=True,
                  optimizer=optimizer, l2=l2)
    f = torch_objective(design_t, y_t, loss, l2, binary, eps)
    th = w[0].reshape(-1).clone().requires_grad_(True)
    v = f(th)
    (gr,) = torch.autograd.grad(v, th)
    gnorm = float(gr.norm())
    solve_time = time.perf_counter() - t0
    theta_np = th.detach().numpy().reshape(d + 1, k - 1)
    coef, intercept = unstandardize(theta_np, mu, sd)
    if binary:
        coef, intercept = coef[:, 0], np.asarray(intercept[0])
    return SoftmaxHead(coef=coef, intercept=intercept,
                       probs=probs_from_design(design, theta_np, binary), loss=loss, l2=l2,
                       report=FitReport(method=f"minibatch/{optimizer}", status="finished",
                                        converged=bool(gnorm <= 1e-6), objective=float(v.detach()),
                                        grad_norm=gnorm, iterations=len(bounds),
                                        solve_time=float(solve_time)))
