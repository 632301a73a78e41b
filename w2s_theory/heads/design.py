"""The design of a last-layer fit: checked features, standardised, with a bias column.

Every exact or minibatch fit of `w2s_theory.heads` standardises the features (column mean 0,
standard deviation 1; a constant column keeps scale 1), appends a column of ones (the bias),
fits parameters ``theta`` of shape ``(d+1, m)`` on that design, and maps them back to the
original units with `unstandardize`, so ``predict`` takes raw features.

Examples:
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> mu, sd, design = standardize(x)
    >>> design.tolist()
    [[-1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    >>> coef, b = unstandardize(np.array([[2.0], [0.0], [0.5]]), mu, sd)
    >>> np.allclose(linear(x, coef, b), design @ np.array([[2.0], [0.0], [0.5]]))
    True
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_features", "column_scale", "standardize", "unstandardize", "linear", "binary_out"]


def check_features(features, n: int | None = None, name: str = "features") -> np.ndarray:
    """``features`` as a finite float64 ``(n, d)`` array (``n`` rows when given), or a ValueError naming it."""
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be converted to a float array ({exc})") from None
    if x.ndim != 2:
        raise ValueError(f"{name}: expected shape (n, d), got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: empty array (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{name}: has {x.shape[0]} rows but weak_probs has {n}")
    return x


def column_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``x`` ``(n, d)`` (float64; a column with
    standard deviation 0 gets scale 1): the one standardisation of the toolkit (`standardize`,
    `w2s_theory.protocol.standardize_splits` / ``standardize_pairs``; public as
    ``w2s_theory.protocol.column_scale``).

    Examples:
        >>> mu, sd = column_scale(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> mu.tolist(), sd.tolist()
        ([2.0, 5.0], [1.0, 1.0])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x: need a non-empty (n, d) array, got shape {x.shape}")
    sd = x.std(axis=0)
    return x.mean(axis=0), np.where(sd > 0, sd, 1.0)


def standardize(x: np.ndarray):
    """Column mean and scale (`column_scale`) and the design ``[z, 1]``, ``z = (x - mu) / sd``."""
    mu, sd = column_scale(x)
    z = (x - mu) / sd
    return mu, sd, np.hstack([z, np.ones((x.shape[0], 1))])


def unstandardize(theta: np.ndarray, mu: np.ndarray, sd: np.ndarray):
    """Map ``theta`` (shape ``(d+1, m)``) on ``[(x-mu)/sd, 1]`` to ``(coef, intercept)`` on ``x``."""
    coef = theta[:-1] / sd[:, None]
    intercept = theta[-1] - mu @ coef
    return coef, intercept


def linear(features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``features @ coef + intercept``."""
    return features @ coef + intercept


def binary_out(p_cat: np.ndarray, binary: bool) -> np.ndarray:
    """``P(class 1)`` (shape ``(n,)``) of ``(n, 2)`` rows when ``binary``, else the rows."""
    return p_cat[:, 1].copy() if binary else p_cat
