"""Student losses: the registry, the four W2SG losses, the f-divergence family, the confidence loss (torch).

**The registry** (`REGISTRY`, `loss_names`, `loss_spec`, `get_loss`) is
the one list of student losses: every trainer, sweep config check, test and notebook reads the
valid names from it. An entry (`LossSpec`) holds the loss, its closed-form gradient in
the logits (used by the tests), and whether it has a binary and a k-class form. Adding a loss is
one `register` call here (and its tests).

All losses take the strong student's *logits* and the weak teacher's
probabilities and are differentiable in the logits:

* binary: ``student_logits`` shape ``(n,)``, ``weak_probs`` shape ``(n,)`` = P(class 1);
* k-class: ``student_logits`` shape ``(n, k)``, ``weak_probs`` shape ``(n, k)``.

Write ``p = softmax(z)`` (binary: ``p = sigmoid(z)``) for the student and ``y``
for the weak labels. The closed forms (see ``docs/theory.md``), per example:

=============  ===============================================  ============================
name           loss                                              gradient in z (binary)
=============  ===============================================  ============================
forward_ce     ``-sum_i y_i log p_i``                            ``p - y``
forward_kl     ``sum_i y_i log(y_i / p_i)``                      ``p - y``
reverse_kl     ``sum_i p_i log(p_i / y_i)``                      ``p(1-p)(z - logit y)``
reverse_ce     ``-sum_i p_i log y_i``                            ``-p(1-p) logit y``
=============  ===============================================  ============================

The f-divergence family (Yao et al.'s follow-up, arXiv:2506.03109), also per example:

====================  ===================================================  ========================
name                  loss                                                 limits / special cases
====================  ===================================================  ========================
alpha_<a>_forward     ``D_a(y || p) = (1 - sum_i y_i^a p_i^(1-a)) / (a(1-a))``  ``a -> 1``: forward KL
alpha_<a>_reverse     ``D_a(p || y)``                                      ``a -> 1``: reverse KL
alpha_0.5             ``D_1/2`` (symmetric) ``= 4 H^2(y, p)``              squared Hellinger x 4
js                    ``KL(y || m)/2 + KL(p || m)/2``, ``m = (y + p)/2``   symmetric, ``<= log 2``
====================  ===================================================  ========================

``D_a(y || p) -> KL(p || y)`` as ``a -> 0``, and ``D_a(p || y) = D_(1-a)(y || p)``, so one ``a``
in both directions covers ``1 - a`` too. Registered: ``alpha_0.25_forward``, ``alpha_0.25_reverse``
(= ``D_0.75(y || p)``), ``alpha_0.5`` and ``js``; `alpha_divergence` builds any other ``a``
in ``(0, 1)``. They need no clipping (``y^a`` with ``a > 0`` is finite at ``y = 0``).

The weak labels are clipped into ``[eps, 1 - eps]`` only inside ``log y``
(reverse losses), where ``log 0`` would otherwise appear; ``y log y`` uses the
convention ``0 log 0 = 0``. The clip is exact in every dtype: ``1 - eps`` is never rounded
(binary: the smaller of ``y``, ``1 - y`` is clipped at ``eps``), so reverse CE's symmetric
identity ``l(p, y) + l(p, 1 - y) = -(log yc + log(1 - yc))`` holds in float32 to the rounding
of the two losses (below ``1e-6`` nats; ``tests/test_mixed_precision.py``). The student side
uses ``log_softmax`` / ``logsigmoid`` and is never clipped (k-class log-probabilities below a
quarter of the dtype's range, reached only by logits ``~1e38`` apart, are held there so that no
``0 * inf`` appears). ``reduction="mean"`` averages over
*examples*, never over classes (``torch.nn.functional.kl_div(reduction="mean")``
averages over both and silently halves a binary KL).

Mixed precision: the arithmetic is in float64 for float64 logits and in float32 otherwise
(bfloat16 and float16 logits are upcast, as ``torch.autocast`` does for its losses, and the
gradient flows back in their dtype); the weak labels are taken in that dtype, never rounded to
the logits' narrower one (bfloat16 rounds a weak label 0.999 to 1). The returned loss is float32
for float32, bfloat16 and float16 logits. No loss or gradient is inf or NaN for finite logits
and weak labels in ``[0, 1]``. float32 against float64 on the same inputs (measured on 200,000
binary cases, weak labels down to ``1e-7`` from 0 and 1): the cross-entropies agree to ``3e-7``
relative; the divergences, whose terms cancel at their minimum, to ``1e-6`` relative plus
``1e-6`` absolute.

Input checks: ``weak_probs`` must be finite, in ``[0, 1]``, of the logits' shape, and
k-class rows must sum to 1 within ``1e-6`` (float64), ``1e-4`` (float32), ``2e-3`` (float16) or
``8e-3`` (bfloat16), by the dtype they were given in (rounding alone reaches the lower
precisions' tolerance); ``student_logits`` must be finite; sparse tensors are refused (pass
``x.to_dense()``); lists and arrays of weak labels are accepted.

References
----------
Yao et al., "Revisiting Weak-to-Strong Generalization in Theory and Practice:
Reverse KL vs. Forward KL", Findings of ACL 2025, arXiv:2502.11107.
Burns et al., "Weak-to-Strong Generalization", arXiv:2312.09390 (confidence loss).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import (
    ArgumentTypeError,
    as_float_array,
    as_tensor_like,
    check_choice,
    check_float_tensor,
    check_int,
    check_number,
)

__all__ = [
    "forward_kl",
    "reverse_kl",
    "forward_ce",
    "reverse_ce",
    "confidence_loss",
    "confidence_alpha",
    "BalanceThreshold",
    "get_loss",
    "LOSS_NAMES",
    "LossSpec",
    "REGISTRY",
    "register",
    "loss_names",
    "loss_spec",
    "ordered",
    "check_loss_name",
    "PAPER_LOSSES",
    "alpha_divergence",
    "js_divergence",
    "value_checks",
]

#: Default clipping of weak probabilities inside ``log y`` (reverse losses).
DEFAULT_EPS = 1e-6



# ----------------------------------------------------------------------------- checks
#: Whether the losses run their value checks (finite, in [0, 1], rows summing to 1); see
#: `value_checks`. Dtype, shape and argument checks always run (they need no host sync).
_VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("w2s_value_checks",
                                                                     default=True)


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Turn the losses' *value* checks on or off inside a ``with`` block.

    The value checks (finite logits, weak probabilities in ``[0, 1]``, k-class rows summing
    to 1) read tensor values, which forces a host synchronisation on a GPU every step; a
    training loop that validated its targets once at the boundary can switch them off.
    Dtype, shape and argument checks stay on.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import reverse_kl, value_checks
        >>> with value_checks(False):
        ...     float(reverse_kl(torch.zeros(2), torch.tensor([0.5, 0.5])))
        0.0
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled: True or False, got {enabled!r}")
    token = _VALUE_CHECKS.set(enabled)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


#: Row-sum tolerance of k-class weak labels by the precision they were given in (the float64
#: one is `w2s_theory._validation.ROW_SUM_ATOL`; the others cover a row rounded entry by entry).
_ROW_SUM_TOL = {"float64": 1e-6, "float32": 1e-4, "float16": 2e-3, "bfloat16": 8e-3}


def _compute_dtype(dtype):
    """The dtype the losses compute in for logits of ``dtype``: float64 stays, anything narrower
    (float32, bfloat16, float16) computes in float32, as ``torch.autocast`` does for its losses."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_dense(x, name: str) -> None:
    if isinstance(x, torch.Tensor) and x.layout != torch.strided:
        raise ArgumentTypeError(f"{name}: a {x.layout} tensor; the losses take dense tensors: "
                                f"pass {name}.to_dense()")


def _check_inputs(student_logits, weak_probs, reduction: str, eps: float):
    """Validate, then return ``(z, y)`` in the compute dtype (at least float32, `_compute_dtype`).

    ``z`` is the logits upcast (gradients flow back to the caller's dtype); ``y`` the weak labels
    in the same dtype, never rounded to the logits' narrower dtype (bfloat16 rounds 0.999 to 1).
    """
    name = "student_logits"
    _check_dense(student_logits, name)
    check_float_tensor(student_logits, name)
    if student_logits.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected shape (n,) (binary logits) or (n, k), got {tuple(student_logits.shape)}"
        )
    if student_logits.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    if student_logits.ndim == 2 and student_logits.shape[1] < 2:
        raise ValueError(f"{name}: need k >= 2 classes, got shape {tuple(student_logits.shape)}")
    _check_dense(weak_probs, "weak_probs")
    cdt = _compute_dtype(student_logits.dtype)
    z = student_logits.to(cdt)
    given = weak_probs.dtype if isinstance(weak_probs, torch.Tensor) else torch.float64
    y = as_tensor_like(weak_probs, "weak_probs", z)
    if tuple(y.shape) != tuple(student_logits.shape):
        raise ValueError(
            f"weak_probs: shape {tuple(y.shape)} does not match student_logits "
            f"shape {tuple(student_logits.shape)}"
        )
    check_choice(reduction, "reduction", ("mean", "sum", "none"))
    check_number(eps, "eps", low=0.0, high=0.5, low_open=True, high_open=True)
    if not _VALUE_CHECKS.get():
        return z, y
    with torch.no_grad():
        if not torch.isfinite(student_logits).all():
            raise ValueError(f"{name}: contains NaN or inf")
        if not ((y >= 0) & (y <= 1)).all():      # one pass: NaN fails both comparisons
            if not torch.isfinite(y).all():
                raise ValueError("weak_probs: contains NaN or inf")
            raise ValueError("weak_probs: entries must lie in [0, 1]")
        if y.ndim == 2:
            err = (y.sum(dim=1) - 1).abs()
            tol = max(_ROW_SUM_TOL.get(str(given).replace("torch.", ""), 1e-4),
                      _ROW_SUM_TOL[str(cdt).replace("torch.", "")])
            if (err > tol).any():
                i = int(err.argmax())
                raise ValueError(
                    f"weak_probs: row {i} sums to {float(y[i].sum()):.6g}, not 1 (tolerance {tol:g})"
                )
    return z, y


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        # divide first: a mean of finite losses is finite even where their sum overflows
        return (per_example / per_example.shape[0]).sum()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _log_student(z: torch.Tensor):
    """(log p, log(1-p)) for binary logits; (log_softmax, None) for k-class."""
    if z.ndim == 1:
        return F.logsigmoid(z), F.logsigmoid(-z)
    # logits further apart than the dtype's range overflow log_softmax to -inf (0 * -inf = NaN
    # downstream); a quarter of the range keeps every weighted sum of log-probabilities finite
    return F.log_softmax(z, dim=1).clamp_min(-torch.finfo(z.dtype).max / 4), None


def _log_weak(y: torch.Tensor, eps: float):
    """``(log yc, log(1 - yc))`` with ``yc`` = ``y`` clipped into ``[eps, 1 - eps]``; exact in any dtype.

    Binary ``(n,)``: with ``s = min(y, 1 - y)`` (exact: ``1 - y`` is exact for ``y >= 1/2``)
    clipped below at ``eps``, the pair is ``(log s, log1p(-s))`` or its swap. ``1 - eps`` is never
    formed (in float32 it is ``1 - 1.013e-6``), so ``y`` and ``1 - y`` get bitwise swapped
    pairs and the symmetric identity of reverse CE holds to round-off. k-class ``(n, k)``:
    ``log y`` clipped into ``[log eps, log1p(-eps)]`` (second item ``None``). Clipped entries
    get a zero gradient (never ``0 * inf``).
    """
    if y.ndim == 2:
        return torch.log(y.clamp_min(eps)).clamp_max(math.log1p(-eps)), None
    s = torch.minimum(y, 1 - y).clamp_min(eps)
    ls, lb = torch.log(s), torch.log1p(-s)
    lb = torch.where(s == 0.5, ls, lb)           # y = 1/2: the two logs bitwise equal
    low = y <= 0.5
    return torch.where(low, ls, lb), torch.where(low, lb, ls)


# ----------------------------------------------------------------------------- losses
def forward_ce(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Forward cross-entropy :math:`CE(y, p) = -\sum_i y_i \log p_i` (standard W2SG loss).

    Binary: ``-[y log p + (1-y) log(1-p)]``, gradient in ``z``: ``p - y``.

    Args:
        student_logits: ``(n,)`` binary logits or ``(n, k)`` logits.
        weak_probs: same shape; weak probabilities (binary: P(class 1)).
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (shape ``(n,)``).
        eps: unused here (no log of ``y``); accepted for a uniform signature.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import forward_ce
        >>> round(forward_ce(torch.tensor([0.0]), torch.tensor([1.0])).item(), 6)  # log 2
        0.693147
    """
    z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = _log_student(z)
    if lq is not None:
        per = -(y * lp + (1 - y) * lq)
    else:
        per = -(y * lp).sum(dim=1)
    return _reduce(per, reduction)


def forward_kl(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Forward KL :math:`KL(y \| p) = \sum_i y_i \log(y_i / p_i)`.

    Equals `forward_ce` minus the weak labels' entropy (a constant in the
    student), so it has the same gradient ``p - y`` (binary) and the same minimiser.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``. eps: accepted, unused.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import forward_kl
        >>> round(forward_kl(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
    """
    z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = _log_student(z)
    if lq is not None:
        per = torch.xlogy(y, y) - y * lp + torch.xlogy(1 - y, 1 - y) - (1 - y) * lq
    else:
        per = (torch.xlogy(y, y) - y * lp).sum(dim=1)
    return _reduce(per, reduction)


def reverse_kl(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Reverse KL :math:`KL(p \| y) = \sum_i p_i \log(p_i / y_i)` (mode-seeking).

    Binary: ``p log(p/y) + (1-p) log((1-p)/(1-y))``, gradient in ``z``:
    ``p(1-p)(z - logit y)``. ``y`` is clipped into ``[eps, 1-eps]`` inside the log.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        eps: clipping of the weak probabilities inside ``log y``.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import reverse_kl
        >>> round(reverse_kl(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
        >>> round(reverse_kl(torch.tensor([0.0]), torch.tensor([0.25])).item(), 6)
        0.143841
    """
    z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = _log_student(z)
    ly, l1y = _log_weak(y, eps)
    if lq is not None:
        p, q = lp.exp(), lq.exp()                  # q = 1 - p without cancellation
        per = p * (lp - ly) + q * (lq - l1y)
    else:
        p = lp.exp()
        per = (p * (lp - ly)).sum(dim=1)
    return _reduce(per, reduction)


def reverse_ce(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Reverse cross-entropy :math:`CE(p, y) = -\sum_i p_i \log y_i`.

    Equals reverse KL plus the student's entropy: an extra pull towards confident
    students. Binary gradient in ``z``: ``-p(1-p) logit y``.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        eps: clipping of the weak probabilities inside ``log y``.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import reverse_ce
        >>> round(reverse_ce(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.693147
    """
    z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    ly, l1y = _log_weak(y, eps)
    if z.ndim == 1:
        # -(p ly + q l1y) written about the larger of p, q: -ly + q (ly - l1y) when p >= 1/2,
        # else -l1y - p (ly - l1y). No cancellation beyond a factor 2, p + q = 1 exactly, and for
        # y, 1 - y (swapped logs) the two products are exact negatives: the symmetric identity
        # l(p, y) + l(p, 1 - y) = -(log y + log(1 - y)) holds to the two final roundings
        p, q = torch.sigmoid(z), torch.sigmoid(-z)  # q = 1 - p without cancellation
        d = ly - l1y
        per = torch.where(z >= 0, q * d - ly, -(p * d) - l1y)
    else:
        p = torch.softmax(z, dim=1)
        per = -(p * ly).sum(dim=1)
    return _reduce(per, reduction)


# ----------------------------------------------------------------------------- confidence loss
def confidence_alpha(step: int, total_steps: int, *, alpha_max: float = 0.5,
                     warmup_frac: float = 0.1) -> float:
    r"""Linear warm-up of the confidence weight: :math:`\alpha_t = \alpha_{max}\min(1, t / (f T))`.

    Climbs linearly from 0 at ``step = 0`` to ``alpha_max`` at
    ``step = warmup_frac * total_steps`` and stays there (the public code of
    Burns et al. climbs to ``alpha_max / 10`` and then jumps; this does not).

    Args:
        step: current optimisation step, ``>= 0``.
        total_steps: total number of steps, ``>= 1``.
        alpha_max: final weight in ``[0, 1]``.
        warmup_frac: fraction of training spent warming up, in ``[0, 1]``
            (``0`` means ``alpha_max`` from the start).

    Examples:
        >>> from w2s_theory.losses import confidence_alpha
        >>> [round(confidence_alpha(t, 100), 3) for t in (0, 5, 10, 50)]
        [0.0, 0.25, 0.5, 0.5]
    """
    step = check_int(step, "step", low=0)
    total_steps = check_int(total_steps, "total_steps", low=1)
    alpha_max = check_number(alpha_max, "alpha_max", low=0.0, high=1.0)
    warmup_frac = check_number(warmup_frac, "warmup_frac", low=0.0, high=1.0)
    warm = warmup_frac * total_steps
    # A relative 1e-12 snap: warmup_frac * total_steps is rounded (0.3 * 10 > 3 in
    # float64), and the ramp must reach alpha_max exactly at the end of the warm-up.
    if warm <= 0 or step >= warm * (1.0 - 1e-12):
        return float(alpha_max)
    return float(alpha_max * (step / warm))


class BalanceThreshold:
    """Rolling buffer for the confidence loss's class-balance threshold (binary).

    The threshold is the quantile of the student's recent probabilities at level
    ``1 - mean(weak labels)``, so that hardening at it keeps the weak labels'
    class balance. A minibatch of 16 (or 1) gives a meaningless quantile; this
    buffer keeps the last ``size`` predictions and labels across minibatches.

    Args:
        size: number of recent examples kept.
        min_count: `threshold` raises until this many examples were seen.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import BalanceThreshold
        >>> buf = BalanceThreshold(size=8, min_count=4)
        >>> buf.update(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0.0, 0.0, 1.0, 1.0]))
        >>> round(buf.threshold, 3)
        0.5
    """

    def __init__(self, size: int = 512, min_count: int = 32):
        size = check_int(size, "size", low=1)
        min_count = check_int(min_count, "min_count", low=1)
        if min_count > size:
            raise ValueError(f"min_count: must be an integer in [1, size={size}], got {min_count!r}")
        self.size = size
        self.min_count = min_count
        self._p: deque[float] = deque(maxlen=size)
        self._y: deque[float] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._p)

    def update(self, student_probs, weak_probs) -> None:
        """Append a minibatch of binary student probabilities and weak labels (both ``(n,)``)."""
        p = self._as_probs(student_probs, "student_probs")
        y = self._as_probs(weak_probs, "weak_probs")
        if p.shape != y.shape:
            raise ValueError(f"weak_probs: shape {tuple(y.shape)} does not match student_probs "
                             f"shape {tuple(p.shape)}")
        self._p.extend(p.tolist())
        self._y.extend(y.tolist())

    @staticmethod
    def _as_probs(x, name: str) -> torch.Tensor:
        t = torch.from_numpy(as_float_array(x, name).astype(np.float64, copy=False))
        if t.ndim != 1 or t.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty binary batch of shape (n,), "
                             f"got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: contains NaN or inf")
        if (t < 0).any() or (t > 1).any():
            raise ValueError(f"{name}: entries must lie in [0, 1]")
        return t

    @property
    def threshold(self) -> float:
        """Quantile of buffered student probabilities at ``1 - mean(buffered weak labels)``."""
        if len(self._p) < self.min_count:
            raise ValueError(
                f"BalanceThreshold: only {len(self._p)} predictions buffered, need "
                f"min_count={self.min_count} for a meaningful class-balance threshold"
            )
        p = torch.tensor(list(self._p), dtype=torch.float64)
        q = 1.0 - sum(self._y) / len(self._y)
        return float(torch.quantile(p, q))


def confidence_loss(
    student_logits,
    weak_probs,
    *,
    alpha: float,
    threshold: float | None = None,
    base: str = "forward_ce",
    reduction: str = "mean",
    eps: float = DEFAULT_EPS,
    min_batch: int = 32,
):
    r"""Burns et al.'s auxiliary confidence loss: ``base(z, (1 - alpha) y + alpha * hard(p))``.

    ``hard(p)`` hardens the student's own (detached) prediction: binary, ``1[p > t]``
    with ``t`` the class-balance threshold (the quantile of the student's
    probabilities at level ``1 - mean(y)``); k-class, the one-hot of ``argmax p``.
    With ``base="reverse_kl"`` or ``"reverse_ce"`` this is the reverse variant.

    Args:
        student_logits: ``(n,)`` or ``(n, k)``. weak_probs: same shape.
        alpha: weight of the hardened target in ``[0, 1]`` (see `confidence_alpha`).
        threshold: binary hardening threshold; ``None`` computes it on this batch, which
            requires ``n >= min_batch`` (use `BalanceThreshold` for small batches).
            Must be ``None`` for k-class logits (hardening is the argmax there).
        base: a registered student loss (`loss_names`).
        reduction, eps: as for the base loss.
        min_batch: smallest batch for an in-batch threshold.

    Examples:
        >>> import torch
        >>> from w2s_theory.losses import confidence_loss, forward_ce
        >>> z, y = torch.tensor([2.0, -1.0]), torch.tensor([0.7, 0.4])
        >>> bool(confidence_loss(z, y, alpha=0.0, threshold=0.5) == forward_ce(z, y))
        True
    """
    zc, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    check_choice(base, "base", tuple(REGISTRY))
    min_batch = check_int(min_batch, "min_batch", low=1)
    z = zc.detach()
    if z.ndim == 2 and threshold is not None:
        raise ValueError("threshold: only for binary logits of shape (n,); k-class hardening "
                         "is the argmax of the student's prediction")
    if z.ndim == 1:
        p = torch.sigmoid(z)
        if threshold is None:
            if z.shape[0] < min_batch:
                raise ValueError(
                    f"threshold: None needs a batch of at least min_batch={min_batch} to estimate "
                    f"the class-balance quantile, got {z.shape[0]}; pass "
                    f"threshold=BalanceThreshold(...).threshold"
                )
            threshold = float(torch.quantile(p.double(), 1.0 - float(y.double().mean())))
        threshold = check_number(threshold, "threshold", low=0.0, high=1.0)
        hard = (p > threshold).to(y.dtype)
    else:
        hard = F.one_hot(z.argmax(dim=1), z.shape[1]).to(y.dtype)
    target = (1.0 - alpha) * y + alpha * hard
    with value_checks(False):    # y was checked above; the mix may round a row sum by an ulp
        return REGISTRY[base].fn(zc, target, reduction=reduction, eps=eps)


# ----------------------------------------------------------------------------- closed-form gradients
def _softmax_chain(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """d/dz of a function of p = softmax(z) with dL/dp = g: ``p * (g - sum_i p_i g_i)``."""
    return p * (g - (p * g).sum(dim=1, keepdim=True))


def _pair(z: torch.Tensor, y: torch.Tensor):
    """(p, y) as (n, k) distributions; binary logits become two classes."""
    if z.ndim == 1:
        p = torch.sigmoid(z)
        return torch.stack([1 - p, p], dim=1), torch.stack([1 - y, y], dim=1)
    return torch.softmax(z, dim=1), y


def _unpair(z: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """Gradient in the (n, k) logits -> in the binary logit (class 1's component)."""
    return g2[:, 1] if z.ndim == 1 else g2


def _grad_forward(z, y, eps=DEFAULT_EPS):
    """Forward KL / CE: ``p - y`` (per example, in the logits)."""
    p, y2 = _pair(z, y)
    return _unpair(z, p - y2)


def _grad_reverse_kl(z, y, eps=DEFAULT_EPS):
    """Reverse KL: ``p_j (log p_j - log y_j - KL(p || y))``; binary ``p(1-p)(z - logit y)``."""
    p, _ = _pair(z, y)
    return _unpair(z, _softmax_chain(p, torch.log(p) - _log_weak2(z, y, eps)))


def _grad_reverse_ce(z, y, eps=DEFAULT_EPS):
    """Reverse CE: ``p_j (-log y_j + sum_i p_i log y_i)``; binary ``-p(1-p) logit y``."""
    p, _ = _pair(z, y)
    return _unpair(z, _softmax_chain(p, -_log_weak2(z, y, eps)))


def _log_weak2(z, y, eps):
    """`_log_weak` as ``(n, k)`` columns (binary: ``[log(1 - yc), log yc]``)."""
    ly, l1y = _log_weak(y, eps)
    return ly if z.ndim == 2 else torch.stack([l1y, ly], 1)


# ----------------------------------------------------------------------------- f-divergences
def _check_alpha(alpha) -> float:
    return check_number(alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)


def _alpha_affinity(z: torch.Tensor, y: torch.Tensor, a: float) -> torch.Tensor:
    """``s = sum_i y_i^a p_i^(1-a)`` per example (p from the logits in log space)."""
    lp, lq = _log_student(z)
    if lq is not None:
        return y.pow(a) * torch.exp((1 - a) * lp) + (1 - y).pow(a) * torch.exp((1 - a) * lq)
    return (y.pow(a) * torch.exp((1 - a) * lp)).sum(dim=1)


def alpha_divergence(alpha: float, direction: str = "forward") -> Callable:
    r"""The alpha-divergence loss of a fixed ``alpha`` in ``(0, 1)`` and direction.

    ``forward``: :math:`D_\alpha(y \| p) = (1 - \sum_i y_i^\alpha p_i^{1-\alpha}) / (\alpha(1-\alpha))`
    (-> forward KL as alpha -> 1, reverse KL as alpha -> 0); ``reverse``: :math:`D_\alpha(p \| y)`,
    which equals the forward loss at ``1 - alpha``. Shapes as the other losses; ``eps`` unused.

    Examples:
        >>> import torch
        >>> f = alpha_divergence(0.5)
        >>> round(f(torch.tensor([0.0]), torch.tensor([1.0])).item(), 6)   # 4(1 - sqrt(1/2))
        1.171573
    """
    a = _check_alpha(alpha)
    check_choice(direction, "direction", ("forward", "reverse"))
    e = a if direction == "forward" else 1.0 - a     # exponent on y

    def loss(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
        z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
        per = (1.0 - _alpha_affinity(z, y, e)) / (a * (1.0 - a))
        return _reduce(per, reduction)

    loss.__name__ = f"alpha_{a:g}_{direction}"
    loss.__doc__ = f"alpha-divergence D_{a:g}({'y || p' if direction == 'forward' else 'p || y'})."
    return loss


def _alpha_grad(alpha: float, direction: str) -> Callable:
    """Closed form: with ``e`` the exponent on ``y`` and ``s`` the affinity,
    ``d/dz_j D = (p_j s - y_j^e p_j^(1-e)) / e`` (the forward form at ``e``)."""
    a = _check_alpha(alpha)
    e = a if direction == "forward" else 1.0 - a

    def grad(z, y, eps=DEFAULT_EPS):
        p, y2 = _pair(z, y)
        t = y2.pow(e) * p.pow(1 - e)
        s = t.sum(dim=1, keepdim=True)
        # D = (1 - s)/(a(1-a)), ds/dz_j = (1-e)(t_j - p_j s); a(1-a) = e(1-e)
        return _unpair(z, (p * s - t) / e)

    return grad


def js_divergence(student_logits, weak_probs, *, reduction: str = "mean", eps: float = DEFAULT_EPS):
    r"""Jensen-Shannon divergence :math:`\tfrac12 KL(y \| m) + \tfrac12 KL(p \| m)`, ``m = (y+p)/2``.

    Symmetric, bounded by ``log 2``; gradient in ``z``: the softmax chain of
    ``dJS/dp_i = log(2 p_i / (y_i + p_i)) / 2``. ``eps`` unused.

    Examples:
        >>> import torch
        >>> round(js_divergence(torch.tensor([0.0]), torch.tensor([0.5])).item(), 6)
        0.0
    """
    z, y = _check_inputs(student_logits, weak_probs, reduction, eps)
    lp, lq = _log_student(z)
    if lq is not None:
        lp2, y2 = torch.stack([lq, lp], dim=1), torch.stack([1 - y, y], dim=1)
    else:
        lp2, y2 = lp, y
    p2 = lp2.exp()
    lm = torch.logaddexp(torch.log(y2), lp2) - math.log(2.0)     # log m, finite where p > 0
    per = 0.5 * (torch.xlogy(y2, y2) - y2 * lm + p2 * (lp2 - lm)).sum(dim=1)
    return _reduce(per, reduction)


def _grad_js(z, y, eps=DEFAULT_EPS):
    p, y2 = _pair(z, y)
    g = 0.5 * (math.log(2.0) + torch.log(p) - torch.log(y2 + p))
    return _unpair(z, _softmax_chain(p, g))


# ----------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class LossSpec:
    """One student loss of the registry.

    Attributes:
        name: the name configs, tables and notebooks use.
        fn: ``fn(student_logits, weak_probs, *, reduction="mean", eps=DEFAULT_EPS)``.
        grad: closed-form per-example gradient in the logits, ``grad(z, y, eps)``, shape of ``z``
            (the tests check autograd against it).
        binary, kclass: whether it has the binary ``(n,)`` and the k-class ``(n, k)`` form.
        direction: ``"forward"`` (teacher first, mass-covering), ``"reverse"`` (student first,
            mode-seeking) or ``"symmetric"``.
        family: ``"kl"``, ``"ce"``, ``"alpha"`` or ``"js"``.
        alpha: the alpha of an alpha-divergence (``None`` otherwise).
    """

    name: str
    fn: Callable
    grad: Callable
    binary: bool = True
    kclass: bool = True
    direction: str = "forward"
    family: str = "kl"
    alpha: float | None = None


#: name -> `LossSpec`, in registration order (the order tables and notebooks use).
REGISTRY: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> LossSpec:
    """Add a loss to the registry (a name may be registered once)."""
    if not isinstance(spec, LossSpec):
        raise TypeError(f"spec: a LossSpec, got {type(spec).__name__}")
    if spec.name in REGISTRY:
        raise ValueError(f"name: loss {spec.name!r} is already registered")
    if spec.direction not in ("forward", "reverse", "symmetric"):
        raise ValueError(f"direction: 'forward', 'reverse' or 'symmetric', got {spec.direction!r}")
    REGISTRY[spec.name] = spec
    return spec


def _register_builtin() -> None:
    register(LossSpec("forward_kl", forward_kl, _grad_forward, direction="forward", family="kl"))
    register(LossSpec("reverse_kl", reverse_kl, _grad_reverse_kl, direction="reverse", family="kl"))
    register(LossSpec("forward_ce", forward_ce, _grad_forward, direction="forward", family="ce"))
    register(LossSpec("reverse_ce", reverse_ce, _grad_reverse_ce, direction="reverse", family="ce"))
    for a in (0.25, 0.5):
        dirs = ("forward",) if a == 0.5 else ("forward", "reverse")
        for d in dirs:
            name = "alpha_0.5" if a == 0.5 else f"alpha_{a:g}_{d}"
            register(LossSpec(name, alpha_divergence(a, d), _alpha_grad(a, d),
                              direction="symmetric" if a == 0.5 else d, family="alpha", alpha=a))
    register(LossSpec("js", js_divergence, _grad_js, direction="symmetric", family="js"))


_register_builtin()

#: The four losses of arXiv:2502.11107 (the paper's comparison; tables and figures default to them).
PAPER_LOSSES = ("forward_kl", "reverse_kl", "forward_ce", "reverse_ce")


def loss_names(*, family: str | None = None) -> tuple[str, ...]:
    """Every registered student loss name (optionally of one ``family``), in registry order.

    Examples:
        >>> loss_names()[:4]
        ('forward_kl', 'reverse_kl', 'forward_ce', 'reverse_ce')
        >>> loss_names(family="alpha")
        ('alpha_0.25_forward', 'alpha_0.25_reverse', 'alpha_0.5')
    """
    if family is not None:
        check_choice(family, "family", tuple(dict.fromkeys(s.family for s in REGISTRY.values())))
    return tuple(n for n, s in REGISTRY.items() if family is None or s.family == family)


def ordered(names) -> list[str]:
    """Registered names among ``names`` in display order: forward, then reverse, then symmetric
    losses, registry order within each (tables and figures list losses this way).

    Examples:
        >>> ordered({"reverse_ce", "forward_kl", "js", "reverse_kl", "forward_ce"})
        ['forward_kl', 'forward_ce', 'reverse_kl', 'reverse_ce', 'js']
    """
    rank = {"forward": 0, "reverse": 1, "symmetric": 2}
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise TypeError(f"names: an iterable of loss names, got {type(names).__name__}")
    names = set(names)
    if any(not isinstance(n, str) for n in names):
        raise TypeError("names: every entry must be a loss name (str)")
    return sorted((n for n in REGISTRY if n in names),
                  key=lambda n: (rank[REGISTRY[n].direction], list(REGISTRY).index(n)))


def check_loss_name(name: str, what: str = "loss") -> str:
    """``name`` if it is a registered student loss, else a ``ValueError`` listing the names."""
    if not isinstance(name, str):
        raise TypeError(f"{what}: a loss name (str), got {type(name).__name__}; choose from "
                        f"{loss_names()}")
    if name not in REGISTRY:
        raise ValueError(f"{what}: unknown loss {name!r}; choose from {loss_names()}")
    return name


def loss_spec(name: str) -> LossSpec:
    """The registry entry of a student loss."""
    return REGISTRY[check_loss_name(name, "name")]


#: Names accepted by `get_loss` (the registry's, plus ``confidence``); a snapshot taken
#: at import; `loss_names` is always current.
LOSS_NAMES = loss_names() + ("confidence",)


def get_loss(name: str) -> Callable:
    """Return a loss function by name: a registered student loss or ``confidence``.

    Args:
        name: a name of `loss_names` or ``confidence`` (alias ``confidence_loss``).

    Examples:
        >>> from w2s_theory.losses import get_loss, reverse_kl
        >>> get_loss("reverse_kl") is reverse_kl
        True
    """
    if not isinstance(name, str):
        raise TypeError(f"name: a loss name (str), got {type(name).__name__}; choose one of "
                        f"{list(loss_names()) + ['confidence']}")
    if name in REGISTRY:
        return REGISTRY[name].fn
    if name in ("confidence", "confidence_loss"):
        return confidence_loss
    raise ValueError(f"name: unknown loss {name!r}; choose one of {list(loss_names()) + ['confidence']}")
