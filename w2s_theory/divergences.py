"""Divergences between probability vectors, per example, in float64 numpy.

Rows are distributions: arrays of shape ``(n, k)``; a 1-D array of shape
``(n,)`` is the binary shorthand ``P(class 1)``. Every function returns one
value per example (shape ``(n,)``) and uses the convention ``0 log 0 = 0``.
Inputs (numpy arrays, lists, CPU tensors) are validated by
`w2s_theory._validation.check_probs`.

Tolerance and precision
-----------------------
Rows may sum to 1 within `ROW_SUM_ATOL` (``1e-6``); such a
row is renormalised (divided by its float64 sum) at the validation boundary, so the
results are those of the nearest distribution and agree with each other:

* ``kl >= 0`` exactly: it is computed as ``sum_i phi(p_i, q_i)`` with
  ``phi(a, b) = a log(a/b) - a + b >= 0`` (the ``- a + b`` terms add up to 0 on
  distributions), each term from ``u = (a - b) / b`` by a series for ``|u| < 0.01`` and by
  ``log1p`` otherwise, so a KL between nearly equal rows keeps its relative precision
  (no cancellation of first-order terms);
* ``0 <= total_variation <= 1`` exactly (round-off above 1, at most a few ulps, is clipped);
* Pinsker ``TV <= sqrt(KL / 2)`` up to a relative ``1e-12``;
* ``cross_entropy = kl + entropy`` up to a relative ``1e-12`` of ``cross_entropy`` (binary), plus
  ``8 k`` ulps of 1 for k-class rows (the residue of float64 normalisation);
* below ``2^-1022`` (subnormal results, no relative precision in float64) KL and CE are
  exact to a few units of ``2^-1074 = 5e-324`` (2 on KL in Pinsker, 4 on CE).

The binary shorthand never forms a rounded ``1 - q`` inside a logarithm of a ratio:
``kl([0.0], [1e-20])`` is ``1e-20`` (``-log(1 - 1e-20)``), not 0, and the cross-entropy
and entropy use ``log1p``.

References
----------
Cover & Thomas, *Elements of Information Theory* (2006), ch. 2 and 11.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, xlog1py, xlogy

from ._validation import check_gamma, check_probs, check_same_shape, n_classes

__all__ = ["kl", "cross_entropy", "entropy", "total_variation", "smooth"]


def _pair(p, q, names=("p", "q")):
    """Validated (renormalised) pair, in its given form ((n,) or (n, k))."""
    p = check_probs(p, names[0], renormalize=True)
    q = check_probs(q, names[1], renormalize=True)
    check_same_shape(**{names[0]: p, names[1]: q})
    return p, q


# Coefficients 1/(n(n-1)), n = 2..11, of g(u) = (1+u) log1p(u) - u = sum_n (-u)^n / (n(n-1)).
# For |u| < 0.01 the truncation error is below 2e-20 of g(u).
_G_COEF = tuple(1.0 / (n * (n - 1)) for n in range(2, 12))
_G_SERIES = 1e-2
_TINY = np.finfo(np.float64).tiny


def _phi(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``a log(a/b) - a + b >= 0`` elementwise, given ``d = a - b`` computed accurately.

    ``0 log 0 = 0``; ``inf`` where ``b = 0 < a``. With ``u = d / b``:
    ``b g(u)``, ``g(u) = (1+u) log1p(u) - u``, by its series for ``|u| < 0.01`` (no
    cancellation), as ``a log(a/b) - d`` otherwise, with ``log(a/b) = log1p(u)`` for
    ``|u| <= 1/2`` and ``log(a/b)`` (``log a - log b`` where ``a/b`` over- or underflows,
    e.g. ``b`` subnormal) farther out.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = d / b
        v = -u
        series = _G_COEF[-1]
        for c in _G_COEF[-2::-1]:
            series = c + v * series
        series = b * (v * v) * series
        lg = np.log1p(u)                               # log(a / b), accurate near a = b
        far = ~(np.abs(u) <= 0.5)                      # includes u = inf / nan (b = 0)
        if far.any():
            # far from a = b: log(a / b) directly, as log a - log b where a / b over- or
            # underflows (b subnormal, or a tiny next to b); log1p(-1 + tiny) would be -inf.
            with np.errstate(under="ignore"):
                r = a / b
            ok = (r >= _TINY) & (r < np.inf)
            lg = np.where(far, np.where(ok, np.log(np.where(ok, r, 1.0)),
                                        np.log(a) - np.log(b)), lg)
        direct = a * lg - d
        out = np.where(np.abs(u) < _G_SERIES, series, direct)
    # a = 0: phi = b (covers 0 log 0 with b = 0 too); tiny negative round-off cannot occur
    # (both forms are >= 0 by more than their error), but clip to keep the guarantee exact.
    out = np.where(a == 0.0, b, out)
    return np.maximum(out, 0.0, out=out)


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL per row of validated arrays of one shape (binary shorthand or (n, k))."""
    if p.ndim == 1:
        # class 1: (p, q), d = p - q; class 0: (1 - p, 1 - q), d = q - p (not (1-p) - (1-q))
        return _phi(p, q, p - q) + _phi(1.0 - p, 1.0 - q, q - p)
    return _phi(p, q, p - q).sum(axis=1)


def kl(p, q) -> np.ndarray:
    r"""Kullback–Leibler divergence :math:`KL(p\|q) = \sum_i p_i \log(p_i / q_i)`.

    Args:
        p: shape ``(n, k)`` or ``(n,)`` (binary), the first argument.
        q: same shape as ``p``.

    Returns:
        shape ``(n,)``; ``inf`` where ``q_i = 0 < p_i``.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.divergences import kl
        >>> kl(np.array([0.5]), np.array([0.25])).round(6)
        array([0.143841])
        >>> kl([[1.0, 0.0]], [[0.5, 0.5]]).round(6)   # 0 log 0 = 0
        array([0.693147])
        >>> kl([0.0], [1e-20])                          # -log(1 - 1e-20), kept exactly
        array([1.e-20])
    """
    p, q = _pair(p, q)
    return _kl(p, q)


def cross_entropy(p, q) -> np.ndarray:
    r"""Cross-entropy :math:`CE(p, q) = -\sum_i p_i \log q_i = KL(p\|q) + H(p)`.

    Args:
        p: shape ``(n, k)`` or ``(n,)``; q: same shape.

    Returns:
        shape ``(n,)``; ``inf`` where ``q_i = 0 < p_i``.

    Examples:
        >>> from w2s_theory.divergences import cross_entropy
        >>> cross_entropy([[0.5, 0.5]], [[0.5, 0.5]]).round(6)
        array([0.693147])
    """
    p, q = _pair(p, q)
    if p.ndim == 1:
        return 0.0 - (xlogy(p, q) + xlog1py(1.0 - p, -q))
    return -xlogy(p, q).sum(axis=1)


def entropy(p) -> np.ndarray:
    r"""Shannon entropy :math:`H(p) = -\sum_i p_i \log p_i` (nats).

    Args:
        p: shape ``(n, k)`` or ``(n,)``.

    Returns:
        shape ``(n,)``.

    Examples:
        >>> from w2s_theory.divergences import entropy
        >>> entropy([0.5, 1.0]).round(6)
        array([0.693147, 0.      ])
    """
    p = check_probs(p, "p", renormalize=True)
    if p.ndim == 1:
        return (entr(p) - xlog1py(1.0 - p, -p)) + 0.0   # + 0.0: no -0.0 for p = 1
    return entr(p).sum(axis=1)


def total_variation(p, q) -> np.ndarray:
    r"""Total variation distance :math:`TV(p, q) = \tfrac12 \sum_i |p_i - q_i|`.

    Args:
        p: shape ``(n, k)`` or ``(n,)``; q: same shape.

    Returns:
        shape ``(n,)``, values in ``[0, 1]``. For the binary shorthand this is ``|p - q|``.

    Examples:
        >>> from w2s_theory.divergences import total_variation
        >>> total_variation([0.9], [0.6]).round(6)
        array([0.3])
    """
    p, q = _pair(p, q)
    if p.ndim == 1:
        return np.abs(p - q)
    tv = 0.5 * np.abs(p - q).sum(axis=1)
    return np.minimum(tv, 1.0, out=tv)               # a few ulps of round-off above 1


def smooth(p, gamma: float) -> np.ndarray:
    r"""Mix with the uniform distribution: :math:`(1 - k\gamma)\,p + \gamma`.

    Every coordinate of the result is at least ``gamma`` and rows still sum to
    one (clamping would break the sum). This is how Lemma 1's assumption
    ``min_i F_i(x) >= gamma`` is met; it holds exactly in float64, for the binary
    shorthand's implied class-0 probability ``1 - p`` as well.

    Args:
        p: shape ``(n, k)`` or ``(n,)`` (binary: ``k = 2``).
        gamma: in ``(0, 1/k]``.

    Returns:
        same shape as ``p``.

    Examples:
        >>> from w2s_theory.divergences import smooth
        >>> smooth([[1.0, 0.0, 0.0]], 0.1).round(6)
        array([[0.8, 0.1, 0.1]])
        >>> smooth([0.0, 1.0], 0.01).round(6)
        array([0.01, 0.99])
    """
    p = check_probs(p, "p", renormalize=True)
    k = n_classes(p)
    g = check_gamma(gamma, k)
    out = (1.0 - k * g) * p + g          # >= g exactly: rounding is monotone
    if p.ndim == 1:
        # The implied class-0 probability 1 - out must be >= g in float64 too: cap
        # out at the largest double whose complement is >= g (a change of <= 1 ulp).
        hi = 1.0 - g
        if 1.0 - hi < g:
            hi = float(np.nextafter(hi, 0.0))
        np.minimum(out, hi, out=out)
    return out
