"""Student losses: the registry, the four W2SG losses, the f-divergence family, the confidence loss (torch).

**The registry** (`REGISTRY`, `loss_names`, `loss_spec`, `get_loss`) is
the one list of student losses: every trainer, sweep config check, test and notebook reads the
valid names from it. An entry (`LossSpec`) holds the loss, its closed-form gradient in
the logits (used by the tests), and whether it has a binary and a k-class form. Adding a loss is
one file in this package (``w2s_theory/losses/<family>.py``) whose ``LOSSES`` tuple holds its
`LossSpec` entries, plus its test: the package registers every file's ``LOSSES`` at import (the
four paper losses (``paper.py``), the alpha-divergences and JS first, in that order; any other file after them,
by file name). `register` adds one at run time.

All losses take the strong student's *logits* and the weak teacher's
probabilities and are differentiable in the logits:

* binary: ``student_logits`` shape ``(n,)``, ``weak_probs`` shape ``(n,)`` = P(class 1);
* k-class: ``student_logits`` shape ``(n, k)``, ``weak_probs`` shape ``(n, k)``.

Write ``p = softmax(z)`` (binary: ``p = sigmoid(z)``) for the student and ``y``
for the weak labels. The closed forms (see ``docs/theory.md``), per example:

=============  ===============================================  ============================
name           loss                                              gradient in z (binary)
=============  ===============================================  ============================
forward_ce     ``-sum_i y_i log p_i``                            ``p - y``
forward_kl     ``sum_i y_i log(y_i / p_i)``                      ``p - y``
reverse_kl     ``sum_i p_i log(p_i / y_i)``                      ``p(1-p)(z - logit y)``
reverse_ce     ``-sum_i p_i log y_i``                            ``-p(1-p) logit y``
=============  ===============================================  ============================

The f-divergence family (Yao et al.'s follow-up, arXiv:2506.03109), also per example:

====================  ===================================================  ========================
name                  loss                                                 limits / special cases
====================  ===================================================  ========================
alpha_<a>_forward     ``D_a(y || p) = (1 - sum_i y_i^a p_i^(1-a)) / (a(1-a))``  ``a -> 1``: forward KL
alpha_<a>_reverse     ``D_a(p || y)``                                      ``a -> 1``: reverse KL
alpha_0.5             ``D_1/2`` (symmetric) ``= 4 H^2(y, p)``              squared Hellinger x 4
js                    ``KL(y || m)/2 + KL(p || m)/2``, ``m = (y + p)/2``   symmetric, ``<= log 2``
====================  ===================================================  ========================

``D_a(y || p) -> KL(p || y)`` as ``a -> 0``, and ``D_a(p || y) = D_(1-a)(y || p)``, so one ``a``
in both directions covers ``1 - a`` too. Registered: ``alpha_0.25_forward``, ``alpha_0.25_reverse``
(= ``D_0.75(y || p)``), ``alpha_0.5`` and ``js``; `alpha_divergence` builds any other ``a``
in ``(0, 1)``. They need no clipping (``y^a`` with ``a > 0`` is finite at ``y = 0``).

The weak labels are clipped into ``[eps, 1 - eps]`` only inside ``log y``
(reverse losses), where ``log 0`` would otherwise appear; ``y log y`` uses the
convention ``0 log 0 = 0``. The clip is exact in every dtype: ``1 - eps`` is never rounded
(binary: the smaller of ``y``, ``1 - y`` is clipped at ``eps``), so reverse CE's symmetric
identity ``l(p, y) + l(p, 1 - y) = -(log yc + log(1 - yc))`` holds in float32 to the rounding
of the two losses (below ``1e-6`` nats; ``tests/test_mixed_precision.py``). The student side
uses ``log_softmax`` / ``logsigmoid`` and is never clipped (k-class log-probabilities below a
quarter of the dtype's range, reached only by logits ``~1e38`` apart, are held there so that no
``0 * inf`` appears). ``reduction="mean"`` averages over
*examples*, never over classes (``torch.nn.functional.kl_div(reduction="mean")``
averages over both and silently halves a binary KL).

Mixed precision: the arithmetic is in float64 for float64 logits and in float32 otherwise
(bfloat16 and float16 logits are upcast, as ``torch.autocast`` does for its losses, and the
gradient flows back in their dtype); the weak labels are taken in that dtype, never rounded to
the logits' narrower one (bfloat16 rounds a weak label 0.999 to 1). The returned loss is float32
for float32, bfloat16 and float16 logits. No loss or gradient is inf or NaN for finite logits
and weak labels in ``[0, 1]``. float32 against float64 on the same inputs (measured on 200,000
binary cases, weak labels down to ``1e-7`` from 0 and 1): the cross-entropies agree to ``3e-7``
relative; the divergences, whose terms cancel at their minimum, to ``1e-6`` relative plus
``1e-6`` absolute.

Input checks: ``weak_probs`` must be finite, in ``[0, 1]``, of the logits' shape, and
k-class rows must sum to 1 within ``1e-6`` (float64), ``1e-4`` (float32), ``2e-3`` (float16) or
``8e-3`` (bfloat16), by the dtype they were given in (rounding alone reaches the lower
precisions' tolerance); ``student_logits`` must be finite; sparse tensors are refused (pass
``x.to_dense()``); lists and arrays of weak labels are accepted.

References
----------
Yao et al., "Revisiting Weak-to-Strong Generalization in Theory and Practice:
Reverse KL vs. Forward KL", Findings of ACL 2025, arXiv:2502.11107.
Burns et al., "Weak-to-Strong Generalization", arXiv:2312.09390 (confidence loss).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from ._common import DEFAULT_EPS as DEFAULT_EPS  # the default clip of the reverse losses
from ._common import value_checks
from .alpha import alpha_divergence
from .confidence import BalanceThreshold, confidence_alpha, confidence_loss
from .js import js_divergence
from .paper import forward_ce, forward_kl, reverse_ce, reverse_kl
from .registry import (
    PAPER_LOSSES,
    REGISTRY,
    LossSpec,
    check_loss_name,
    loss_names,
    loss_spec,
    ordered,
    register,
)

__all__ = [
    "forward_kl",
    "reverse_kl",
    "forward_ce",
    "reverse_ce",
    "confidence_loss",
    "confidence_alpha",
    "BalanceThreshold",
    "get_loss",
    "LOSS_NAMES",
    "LossSpec",
    "REGISTRY",
    "register",
    "loss_names",
    "loss_spec",
    "ordered",
    "check_loss_name",
    "PAPER_LOSSES",
    "alpha_divergence",
    "js_divergence",
    "value_checks",
]

#: The files of the built-in losses, in registration order (the order of tables and figures).
BUILTIN_FAMILIES = ("paper", "alpha", "js")


def family_modules(path, package: str) -> list[str]:
    """The loss files of a package folder: the built-in families first (`BUILTIN_FAMILIES`, in
    that order), then every other public module by name (files starting with ``_`` are helpers).

    Args:
        path: the package's search path (its ``__path__``). package: its dotted name.

    Returns:
        Dotted module names, in registration order.
    """
    found = sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))
    first = [m for m in BUILTIN_FAMILIES if m in found]
    return [f"{package}.{m}" for m in first + [m for m in found if m not in first]]


def register_families(modules) -> list[LossSpec]:
    """Import each module and `register` the `LossSpec` entries of its ``LOSSES`` tuple (modules
    without one, such as the registry itself, add nothing); returns the specs registered."""
    out = []
    for name in modules:
        for spec in getattr(importlib.import_module(name), "LOSSES", ()):
            out.append(register(spec))
    return out


register_families(family_modules(__path__, __name__))


#: Names accepted by `get_loss` (the registry's, plus ``confidence``); a snapshot taken
#: at import; `loss_names` is always current.
LOSS_NAMES = loss_names() + ("confidence",)


def get_loss(name: str) -> Callable:
    """Return a loss function by name: a registered student loss or ``confidence``.

    Args:
        name: a name of `loss_names` or ``confidence`` (alias ``confidence_loss``).

    Examples:
        >>> from w2s_theory.losses import get_loss, reverse_kl
        >>> get_loss("reverse_kl") is reverse_kl
        True
    """
    if not isinstance(name, str):
        raise TypeError(f"name: a loss name (str), got {type(name).__name__}; choose one of "
                        f"{list(loss_names()) + ['confidence']}")
    if name in REGISTRY:
        return REGISTRY[name].fn
    if name in ("confidence", "confidence_loss"):
        return confidence_loss
    raise ValueError(f"name: unknown loss {name!r}; choose one of {list(loss_names()) + ['confidence']}")
