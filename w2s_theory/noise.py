"""Weak-label noise: corrupt a fraction of weak labels (numpy, seeded).

Binary soft labels ``y`` (P(class 1), shape ``(n,)``) are corrupted on a random
subset of size ``round(fraction * n)`` by ``y -> 1/2 + a (y - 1/2)``:
``a = -1`` flips (``y -> 1 - y``), ``a = 0`` erases (``y -> 1/2``), ``0 < a < 1``
shrinks towards 1/2. k-class labels (shape ``(n, k)``) get symmetric flips:
the chosen rows are permuted cyclically by a random non-zero shift, so a
one-hot row moves to a uniformly random *other* class.

Arguments are validated by `w2s_theory._validation`: ``n`` is an integer ``>= 1``
(not a bool), ``fraction`` and ``a`` are real numbers (not strings), ``rng`` is a
non-negative integer seed or a ``numpy.random.Generator`` (`check_rng`).
Labels are used as given (no renormalisation: a permuted row keeps its values).
"""

from __future__ import annotations

import numpy as np

from ._validation import as_prob_array, check_int, check_number, check_probs, check_rng

__all__ = ["corrupt_binary", "corrupt_labels", "flip_kclass", "noisy_indices"]


def noisy_indices(n: int, fraction: float, rng: np.random.Generator | int) -> np.ndarray:
    """Sorted indices of ``round(fraction * n)`` distinct rows chosen uniformly.

    Examples:
        >>> noisy_indices(10, 0.3, 0).size
        3
    """
    n = check_int(n, "n", low=1)
    f = check_number(fraction, "fraction", low=0.0, high=1.0)
    rng = check_rng(rng, "rng")
    m = int(round(f * n))
    return np.sort(rng.choice(n, size=m, replace=False))


def corrupt_binary(y, fraction: float, *, a: float = -1.0,
                   rng: np.random.Generator | int = 0) -> np.ndarray:
    r"""Corrupt a fraction of binary soft labels by :math:`y \mapsto \tfrac12 + a(y - \tfrac12)`.

    Args:
        y: shape ``(n,)``, P(class 1) in ``[0, 1]``.
        fraction: share of rows corrupted, in ``[0, 1]``.
        a: in ``[-1, 1]``; ``-1`` flips, ``0`` erases, ``1`` leaves unchanged.
        rng: seed or ``numpy.random.Generator``.

    Returns:
        a new array of shape ``(n,)``.

    Examples:
        >>> import numpy as np
        >>> corrupt_binary(np.array([0.9, 0.9, 0.9, 0.9]), 0.5, a=-1.0, rng=0).round(2)
        array([0.9, 0.9, 0.1, 0.1])
    """
    y = check_probs(y, "y")
    if y.ndim != 1:
        raise ValueError(f"y: expected binary labels of shape (n,), got {y.shape}; "
                         f"use flip_kclass for (n, k)")
    a = check_number(a, "a", low=-1.0, high=1.0)
    rng = check_rng(rng, "rng")
    idx = noisy_indices(y.shape[0], fraction, rng)
    out = y.copy()
    out[idx] = 0.5 + a * (out[idx] - 0.5)
    return out


def flip_kclass(y, fraction: float, *, rng: np.random.Generator | int = 0) -> np.ndarray:
    """Symmetric k-class flips: chosen rows are shifted cyclically by a random non-zero offset.

    Args:
        y: shape ``(n, k)``, rows in the simplex (one-hot or soft).
        fraction: share of rows flipped, in ``[0, 1]``.
        rng: seed or ``numpy.random.Generator``.

    Examples:
        >>> import numpy as np
        >>> y = np.eye(3)[[0, 1, 2, 0]]
        >>> flipped = flip_kclass(y, 1.0, rng=0)
        >>> bool((flipped.argmax(1) != y.argmax(1)).all())
        True
    """
    y = check_probs(y, "y")
    if y.ndim != 2:
        raise ValueError(f"y: expected shape (n, k), got {y.shape}; use corrupt_binary for (n,)")
    rng = check_rng(rng, "rng")
    n, k = y.shape
    idx = noisy_indices(n, fraction, rng)
    shifts = rng.integers(1, k, size=idx.size)
    out = y.copy()
    cols = np.arange(k)
    for i, s in zip(idx, shifts):
        out[i] = y[i, (cols - s) % k]
    return out


def corrupt_labels(y, fraction: float, *, a: float = -1.0,
                   rng: np.random.Generator | int = 0) -> np.ndarray:
    """Corrupt weak labels of either shape: `corrupt_binary` for ``(n,)``, `flip_kclass` for
    ``(n, k)`` (where only symmetric flips, ``a = -1``, are defined).

    Args:
        y: ``(n,)`` P(class 1) or ``(n, k)`` rows in the simplex.
        fraction: share of rows corrupted, in ``[0, 1]``.
        a: binary corruption ``y -> 1/2 + a (y - 1/2)``; must be ``-1`` for ``(n, k)``.
        rng: seed or ``numpy.random.Generator``.

    Examples:
        >>> import numpy as np
        >>> corrupt_labels(np.array([0.9, 0.9]), 1.0, rng=0).round(2).tolist()
        [0.1, 0.1]
        >>> corrupt_labels(np.eye(3)[[0, 1]], 1.0, rng=0).argmax(1).tolist() != [0, 1]
        True
    """
    arr = as_prob_array(y, "y")                # shape only; the values are checked below
    if arr.ndim == 2:
        a = check_number(a, "a", low=-1.0, high=1.0)
        if a != -1.0:
            raise ValueError(f"a: k-class labels (shape {arr.shape}) take only symmetric flips "
                             f"(a = -1), got {a!r}")
        return flip_kclass(y, fraction, rng=rng)
    return corrupt_binary(y, fraction, a=a, rng=rng)
