"""`default_plan`: a plan derived from a researcher's own result table."""

from __future__ import annotations

import pandas as pd

from .._validation import check_number, check_path, check_str
from .declared import DEFAULT_TABLE, Family, Member, Plan

__all__ = ["default_plan"]


def _table_name(table) -> str:
    """``table`` (str or ``os.PathLike``) as the plan's text name of a table, or raise naming
    ``table``."""
    p = check_path(table, "table")
    return table if isinstance(table, str) else p.as_posix()


def default_plan(frame, *, margin: float = 0.5, reference: str = "forward_kl",
                 table: str = DEFAULT_TABLE) -> Plan:
    """A plan for a researcher's own result table.

    One family per (registered loss in the table other than ``reference``) x (noise level
    present): contrast ``acc(loss) - acc(reference)`` at that level (claim 1 at noise 0,
    claim 2's accuracy contrast above), direction ``"+"``; members = every setting of the
    table (``build`` groups by ``dataset`` / ``weak`` / ``strong`` where present). Split-aware
    when the table has a ``split`` column (else every run is split 0 and the verdict rule's
    "fewer than 2 splits" makes rows "inconclusive"; the seed-only CI is shown).

    Args:
        frame: a pandas ``DataFrame`` with columns ``loss``, ``seed`` and ``student_acc``
            (optional: ``split``, ``noise``, ``dataset``, ``weak``, ``strong``).
        margin: the equivalence margin in accuracy points, ``> 0``.
        reference: the reference loss (must be in the table).
        table: the name `build` knows the frame by: ``build(plan, {table: frame})`` (a str
            or ``os.PathLike``).

    Returns:
        a `Plan`.

    Examples:
        >>> import pandas as pd
        >>> from w2s_theory.plan import default_plan
        >>> t = pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 2, "seed": [0, 0, 1, 1],
        ...                   "student_acc": [0.6, 0.62, 0.61, 0.6]})
        >>> [f.id for f in default_plan(t).families]
        ['reverse_kl.vs.forward_kl.noise0']
    """
    from ..losses import loss_names  # torch

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame: must be a pandas DataFrame, got {type(frame).__name__}")
    m = check_number(margin, "margin", low=0.0, low_open=True)
    reference = check_str(reference, "reference")
    table = _table_name(table)
    missing = [c for c in ("loss", "seed", "student_acc") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: lacks the column(s) {missing} (a result table needs loss, "
                         f"seed, student_acc; optional split, noise, dataset, weak, strong)")
    losses = [str(x) for x in pd.unique(frame["loss"])]
    known = set(loss_names())
    unknown = sorted(set(losses) - known)
    if unknown:
        raise ValueError(f"frame: loss {unknown[0]!r} is not a registered loss "
                         f"(w2s_theory.losses.loss_names())")
    if reference not in losses:
        raise ValueError(f"reference: {reference!r} is not a loss of the table ({losses})")
    noises = sorted(float(q) for q in pd.unique(frame["noise"])) if "noise" in frame else [0.0]
    fams = []
    for loss in [x for x in losses if x != reference]:
        for q in noises:
            filt = {"noise": (q,)} if "noise" in frame else {}
            fams.append(Family(
                id=f"{loss}.vs.{reference}.noise{q:g}", claim=1 if q == 0 else 2,
                regime="user_table", contrast=f"acc({loss} @ {q:g}) - acc({reference} @ {q:g})",
                kind="acc", arms=(loss, reference), columns=(), loss=None, noise_level=q,
                direction="+", margin=m, margin_name="default", paper_pts=(),
                members=(Member(table=table, filters=filt),)))
    return Plan(path="<default plan>", status="default plan derived from the table",
                split_column="split", committed_split=0, resplit_table_pattern="",
                converged_seeds_per_split=(), confidence=0.95, alpha=0.05,
                bootstrap_resamples=2000, margins={"default": m},
                verdict_words=("better", "worse", "equivalent within margin", "inconclusive"),
                verdict_order=("equivalent within margin", "better", "worse", "inconclusive"),
                summary_rule="better: >= half better and none worse; worse: >= half worse and "
                             "none better; equivalent within margin: >= half equivalent and "
                             "none better or worse; else inconclusive",
                identity_columns=(), duplicates=(), model_aliases={}, claim4_weak_order=(),
                claim5_statement="", families=tuple(fams), claim6=(), sensitivity=(),
                excluded={}, finetune={})
