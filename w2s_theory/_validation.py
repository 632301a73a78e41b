"""One place that checks user input and says what is wrong.

Every public function of `w2s_theory` routes its arguments through these
helpers (modelled on scikit-learn's ``utils/validation.py``), so the error messages
are uniform: they start with the argument's name and say what is wrong
(``ValueError: f_weak: row 3 sums to 0.9, not 1 (tolerance 1e-06); ...``).

Errors
------
* `ArgumentTypeError` (a subclass of both ``TypeError`` and ``ValueError``, so
  callers that catch either keep working) for an argument of the wrong *kind*: a string
  or a boolean where a number is expected, an object or string array, a tensor without
  data (``meta``) or on an accelerator.
* ``ValueError`` for a value of the right kind outside its domain.

Arrays
------
`as_float_array` is the one conversion of array-likes to float64 numpy arrays:

* numpy arrays, lists, tuples and anything ``np.asarray`` reads, of a numeric dtype
  (bool, int, unsigned, float); object, string, bytes, complex, datetime and void
  dtypes are rejected (``np.asarray(["0.5"], dtype=float)`` would parse the strings);
* torch tensors: ``requires_grad`` tensors are detached (the theory code never
  back-propagates), CPU tensors are read without a copy where possible; tensors on
  another device (``cuda``, ``mps``, ...) are rejected with the fix (``x.cpu()``), and
  ``meta`` tensors (no data) are rejected. ``torch`` is never imported here: a tensor is
  recognised only if the caller's process already imported torch.

Probability arrays
------------------
* A probability array is either 2-D, shape ``(n, k)`` with rows in the simplex,
  or 1-D, shape ``(n,)``, the binary shorthand ``P(class 1)``.
* Rows must sum to 1 within `ROW_SUM_ATOL` (absolute, per row): ``1e-6``, loose
  enough for rows normalised in float32 or printed to 7 digits, tight enough that a row
  with a dropped or duplicated class (off by at least one probability) is rejected.
  Entries must be ``>= 0``; a k-class entry may exceed 1 by at most the same tolerance
  (``[0, 1 + 5e-7]`` is a row within it), a binary ``P(class 1)`` must lie in ``[0, 1]``.
* **One tolerance, consistent results.** The divergences and bounds call
  `check_probs` with ``renormalize=True``: a row accepted within the tolerance is
  divided by its float64 sum at this boundary, so every later computation sees rows that
  sum to 1 up to float64 round-off, and the identities (``KL >= 0``, ``TV <= 1``,
  Pinsker, ``CE = KL + H``, Lemma 1's chain) hold on them as on exact distributions.
  The caller's array is never modified (a copy is renormalised). Metrics and label noise
  use the rows as given (``renormalize=False``: argmax ties must not move).
* Arrays are converted to float64 for the numpy theory code.

Scalars
-------
`check_number` accepts Python and numpy reals (``int``, ``float``, ``np.float32``,
``np.int64``, ...), 0-d numpy arrays and 0-d tensors, and rejects strings (``'0.01'``),
booleans (``True`` is not a probability), ``None``, complex numbers and arrays of size
other than one (0-d). `check_int` does the same for integers (``3.0`` is rejected:
a count is not a float), `check_rng` for seeds and generators, `check_choice`
for string options. For torch code that stays on its device, `check_float_tensor`
and `as_tensor_like` apply the same rules to tensors (``torch`` is imported only
when they are called).

Numbers or arrays
-----------------
The bound calculators broadcast: `check_numbers` and `check_gammas` take a
number (checked by `check_number` / `check_gamma`, returned as a ``float``) or
an array of them (a float64 array, every entry checked; the message names the argument and
the first bad entry's index), and `check_broadcast` names the argument whose shape
does not fit the others.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from .config import UserError

__all__ = [
    "ROW_SUM_ATOL",
    "ArgumentTypeError",
    "as_float_array",
    "as_prob_array",
    "check_probs",
    "check_same_shape",
    "check_number",
    "check_numbers",
    "check_broadcast",
    "check_scalar",
    "check_int",
    "check_gamma",
    "check_gammas",
    "check_rng",
    "check_choice",
    "check_device",
    "DeviceUnavailable",
    "check_float_tensor",
    "as_tensor_like",
    "n_classes",
    "as_categorical",
    "PathNotFound",
    "check_str",
    "check_bool",
    "check_path",
    "check_float_format",
    "check_series",
]

#: Absolute tolerance on ``|sum(row) - 1|`` for 2-D probability arrays.
ROW_SUM_ATOL = 1e-6

_NUMERIC_KINDS = "biuf"
_KIND_NAMES = {"O": "object", "U": "str", "S": "bytes", "c": "complex", "M": "datetime",
               "m": "timedelta", "V": "void (structured)"}


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a ``TypeError``; also a ``ValueError`` for old callers)."""


class DeviceUnavailable(UserError, ValueError):
    """A device that this machine does not have (``cuda`` without CUDA, ``mps`` off a Mac)."""


def _describe(x: Any) -> str:
    """Short description of a value for error messages (no huge reprs)."""
    r = repr(x)
    if len(r) > 60:
        r = r[:57] + "..."
    return f"{r} ({type(x).__name__})"


# ----------------------------------------------------------------------------- tensors
def _torch_tensor_type():
    """``torch.Tensor`` if torch is already imported, else ``None`` (never imports torch)."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None) if torch is not None else None


def tensor_to_numpy(x, name: str) -> np.ndarray:
    dev = x.device.type
    if dev == "meta":
        raise ArgumentTypeError(f"{name}: is a tensor on the 'meta' device, which holds no data; "
                                f"pass a tensor with values (on the CPU)")
    if dev != "cpu":
        raise ArgumentTypeError(f"{name}: is a tensor on device '{x.device}'; the numpy theory "
                                f"code runs on the CPU: pass {name}.detach().cpu()")
    if x.is_complex():
        raise ArgumentTypeError(f"{name}: complex tensor ({x.dtype}); expected real numbers")
    t = x.detach()
    if t.dtype.is_floating_point and t.dtype not in _numpy_float_dtypes():
        t = t.double()                                 # bfloat16 has no numpy dtype
    return t.resolve_conj().resolve_neg().numpy()


def _numpy_float_dtypes():
    import torch  # already imported: we only get here with a tensor

    return (torch.float16, torch.float32, torch.float64)


def _is_tensor(x) -> bool:
    T = _torch_tensor_type()
    return T is not None and isinstance(x, T)


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
    if _is_tensor(x):
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
    if kind not in _NUMERIC_KINDS:
        what = _KIND_NAMES.get(kind, str(arr.dtype))
        if kind == "O":
            bad = next((v for v in arr.reshape(-1)
                        if not (isinstance(v, numbers.Real) and not isinstance(v, bool))), None)
            detail = f" (e.g. {_describe(bad)})" if bad is not None else ""
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
    if _is_tensor(x) or isinstance(x, np.ndarray):
        if x.ndim != 0:
            raise ArgumentTypeError(f"{name}: must be {what}, got an array of shape "
                                    f"{tuple(x.shape)} (pass a single number)")
        arr = tensor_to_numpy(x, name) if _is_tensor(x) else x
        if arr.dtype.kind == "b":
            raise ArgumentTypeError(f"{name}: must be {what}, got a boolean 0-d array")
        if arr.dtype.kind not in "iuf":
            raise ArgumentTypeError(f"{name}: must be {what}, got a 0-d array of dtype {arr.dtype}")
        return arr.item()
    if isinstance(x, numbers.Real):
        return x
    if isinstance(x, numbers.Complex):
        raise ArgumentTypeError(f"{name}: must be {what}, got the complex number {x!r}")
    raise ArgumentTypeError(f"{name}: must be {what}, got {_describe(x)}")


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
        raise ArgumentTypeError(f"{name}: must be a number, got {_describe(x)}") from None
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


def _is_array_like(x: Any) -> bool:
    """True for what the broadcasting calculators treat as an array: lists, tuples, and numpy
    arrays or tensors of one dimension or more (0-d ones are numbers)."""
    if isinstance(x, (list, tuple)):
        return True
    if isinstance(x, np.ndarray) or _is_tensor(x):
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
    if not _is_array_like(x):
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
        raise ArgumentTypeError(f"{name}: must be an integer, got {_describe(x)}") from None
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
        raise ArgumentTypeError(f"{name}: must be a number, got {_describe(gamma)}") from None
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
    if not _is_array_like(gamma):
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
                                f"numpy.random.Generator, got {_describe(rng)}") from None
    if seed < 0:
        raise ValueError(f"{name}: a seed must be a non-negative integer, got {rng!r}")
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- torch tensors
def check_float_tensor(x: Any, name: str):
    """Return ``x`` if it is a real floating-point torch tensor with data, or raise naming ``name``.

    For the torch losses, whose inputs stay on their device (no conversion to numpy):
    rejects non-tensors (lists, numpy arrays), ``meta`` tensors, complex and integer/bool
    tensors with `ArgumentTypeError`.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise ArgumentTypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.device.type == "meta":
        raise ArgumentTypeError(f"{name}: is a tensor on the 'meta' device, which holds no data")
    if x.is_complex() or not torch.is_floating_point(x):
        raise ArgumentTypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    return x


def as_tensor_like(x: Any, name: str, like):
    """Return ``x`` as a tensor of ``like``'s dtype and device, or raise naming ``name``.

    For the torch losses' targets (``weak_probs``): tensors are moved and cast (gradients
    kept); anything else goes through `as_float_array` first, so strings, ``None``,
    object/str/complex arrays, ragged lists, masked arrays and ``meta`` tensors are refused
    with a message naming ``name`` instead of failing inside torch.

    Examples:
        >>> import torch
        >>> as_tensor_like([0.2, 0.8], "weak_probs", torch.zeros(2)).dtype
        torch.float32
    """
    import torch

    if isinstance(x, torch.Tensor):
        if x.device.type == "meta":
            raise ArgumentTypeError(f"{name}: is a tensor on the 'meta' device, which holds "
                                    f"no data")
        if x.is_complex():
            raise ArgumentTypeError(f"{name}: complex tensor ({x.dtype}); expected real numbers")
        return x.to(device=like.device, dtype=like.dtype)
    arr = as_float_array(x, name)
    return torch.as_tensor(arr, dtype=like.dtype, device=like.device)


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
        raise ArgumentTypeError(f"{name}: must be a string, one of {choices}, got {_describe(x)}")
    if x not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {x!r}")
    return x


def check_device(device: Any, name: str = "device"):
    """Return ``device`` as a ``torch.device`` this machine has, or raise naming ``name``.

    ``None`` and ``"auto"`` mean CUDA when available, else the CPU. ``"cuda"`` (or
    ``"cuda:1"``) needs a CUDA build of torch that sees that GPU, ``"mps"`` Apple's Metal
    backend; otherwise `DeviceUnavailable` says what this machine has, so the
    mistake is found before any work, not as an assertion deep in torch. A string that is
    not a device (``"gpu"``) raises ``ValueError``. Imports torch (unless ``device`` is
    ``"cpu"``, which needs no check).

    Example:
        >>> str(check_device("cpu"))
        'cpu'
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str) and device == "cpu":
        import torch

        return torch.device("cpu")
    import torch

    if not isinstance(device, (str, torch.device)):
        raise ArgumentTypeError(f"{name}: must be a device name such as 'cpu', 'cuda' or 'auto', "
                                f"got {_describe(device)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name}: not a device: {device!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' "
                         f"or 'auto'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is built without CUDA" if torch.version.cuda is None
                   else "no CUDA GPU is visible")
            raise DeviceUnavailable(f"{name}: {str(device)!r} requested, but {why} (torch "
                                    f"{torch.__version__}); use --device cpu or auto")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise DeviceUnavailable(f"{name}: {str(device)!r} requested, but this machine sees "
                                    f"{n} CUDA GPU{'s' if n != 1 else ''} (cuda:0..cuda:{n - 1})")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceUnavailable(f"{name}: 'mps' requested, but Apple's Metal backend is not "
                                    f"available here; use --device cpu or auto")
    elif dev.type not in ("cpu", "meta"):
        mod = getattr(torch, dev.type, None)
        avail = getattr(mod, "is_available", None)
        if callable(avail) and not avail():
            raise DeviceUnavailable(f"{name}: {str(device)!r} requested, but it is not available "
                                    f"here; use --device cpu or auto")
    return dev


# ----------------------------------------------------------------------------- text, flags, paths
class PathNotFound(UserError, FileNotFoundError):
    """A file or folder argument that is not there (the message names the argument and path)."""


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
        raise ArgumentTypeError(f"{name}: must be a string, got {_describe(x)}")
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
    raise ArgumentTypeError(f"{name}: must be True or False, got {_describe(x)}")


def check_path(x: Any, name: str, *, must: str = "any", allow_none: bool = False):
    """Return ``x`` as a ``pathlib.Path`` (``~`` expanded), or raise naming ``name``.

    Accepts strings and ``os.PathLike`` objects (not bytes); refuses empty strings and NUL
    characters. ``must``: ``any`` (may be missing), ``dir`` (an existing folder), ``file`` (an
    existing file) or ``out`` (a file to write: not a folder, and no parent that is a file).
    A missing folder or file raises `PathNotFound` (a ``FileNotFoundError`` and a
    `w2s_theory.config.UserError`).

    Examples:
        >>> check_path("/", "root", must="dir").is_dir()
        True
        >>> check_path(5, "root")
        Traceback (most recent call last):
        ...
        w2s_theory._validation.ArgumentTypeError: root: must be a path (str or os.PathLike), got 5 (int)
    """
    import os
    from pathlib import Path

    if x is None and allow_none:
        return None
    if isinstance(x, (bytes, bytearray)) or not isinstance(x, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name}: must be a path (str or os.PathLike), got {_describe(x)}")
    s = os.fspath(x)
    if not isinstance(s, str):
        raise ArgumentTypeError(f"{name}: must be a path (str or os.PathLike), got {_describe(x)}")
    if not s:
        raise ValueError(f"{name}: must be a path, got ''")
    if "\x00" in s:
        raise ValueError(f"{name}: the path contains a NUL character: {s!r:.80}")
    p = Path(s).expanduser()
    if must == "dir":
        if not p.exists():
            raise PathNotFound(f"{name}: folder not found: {p}")
        if not p.is_dir():
            raise ValueError(f"{name}: {p} is a file, not a folder")
    elif must == "file":
        if not p.exists():
            raise PathNotFound(f"{name}: file not found: {p}")
        if p.is_dir():
            raise ValueError(f"{name}: {p} is a folder, not a file")
    elif must == "out":
        if p.is_dir():
            raise ValueError(f"{name}: {p} is a folder; give a file path")
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ValueError(f"{name}: cannot write {p}: {parent} is a file, not a folder")
                break
    elif must != "any":
        raise ValueError(f"must: 'any', 'dir', 'file' or 'out', got {must!r}")
    return p


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
    import string

    if not isinstance(x, str):
        raise ArgumentTypeError(f"{name}: must be a str.format pattern such as '{{:.4g}}', got "
                                f"{_describe(x)}")
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
    if _is_array_like(x) or isinstance(x, np.ndarray) or _is_tensor(x):
        arr = as_float_array(x, name, allow_bool=False)
    elif hasattr(x, "to_numpy") and hasattr(x, "dtype"):          # pandas Series / Index
        arr = as_float_array(x.to_numpy(), name, allow_bool=False)
    else:
        raise ArgumentTypeError(f"{name}: expected a 1-D array of numbers, got {_describe(x)}")
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
