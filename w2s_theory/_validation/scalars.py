"""Scalar arguments: numbers with ranges, integers, broadcastable arrays of numbers, the floor
``gamma`` and random generators."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import numpy as np

from .arrays import as_float_array
from .core import ArgumentTypeError, describe, is_tensor, tensor_to_numpy


# ----------------------------------------------------------------------------- scalars
def _scalar_value(x: Any, name: str, what: str):
    """Unwrap 0-d arrays / tensors / numpy scalars to a Python number; reject other kinds."""
    if isinstance(x, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name}: must be {what}, got the boolean {x!r}")
    if isinstance(x, (str, bytes)):
        raise ArgumentTypeError(f"{name}: must be {what}, got the string {x!r:.40} "
                                f"(convert it explicitly, e.g. float({x!r:.20}))")
    if x is None:
        raise ArgumentTypeError(f"{name}: must be {what}, got None")
    if is_tensor(x) or isinstance(x, np.ndarray):
        if x.ndim != 0:
            raise ArgumentTypeError(f"{name}: must be {what}, got an array of shape "
                                    f"{tuple(x.shape)} (pass a single number)")
        arr = tensor_to_numpy(x, name) if is_tensor(x) else x
        if arr.dtype.kind == "b":
            raise ArgumentTypeError(f"{name}: must be {what}, got a boolean 0-d array")
        if arr.dtype.kind not in "iuf":
            raise ArgumentTypeError(f"{name}: must be {what}, got a 0-d array of dtype {arr.dtype}")
        return arr.item()
    if isinstance(x, numbers.Real):
        return x
    if isinstance(x, numbers.Complex):
        raise ArgumentTypeError(f"{name}: must be {what}, got the complex number {x!r}")
    raise ArgumentTypeError(f"{name}: must be {what}, got {describe(x)}")


def check_number(x: Any, name: str, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False,
                 allow_inf: bool = False) -> float:
    """Return ``x`` as a Python float in the given range, or raise naming ``name``.

    Accepts ``int``, ``float``, numpy integer/float scalars, 0-d numpy arrays and 0-d
    tensors; rejects strings, booleans, ``None``, complex numbers and non-0-d arrays
    (`ArgumentTypeError`), NaN, infinities (unless ``allow_inf``) and values
    outside ``[low, high]`` (``(`` / ``)`` with ``low_open`` / ``high_open``) with
    ``ValueError``.

    Examples:
        >>> check_number(np.float32(0.5), "alpha", low=0.0, high=1.0)
        0.5
        >>> check_number("0.5", "alpha")
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: alpha: must be a number, got the string '0.5' (convert it explicitly, e.g. float('0.5'))
    """
    v = _scalar_value(x, name, "a number")
    try:
        v = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ArgumentTypeError(f"{name}: must be a number, got {describe(x)}") from None
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    if v < low or (low_open and v == low) or v > high or (high_open and v == high):
        lb = "(" if low_open else "["
        rb = ")" if high_open else "]"
        raise ValueError(f"{name}: must lie in {lb}{low:g}, {high:g}{rb}, got {x!r}")
    return v


def check_scalar(x: Any, name: str, *, low: float = -math.inf, low_open: bool = False,
                 high: float = math.inf) -> float:
    """Finite float in ``[low, high]`` (``(low, ...`` with ``low_open``): `check_number`."""
    return check_number(x, name, low=low, high=high, low_open=low_open)


def is_array_like(x: Any) -> bool:
    """True for what the broadcasting calculators treat as an array: lists, tuples, and numpy
    arrays or tensors of one dimension or more (0-d ones are numbers)."""
    if isinstance(x, (list, tuple)):
        return True
    if isinstance(x, np.ndarray) or is_tensor(x):
        return x.ndim > 0
    return False


def _range_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_numbers(x: Any, name: str, *, low: float = -math.inf, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> float | np.ndarray:
    """A number or an array of numbers in a range: the broadcasting form of `check_number`.

    A number (Python or numpy scalar, 0-d array or tensor) goes through
    `check_number` and comes back as a Python ``float``. A list, tuple, numpy array
    or CPU tensor of one dimension or more comes back as a float64 array (converted by
    `as_float_array`, booleans refused) whose every entry is finite and in the range;
    the message of a bad entry names the argument and the entry's index.

    Examples:
        >>> check_numbers(0.5, "gamma", low=0.0)
        0.5
        >>> check_numbers([0.1, 0.2], "gamma", low=0.0)
        array([0.1, 0.2])
        >>> check_numbers([0.1, -0.2], "gamma", low=0.0)
        Traceback (most recent call last):
        ...
        ValueError: gamma: must lie in [0, inf], got -0.2 at index (1,)
    """
    if not is_array_like(x):
        return check_number(x, name, low=low, high=high, low_open=low_open, high_open=high_open)
    arr = as_float_array(x, name, allow_bool=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"{name}: must be finite, got {float(arr[i])!r} at index {i}")
    out = (arr < low) | (arr > high)
    if low_open:
        out |= arr == low
    if high_open:
        out |= arr == high
    if out.any():
        i = tuple(int(j) for j in np.argwhere(out)[0])
        raise ValueError(f"{name}: must lie in {_range_text(low, high, low_open, high_open)}, "
                         f"got {float(arr[i])!r} at index {i}")
    return arr


def check_broadcast(**values: Any) -> tuple[int, ...]:
    """The broadcast shape of the named numbers/arrays, or ``ValueError`` naming the first misfit.

    Examples:
        >>> check_broadcast(risk_weak=0.3, gamma=np.zeros(3))
        (3,)
        >>> check_broadcast(risk_weak=np.zeros(2), gamma=np.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: gamma: shape (3,) does not broadcast with the shape (2,) of risk_weak
    """
    shape: tuple[int, ...] = ()
    seen: list[str] = []
    for name, v in values.items():
        s = np.shape(v)
        try:
            shape = np.broadcast_shapes(shape, s)
        except ValueError:
            raise ValueError(f"{name}: shape {s} does not broadcast with the shape {shape} of "
                             f"{', '.join(seen)}") from None
        if s:
            seen.append(name)
    return shape


def check_int(x: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``x`` as a Python int in ``[low, high]``, or raise naming ``name``.

    Accepts ``int``, numpy integers, 0-d integer arrays and tensors; rejects booleans,
    floats (also integral ones such as ``3.0``: a count is not a float), strings and
    ``None`` (`ArgumentTypeError`), and out-of-range values (``ValueError``).

    Examples:
        >>> check_int(np.int64(3), "n", low=1)
        3
        >>> check_int(True, "n", low=1)
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: n: must be an integer, got the boolean True
    """
    v = _scalar_value(x, name, "an integer")
    try:
        v = operator.index(v)
    except TypeError:
        raise ArgumentTypeError(f"{name}: must be an integer, got {describe(x)}") from None
    if (low is not None and v < low) or (high is not None and v > high):
        rng = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name}: must be an integer in {rng}, got {x!r}")
    return int(v)


def check_gamma(gamma: Any, k: int, name: str = "gamma") -> float:
    """Return ``gamma`` as a float in ``(0, 1/k]``, or raise ``ValueError``."""
    g = _scalar_value(gamma, name, "a number")
    try:
        g = float(g)
    except (TypeError, ValueError, OverflowError):
        raise ArgumentTypeError(f"{name}: must be a number, got {describe(gamma)}") from None
    if not math.isfinite(g) or g <= 0.0 or g > 1.0 / k:
        raise ValueError(f"{name}: must lie in (0, 1/k] = (0, {1.0 / k:g}] for k={k}, got {gamma!r}")
    return g


def check_gammas(gamma: Any, k: int, name: str = "gamma") -> float | np.ndarray:
    """`check_gamma` for a number, or an array of floors each in ``(0, 1/k]``.

    Examples:
        >>> check_gammas([0.1, 0.5], 2)
        array([0.1, 0.5])
        >>> check_gammas([0.1, 0.6], 2)
        Traceback (most recent call last):
        ...
        ValueError: gamma: must lie in (0, 1/k] = (0, 0.5] for k=2, got 0.6 at index (1,)
    """
    if not is_array_like(gamma):
        return check_gamma(gamma, k, name)
    arr = as_float_array(gamma, name, allow_bool=False)
    bad = ~(np.isfinite(arr) & (arr > 0.0) & (arr <= 1.0 / k))
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"{name}: must lie in (0, 1/k] = (0, {1.0 / k:g}] for k={k}, "
                         f"got {float(arr[i])!r} at index {i}")
    return arr


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for a seed or generator, or raise naming ``name``.

    Accepts a ``numpy.random.Generator`` (returned as is, so its stream continues), a
    non-negative integer seed (Python or numpy, not bool), a ``numpy.random.SeedSequence``
    or a ``numpy.random.BitGenerator``. Rejects ``None`` (an unseeded run cannot be
    reproduced), negative seeds, floats, strings, lists and the legacy ``RandomState``.

    Examples:
        >>> int(check_rng(0, "rng").integers(10)) == int(np.random.default_rng(0).integers(10))
        True
        >>> check_rng(-1, "rng")
        Traceback (most recent call last):
        ...
        ValueError: rng: a seed must be a non-negative integer, got -1
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.RandomState):
        raise ArgumentTypeError(f"{name}: the legacy numpy.random.RandomState is not supported; "
                                f"pass a seed or numpy.random.default_rng(seed)")
    if rng is None:
        raise ArgumentTypeError(f"{name}: must be a seed (integer >= 0) or a "
                                f"numpy.random.Generator, got None (an unseeded run cannot be "
                                f"reproduced; pass a seed)")
    try:
        seed = check_int(rng, name)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"{name}: must be a seed (integer >= 0) or a "
                                f"numpy.random.Generator, got {describe(rng)}") from None
    if seed < 0:
        raise ValueError(f"{name}: a seed must be a non-negative integer, got {rng!r}")
    return np.random.default_rng(seed)
