"""The plan's dataclasses and its loader (`load_plan`, `plan_from_dict`): see `w2s_theory.plan`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .._validation import ArgumentTypeError, check_path
from ..config import ConfigError, toml_module
from ..verdicts import VERDICT_WORDS

__all__ = [
    "Member",
    "Family",
    "DuplicatePair",
    "Claim6Entry",
    "Sensitivity",
    "Plan",
    "KINDS",
    "REPLICATIONS",
    "DEFAULT_TABLE",
    "load_plan",
    "plan_from_dict",
    "is_test_measured",
]

#: The contrast kinds of a family (see `Family.kind`).
KINDS = ("acc", "drop", "column", "capacity")

#: The replication modes of a family (see `Family.replication`).
REPLICATIONS = ("split", "seeds_one_split")

#: The table name `default_plan` gives a researcher's table (``build(plan, {DEFAULT_TABLE: df})``).
DEFAULT_TABLE = "results.csv"

#: member keys that are not column filters
_MEMBER_META = {"table", "pairs", "unit_key", "awaiting", "note"}
#: keys that would choose something; refused anywhere in a member / sensitivity filter
_CHOOSER_KEYS = re.compile(r"^(select|order|best|rank|choose|chosen|pick|sort)(_by|_on)?$|_by$")
#: columns measured on the test split (or on the fit of a test-scored run)
_TEST_MEASURED = re.compile(
    r"(^|_)(acc|auroc|ece|pgr|slack|risk|risk_weak|risk_strong|gap|holds|disagree_rate|"
    r"violation|bound|outside)($|_)")


def is_test_measured(column: str) -> bool:
    """True when ``column`` names a quantity measured on data a choice must not read
    (accuracies, AUROC, ECE, PGR, Theorem 2 slacks and risks, gaps, check outcomes).

    Examples:
        >>> from w2s_theory.plan import is_test_measured
        >>> is_test_measured("student_acc"), is_test_measured("ceiling_auroc"), is_test_measured("lr")
        (True, True, False)
    """
    return bool(_TEST_MEASURED.search(str(column)))


def _err(key: str, msg: str) -> ConfigError:
    return ConfigError(f"plan: {key}: {msg}")


@dataclass(frozen=True)
class Member:
    """One table's contribution to a family.

    Attributes:
        table: the committed table, relative to the repository root.
        filters: ``{column: allowed values}`` (a row is kept when each column is one of them).
        pairs: ``((weak, strong), ...)`` the settings named, or ``None`` (every pair).
        unit_key: for converged families, the columns identifying one convex fit.
        awaiting: text: the rows are awaited (the member may select nothing yet).
        note: free text.
    """

    table: str
    filters: dict
    pairs: tuple | None = None
    unit_key: tuple | None = None
    awaiting: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Family:
    """One Holm family: claim x regime x contrast x noise level; its rows are the settings.

    Attributes:
        id: the family id (``"sens.<sensitivity>.<id>"`` for a sensitivity family).
        claim: 1-6.
        regime: e.g. ``"last_layer_minibatch"``.
        contrast: the contrast in words.
        kind: ``"acc"`` (acc(arm 0) - acc(arm 1) at ``noise_level``), ``"drop"``
            (drop(arm 1) - drop(arm 0) from noise 0 to ``noise_level``), ``"column"`` (column 0
            - column 1 of one convex fit) or ``"capacity"`` (student with the higher-capacity
            weak model minus the lower).
        arms: the two losses (reverse first) of a loss-based family, else ``()``.
        columns: the accuracy columns of a converged family, else ``()``.
        loss: claim 4's loss (loss-based capacity families).
        noise_level: the noise level the contrast is taken at (0 when none is declared).
        direction: the paper's claimed sign, ``"+"`` or ``"-"``.
        margin: the equivalence margin in points.
        margin_name: the ``[margins]`` key it came from.
        paper_pts: the paper's numbers (points).
        members: the `Member` entries.
        sensitivity: the sensitivity id for a sensitivity family, else ``""``.
        replication: ``"split"`` (the plan's unit: split-aware interval, fewer than 2
            splits is "inconclusive") or ``"seeds_one_split"`` (a table with one data split:
            the seeds are the replicates, the seed-only t interval is the CI and every word is
            conditional on that split).
        min_seeds: fewer paired seeds than this in a setting makes it "inconclusive"
            (``0``: the plan's default rule).
        converged_seeds: the seeds a convex fit is planned for (converged families; ``()``:
            ``[replication] converged_seeds_per_split``).
    """

    id: str
    claim: int
    regime: str
    contrast: str
    kind: str
    arms: tuple
    columns: tuple
    loss: str | None
    noise_level: float
    direction: str
    margin: float
    margin_name: str
    paper_pts: tuple
    members: tuple
    sensitivity: str = ""
    replication: str = "split"
    min_seeds: int = 0
    converged_seeds: tuple = ()


@dataclass(frozen=True)
class DuplicatePair:
    """A declared cross-table duplicate (``[[duplicates.pair]]``)."""

    table: str
    also_in: tuple
    match: str
    count: int
    filter: dict = field(default_factory=dict)
    also_in_filter: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Claim6Entry:
    """One ``[[claim6]]`` table: the check columns, filters, fit identity and coverage."""

    table: str
    columns: tuple
    filters: dict
    unit_key: tuple | None
    covered: str


@dataclass(frozen=True)
class Sensitivity:
    """One ``[[sensitivity]]`` analysis: reported beside, never pooled."""

    id: str
    what: str
    table: str
    filters: dict
    pairs: tuple | None
    note: str = ""


@dataclass(frozen=True)
class Plan:
    """A validated analysis plan (see `load_plan`)."""

    path: str
    status: str
    split_column: str
    committed_split: int
    resplit_table_pattern: str
    converged_seeds_per_split: tuple
    confidence: float
    alpha: float
    bootstrap_resamples: int
    margins: dict
    verdict_words: tuple
    verdict_order: tuple
    summary_rule: str
    identity_columns: tuple
    duplicates: tuple
    model_aliases: dict
    claim4_weak_order: tuple
    claim5_statement: str
    families: tuple
    claim6: tuple
    sensitivity: tuple
    excluded: dict
    finetune: dict
    mde_power: float = 0.8
    seeds_per_split: tuple = ()
    min_random_splits: int = 0

    def family(self, fid: str) -> Family:
        """The family with id ``fid``."""
        for f in self.families:
            if f.id == fid:
                return f
        raise KeyError(f"fid: no family {fid!r} in the plan")

    def tables(self) -> list[str]:
        """Every table a family, claim 6 or a sensitivity analysis reads (sorted)."""
        out = {m.table for f in self.families for m in f.members}
        out |= {c.table for c in self.claim6} | {s.table for s in self.sensitivity}
        return sorted(out)


# ------------------------------------------------------------------------------ parsing helpers
def _get(d: dict, key: str, where: str, types, default=...):
    if key not in d:
        if default is ...:
            raise _err(f"{where}.{key}" if where else key, "is missing")
        return default
    v = d[key]
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in _tuple(types)):
        raise _err(f"{where}.{key}" if where else key,
                   f"must be {_names(types)}, got {type(v).__name__} {v!r}")
    return v


def _tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _names(types) -> str:
    return " or ".join(t.__name__ for t in _tuple(types))


def _filters(d: dict, where: str, skip: set) -> dict:
    out = {}
    for k, v in d.items():
        if k in skip:
            continue
        if _CHOOSER_KEYS.search(k):
            raise _err(f"{where}.{k}", "a primary analysis chooses nothing by a key like this "
                                       "(no primary analysis reads test data to choose anything)")
        if is_test_measured(k):
            raise _err(f"{where}.{k}", f"filters on {k!r}, a quantity measured on test data "
                                       "(no primary analysis reads test data to choose anything)")
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if not isinstance(x, (str, int, float, bool)):
                raise _err(f"{where}.{k}", f"filter values must be str, number or bool, got {x!r}")
        out[k] = tuple(vals)
    return out


def _pairs(d: dict, where: str):
    if "pairs" not in d:
        return None
    p = d["pairs"]
    if not isinstance(p, list) or not all(isinstance(x, list) and len(x) == 2
                                          and all(isinstance(s, str) for s in x) for x in p):
        raise _err(f"{where}.pairs", "must be a list of [weak, strong] name pairs")
    return tuple(tuple(x) for x in p)


def _kind(f: dict, where: str) -> str:
    if int(f["claim"]) == 4:
        return "capacity"
    if str(f.get("contrast", "")).startswith("drop("):
        return "drop"
    if "columns" in f:
        return "column"
    return "acc"


def _family(f: dict, i: int, margins: dict, sensitivity: str = "") -> Family:
    where = f"family[{i}]"
    fid = _get(f, "id", where, str)
    where = f"family {fid!r}"
    claim = _get(f, "claim", where, int)
    if not 1 <= claim <= 6:
        raise _err(f"{where}.claim", f"must be 1-6, got {claim}")
    regime = _get(f, "regime", where, str)
    contrast = _get(f, "contrast", where, str)
    direction = _get(f, "direction", where, str)
    if direction not in ("+", "-"):
        raise _err(f"{where}.direction", f"must be '+' or '-', got {direction!r}")
    mname = _get(f, "margin", where, str)
    if mname not in margins:
        raise _err(f"{where}.margin", f"{mname!r} is not a key of [margins] ({sorted(margins)})")
    kind = _kind(f, where)
    arms = tuple(_get(f, "arms", where, list, []))
    columns = tuple(_get(f, "columns", where, list, []))
    loss = _get(f, "loss", where, str, None)
    if kind in ("acc", "drop") and not columns and len(arms) != 2:
        raise _err(f"{where}.arms", f"a {kind} family needs two arms (reverse, forward), "
                                    f"got {list(arms)}")
    if kind == "column" and len(columns) != 2:
        raise _err(f"{where}.columns", f"a converged family needs two columns, got {list(columns)}")
    if kind == "drop" and columns and len(columns) != 2:
        raise _err(f"{where}.columns", f"a converged drop family needs two columns, got "
                                       f"{list(columns)}")
    if kind == "capacity" and not (loss or len(columns) == 1):
        raise _err(f"{where}.loss", "a claim-4 family needs `loss` or one accuracy column")
    for c in columns:
        if not (isinstance(c, str) and c.endswith("_acc")):
            raise _err(f"{where}.columns", f"{c!r} is not an accuracy column (*_acc)")
    q = _get(f, "noise_level", where, (int, float), 0.0)
    if kind == "drop" and not q > 0:
        raise _err(f"{where}.noise_level", "a drop family needs a noise level > 0")
    paper = _get(f, "paper_pts", where, list, [])
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in paper):
        raise _err(f"{where}.paper_pts", f"must be numbers, got {paper!r}")
    replication = _get(f, "replication", where, str, "split")
    if replication not in REPLICATIONS:
        raise _err(f"{where}.replication", f"must be one of {list(REPLICATIONS)}, got "
                                           f"{replication!r}")
    min_seeds = _get(f, "min_seeds", where, int, 0)
    if min_seeds < 0:
        raise _err(f"{where}.min_seeds", f"must be >= 0, got {min_seeds}")
    cseeds = _get(f, "converged_seeds", where, list, [])
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in cseeds):
        raise _err(f"{where}.converged_seeds", f"must be integers, got {cseeds!r}")
    if cseeds and not columns:
        raise _err(f"{where}.converged_seeds", "only a converged family (with `columns`) has "
                                               "convex-fit seeds")
    raw_members = _get(f, "member", where, list)
    if not raw_members:
        raise _err(f"{where}.member", "a family needs at least one member")
    members = []
    for j, m in enumerate(raw_members):
        mw = f"{where}.member[{j}]"
        if not isinstance(m, dict):
            raise _err(mw, "must be a table")
        members.append(Member(
            table=_get(m, "table", mw, str),
            filters=_filters(m, mw, _MEMBER_META),
            pairs=_pairs(m, mw),
            unit_key=tuple(_get(m, "unit_key", mw, list)) if "unit_key" in m else None,
            awaiting=_get(m, "awaiting", mw, str, None),
            note=_get(m, "note", mw, str, "")))
        if kind in ("column",) or (columns and kind in ("drop", "capacity")):
            if members[-1].unit_key is None:
                raise _err(f"{mw}.unit_key", "a converged member needs unit_key (a fit counted "
                                             "once)")
    return Family(id=fid, claim=claim, regime=regime, contrast=contrast, kind=kind, arms=arms,
                  columns=columns, loss=loss, noise_level=float(q), direction=direction,
                  margin=float(margins[mname]), margin_name=mname,
                  paper_pts=tuple(float(x) for x in paper), members=tuple(members),
                  sensitivity=sensitivity, replication=replication, min_seeds=min_seeds,
                  converged_seeds=tuple(int(x) for x in cseeds))


def load_plan(path) -> Plan:
    """Read and validate an analysis plan (``experiments/analysis.toml``'s format).

    Args:
        path: the TOML file (str or ``os.PathLike``; anything else: ``"plan: path: ..."``).

    Returns:
        a `Plan`.

    Raises:
        ConfigError: (a ``ValueError``) ``"plan: <key>: ..."`` for a missing or malformed key,
            an unknown margin, a duplicated family id, a filter on a test-measured column, or
            a claim-4 order not taken from the model registry.

    Examples:
        >>> from w2s_theory.plan import load_plan
        >>> plan = load_plan("experiments/analysis.toml")                  # doctest: +SKIP
        >>> [f.id for f in plan.families][:2]                              # doctest: +SKIP
        ['c1.minibatch.reverse_kl', 'c1.minibatch.reverse_ce']
    """
    try:
        p = check_path(path, "path")
    except (TypeError, ValueError) as exc:   # ArgumentTypeError is both: keep it a TypeError
        cls = ArgumentTypeError if isinstance(exc, TypeError) else ConfigError
        raise cls(f"plan: {exc}") from None
    if not p.is_file():
        raise ConfigError(f"plan: {p}: no such file")
    try:
        with open(p, "rb") as fh:
            raw = toml_module().load(fh)
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        raise ConfigError(f"plan: {p}: not valid TOML ({exc})") from exc
    return plan_from_dict(raw, str(p))


def plan_from_dict(raw: dict, path: str = "<dict>") -> Plan:
    """`load_plan` on an already parsed TOML document (a ``dict``)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"plan: must be a TOML table, got {type(raw).__name__}")
    rep = _get(raw, "replication", "", dict)
    stats = _get(raw, "statistics", "", dict)
    margins_raw = _get(raw, "margins", "", dict)
    margins = {}
    for k, v in margins_raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise _err(f"margins.{k}", f"must be a positive number of points, got {v!r}")
        margins[k] = float(v)
    ver = _get(raw, "verdicts", "", dict)
    words = tuple(_get(ver, "words", "verdicts", list))
    order = tuple(_get(ver, "order", "verdicts", list))
    if sorted(words) != sorted(VERDICT_WORDS) or sorted(order) != sorted(VERDICT_WORDS):
        raise _err("verdicts.words", f"must be the four words {list(VERDICT_WORDS)}")
    if order != VERDICT_WORDS:
        raise _err("verdicts.order", f"must be {list(VERDICT_WORDS)} (equivalence first)")
    nts = raw.get("no_test_selection", {})
    for k, v in nts.items():
        if k.endswith("chosen_on") and v not in ("train_gt_holdout", "declared_before_runs",
                                                 "model_registry"):
            raise _err(f"no_test_selection.{k}", f"{v!r}: a choice must be made on held-out "
                                                 "train_gt rows, the registry or before the runs "
                                                 "(no primary analysis reads test data to choose "
                                                 "anything)")
    dup = _get(raw, "duplicates", "", dict, {})
    ident = tuple(_get(dup, "identity_columns", "duplicates", list, []))
    pairs = []
    for i, d in enumerate(dup.get("pair", [])):
        w = f"duplicates.pair[{i}]"
        also = _get(d, "also_in", w, (str, list))
        match = _get(d, "match", w, str)
        if match not in ("run_key", "identity_columns"):
            raise _err(f"{w}.match", f"must be 'run_key' or 'identity_columns', got {match!r}")
        pairs.append(DuplicatePair(table=_get(d, "table", w, str),
                                   also_in=tuple(also if isinstance(also, list) else [also]),
                                   match=match, count=_get(d, "count", w, int),
                                   filter=dict(d.get("filter", {})),
                                   also_in_filter=dict(d.get("also_in_filter", {}))))
    models = raw.get("models", {})
    aliases = dict(models.get("aliases", {}))
    c4 = raw.get("claim4", {})
    if c4:
        ob = _get(c4, "order_by", "claim4", str)
        if ob != "model_registry_params":
            raise _err("claim4.order_by", f"{ob!r}: claim 4 orders weak models by registry "
                                          "capacity ('model_registry_params'), never by a "
                                          "measured accuracy")
    weak_order = tuple(c4.get("weak_order", ()))
    c5 = raw.get("claim5", {})
    fams = []
    seen = set()
    for i, f in enumerate(_get(raw, "family", "", list)):
        fam = _family(f, i, margins)
        if fam.id in seen:
            raise _err(f"family {fam.id!r}.id", "appears twice")
        seen.add(fam.id)
        fams.append(fam)
    c6 = []
    for i, c in enumerate(raw.get("claim6", [])):
        w = f"claim6[{i}]"
        c6.append(Claim6Entry(table=_get(c, "table", w, str),
                              columns=tuple(_get(c, "columns", w, list)),
                              filters=_filters(c, w, {"table", "columns", "unit_key", "covered"}),
                              unit_key=tuple(c["unit_key"]) if "unit_key" in c else None,
                              covered=_get(c, "covered", w, str, "")))
    sens = []
    for i, s in enumerate(raw.get("sensitivity", [])):
        w = f"sensitivity[{i}]"
        if s.get("pooled", False) is not False:
            raise _err(f"{w}.pooled", "a sensitivity analysis is never pooled (must be false)")
        sens.append(Sensitivity(id=_get(s, "id", w, str), what=_get(s, "what", w, str, ""),
                                table=_get(s, "table", w, str),
                                filters=_filters(s, w, {"id", "what", "table", "pairs", "pooled",
                                                        "note"}),
                                pairs=_pairs(s, w), note=_get(s, "note", w, str, "")))
    ft = dict(raw.get("finetune_extension", {}))
    conf = _get(stats, "confidence", "statistics", float, 0.95)
    alpha = _get(stats, "alpha", "statistics", float, 0.05)
    if not 0 < conf < 1:
        raise _err("statistics.confidence", f"must be in (0, 1), got {conf}")
    if not 0 < alpha < 0.5:
        raise _err("statistics.alpha", f"must be in (0, 0.5), got {alpha}")
    pattern = _get(rep, "resplit_table_pattern", "replication", str, "")
    if pattern and "{stem}" not in pattern:
        raise _err("replication.resplit_table_pattern", "must contain '{stem}'")
    return Plan(path=path, status=str(raw.get("status", "")),
                split_column=_get(rep, "split_column", "replication", str, "split"),
                committed_split=_get(rep, "committed_split", "replication", int, 0),
                resplit_table_pattern=pattern,
                converged_seeds_per_split=tuple(rep.get("converged_seeds_per_split", ())),
                confidence=float(conf), alpha=float(alpha),
                bootstrap_resamples=_get(stats, "bootstrap_resamples", "statistics", int, 2000),
                margins=margins, verdict_words=words, verdict_order=order,
                summary_rule=_get(ver, "summary_rule", "verdicts", str, ""),
                identity_columns=ident, duplicates=tuple(pairs), model_aliases=aliases,
                claim4_weak_order=weak_order,
                claim5_statement=str(c5.get("chance_statement", "")),
                families=tuple(fams), claim6=tuple(c6), sensitivity=tuple(sens),
                excluded=dict(raw.get("excluded", {})), finetune=ft,
                mde_power=float(ft.get("mde_power", 0.8)),
                seeds_per_split=tuple(_get(rep, "seeds_per_split", "replication", list, [])),
                min_random_splits=_get(rep, "min_random_splits", "replication", int, 0))
