"""The registry of student losses: one `LossSpec` per loss, looked up by name (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._validation import check_choice


@dataclass(frozen=True)
class LossSpec:
    """One student loss of the registry.

    Attributes:
        name: the name configs, tables and notebooks use.
        fn: ``fn(student_logits, weak_probs, *, reduction="mean", eps=DEFAULT_EPS)``.
        grad: closed-form per-example gradient in the logits, ``grad(z, y, eps)``, shape of ``z``
            (the tests check autograd against it).
        binary, kclass: whether it has the binary ``(n,)`` and the k-class ``(n, k)`` form.
        direction: ``"forward"`` (teacher first, mass-covering), ``"reverse"`` (student first,
            mode-seeking) or ``"symmetric"``.
        family: ``"kl"``, ``"ce"``, ``"alpha"`` or ``"js"``.
        alpha: the alpha of an alpha-divergence (``None`` otherwise).
    """

    name: str
    fn: Callable
    grad: Callable
    binary: bool = True
    kclass: bool = True
    direction: str = "forward"
    family: str = "kl"
    alpha: float | None = None


#: name -> `LossSpec`, in registration order (the order tables and notebooks use).
REGISTRY: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> LossSpec:
    """Add a loss to the registry (a name may be registered once)."""
    if not isinstance(spec, LossSpec):
        raise TypeError(f"spec: a LossSpec, got {type(spec).__name__}")
    if spec.name in REGISTRY:
        raise ValueError(f"name: loss {spec.name!r} is already registered")
    if spec.direction not in ("forward", "reverse", "symmetric"):
        raise ValueError(f"direction: 'forward', 'reverse' or 'symmetric', got {spec.direction!r}")
    REGISTRY[spec.name] = spec
    return spec


#: The four losses of arXiv:2502.11107 (the paper's comparison; tables and figures default to them).
PAPER_LOSSES = ("forward_kl", "reverse_kl", "forward_ce", "reverse_ce")


def loss_names(*, family: str | None = None) -> tuple[str, ...]:
    """Every registered student loss name (optionally of one ``family``), in registry order.

    Examples:
        >>> loss_names()[:4]
        ('forward_kl', 'reverse_kl', 'forward_ce', 'reverse_ce')
        >>> loss_names(family="alpha")
        ('alpha_0.25_forward', 'alpha_0.25_reverse', 'alpha_0.5')
    """
    if family is not None:
        check_choice(family, "family", tuple(dict.fromkeys(s.family for s in REGISTRY.values())))
    return tuple(n for n, s in REGISTRY.items() if family is None or s.family == family)


def ordered(names) -> list[str]:
    """Registered names among ``names`` in display order: forward, then reverse, then symmetric
    losses, registry order within each (tables and figures list losses this way).

    Examples:
        >>> ordered({"reverse_ce", "forward_kl", "js", "reverse_kl", "forward_ce"})
        ['forward_kl', 'forward_ce', 'reverse_kl', 'reverse_ce', 'js']
    """
    rank = {"forward": 0, "reverse": 1, "symmetric": 2}
    if isinstance(names, str) or not hasattr(names, "__iter__"):
        raise TypeError(f"names: an iterable of loss names, got {type(names).__name__}")
    names = set(names)
    if any(not isinstance(n, str) for n in names):
        raise TypeError("names: every entry must be a loss name (str)")
    return sorted((n for n in REGISTRY if n in names),
                  key=lambda n: (rank[REGISTRY[n].direction], list(REGISTRY).index(n)))


def check_loss_name(name: str, what: str = "loss") -> str:
    """``name`` if it is a registered student loss, else a ``ValueError`` listing the names."""
    if not isinstance(name, str):
        raise TypeError(f"{what}: a loss name (str), got {type(name).__name__}; choose from "
                        f"{loss_names()}")
    if name not in REGISTRY:
        raise ValueError(f"{what}: unknown loss {name!r}; choose from {loss_names()}")
    return name


def loss_spec(name: str) -> LossSpec:
    """The registry entry of a student loss."""
    return REGISTRY[check_loss_name(name, "name")]
