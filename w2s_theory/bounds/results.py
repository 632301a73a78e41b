"""The results of `lemma1` and `theorem2`: every quantity of the statement, printable and exportable."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..export import TableExport, text_table


class _Result(TableExport):
    """Mixin: readable table via ``str()``, plain dict via ``to_dict()``, ``to_latex()``, ``to_markdown()``."""

    def to_dict(self) -> dict:
        """The fields as a plain ``dict`` (floats, ints, bools), in declaration order."""
        return asdict(self)

    def __str__(self) -> str:
        rows = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                s = str(v)
            elif isinstance(v, float):
                s = f"{v:.6g}"
            else:
                s = str(v)
            rows.append((f.name, s))
        return text_table(type(self).__name__, rows)


@dataclass(frozen=True)
class Lemma1Result(_Result):
    """Every stage of Lemma 1's chain; all values are population averages over the rows.

    Attributes:
        gap: exact ``R(F_sw) - R(F_w) = E_x sum_i F*_i log(F_w,i / F_sw,i)`` (KL or CE
            form alike; the risks themselves are `theorem2`'s, or
            `w2s_theory.divergences.kl` averaged).
        d_forward, d_reverse: ``E KL(F_w||F_sw)``, ``E KL(F_sw||F_w)``.
        data_dependent_bound: ``E[TV(x) / m(x)]``.
        tv_bound: ``E TV / gamma``.
        sqrt_bound_forward, sqrt_bound_reverse: ``sqrt(d / 2) / gamma``.
        gamma: the ``gamma`` used; n: number of rows.
        holds: every stage is ``>= |gap|`` up to float round-off: a relative ``1e-12`` of
            the magnitudes, and for the square-root stages an absolute ``1e-12 (1 + 4 dd)``
            on ``d`` (the round-off of a KL between nearly equal predictions, which the
            square root amplifies).
    """

    gap: float
    d_forward: float
    d_reverse: float
    data_dependent_bound: float
    tv_bound: float
    sqrt_bound_forward: float
    sqrt_bound_reverse: float
    gamma: float
    n: int
    holds: bool

    def stages(self) -> dict:
        """The four upper bounds on ``|gap|``, tightest first."""
        return {
            "data_dependent": self.data_dependent_bound,
            "tv": self.tv_bound,
            "sqrt_forward": self.sqrt_bound_forward,
            "sqrt_reverse": self.sqrt_bound_reverse,
        }

    def tightness(self) -> dict:
        """Each stage divided by ``|gap|`` (``>= 1`` when the lemma holds; ``inf`` if gap = 0)."""
        a = abs(self.gap)
        return {k: (v / a if a > 0 else math.inf) for k, v in self.stages().items()}


@dataclass(frozen=True)
class Theorem2Result(_Result):
    """Theorem 2's inequality ``R(F_sw) <= R(F_w) - d_reverse`` on a population.

    Attributes:
        risk_weak, risk_strong: ``R(F_w)``, ``R(F_sw)`` (KL form).
        d_reverse: ``E KL(F_sw || F_w)``.
        slack: ``risk_weak - d_reverse - risk_strong`` (``>= 0`` when the theorem applies).
        tol: tolerance used; holds: ``slack >= -tol``; n: number of rows.
    """

    risk_weak: float
    risk_strong: float
    d_reverse: float
    slack: float
    tol: float
    n: int
    holds: bool
