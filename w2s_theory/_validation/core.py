"""The shared pieces of the validation core: the kind errors, short descriptions of bad
values, and tensors recognised without importing torch."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

#: Absolute tolerance on ``|sum(row) - 1|`` for 2-D probability arrays.
ROW_SUM_ATOL = 1e-6

NUMERIC_KINDS = "biuf"
KIND_NAMES = {"O": "object", "U": "str", "S": "bytes", "c": "complex", "M": "datetime",
               "m": "timedelta", "V": "void (structured)"}


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong kind (a ``TypeError``; also a ``ValueError`` for old callers)."""

    __module__ = "w2s_theory._validation"      # its public name (tracebacks, doctests)



def describe(x: Any) -> str:
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


def is_tensor(x) -> bool:
    T = _torch_tensor_type()
    return T is not None and isinstance(x, T)
