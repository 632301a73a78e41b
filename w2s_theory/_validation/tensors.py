"""Torch tensor arguments of the losses (checked in place, never converted to numpy)."""

from __future__ import annotations

from typing import Any

from .arrays import as_float_array
from .core import ArgumentTypeError


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
