"""Divergences between probability vectors, per example, in float64 numpy.

Rows are distributions: arrays of shape ``(n, k)``; a 1-D array of shape
``(n,)`` is the binary shorthand ``P(class 1)``. Every function returns one
value per example (shape ``(n,)``) and uses the convention ``0 log 0 = 0``.
Inputs are validated by :func:`w2s_theory._validation.check_probs`.

References
----------
Cover & Thomas, *Elements of Information Theory* (2006), ch. 2 and 11.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, rel_entr, xlogy

from ._validation import as_categorical, check_gamma, check_probs, check_same_shape, n_classes

__all__ = ["kl", "cross_entropy", "entropy", "total_variation", "smooth"]


def _pair(p, q, names=("p", "q")):
    p = check_probs(p, names[0])
    q = check_probs(q, names[1])
    check_same_shape(**{names[0]: p, names[1]: q})
    return as_categorical(p), as_categorical(q)


def kl(p, q) -> np.ndarray:
    r"""Kullback–Leibler divergence :math:`KL(p\|q) = \sum_i p_i \log(p_i / q_i)`.

    Args:
        p: shape ``(n, k)`` or ``(n,)`` (binary), the first argument.
        q: same shape as ``p``.

    Returns:
        shape ``(n,)``; ``inf`` where ``q_i = 0 < p_i``.

    Example:
        >>> import numpy as np
        >>> from w2s_theory.divergences import kl
        >>> kl(np.array([0.5]), np.array([0.25])).round(6)
        array([0.143841])
        >>> kl([[1.0, 0.0]], [[0.5, 0.5]]).round(6)   # 0 log 0 = 0
        array([0.693147])
    """
    p, q = _pair(p, q)
    return rel_entr(p, q).sum(axis=1)


def cross_entropy(p, q) -> np.ndarray:
    r"""Cross-entropy :math:`CE(p, q) = -\sum_i p_i \log q_i = KL(p\|q) + H(p)`.

    Args:
        p: shape ``(n, k)`` or ``(n,)``; q: same shape.

    Returns:
        shape ``(n,)``; ``inf`` where ``q_i = 0 < p_i``.

    Example:
        >>> from w2s_theory.divergences import cross_entropy
        >>> cross_entropy([[0.5, 0.5]], [[0.5, 0.5]]).round(6)
        array([0.693147])
    """
    p, q = _pair(p, q)
    return -xlogy(p, q).sum(axis=1)


def entropy(p) -> np.ndarray:
    r"""Shannon entropy :math:`H(p) = -\sum_i p_i \log p_i` (nats).

    Args:
        p: shape ``(n, k)`` or ``(n,)``.

    Returns:
        shape ``(n,)``.

    Example:
        >>> from w2s_theory.divergences import entropy
        >>> entropy([0.5, 1.0]).round(6)
        array([0.693147, 0.      ])
    """
    p = as_categorical(check_probs(p, "p"))
    return entr(p).sum(axis=1)


def total_variation(p, q) -> np.ndarray:
    r"""Total variation distance :math:`TV(p, q) = \tfrac12 \sum_i |p_i - q_i|`.

    Args:
        p: shape ``(n, k)`` or ``(n,)``; q: same shape.

    Returns:
        shape ``(n,)``, values in ``[0, 1]``. For the binary shorthand this is ``|p - q|``.

    Example:
        >>> from w2s_theory.divergences import total_variation
        >>> total_variation([0.9], [0.6]).round(6)
        array([0.3])
    """
    p = check_probs(p, "p")
    q = check_probs(q, "q")
    check_same_shape(p=p, q=q)
    if p.ndim == 1:
        return np.abs(p - q)
    return 0.5 * np.abs(p - q).sum(axis=1)


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

    Example:
        >>> from w2s_theory.divergences import smooth
        >>> smooth([[1.0, 0.0, 0.0]], 0.1).round(6)
        array([[0.8, 0.1, 0.1]])
        >>> smooth([0.0, 1.0], 0.01).round(6)
        array([0.01, 0.99])
    """
    p = check_probs(p, "p")
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
