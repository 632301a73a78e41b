"""Text and flag arguments: choices, strings, booleans, float formats, and a pandas column of numbers."""

from __future__ import annotations

import math
import string
from collections.abc import Iterable
from typing import Any

import numpy as np

from .arrays import as_float_array
from .core import ArgumentTypeError, describe, is_tensor
from .scalars import is_array_like


def check_choice(x: Any, name: str, choices: Iterable[str]) -> str:
    """Return ``x`` if it is one of the strings ``choices``, or raise naming ``name``.

    Non-strings (``None``, lists, numbers) raise `ArgumentTypeError`; unknown
    strings raise ``ValueError`` listing the choices.

    Examples:
        >>> check_choice("mean", "reduction", ("mean", "sum"))
        'mean'
        >>> check_choice(["mean"], "reduction", ("mean", "sum"))
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: reduction: must be a string, one of ['mean', 'sum'], got ['mean'] (list)
    """
    choices = list(choices)
    if not isinstance(x, str):
        raise ArgumentTypeError(f"{name}: must be a string, one of {choices}, got {describe(x)}")
    if x not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {x!r}")
    return x


def check_str(x: Any, name: str, *, allow_empty: bool = False, allow_none: bool = False
              ) -> str | None:
    """Return ``x`` if it is a string (non-empty unless ``allow_empty``), or raise naming ``name``.

    ``None`` is returned as is with ``allow_none``. Bytes, numbers, lists and every other kind
    raise `ArgumentTypeError`; an empty string and one holding a NUL character raise
    ``ValueError``.

    Examples:
        >>> check_str("harmless", "name")
        'harmless'
        >>> check_str(5, "name")
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: name: must be a string, got 5 (int)
    """
    if x is None and allow_none:
        return None
    if not isinstance(x, str):
        raise ArgumentTypeError(f"{name}: must be a string, got {describe(x)}")
    if not x and not allow_empty:
        raise ValueError(f"{name}: must be a non-empty string, got ''")
    if "\x00" in x:
        raise ValueError(f"{name}: contains a NUL character: {x!r:.60}")
    return str(x)


def check_bool(x: Any, name: str) -> bool:
    """Return ``x`` as a ``bool`` if it is one (Python or numpy), or raise naming ``name``.

    ``1``, ``"true"``, ``None`` and arrays are refused (`ArgumentTypeError`): a flag given as
    a string is usually a config mistake (``"false"`` is truthy).

    Examples:
        >>> check_bool(np.bool_(True), "single_turn")
        True
        >>> check_bool("false", "single_turn")
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: single_turn: must be True or False, got 'false' (str)
    """
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise ArgumentTypeError(f"{name}: must be True or False, got {describe(x)}")


def check_float_format(x: Any, name: str = "float_format") -> str:
    """Return ``x`` if it is a ``str.format`` pattern for one float (``"{:.4g}"``), or raise.

    The pattern must hold exactly one positional replacement field (``{}`` or ``{0}``, with
    any float format spec) and format ``1.25``: ``"%.3f"`` (printf style: it would print
    literally), ``"{:d}"``, ``"{x}"`` and two fields are refused with the fix.

    Examples:
        >>> check_float_format("{:.3f}")
        '{:.3f}'
        >>> check_float_format("%.3f")
        Traceback (most recent call last):
        ...
        ValueError: float_format: '%.3f' has no replacement field; use str.format syntax such as '{:.4g}' (not printf's '%.4g')
    """

    if not isinstance(x, str):
        raise ArgumentTypeError(f"{name}: must be a str.format pattern such as '{{:.4g}}', got "
                                f"{describe(x)}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(x) if f is not None]
    except ValueError as exc:
        raise ValueError(f"{name}: {x!r} is not a str.format pattern ({exc}); use e.g. "
                         f"'{{:.4g}}'") from None
    if not fields:
        raise ValueError(f"{name}: {x!r} has no replacement field; use str.format syntax such "
                         f"as '{{:.4g}}' (not printf's '%.4g')")
    if len(fields) != 1 or fields[0] not in ("", "0"):
        raise ValueError(f"{name}: {x!r} must hold exactly one positional field ('{{}}' or "
                         f"'{{0}}' with a format spec, e.g. '{{:.4g}}')")
    try:
        x.format(1.25)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ValueError(f"{name}: {x!r} cannot format a float ({exc}); use e.g. "
                         f"'{{:.4g}}'") from None
    return x


def check_series(x: Any, name: str, *, low: float = -math.inf, high: float = math.inf
                 ) -> np.ndarray:
    """A 1-D float64 array of finite numbers in ``[low, high]`` (booleans refused), or raise.

    Examples:
        >>> check_series([0.1, 0.2], "a")
        array([0.1, 0.2])
        >>> check_series([0.1, float("nan")], "a")
        Traceback (most recent call last):
        ...
        ValueError: a: must be finite, got nan at index 1
    """
    if is_array_like(x) or isinstance(x, np.ndarray) or is_tensor(x):
        arr = as_float_array(x, name, allow_bool=False)
    elif hasattr(x, "to_numpy") and hasattr(x, "dtype"):          # pandas Series / Index
        arr = as_float_array(x.to_numpy(), name, allow_bool=False)
    else:
        raise ArgumentTypeError(f"{name}: expected a 1-D array of numbers, got {describe(x)}")
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: must be finite, got {float(arr[i])!r} at index {i}")
    out = (arr < low) | (arr > high)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{name}: must lie in [{low:g}, {high:g}], got {float(arr[i])!r} at "
                         f"index {i}")
    return arr
