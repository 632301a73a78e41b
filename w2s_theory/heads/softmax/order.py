"""The example order of minibatch training: seeded epoch permutations and per-step slices."""

from __future__ import annotations

import numpy as np

__all__ = ["epoch_orders", "step_bounds"]


def epoch_orders(n: int, epochs: int, seed: int) -> np.ndarray:
    """The example order of ``epochs`` passes: concatenated seeded permutations, shape ``(epochs*n,)``.

    Examples:
        >>> epoch_orders(4, 2, 0).reshape(2, 4).tolist()
        [[2, 0, 1, 3], [3, 2, 1, 0]]
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])


def step_bounds(n: int, epochs: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, end)`` slices of `epoch_orders` for each step; the last batch of an
    epoch is smaller when ``batch_size`` does not divide ``n`` (batches never span epochs).

    Examples:
        >>> step_bounds(5, 2, 2)
        [(0, 2), (2, 4), (4, 5), (5, 7), (7, 9), (9, 10)]
    """
    out = []
    for e in range(epochs):
        for s in range(0, n, batch_size):
            out.append((e * n + s, e * n + min(s + batch_size, n)))
    return out
