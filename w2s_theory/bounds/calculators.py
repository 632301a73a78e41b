"""Scalar calculators of the bounds: Lemma 1's constant and the risk bounds, on numbers or arrays."""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_broadcast, check_gammas, check_int, check_numbers


# Each calculator takes numbers or arrays (one call draws a bound curve): numbers in, a Python
# float out; any array in, a float64 array of the broadcast shape out, equal entry by entry to
# the calls on the numbers (the same float64 operations in the same order).
def _out(x, shape):
    """A Python float when every input was a number, else an array of the broadcast shape."""
    if isinstance(x, np.ndarray) or shape != ():
        return np.broadcast_to(np.asarray(x, dtype=np.float64), shape).copy()
    return float(x)


def lemma1_constant(gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1's constant ``C_1 = 1 / (gamma sqrt(2))``, for one floor or an array of them.

    Args:
        gamma: probability floor in ``(0, 1/k]``: a number or an array (list, numpy array,
            CPU tensor) of them.
        k: number of classes. It only sets the allowed range of ``gamma`` (every coordinate
            of a k-class distribution can be ``>= gamma`` only if ``gamma <= 1/k``); the
            constant itself does not depend on it.

    Returns:
        A ``float`` for a number, a float64 array of ``gamma``'s shape for an array.

    Examples:
        >>> from w2s_theory.bounds import lemma1_constant
        >>> round(lemma1_constant(1e-3), 3)
        707.107
        >>> lemma1_constant([0.5, 0.25, 0.1]).round(3)
        array([1.414, 2.828, 7.071])
    """
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(gamma=g)
    return _out(1.0 / (g * math.sqrt(2.0)), shape)


def _risk_d(risk_weak, disagreement, name="disagreement"):
    r = check_numbers(risk_weak, "risk_weak", low=0.0)
    d = check_numbers(disagreement, name, low=0.0)
    return r, d


def strong_risk_upper_bound(risk_weak: float | np.ndarray, disagreement: float | np.ndarray,
                            gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1 upper bound: ``R(F_sw) <= R(F_w) + sqrt(d / 2) / gamma``.

    Valid for either disagreement direction, when all predictions are ``>= gamma``. The
    three numeric arguments broadcast against each other (numpy rules), so one call gives a
    whole bound curve, e.g. over a grid of disagreements.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        disagreement: ``d >= 0`` (forward or reverse KL); a number or an array.
        gamma: probability floor in ``(0, 1/k]``; a number or an array.
        k: number of classes; it only sets the allowed range of ``gamma`` (see
            `lemma1_constant`).

    Returns:
        A ``float`` when every argument is a number, else a float64 array of the broadcast
        shape.

    Examples:
        >>> from w2s_theory.bounds import strong_risk_upper_bound
        >>> round(strong_risk_upper_bound(0.3, 0.02, 0.1), 6)
        1.3
        >>> strong_risk_upper_bound(0.3, [0.0, 0.0002, 0.02], 0.1).round(6)
        array([0.3, 0.4, 1.3])
    """
    r, d = _risk_d(risk_weak, disagreement)
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(risk_weak=r, disagreement=d, gamma=g)
    return _out(r + (1.0 / (g * math.sqrt(2.0))) * np.sqrt(d), shape)


def strong_risk_lower_bound(risk_weak: float | np.ndarray, disagreement: float | np.ndarray,
                            gamma: float | np.ndarray, k: int = 2) -> float | np.ndarray:
    r"""Lemma 1 lower bound: ``R(F_sw) >= R(F_w) - sqrt(d / 2) / gamma``.

    Not clipped at 0 (a KL risk is ``>= 0`` anyway; a negative value says the bound is
    vacuous). Arguments and broadcasting as in `strong_risk_upper_bound`.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        disagreement: ``d >= 0`` (forward or reverse KL); a number or an array.
        gamma: probability floor in ``(0, 1/k]``; a number or an array.
        k: number of classes; it only sets the allowed range of ``gamma``.

    Returns:
        A ``float`` when every argument is a number, else a float64 array.

    Examples:
        >>> from w2s_theory.bounds import strong_risk_lower_bound
        >>> round(strong_risk_lower_bound(0.3, 0.0002, 0.1), 6)
        0.2
        >>> strong_risk_lower_bound(0.3, 0.0002, [0.1, 0.2]).round(6)
        array([0.2 , 0.25])
    """
    r, d = _risk_d(risk_weak, disagreement)
    k = check_int(k, "k", low=2)
    g = check_gammas(gamma, k)
    shape = check_broadcast(risk_weak=r, disagreement=d, gamma=g)
    return _out(r - (1.0 / (g * math.sqrt(2.0))) * np.sqrt(d), shape)


def theorem2_risk_bound(risk_weak: float | np.ndarray,
                        d_reverse: float | np.ndarray) -> float | np.ndarray:
    r"""Theorem 2's guaranteed risk: ``R(F_sw) <= R(F_w) - d_reverse``.

    Holds for the reverse-KL projection onto a mixture-convex class containing ``F*``.

    Args:
        risk_weak: ``R(F_w) >= 0`` (KL form); a number or an array.
        d_reverse: ``E KL(F_sw || F_w) >= 0``; a number or an array (broadcast).

    Returns:
        A ``float`` when both are numbers, else a float64 array.

    Examples:
        >>> from w2s_theory.bounds import theorem2_risk_bound
        >>> theorem2_risk_bound(0.5, 0.125)
        0.375
        >>> theorem2_risk_bound(0.5, [0.0, 0.125, 0.25])
        array([0.5  , 0.375, 0.25 ])
    """
    r, d = _risk_d(risk_weak, d_reverse, "d_reverse")
    shape = check_broadcast(risk_weak=r, d_reverse=d)
    return _out(r - d, shape)
