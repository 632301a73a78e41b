r"""The softmax (logistic) linear head ``P(x) = softmax(W^T h_s(x) + b)`` and its objective.

Parameterisation: class 0 is the reference (logit ``z_0 = 0``): the free parameters
``theta``, shape ``(d+1, k-1)`` on the standardised design ``[z_s, 1]`` of
`w2s_theory.heads.design`, are the logits of classes ``1..k-1``, so a fitted head is
identifiable. The binary shorthand (weak labels of shape ``(n,)``, ``P(class 1)``) has one
column and the binary losses. Both fits of this package return a `SoftmaxHead`: the exact
one (`w2s_theory.heads.fit_softmax_head`) and the minibatch one
(`w2s_theory.heads.fit_head_minibatch`, through the one batched loop).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from ...runtime import thread_limit
from ..design import check_features, linear
from ..report import FitReport

__all__ = ["SoftmaxHead", "small_torch_work", "torch_objective", "probs_from_design",
           "SMALL_TORCH_WORK"]

#: fits with at most this many feature entries x classes run on one torch thread
SMALL_TORCH_WORK = 5_000_000


@dataclass(frozen=True)
class SoftmaxHead:
    r"""A fitted softmax (logistic) linear head ``P(x) = softmax(z(x))``, ``z_0 = 0``.

    Attributes:
        coef: shape ``(d,)`` (binary: ``P(class 1) = sigmoid(coef . h + intercept)``) or
            ``(d, k-1)`` (logits of classes ``1..k-1``), in the original feature units.
        intercept: scalar array (binary) or ``(k-1,)``.
        probs: fitted probabilities on the training samples, same shape as ``weak_probs``.
        loss: the loss minimised; l2: its L2 weight (on standardised weights, not bias).
        report: `FitReport` (``grad_norm``, ``iterations``, ``converged``).
    """

    coef: np.ndarray
    intercept: np.ndarray
    probs: np.ndarray
    loss: str
    l2: float
    report: FitReport

    @property
    def binary(self) -> bool:
        return self.probs.ndim == 1

    def logits(self, features) -> np.ndarray:
        """Logits ``z(x)``: shape ``(m,)`` (binary) or ``(m, k)`` with ``z_0 = 0``."""
        x = check_features(features)
        if x.shape[1] != self.coef.shape[0]:
            raise ValueError(f"features: has {x.shape[1]} columns, the head was fitted on "
                             f"{self.coef.shape[0]}")
        z = linear(x, self.coef.reshape(x.shape[1], -1), np.atleast_1d(self.intercept))
        if self.binary:
            return z[:, 0]
        return np.hstack([np.zeros((x.shape[0], 1)), z])

    def predict(self, features) -> np.ndarray:
        """Probabilities on new samples: shape ``(m,)`` (binary ``P(class 1)``) or ``(m, k)``."""
        z = self.logits(features)
        return expit(z) if self.binary else softmax(z, axis=1)



def small_torch_work(fit):
    """Decorator: run ``fit(features, weak_probs, ...)`` on one torch thread when it is small."""

    @functools.wraps(fit)
    def wrapper(features, weak_probs, **kwargs):
        k = int(np.shape(weak_probs)[-1]) if np.ndim(weak_probs) == 2 else 1
        # small fits on one thread (see w2s_theory.runtime); large ones keep torch's setting
        with thread_limit(1 if int(np.size(features)) * k <= SMALL_TORCH_WORK else None):
            return fit(features, weak_probs, **kwargs)

    return wrapper


def torch_objective(design_t, y_t, loss: str, l2: float, binary: bool, eps: float):
    """Return ``f(theta_flat) -> scalar`` in torch (mean loss + l2/2 |weights|^2).

    ``theta_flat`` holds ``(d+1, k-1)`` parameters on the design ``design_t`` (``(n, d+1)``,
    last column the bias, not penalised); ``y_t``: weak labels ``(n,)`` or ``(n, k)``.
    """
    import torch

    from ...losses import get_loss

    fn = get_loss(loss)
    d1 = design_t.shape[1]
    n = design_t.shape[0]

    def f(theta_flat):
        th = theta_flat.reshape(d1, -1)
        z = design_t @ th
        if binary:
            z = z[:, 0]
        else:
            z = torch.cat([torch.zeros(n, 1, dtype=z.dtype), z], dim=1)
        val = fn(z, y_t, reduction="mean", eps=eps)
        if l2 > 0:
            val = val + 0.5 * l2 * (th[:-1] ** 2).sum()
        return val

    return f


def probs_from_design(design: np.ndarray, theta: np.ndarray, binary: bool) -> np.ndarray:
    """Probabilities of parameters ``theta`` (``(d+1, k-1)``) on ``design``: ``(n,)`` or ``(n, k)``."""
    z = design @ theta
    if binary:
        return expit(z[:, 0])
    return softmax(np.hstack([np.zeros((z.shape[0], 1)), z]), axis=1)
