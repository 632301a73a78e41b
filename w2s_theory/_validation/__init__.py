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

import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from .arrays import (
    as_categorical,
    as_float_array,
    as_prob_array,
    check_probs,
    check_same_shape,
    n_classes,
)
from .core import ROW_SUM_ATOL, ArgumentTypeError, describe, tensor_to_numpy  # noqa: F401
from .scalars import (
    check_broadcast,
    check_gamma,
    check_gammas,
    check_int,
    check_number,
    check_numbers,
    check_rng,
    check_scalar,
)
from .tensors import as_tensor_like, check_float_tensor
from .text import check_bool, check_choice, check_float_format, check_series, check_str

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



class DeviceUnavailable(UserError, ValueError):
    """A device that this machine does not have (``cuda`` without CUDA, ``mps`` off a Mac)."""

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
                                f"got {describe(device)}")
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

    if x is None and allow_none:
        return None
    if isinstance(x, (bytes, bytearray)) or not isinstance(x, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name}: must be a path (str or os.PathLike), got {describe(x)}")
    s = os.fspath(x)
    if not isinstance(s, str):
        raise ArgumentTypeError(f"{name}: must be a path (str or os.PathLike), got {describe(x)}")
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
