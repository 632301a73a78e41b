"""Where and on how many threads torch/numpy work runs: one device resolver, one thread limiter.

Small per-step kernels (linear heads, ``n x d`` with ``d`` ~ 10-1000) are far faster on one
thread than on several when the cores are shared: thread wake-up dominates (measured ~100x per
gradient on a loaded 2-core machine, and a 96 x 576 SVD took 2.7 s on two BLAS threads against
0.02 s on one). `thread_limit` pins torch's intra-op threads and, optionally, numpy's BLAS
threads (``threadpoolctl``) for the duration of a ``with`` block and restores them afterwards.
"""

from __future__ import annotations

from typing import Any

from ._validation import check_device

__all__ = ["resolve_device", "thread_limit"]


def resolve_device(device: Any = "auto"):
    """``None`` or ``"auto"`` -> CUDA when available, else CPU; anything else -> ``torch.device``.

    A device this machine does not have (``"cuda"`` without CUDA, ``"mps"`` off a Mac) raises
    `w2s_theory._validation.DeviceUnavailable` here, before any work
    (`w2s_theory._validation.check_device`).

    Examples:
        >>> resolve_device("cpu").type
        'cpu'
    """
    return check_device(device)


class thread_limit:
    """Context manager: torch (and with ``blas=True`` numpy's BLAS) on ``n`` threads, restored on exit.

    ``n=None`` leaves everything alone.

    Examples:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with thread_limit(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """

    def __init__(self, n: int | None, *, blas: bool = False):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"num_threads: must be a positive integer or None, got {n!r}")
        self.n = n
        self.blas = blas
        self._old = None
        self._ctx = None

    def __enter__(self):
        if self.n is None:
            return self
        import torch

        # read torch's count first: threadpoolctl's OpenMP limit below changes what it reports
        self._old = torch.get_num_threads()
        if self.blas:
            try:
                from threadpoolctl import threadpool_limits

                self._ctx = threadpool_limits(limits=self.n)
            except ImportError:  # pragma: no cover - optional
                self._ctx = None
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.restore_original_limits()
        if self._old is not None:
            import torch

            torch.set_num_threads(self._old)
        return False
