"""One place that checks user input and says what is wrong.

Every public function of :mod:`w2s_theory` routes its arrays through these
helpers, so the error messages are uniform: they name the argument and the
problem (``ValueError: f_weak: row 3 sums to 0.9 (tolerance 1e-06)``).

Conventions
-----------
* A probability array is either 2-D, shape ``(n, k)`` with rows in the simplex,
  or 1-D, shape ``(n,)``, the binary shorthand ``P(class 1)``.
* Rows must sum to 1 within :data:`ROW_SUM_ATOL` (absolute, per row): ``1e-6``, loose
  enough for rows normalised in float32 or printed to 7 digits, tight enough that a row
  with a dropped or duplicated class (off by at least one probability) is rejected.
* Arrays are converted to float64 for the numpy theory code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Absolute tolerance on ``|sum(row) - 1|`` for 2-D probability arrays.
ROW_SUM_ATOL = 1e-6


def as_prob_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array of a probability shape, checking the shape only.

    The shape must be ``(n,)`` (binary shorthand) or ``(n, k)`` with ``n >= 1`` and
    ``k >= 2``. The *values* are not looked at: :func:`check_probs` does that. Fast
    paths that fuse the value checks into their own passes start here.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from None
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name}: expected shape (n,) for binary P(class 1) or (n, k) for k classes, "
            f"got shape {arr.shape}"
        )
    if arr.size == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name}: empty array (shape {arr.shape}); need at least one example")
    if arr.ndim == 2 and arr.shape[1] < 2:
        raise ValueError(f"{name}: need k >= 2 classes per row, got shape {arr.shape}")
    return arr


def check_probs(x: Any, name: str, *, row_sum_atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Return ``x`` as a float64 probability array, or raise ``ValueError``.

    Accepts shape ``(n,)`` (binary shorthand) or ``(n, k)`` with ``k >= 2``.
    Rejects empty arrays, NaN/inf, entries outside ``[0, 1]`` and rows whose sum
    differs from 1 by more than ``row_sum_atol`` (default :data:`ROW_SUM_ATOL`).

    Example:
        >>> check_probs([[0.5, 0.5]], "p").dtype
        dtype('float64')
        >>> check_probs([[0.5, 0.6]], "f_weak")
        Traceback (most recent call last):
        ...
        ValueError: f_weak: row 0 sums to 1.1, not 1 (tolerance 1e-06); rows must be probability distributions
    """
    arr = as_prob_array(x, name)
    # min/max are cheap single passes; NaN propagates through both.
    lo, hi = float(arr.min()), float(arr.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int(np.flatnonzero(~np.isfinite(arr.reshape(-1)))[0])
        raise ValueError(f"{name}: contains NaN or inf (first at flat index {bad})")
    if lo < 0.0:
        raise ValueError(f"{name}: negative probability {lo:.6g}; entries must lie in [0, 1]")
    if hi > 1.0:
        raise ValueError(f"{name}: probability {hi:.6g} > 1; entries must lie in [0, 1]")
    if arr.ndim == 2:
        err = np.abs(arr.sum(axis=1) - 1.0)
        if not err.max() <= row_sum_atol:
            i = int(err.argmax())
            raise ValueError(
                f"{name}: row {i} sums to {arr[i].sum():.9g}, not 1 "
                f"(tolerance {row_sum_atol:g}); rows must be probability distributions"
            )
    return arr


def check_same_shape(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless all named arrays have one shape."""
    items = list(arrays.items())
    name0, a0 = items[0]
    for name, a in items[1:]:
        if a.shape != a0.shape:
            raise ValueError(
                f"{name}: shape {a.shape} does not match {name0} shape {a0.shape}"
            )


def n_classes(p: np.ndarray) -> int:
    """Number of classes of a validated probability array (2 for the shorthand)."""
    return 2 if p.ndim == 1 else int(p.shape[1])


def check_gamma(gamma: Any, k: int, name: str = "gamma") -> float:
    """Return ``gamma`` as a float in ``(0, 1/k]``, or raise ``ValueError``."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number, got {gamma!r}") from None
    if not math.isfinite(g) or g <= 0.0 or g > 1.0 / k:
        raise ValueError(f"{name}: must lie in (0, 1/k] = (0, {1.0 / k:g}] for k={k}, got {gamma!r}")
    return g


def check_scalar(x: Any, name: str, *, low: float = -math.inf, low_open: bool = False,
                 high: float = math.inf) -> float:
    """Return ``x`` as a finite float in the given range, or raise ``ValueError``."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    if v < low or (low_open and v == low) or v > high:
        lb = "(" if low_open else "["
        raise ValueError(f"{name}: must lie in {lb}{low:g}, {high:g}], got {x!r}")
    return v


def as_categorical(p: np.ndarray) -> np.ndarray:
    """Expand the binary shorthand ``(n,)`` to ``(n, 2)``; leave ``(n, k)`` as is."""
    if p.ndim == 1:
        return np.stack([1.0 - p, p], axis=1)
    return p
