"""The binary fast paths' machinery: blocks of rows in cache, fixed segments per thread.

Shared by `lemma1` and `theorem2` (a private module of the package: its names are the
package's own).
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from .._validation import as_prob_array, check_probs, check_same_shape

#: Rows per block of the binary fast paths: the block's scratch arrays (6 x 64 KiB)
#: stay in the CPU's L2 cache, so the fused passes run at cache speed, not memory speed.
#: Below 10^4 also because OpenBLAS hands longer dot products to its own threads, whose
#: wake-up costs more than the product (10x slower overall on a busy machine).
BLOCK = 1 << 13
#: Rows per segment: the unit of work of one thread; fixed, so results do not depend
#: on the thread count.
SEGMENT = 8 * BLOCK
#: Default thread count of the binary fast paths (``W2S_THEORY_THREADS`` overrides). One:
#: on a shared 2-core machine a second thread measured no faster (the other core is
#: rarely free), and results do not depend on it anyway.
DEFAULT_THREADS = 1
TLS = threading.local()


def three(f_star, f_weak, f_strong, *, values: bool = True):
    """Convert and check the three predictor arrays (values too, unless ``values=False``)."""
    def conv(x, name):
        return check_probs(x, name, renormalize=True) if values else as_prob_array(x, name)

    fs = conv(f_star, "f_star")
    fw = conv(f_weak, "f_weak")
    fsw = conv(f_strong, "f_strong")
    check_same_shape(f_star=fs, f_weak=fw, f_strong=fsw)
    return fs, fw, fsw


def threads() -> int:
    """Worker threads for the binary fast paths: ``W2S_THEORY_THREADS`` (default 1)."""
    env = os.environ.get("W2S_THEORY_THREADS", "").strip()
    if not env:
        return DEFAULT_THREADS
    try:
        v = int(env)
    except ValueError:
        v = 0
    if v < 1:
        raise ValueError(f"W2S_THEORY_THREADS: must be an integer >= 1, got {env!r}")
    return v


def scratch() -> np.ndarray:
    """This thread's scratch block: rows 0-4 are work arrays, row 5 holds ones (sums as dots)."""
    buf = getattr(TLS, "buf", None)
    if buf is None:
        buf = TLS.buf = np.empty((6, BLOCK))
        buf[5] = 1.0
    return buf


def segment_sums(kernel, arrays, n: int, *args):
    """Run ``kernel(*arrays, start, stop, *args)`` on fixed segments of the rows; combine in order.

    Segments are ``SEGMENT`` rows long whatever the thread count, and their partial sums
    are added in segment order, so the result is bit-for-bit the same with 1 or 8 threads.
    Returns the summed tuple, or ``None`` if a segment reported invalid values.
    """
    bounds_ = [(i, min(i + SEGMENT, n)) for i in range(0, n, SEGMENT)]
    out: list = [None] * len(bounds_)
    workers = min(threads(), len(bounds_))

    def work(ids):
        for s in ids:
            out[s] = kernel(*arrays, *bounds_[s], *args)

    if workers <= 1:
        work(range(len(bounds_)))
    else:
        errors: list = []

        def run(ids):
            try:
                work(ids)
            except BaseException as exc:  # pragma: no cover - re-raised below
                errors.append(exc)

        helpers = [threading.Thread(target=run, args=(range(w, len(bounds_), workers),), daemon=True)
                   for w in range(1, workers)]
        for t in helpers:
            t.start()
        run(range(0, len(bounds_), workers))
        for t in helpers:
            t.join()
        if errors:  # pragma: no cover
            raise errors[0]
    if any(r is None for r in out):
        return None
    return tuple(math.fsum(col) for col in zip(*out))


def binary_blocks(fs, fw, fsw, start: int, stop: int):
    """The blocks of rows ``start:stop`` of three binary arrays, with this thread's scratch views.

    Yields ``(f, w, s, views)``: the block's slices of ``F*_1``, ``F_w,1`` and ``F_sw,1``, and
    the six scratch rows cut to the block's length, of which ``views[0] = F_w,0 = 1 - w`` and
    ``views[1] = F_sw,0 = 1 - s`` are filled, ``views[2:5]`` are free work arrays and
    ``views[5]`` holds ones (sums as dot products).
    """
    buf = scratch()
    full = tuple(buf)                                  # views reused by every full block
    for i in range(start, stop, BLOCK):
        j = min(i + BLOCK, stop)
        views = full if j - i == BLOCK else tuple(buf[:, : j - i])
        w, s = fw[i:j], fsw[i:j]
        np.subtract(1.0, w, out=views[0])              # F_w,0
        np.subtract(1.0, s, out=views[1])              # F_sw,0
        yield fs[i:j], w, s, views


def sums_or_checked(kernel, fs, fw, fsw, check, *args):
    """``(sums, arrays)``: the kernel's sums over binary rows (`segment_sums`), or ``None`` and
    the three arrays fully validated (`three`, then ``check(name, array)`` on ``f_weak`` and
    ``f_strong``), for k-class input or when the fast path found a bad value (the full
    validation then raises the precise error).
    """
    sums = segment_sums(kernel, (fs, fw, fsw), fs.shape[0], *args) if fs.ndim == 1 else None
    if sums is not None:
        return sums, (fs, fw, fsw)
    fs, fw, fsw = three(fs, fw, fsw)
    for name, a in (("f_weak", fw), ("f_strong", fsw)):
        check(name, a)
    if fs.ndim == 1:  # pragma: no cover - the fast path failed but full validation passed
        raise ValueError("f_star, f_weak, f_strong: invalid values")
    return None, (fs, fw, fsw)


def log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(a / b)`` entry by entry, as ``log a - log b`` (in place on the first log)."""
    out = np.log(a)
    out -= np.log(b)
    return out
