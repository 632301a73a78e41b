r"""Last-layer heads on fixed features, trained one by one or all together (torch).

A *head* is a linear score on a fixed feature vector, :math:`z(x) = w^\top x`,
with binary prediction :math:`p(x) = \sigma(z(x))`; a *k-class head* has a weight matrix
``W`` of shape ``(d, k)`` and predicts :math:`p(x) = \mathrm{softmax}(W^\top x)` (its
targets are rows of the simplex, shape ``(n, k)``). There is no separate bias:
append a constant feature for one (a Bradley–Terry reward head on pair
differences :math:`x = h_A - h_B` has none, since :math:`r(h_A) - r(h_B)`
cancels it). A head is trained from ``w = 0`` by Adam on minibatches of soft
targets ``y`` under one of the four W2SG losses of `w2s_theory.losses`,
optionally with Burns et al.'s confidence loss: target
:math:`(1-\alpha_t) y + \alpha_t 1[p > t]` with :math:`\alpha_t` from
`confidence_alpha` and the class-balance threshold
:math:`t` from a rolling buffer of the head's last ``buffer_size`` predictions
(`BalanceThreshold`); until ``min_count`` predictions
are buffered the plain loss is used. A k-class head hardens to the one-hot of the argmax of
its own prediction (Burns et al.'s multi-class form; no threshold, no buffer), with the same
weight schedule from the first step.

* `train_heads` trains many heads in one batched computation, the one loop of
  ``w2s_theory.heads.softmax.loop.fit_heads``: the weights are stacked into a ``(B, d, c)``
  tensor, each step gathers every head's minibatch into ``(B, m, d)``, computes all logits at
  once and sums the heads' mean losses (the heads are independent, so the gradient of the
  sum in ``w_b`` is head ``b``'s own gradient, and Adam is elementwise); the confidence
  buffers are a ``(B, buffer_size)`` ring with a row-wise quantile. It gives the weights of
  ``B`` separate trainings up to float round-off (checked in ``tests/test_training.py``
  against a plain one-head loop written there).
* `train_head` trains one head (the same loop with ``B = 1``), `train_heads_loop` the heads
  of `train_heads` one by one (the baseline of the benchmark), `train_head_sets` heads whose
  targets differ in shape (one batched computation per shape).

Feature groups of different widths are zero-padded to the widest; a zero
feature has a zero gradient and Adam leaves its weight at exactly 0, so padding
does not change any head.

This module needs only numpy and torch (the GPU benchmark imports it alone). `TrainConfig`,
`HeadSpec`, `epoch_orders`, `step_bounds` and `rowwise_quantile` live in
``w2s_theory.heads.softmax`` and are re-exported here.

References
----------
Yao et al., arXiv:2502.11107 (2025): last-layer W2SG with forward/reverse KL/CE.
Burns et al., arXiv:2312.09390 (2023): the confidence loss.
Kingma & Ba, "Adam", ICLR 2015.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ._validation import ROW_SUM_ATOL
from .heads.softmax.config import HeadSpec, TrainConfig
from .heads.softmax.loop import fit_heads, rowwise_quantile
from .heads.softmax.order import epoch_orders, step_bounds
from .losses import PAPER_LOSSES  # noqa: F401  (the doctests' loss list)
from .runtime import resolve_device, thread_limit

# (TrainConfig() defaults below: a frozen dataclass, immutable, hence the B008 waivers)

__all__ = [
    "TrainConfig",
    "HeadSpec",
    "TrainedHeads",
    "epoch_orders",
    "step_bounds",
    "train_head",
    "train_heads",
    "train_heads_loop",
    "train_head_sets",
    "predict_proba",
    "rowwise_quantile",
]



@dataclass
class TrainedHeads:
    """Result of a training computation.

    Attributes:
        weights: list of ``B`` float64 arrays, head ``b`` of shape ``(d_g,)`` (``(d_g, k)`` for a
            k-class head) for its group's width.
        wall_s: seconds spent; n_steps: optimisation steps per head; device: where it ran.
    """

    weights: list
    wall_s: float
    n_steps: int
    device: str
    meta: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- checks
def _check_features(features) -> list[np.ndarray | torch.Tensor]:
    if isinstance(features, (np.ndarray, torch.Tensor)) and features.ndim == 2:
        groups = [features]
    elif isinstance(features, (np.ndarray, torch.Tensor)) and features.ndim == 3:
        groups = list(features)
    elif isinstance(features, (list, tuple)) and len(features) > 0:
        groups = list(features)
    else:
        raise ValueError("features: expected an (n, d) array, a (G, n, d) array or a "
                         "non-empty list of (n, d_g) arrays")
    n = None
    for g, f in enumerate(groups):
        if f.ndim != 2 or f.shape[0] < 1 or f.shape[1] < 1:
            raise ValueError(f"features: group {g} must have shape (n, d), got {tuple(f.shape)}")
        if n is None:
            n = f.shape[0]
        elif f.shape[0] != n:
            raise ValueError(f"features: every group needs the same n; group {g} has "
                             f"{f.shape[0]} rows, group 0 has {n}")
    return groups


def _as_tensor(a, dtype, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a,
                           dtype=dtype, device=device)


def _check_targets(targets, n_heads: int, n: int) -> np.ndarray | torch.Tensor:
    """``(B, n)`` binary targets (P(class 1)) or ``(B, n, k)`` class distributions, ``k >= 2``."""
    t = targets
    shape = tuple(t.shape)
    if len(shape) == 3 and shape[:2] == (n_heads, n):
        if shape[2] < 2:
            raise ValueError(f"targets: k-class targets need k >= 2 classes, got {shape}")
    elif shape != (n_heads, n):
        raise ValueError(f"targets: expected shape ({n_heads}, {n}) (one row per head), "
                         f"or ({n_heads}, {n}, k) for k-class heads, got {shape}")
    tt = torch.as_tensor(t)
    if not bool(torch.isfinite(tt).all()) or bool((tt < 0).any()) or bool((tt > 1).any()):
        raise ValueError("targets: entries must be finite and lie in [0, 1]")
    if len(shape) == 3:
        dev = (tt.to(torch.float64).sum(dim=2) - 1.0).abs().max()
        if float(dev) > ROW_SUM_ATOL:
            raise ValueError(f"targets: k-class rows must sum to 1 (within {ROW_SUM_ATOL:g}); "
                             f"the largest deviation is {float(dev):.3g}")
    return t


# ----------------------------------------------------------------------------- one head
def train_head(features, targets, spec: HeadSpec, config: TrainConfig = TrainConfig(),  # noqa: B008
               *, device=None, num_threads: int | None = None) -> np.ndarray:
    r"""Train one head: `train_heads` with ``B = 1`` (the loop takes the plain product).

    Minimises, by Adam on minibatches in the order `epoch_orders` ``(n, epochs,
    spec.seed)``, the mean over a batch of ``loss(x^T w, y)`` (``spec.loss``; binary:
    ``p = sigmoid(x^T w)``, k-class: ``p = softmax(x^T W)``), with the confidence target when
    ``spec.confidence``.

    Args:
        features: ``(n, d)`` features of this head's examples.
        targets: ``(n,)`` soft targets in ``[0, 1]`` (P(class 1)), or ``(n, k)`` class
            distributions for a k-class softmax head.
        spec: the head (``spec.group`` is ignored here).
        config: optimisation settings.
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CPU).
        num_threads: torch CPU threads while training (``None``: unchanged).

    Returns:
        the final weights, float64, shape ``(d,)`` (binary) or ``(d, k)``.

    Examples:
        >>> import numpy as np
        >>> x = np.array([[1.0], [-1.0]] * 8); y = np.array([1.0, 0.0] * 8)
        >>> w = train_head(x, y, HeadSpec("forward_ce"), TrainConfig(epochs=5, lr=0.1))
        >>> bool(w[0] > 0)
        True
    """
    with thread_limit(num_threads):
        return _train_head(features, targets, spec, config, resolve_device(device or "cpu"))


def _train_head(features, targets, spec, config, dev) -> np.ndarray:
    """One head: `_train_heads` with ``B = 1`` on its own features (``spec.group`` ignored)."""
    t = np.asarray(targets, dtype=np.float64)
    one = HeadSpec(spec.loss, spec.confidence, spec.seed, 0)
    return _train_heads([features], t[None], [one], config, dev, False).weights[0]


def train_heads_loop(features, targets, specs: Sequence[HeadSpec],
                     config: TrainConfig = TrainConfig(), *, device=None,  # noqa: B008
                     progress: bool = False, num_threads: int | None = None) -> TrainedHeads:
    """Train the heads of `train_heads` one by one with `train_head` (baseline).

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(32, 3)); y = (x[:, 0] > 0) * 1.0
        >>> r = train_heads_loop(x, np.stack([y, y]), [HeadSpec("forward_kl"), HeadSpec("reverse_kl")])
        >>> [w.shape for w in r.weights]
        [(3,), (3,)]
    """
    groups = _check_features(features)
    specs = list(specs)
    n = groups[0].shape[0]
    _check_targets(targets, len(specs), n)
    _check_groups(specs, len(groups))
    dev = resolve_device(device or "cpu")
    it = range(len(specs))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="heads one by one", unit="head")
    t0 = time.perf_counter()
    with thread_limit(num_threads):
        ws = [_train_head(groups[specs[b].group], targets[b], specs[b], config, dev) for b in it]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return TrainedHeads(weights=ws, wall_s=time.perf_counter() - t0,
                        n_steps=len(step_bounds(n, config.epochs, config.batch_size)),
                        device=str(dev))


def _check_groups(specs, n_groups: int) -> None:
    if not specs:
        raise ValueError("specs: need at least one head")
    for b, s in enumerate(specs):
        if not isinstance(s, HeadSpec):
            raise ValueError(f"specs: entry {b} is not a HeadSpec")
        if s.group >= n_groups:
            raise ValueError(f"specs: head {b} reads group {s.group}, but only {n_groups} "
                             f"feature groups were given")


# ----------------------------------------------------------------------------- many heads
def train_heads(features, targets, specs: Sequence[HeadSpec], config: TrainConfig = TrainConfig(),  # noqa: B008
                *, device=None, progress: bool = False,
                num_threads: int | None = None) -> TrainedHeads:
    r"""Train ``B`` independent heads in one batched computation.

    Head ``b`` reads feature group ``specs[b].group`` and targets ``targets[b]``; it
    follows exactly the recipe of `train_head` (same order, same loss, same
    confidence target), so the result equals ``B`` calls of `train_head` up to
    float round-off. Cost per step: one ``(B, m, d)`` gather and one batched
    product, independent of ``B`` in Python overhead.

    Args:
        features: ``(n, d)``, ``(G, n, d)``, or a list of ``G`` arrays ``(n, d_g)``
            (zero-padded to the widest).
        targets: ``(B, n)`` soft targets in ``[0, 1]``, or ``(B, n, k)`` class
            distributions (k-class softmax heads, weights ``(d_g, k)``).
        specs: ``B`` `HeadSpec`.
        config: optimisation settings.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``/``None`` (CUDA when available).
        progress: show a tqdm bar over steps.
        num_threads: torch CPU threads while training (``None``: unchanged).

    Returns:
        `TrainedHeads` (weights of head ``b`` cut back to its group's width).

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(64, 3)); y = (x[:, 0] > 0) * 1.0
        >>> specs = [HeadSpec(l, confidence=c) for l in PAPER_LOSSES for c in (False, True)]
        >>> r = train_heads(x, np.tile(y, (8, 1)), specs, TrainConfig(dtype="float64"), device="cpu")
        >>> one = train_head(x, y, specs[3], TrainConfig(dtype="float64"))
        >>> bool(np.abs(r.weights[3] - one).max() < 1e-12)
        True
    """
    with thread_limit(num_threads):
        return _train_heads(features, targets, list(specs), config, resolve_device(device), progress)


def _train_heads(features, targets, specs, config, dev, progress) -> TrainedHeads:
    dt = config.torch_dtype
    groups = _check_features(features)
    _check_groups(specs, len(groups))
    n = groups[0].shape[0]
    B = len(specs)
    _check_targets(targets, B, n)
    widths = [int(g.shape[1]) for g in groups]
    dmax = max(widths)
    t0 = time.perf_counter()
    X = torch.zeros((len(groups), n, dmax), dtype=dt, device=dev)
    for g, f in enumerate(groups):
        X[g, :, : widths[g]] = _as_tensor(f, dt, dev)
    Y = _as_tensor(targets, dt, dev)
    kc = Y.ndim == 3                                          # k-class heads: W is (B, d, k)
    gidx = torch.as_tensor([s.group for s in specs], device=dev)
    orders = torch.as_tensor(
        np.stack([epoch_orders(n, config.epochs, int(s.seed)) for s in specs]), device=dev)
    bounds = step_bounds(n, config.epochs, config.batch_size)
    total = len(bounds)

    W = fit_heads(X, gidx, Y, orders, bounds, specs, config, progress=progress)
    Wf = W.detach().to("cpu", torch.float64).numpy()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    ws = [(Wf[b, : widths[s.group]] if kc else Wf[b, : widths[s.group], 0]).copy()
          for b, s in enumerate(specs)]
    return TrainedHeads(weights=ws, wall_s=wall, n_steps=total, device=str(dev))


def train_head_sets(features, targets: Sequence, specs: Sequence[HeadSpec],
                    config: TrainConfig = TrainConfig(), *, device=None, progress: bool = False,  # noqa: B008
                    num_threads: int | None = None) -> TrainedHeads:
    """`train_heads` for heads whose targets differ in shape (binary heads and k-class heads
    of several ``k`` in one sweep): one batched computation per target shape.

    When every target has the same shape this is exactly one `train_heads` call on
    ``np.stack(targets)``. Otherwise each shape's heads are trained together on the feature
    groups they read; ``wall_s`` is the sum, the weights come back in the order of ``specs``.

    Args:
        features: as for `train_heads`.
        targets: ``B`` arrays, ``(n,)`` or ``(n, k)``, one per head.
        specs, config, device, progress, num_threads: as for `train_heads`.

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(32, 3)); y = (x[:, 0] > 0) * 1.0
        >>> c = (x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
        >>> r = train_head_sets(x, [y, np.eye(3)[c]],
        ...                     [HeadSpec("forward_kl"), HeadSpec("forward_kl")])
        >>> [w.shape for w in r.weights]
        [(3,), (3, 3)]
    """
    targets = [np.asarray(t, dtype=np.float64) for t in targets]
    specs = list(specs)
    if len(targets) != len(specs):
        raise ValueError(f"targets: {len(targets)} arrays for {len(specs)} heads")
    shapes = list(dict.fromkeys(t.shape for t in targets))
    kw = dict(device=device, progress=progress, num_threads=num_threads)
    if len(shapes) <= 1:
        return train_heads(features, np.stack(targets), specs, config, **kw)
    groups = _check_features(features)
    _check_groups(specs, len(groups))
    weights: list = [None] * len(specs)
    wall, res = 0.0, None
    for shape in shapes:
        heads = [b for b, t in enumerate(targets) if t.shape == shape]
        used = sorted({specs[b].group for b in heads})
        new = {g: i for i, g in enumerate(used)}
        sub = [HeadSpec(specs[b].loss, specs[b].confidence, specs[b].seed, new[specs[b].group])
               for b in heads]
        res = train_heads([groups[g] for g in used], np.stack([targets[b] for b in heads]), sub,
                          config, **kw)
        wall += res.wall_s
        for b, w in zip(heads, res.weights):
            weights[b] = w
    return TrainedHeads(weights=weights, wall_s=wall, n_steps=res.n_steps, device=res.device)


# ----------------------------------------------------------------------------- prediction
def predict_proba(features, weights) -> np.ndarray:
    r"""Head probabilities in float64: binary :math:`\sigma(X w)`, shape ``(n,)``, or
    k-class :math:`\mathrm{softmax}(X W)` row by row, shape ``(n, k)``.

    Binary: computed as ``(1 + tanh(z / 2)) / 2`` (no overflow for large ``|z|``); k-class:
    ``exp(z - max z)`` normalised (no overflow either).

    Args:
        features: ``(n, d)``; weights: ``(d,)`` (binary) or ``(d, k)``.

    Examples:
        >>> import numpy as np
        >>> predict_proba(np.array([[0.0], [2.0]]), np.array([1.0])).round(4).tolist()
        [0.5, 0.8808]
        >>> predict_proba(np.array([[0.0], [1.0]]), np.array([[0.0, 1.0, 2.0]])).round(4).tolist()
        [[0.3333, 0.3333, 0.3333], [0.09, 0.2447, 0.6652]]
    """
    X = np.asarray(features, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if X.ndim != 2 or w.ndim not in (1, 2) or w.shape[0] != X.shape[1] or (
            w.ndim == 2 and w.shape[1] < 2):
        raise ValueError(f"weights: shape {w.shape} does not fit features of shape {X.shape}")
    z = X @ w
    if w.ndim == 2:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 0.5 * (1.0 + np.tanh(0.5 * z))
