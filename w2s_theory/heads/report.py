"""`FitReport`: how a last-layer head was fitted and how accurately (every fit returns one)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["FitReport"]


@dataclass(frozen=True)
class FitReport:
    """How a head was fitted and how accurately.

    Attributes:
        method: ``"convex/clarabel"``, ``"softmax/lbfgs+newton"`` or ``"minibatch/<opt>"``.
        status: the solver's status string (``"Solved"``, ``"converged"``, ...).
        converged: the fit met its accuracy target.
        objective: final objective (mean over the ``n`` samples, plus the L2 term if any).
        duality_gap: convex head: ``|primal - dual|`` objective reported by Clarabel,
            divided by ``n`` (same units as ``objective``); ``nan`` for the other heads.
        grad_norm: Euclidean norm of the gradient of ``objective`` in the standardised
            parameters (softmax heads); for the convex head, the norm of the
            KKT stationarity residual computed here from the solver's dual values.
        complementarity: convex head: ``sum lambda (P - gamma)`` (the duality gap of the
            original problem at the returned point); ``nan`` otherwise.
        max_violation: convex head: ``max(gamma - P)`` over samples, ``<= 0`` when feasible.
        iterations: solver / optimiser iterations (minibatch: optimisation steps).
        solve_time: seconds spent in the solver / optimiser.

    Examples:
        >>> FitReport(method="minibatch/adam", status="finished", converged=False,
        ...           objective=0.5).to_dict()["iterations"]
        0
    """

    method: str
    status: str
    converged: bool
    objective: float
    duality_gap: float = math.nan
    grad_norm: float = math.nan
    complementarity: float = math.nan
    max_violation: float = math.nan
    iterations: int = 0
    solve_time: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)
