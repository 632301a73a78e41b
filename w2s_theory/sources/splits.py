"""The seeded split rule: disjoint train_gt / train_w2s / test index sets from one or two pools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._validation import ArgumentTypeError, check_int

__all__ = ["DEFAULT_SIZES", "split_indices", "check_sizes"]

#: The paper's split sizes (train_gt, train_w2s, test).
DEFAULT_SIZES = (4000, 4000, 4000)


def split_indices(n_train: int, n_test: int | None, sizes: Sequence[int], seed: int
                  ) -> dict[str, np.ndarray]:
    """The seeded split rule: disjoint index sets for train_gt, train_w2s and test.

    With a separate test pool (``n_test`` rows, e.g. the hub's ``test`` split) the
    train pool's permutation ``default_rng([seed, 0]).permutation(n_train)`` gives
    ``train_gt`` (its first ``sizes[0]``) and ``train_w2s`` (the next ``sizes[1]``), and
    ``default_rng([seed, 1]).permutation(n_test)[:sizes[2]]`` gives ``test``. With one
    pool (``n_test=None``) its permutation is cut into the three parts in that order.

    Raises:
        ValueError: a pool smaller than the sizes it must supply (names the split).

    Examples:
        >>> s = split_indices(10, None, (3, 3, 4), seed=0)
        >>> [len(s[k]) for k in ("train_gt", "train_w2s", "test")], len(set(np.concatenate(list(s.values()))))
        ([3, 3, 4], 10)
    """
    n_train = check_int(n_train, "n_train", low=0)
    if n_test is not None:
        n_test = check_int(n_test, "n_test", low=0)
    sizes = check_sizes(sizes)
    seed = check_int(seed, "seed", low=0)
    if n_test is None:
        if n_train < sum(sizes):
            raise ValueError(f"sizes: {sizes} need {sum(sizes)} rows, the data have {n_train}")
        p = np.random.default_rng([int(seed), 0]).permutation(n_train)
        a, b = sizes[0], sizes[0] + sizes[1]
        return {"train_gt": p[:a], "train_w2s": p[a:b], "test": p[b:b + sizes[2]]}
    if n_train < sizes[0] + sizes[1]:
        raise ValueError(f"sizes: train_gt + train_w2s = {sizes[0] + sizes[1]} rows, the train "
                         f"pool has {n_train}")
    if n_test < sizes[2]:
        raise ValueError(f"sizes: test = {sizes[2]} rows, the test pool has {n_test}")
    p = np.random.default_rng([int(seed), 0]).permutation(n_train)
    q = np.random.default_rng([int(seed), 1]).permutation(n_test)
    return {"train_gt": p[:sizes[0]], "train_w2s": p[sizes[0]:sizes[0] + sizes[1]],
            "test": q[:sizes[2]]}


def check_sizes(sizes: Any, name: str = "sizes") -> tuple[int, int, int]:
    """Three positive integers (train_gt, train_w2s, test) from a list, tuple or 1-D int array."""
    if isinstance(sizes, (str, bytes, Mapping, set, frozenset)) or sizes is None or \
            not hasattr(sizes, "__len__") or getattr(sizes, "ndim", 1) != 1:
        raise ArgumentTypeError(f"{name}: three positive integers (train_gt, train_w2s, test), "
                                f"got {sizes!r:.60}")
    if len(sizes) != 3:
        raise ValueError(f"{name}: three positive integers (train_gt, train_w2s, test), got "
                         f"{len(sizes)} values: {sizes!r:.60}")
    return tuple(check_int(v, f"{name}[{i}]", low=1) for i, v in enumerate(sizes))
