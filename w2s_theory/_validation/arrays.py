"""Array arguments: float arrays, probability arrays (binary shorthand or rows in the simplex),
shapes and the class count."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .core import (
    KIND_NAMES,
    NUMERIC_KINDS,
    ROW_SUM_ATOL,
    ArgumentTypeError,
    describe,
    is_tensor,
    tensor_to_numpy,
)


# ----------------------------------------------------------------------------- arrays
def as_float_array(x: Any, name: str, *, allow_bool: bool = True) -> np.ndarray:
    """Return ``x`` as a float64 numpy array of any shape, or raise naming ``name``.

    Accepts numeric numpy arrays, nested lists/tuples of numbers and CPU tensors
    (``requires_grad`` ones are detached); boolean arrays only with ``allow_bool``. Rejects ``None``, strings, object/string/
    complex arrays, ragged lists, ``meta`` tensors and tensors on other devices with an
    `ArgumentTypeError`. A float64 ndarray is returned as is (no copy).

    Examples:
        >>> as_float_array([1, 2], "x")
        array([1., 2.])
        >>> as_float_array(["0.5"], "x")
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: x: expected numbers, got an array of str
    """
    if type(x) is np.ndarray and x.dtype == np.float64:
        return x                                       # hot path: nothing to convert
    if x is None:
        raise ArgumentTypeError(f"{name}: expected an array of numbers, got None")
    if isinstance(x, (str, bytes)):
        raise ArgumentTypeError(f"{name}: expected an array of numbers, got a string {x!r:.40}")
    if isinstance(x, (dict, set, frozenset)):
        raise ArgumentTypeError(f"{name}: expected an array of numbers, got a {type(x).__name__}")
    if is_tensor(x):
        arr = tensor_to_numpy(x, name)
    else:
        if isinstance(x, np.ma.MaskedArray) and np.ma.getmaskarray(x).any():
            raise ValueError(f"{name}: masked array with masked entries; fill or drop them first")
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            msg = str(exc).split("\n")[0]
            raise ValueError(f"{name}: cannot be converted to a numeric array ({msg})") from None
    kind = arr.dtype.kind
    if kind not in NUMERIC_KINDS:
        what = KIND_NAMES.get(kind, str(arr.dtype))
        if kind == "O":
            bad = next((v for v in arr.reshape(-1)
                        if not (isinstance(v, numbers.Real) and not isinstance(v, bool))), None)
            detail = f" (e.g. {describe(bad)})" if bad is not None else ""
            raise ArgumentTypeError(f"{name}: expected numbers, got an array of {what}{detail}; "
                                    f"ragged or mixed lists cannot be converted")
        raise ArgumentTypeError(f"{name}: expected numbers, got an array of {what}")
    if kind == "b" and not allow_bool:
        raise ArgumentTypeError(f"{name}: expected numbers, got an array of booleans")
    return arr.astype(np.float64, copy=False)


def as_prob_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array of a probability shape, checking the shape only.

    The shape must be ``(n,)`` (binary shorthand) or ``(n, k)`` with ``n >= 1`` and
    ``k >= 2``. The *values* are not looked at: `check_probs` does that. Fast
    paths that fuse the value checks into their own passes start here.
    """
    arr = as_float_array(x, name)
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


def check_probs(x: Any, name: str, *, row_sum_atol: float = ROW_SUM_ATOL,
                renormalize: bool = False) -> np.ndarray:
    """Return ``x`` as a float64 probability array, or raise ``ValueError``.

    Accepts shape ``(n,)`` (binary shorthand) or ``(n, k)`` with ``k >= 2``.
    Rejects empty arrays, NaN/inf, entries outside ``[0, 1]`` and rows whose sum
    differs from 1 by more than ``row_sum_atol`` (default `ROW_SUM_ATOL`).
    With ``renormalize=True`` every row whose float64 sum is not exactly 1 is divided
    by it (in a copy): the results computed downstream are then those of the nearest
    distribution, consistent with the tolerance (see the module docstring).

    Examples:
        >>> check_probs([[0.5, 0.5]], "p").dtype
        dtype('float64')
        >>> float(check_probs([[0.5, 0.5 + 8e-7]], "p", renormalize=True).sum())
        1.0
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
    # A k-class row within the row-sum tolerance may hold an entry up to 1 + row_sum_atol
    # (a float32 softmax gives 1.0000001); the binary shorthand must lie in [0, 1].
    if hi > (1.0 if arr.ndim == 1 else 1.0 + row_sum_atol):
        raise ValueError(f"{name}: probability {hi!r} > 1; entries must lie in [0, 1]")
    if arr.ndim == 2:
        s = arr.sum(axis=1)
        err = np.abs(s - 1.0)
        if not err.max() <= row_sum_atol:
            i = int(err.argmax())
            raise ValueError(
                f"{name}: row {i} sums to {arr[i].sum():.9g}, not 1 "
                f"(tolerance {row_sum_atol:g}); rows must be probability distributions"
            )
        if renormalize:
            off = s != 1.0
            if off.any():                              # a new array: x is never modified
                arr = arr / np.where(off, s, 1.0)[:, None]
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


def as_categorical(p: np.ndarray) -> np.ndarray:
    """Expand the binary shorthand ``(n,)`` to ``(n, 2)``; leave ``(n, k)`` as is."""
    if p.ndim == 1:
        return np.stack([1.0 - p, p], axis=1)
    return p
