"""What every student loss shares: the input checks, the reduction, the clipped logs of both
sides and the softmax chain rule of the closed-form gradients (torch).

A private module of the package: its names are the loss families' own (`w2s_theory.losses`
documents the conventions).
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import torch
import torch.nn.functional as F

from .._validation import (
    ArgumentTypeError,
    as_tensor_like,
    check_choice,
    check_float_tensor,
    check_number,
)

#: Default clipping of weak probabilities inside ``log y`` (reverse losses).
DEFAULT_EPS = 1e-6



# ----------------------------------------------------------------------------- checks
#: Whether the losses run their value checks (finite, in [0, 1], rows summing to 1); see
#: `value_checks`. Dtype, shape and argument checks always run (they need no host sync).
VALUE_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("w2s_value_checks",
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
    token = VALUE_CHECKS.set(enabled)
    try:
        yield
    finally:
        VALUE_CHECKS.reset(token)


#: Row-sum tolerance of k-class weak labels by the precision they were given in (the float64
#: one is `w2s_theory._validation.ROW_SUM_ATOL`; the others cover a row rounded entry by entry).
ROW_SUM_TOL = {"float64": 1e-6, "float32": 1e-4, "float16": 2e-3, "bfloat16": 8e-3}


def compute_dtype(dtype):
    """The dtype the losses compute in for logits of ``dtype``: float64 stays, anything narrower
    (float32, bfloat16, float16) computes in float32, as ``torch.autocast`` does for its losses."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_dense(x, name: str) -> None:
    if isinstance(x, torch.Tensor) and x.layout != torch.strided:
        raise ArgumentTypeError(f"{name}: a {x.layout} tensor; the losses take dense tensors: "
                                f"pass {name}.to_dense()")


def check_inputs(student_logits, weak_probs, reduction: str, eps: float):
    """Validate, then return ``(z, y)`` in the compute dtype (at least float32, `compute_dtype`).

    ``z`` is the logits upcast (gradients flow back to the caller's dtype); ``y`` the weak labels
    in the same dtype, never rounded to the logits' narrower dtype (bfloat16 rounds 0.999 to 1).
    """
    name = "student_logits"
    check_dense(student_logits, name)
    check_float_tensor(student_logits, name)
    if student_logits.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected shape (n,) (binary logits) or (n, k), got {tuple(student_logits.shape)}"
        )
    if student_logits.shape[0] == 0:
        raise ValueError(f"{name}: empty batch")
    if student_logits.ndim == 2 and student_logits.shape[1] < 2:
        raise ValueError(f"{name}: need k >= 2 classes, got shape {tuple(student_logits.shape)}")
    check_dense(weak_probs, "weak_probs")
    cdt = compute_dtype(student_logits.dtype)
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
    if not VALUE_CHECKS.get():
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
            tol = max(ROW_SUM_TOL.get(str(given).replace("torch.", ""), 1e-4),
                      ROW_SUM_TOL[str(cdt).replace("torch.", "")])
            if (err > tol).any():
                i = int(err.argmax())
                raise ValueError(
                    f"weak_probs: row {i} sums to {float(y[i].sum()):.6g}, not 1 (tolerance {tol:g})"
                )
    return z, y


def reduce_loss(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        # divide first: a mean of finite losses is finite even where their sum overflows
        return (per_example / per_example.shape[0]).sum()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def log_student(z: torch.Tensor):
    """(log p, log(1-p)) for binary logits; (log_softmax, None) for k-class."""
    if z.ndim == 1:
        return F.logsigmoid(z), F.logsigmoid(-z)
    # logits further apart than the dtype's range overflow log_softmax to -inf (0 * -inf = NaN
    # downstream); a quarter of the range keeps every weighted sum of log-probabilities finite
    return F.log_softmax(z, dim=1).clamp_min(-torch.finfo(z.dtype).max / 4), None


def log_weak(y: torch.Tensor, eps: float):
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


# ----------------------------------------------------------------------------- closed-form gradients
def softmax_chain(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """d/dz of a function of p = softmax(z) with dL/dp = g: ``p * (g - sum_i p_i g_i)``."""
    return p * (g - (p * g).sum(dim=1, keepdim=True))


def pair(z: torch.Tensor, y: torch.Tensor):
    """(p, y) as (n, k) distributions; binary logits become two classes."""
    if z.ndim == 1:
        p = torch.sigmoid(z)
        return torch.stack([1 - p, p], dim=1), torch.stack([1 - y, y], dim=1)
    return torch.softmax(z, dim=1), y


def unpair(z: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    """Gradient in the (n, k) logits -> in the binary logit (class 1's component)."""
    return g2[:, 1] if z.ndim == 1 else g2


def grad_forward(z, y, eps=DEFAULT_EPS):
    """Forward KL / CE: ``p - y`` (per example, in the logits)."""
    p, y2 = pair(z, y)
    return unpair(z, p - y2)


def log_weak2(z, y, eps):
    """`log_weak` as ``(n, k)`` columns (binary: ``[log(1 - yc), log yc]``)."""
    ly, l1y = log_weak(y, eps)
    return ly if z.ndim == 2 else torch.stack([l1y, ly], 1)
