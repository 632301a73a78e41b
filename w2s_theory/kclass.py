r"""Class labels as the last-layer pipeline evaluates them, for two classes or ``k``.

The real pipeline (`w2s_theory.pipelines.real`) trains a logistic head (one output,
``P(class 1)``, shape ``(n,)``) on two-class data and a softmax head with ``k`` outputs
(rows of the simplex, shape ``(n, k)``) on data with ``k > 2`` classes. These helpers give
every evaluation the same shape convention:

* `truth` -- the ground truth ``F*`` as a prediction: the labels as floats (two classes, the
  binary shorthand) or their one-hot rows (``k > 2``);
* `count_classes` -- ``k`` of a labelled data set: the largest label + 1, at least 2;
* `auroc_any` -- AUROC of either shape: `w2s_theory.metrics.auroc` on ``P(class 1)`` for two
  classes; for ``k > 2`` the macro one-vs-rest mean, ``(1/k) sum_c AUROC(1[y = c], p_c)``
  (each term the same Mann--Whitney statistic, so no new dependency), ``nan`` when a class
  is absent from ``y`` (its one-vs-rest AUROC is undefined).

Accuracy (argmax) and ECE (on the probability of the hard label, i.e. ``max_c p_c``) already
take both shapes in `w2s_theory.metrics`.

Examples:
    >>> import numpy as np
    >>> truth(np.array([0, 2, 1]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    >>> truth(np.array([0, 1]), 2).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_int, check_probs
from .metrics import auroc

__all__ = ["truth", "count_classes", "auroc_any"]


def _labels(labels, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array of class indices, got shape "
                         f"{y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise ValueError(f"{name}: class indices must be integers, got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"{name}: class indices must be >= 0, got {y.min()}")
    return y.astype(np.int64)


def count_classes(*labels) -> int:
    """``k`` of one or more label arrays: the largest label + 1 (at least 2).

    Examples:
        >>> import numpy as np
        >>> count_classes(np.array([0, 1]), np.array([2, 0])), count_classes(np.array([0, 0]))
        (3, 2)
    """
    if not labels:
        raise ValueError("labels: give at least one array of class indices")
    return max(2, max(int(_labels(y).max()) + 1 for y in labels))


def truth(labels, k: int) -> np.ndarray:
    """The ground truth as a prediction: float labels ``(n,)`` for ``k = 2``, else the one-hot
    rows ``(n, k)`` (float64).

    Args:
        labels: class indices ``0..k-1``, shape ``(n,)``.
        k: number of classes, ``>= 2``.
    """
    k = check_int(k, "k", low=2)
    y = _labels(labels)
    if y.max() > k - 1:
        raise ValueError(f"labels: class indices must lie in [0, {k - 1}], got {y.max()}")
    if k == 2:
        return y.astype(np.float64)
    return np.eye(k)[y]


def auroc_any(labels, probs) -> float:
    """AUROC of a binary ``(n,)`` or k-class ``(n, k)`` prediction (macro one-vs-rest for
    ``k > 2``; ``nan`` when some class has no example in ``labels``).

    Args:
        labels: class indices, shape ``(n,)``.
        probs: ``(n,)`` P(class 1) or ``(n, k)`` rows in the simplex.

    Examples:
        >>> import numpy as np
        >>> p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
        >>> auroc_any(np.array([0, 1, 2, 2]), p)   # classes 0 and 1 perfect, class 2: 3/4
        0.9166666666666666
    """
    p = check_probs(probs, "probs")
    if p.ndim == 1:
        return auroc(labels, p)
    y = _labels(labels)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"labels: {y.shape[0]} labels for {p.shape[0]} predictions")
    k = p.shape[1]
    if y.max() > k - 1:
        raise ValueError(f"labels: class indices must lie in [0, {k - 1}], got {y.max()}")
    if np.unique(y).size < k:
        return math.nan
    return float(np.mean([auroc((y == c).astype(np.int64), p[:, c]) for c in range(k)]))
