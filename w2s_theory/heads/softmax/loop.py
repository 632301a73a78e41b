r"""The one minibatch loop of last-layer heads: ``B`` heads x ``n`` samples x ``k`` classes.

Every minibatch-trained linear head of the toolkit goes through `fit_heads`: the real
sweep's heads (`w2s_theory.training.train_heads`, one head: `w2s_theory.training.train_head`)
and the practical regime of the synthetic sweep (`w2s_theory.heads.fit_head_minibatch`).

The ``B`` heads' weights are one tensor ``W`` of shape ``(B, d, c)``; at each step every head
gathers its own minibatch (its own example order) into ``(B, m, d)``, all logits come from one
batched product ``Z = X_b W`` (``(B, m, c)``), and the heads' mean losses are summed. The heads
are independent, so the gradient of the sum in ``W_b`` is head ``b``'s own gradient, and Adam
and SGD are elementwise: the result is ``B`` independent trainings. The logits:

* binary heads (targets ``(B, n)``, ``P(class 1)``): ``c = 1``, the binary losses on ``z``;
* k-class heads (targets ``(B, n, k)``): ``c = k``, ``p = softmax(z)``; or, with
  ``reference=True``, ``c = k - 1`` and class 0's logit fixed at 0 (identifiable).

``reference=True`` is the parameterisation of `w2s_theory.heads.fit_head_minibatch` (a design
matrix ``theta``, ``(d+1, k-1)``; binary: one column), ``False`` that of
`w2s_theory.training` (binary: a weight vector; k-class: ``(d, k)``).

Burns et al.'s confidence loss replaces a head's target by
:math:`(1-\alpha_t) y + \alpha_t \hat y` with :math:`\alpha_t` from `confidence_alpha`:
binary heads harden at the class-balance threshold :math:`t`, the quantile at level
``1 - mean(y)`` of a ``(B, buffer_size)`` ring of each head's last predictions
(`rowwise_quantile`; the plain loss until ``min_count`` are buffered); k-class heads harden to
the one-hot argmax of their own prediction (no buffer). A single head (``B = 1``) takes the plain
matrix product and the loss's own mean, the arithmetic of an unbatched loop.

References:
    Burns et al., arXiv:2312.09390 (2023): the confidence loss.
    Kingma & Ba, "Adam", ICLR 2015.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...losses import confidence_alpha, get_loss, loss_names
from .config import HeadSpec, TrainConfig

__all__ = ["fit_heads", "rowwise_quantile", "OPTIMIZERS"]

#: the optimisers of `fit_heads`
OPTIMIZERS = ("adam", "sgd")


def rowwise_quantile(values: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Quantile of each row of ``values`` (``(R, m)``) at its own level ``q`` (``(R,)``).

    Linear interpolation between order statistics, exactly as `torch.quantile`
    (which takes one level for all rows).

    Examples:
        >>> import torch
        >>> v = torch.tensor([[1.0, 3.0, 2.0], [5.0, 4.0, 6.0]], dtype=torch.float64)
        >>> rowwise_quantile(v, torch.tensor([0.5, 0.25], dtype=torch.float64)).tolist()
        [2.0, 4.5]
    """
    v = values.sort(dim=1).values
    ranks = q * (v.shape[1] - 1)
    below = ranks.floor().long()
    above = ranks.ceil().long()
    w = (ranks - below.to(ranks.dtype)).unsqueeze(1)
    lo = v.gather(1, below.unsqueeze(1))
    hi = v.gather(1, above.unsqueeze(1))
    return torch.lerp(lo, hi, w).squeeze(1)


def fit_heads(X: torch.Tensor, groups: torch.Tensor, Y: torch.Tensor, orders: torch.Tensor,
              bounds: Sequence[tuple[int, int]], specs: Sequence[HeadSpec],
              config: TrainConfig, *, reference: bool = False, optimizer: str = "adam",
              l2: float = 0.0, progress: bool = False) -> torch.Tensor:
    r"""Train ``B`` linear heads from ``W = 0`` in one batched minibatch loop.

    At step ``s`` with slice ``(a, b) = bounds[s]``, head ``h`` reads the examples
    ``orders[h, a:b]`` of feature group ``groups[h]`` and takes one optimiser step on
    ``mean_batch loss_h(X W_h, T_h) + (l2/2) |W_h[:-1]|^2`` (``T_h`` its target, confidence-mixed
    when ``specs[h].confidence``).

    Args:
        X: ``(G, n, d)`` features of ``G`` groups, in the working dtype and device.
        groups: ``(B,)`` long, the group each head reads.
        Y: ``(B, n)`` binary targets ``P(class 1)`` or ``(B, n, k)`` class distributions.
        orders: ``(B, N)`` long, each head's example order (``N >= bounds[-1][1]``).
        bounds: ``(start, end)`` slices of ``orders``, one per step
            (`w2s_theory.heads.softmax.order.step_bounds`).
        specs: ``B`` `HeadSpec` (the loss and confidence switch of each head; its seed and
            group are read by the caller, who builds ``orders`` and ``groups``).
        config: `TrainConfig` (``lr``, ``betas``, ``adam_eps``, ``eps``, confidence schedule).
        reference: k-class heads with class 0's logit fixed at 0 (``c = k - 1``); a binary
            head's weights are then a one-column matrix (a single head's product is a
            matrix product, not a vector one: they round differently on a batch of 1).
        optimizer: ``"adam"`` (with ``config.betas`` and ``config.adam_eps``) or ``"sgd"``.
        l2: weight of ``(l2/2) |W_h[:-1]|^2`` (the last feature is a design's bias, not
            penalised); ``0`` adds nothing.
        progress: a tqdm bar over the steps.

    Returns:
        the final weights, detached, ``(B, d, c)``: ``c = 1`` (binary), ``k``, or ``k - 1``
        (``reference``).

    Examples:
        >>> import torch
        >>> x = torch.tensor([[[1.0], [-1.0]] * 8], dtype=torch.float64)     # (1, 16, 1)
        >>> y = torch.tensor([[1.0, 0.0] * 8, [0.0, 1.0] * 8], dtype=torch.float64)
        >>> order = torch.arange(16).repeat(2, 1)
        >>> w = fit_heads(x, torch.tensor([0, 0]), y, order, [(0, 8), (8, 16)],
        ...               [HeadSpec("forward_ce")] * 2, TrainConfig(lr=0.1, dtype="float64"))
        >>> w.shape, bool(w[0, 0, 0] > 0 > w[1, 0, 0])
        (torch.Size([2, 1, 1]), True)
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: must be 'adam' or 'sgd', got {optimizer!r}")
    dev, dt = X.device, X.dtype
    B, d = len(specs), X.shape[2]
    kc = Y.ndim == 3
    k = Y.shape[2] if kc else 2
    c = (k - 1 if reference else k) if kc else 1
    total = len(bounds)
    W = torch.zeros((B, d, c), dtype=dt, device=dev, requires_grad=True)
    opt = (torch.optim.Adam([W], lr=config.lr, betas=config.betas, eps=config.adam_eps)
           if optimizer == "adam" else torch.optim.SGD([W], lr=config.lr))
    loss_groups = []
    for name in loss_names():
        hs = [b for b, s in enumerate(specs) if s.loss == name]
        if hs:
            loss_groups.append((get_loss(name), torch.as_tensor(hs, device=dev)))
    cidx_list = [b for b, s in enumerate(specs) if s.confidence]
    has_conf = bool(cidx_list)
    if has_conf:
        cidx = torch.as_tensor(cidx_list, device=dev)
    if has_conf and not kc:
        size = config.buffer_size
        pbuf = torch.zeros((len(cidx_list), size), dtype=torch.float64, device=dev)
        ybuf = torch.zeros_like(pbuf)
        count, ptr = 0, 0
    rows = torch.arange(B, device=dev).unsqueeze(1)

    steps = range(total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{B} heads batched", unit="step")
    for step in steps:
        a, b = bounds[step]
        m = b - a
        idx = orders[:, a:b]                                  # (B, m)
        Xb = X[groups.unsqueeze(1), idx]                      # (B, m, d)
        if B == 1:      # one head: the plain product (a vector one for a binary weight vector)
            Z = (Xb[0] @ W[0] if kc or reference else Xb[0] @ W[0, :, 0]).unsqueeze(0)
        else:
            Z = torch.bmm(Xb, W)                              # (B, m, c)
        if not kc and Z.ndim == 3:
            Z = Z.squeeze(2)                                  # (B, m)
        if kc and reference:
            Z = torch.cat([Z.new_zeros((B, m, 1)), Z], dim=2)  # class 0's logit is 0
        Yb = Y[rows, idx] if kc else Y.gather(1, idx)         # (B, m, k) or (B, m)
        T = Yb
        if has_conf and kc:                                   # argmax hardening, no buffer
            alpha = confidence_alpha(step, total, alpha_max=config.alpha_max,
                                     warmup_frac=config.warmup_frac)
            hard = torch.nn.functional.one_hot(Z.detach()[cidx].argmax(dim=2), k)
            T = Yb.clone()
            T[cidx] = (1.0 - alpha) * Yb[cidx] + alpha * hard.to(dt)
        elif has_conf:
            pc = torch.sigmoid(Z.detach()[cidx])              # (Bc, m), working dtype
            keep = min(m, size)                               # a batch larger than the
            pos = (ptr + m - keep + torch.arange(keep, device=dev)) % size   # buffer keeps its last
            pbuf[:, pos] = pc[:, m - keep:].to(torch.float64)                # `size` entries
            ybuf[:, pos] = Yb[cidx][:, m - keep:].to(torch.float64)
            ptr = (ptr + m) % size
            count = min(count + m, size)
            if count >= config.min_count:
                alpha = confidence_alpha(step, total, alpha_max=config.alpha_max,
                                         warmup_frac=config.warmup_frac)
                q = 1.0 - ybuf[:, :count].mean(dim=1)
                thr = rowwise_quantile(pbuf[:, :count], q)
                hard = (pc > thr.to(dt).unsqueeze(1)).to(dt)
                T = Yb.clone()
                T[cidx] = (1.0 - alpha) * Yb[cidx] + alpha * hard
        loss = Z.new_zeros(())
        for fn, hs in loss_groups:
            if B == 1:                                        # the loss's own mean
                loss = loss + fn(Z[0], T[0], reduction="mean", eps=config.eps)
                continue
            nh = hs.numel()
            if kc:
                per = fn(Z[hs].reshape(-1, k), T[hs].reshape(-1, k), reduction="none",
                         eps=config.eps)
            else:
                per = fn(Z[hs].reshape(-1), T[hs].reshape(-1), reduction="none", eps=config.eps)
            loss = loss + per.reshape(nh, m).mean(dim=1).sum()
        if l2 > 0:
            loss = loss + 0.5 * l2 * (W[:, :-1] ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach()
