"""`build`: the claims ledger computed from a declared plan."""

from __future__ import annotations

import pandas as pd

from .._validation import (
    ArgumentTypeError,
)
from ..plan import Plan
from .checks import claim5_statement, lr_statements, plan_checks
from .families import (
    Exclusions,
    dedupe,
    expected_replication,
    fit_status,
    paired_differences,
    select_family,
)
from .paper import repo_root
from .records import (
    CHECK_COLUMNS,
    EXCLUDED_COLUMNS,
    ROW_COLUMNS,
    SUMMARY_COLUMNS,
    Ledger,
)
from .rows import family_rows, finish_family, setting_context, summary_row
from .sensitivity import sensitivity_families
from .tables import check_tables, load_table


def build(plan, tables=None, root=None) -> Ledger:
    """The claims ledger computed from an analysis plan.

    For each family (and each sensitivity family, ids ``sens.<id>....``, Holm-adjusted on
    their own): select the members' rows (the committed table as split 0 plus its re-split
    table by ``[replication] resplit_table_pattern``), remove duplicate runs (run key, then
    coordinates; each listed), drop failed or pending convex fits (listed), pair the arms per
    (split, seed) (unpaired ones listed), and per setting compute the effect in points with
    `w2s_theory.verdicts.paired_effect_by_split` (split-aware t interval on split means; the
    mixed model and the seed-only interval of split 0 beside), `w2s_theory.verdicts.tost`
    with the family's margin, Holm within the family for p and TOST p separately, and the
    verdict word (fewer than 2 splits or 2 paired seeds: "inconclusive"; full fine-tuning:
    one split, CI = seed + test-bootstrap, with its minimum detectable effect). Claim 6's
    checks come from exactly the tables ``[[claim6]]`` names.

    Args:
        plan: a `w2s_theory.plan.Plan` (`w2s_theory.plan.load_plan`, `default_plan`).
        tables: optional ``{path: DataFrame}``: use these instead of reading files (a
            re-split table under its pattern path, optional). Every table the plan names must
            be a key (``None``: not run yet, listed as "missing table"); keys are paths (str or
            ``os.PathLike``). Without it the files are read under ``root``: one that does not
            exist is "missing table"; one that exists but cannot be parsed, or whose numeric
            columns hold text, stops the build.
        root: the repository root the plan's paths are relative to (default: this
            checkout); also where fine-tuning prediction stores are read.

    Returns:
        a `Ledger`.

    Raises:
        ValueError: a run (same run key or coordinates) twice in one family with different
            results; a filter column a table lacks; a claim-4 weak model not in the registry;
            ``tables`` lacking a table the plan names; a damaged table (``ResultTableError``
            naming the file, and the column and row of a cell that is not a number).

    Examples:
        >>> import pandas as pd
        >>> from w2s_theory.plan import default_plan
        >>> from w2s_theory.ledger import build
        >>> t = pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 6,
        ...                   "split": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
        ...                   "seed": [0, 0, 1, 1] * 3,
        ...                   "student_acc": [.60, .61, .60, .62, .61, .62, .60, .61,
        ...                                   .62, .63, .61, .63]})
        >>> led = build(default_plan(t), {"results.csv": t})
        >>> r = led.rows.iloc[0]
        >>> r["setting"], round(float(r["effect_pts"]), 2), int(r["n_splits"]), r["word"]
        ('all', 1.33, 3, 'better')
    """
    if not isinstance(plan, Plan):
        raise ArgumentTypeError(f"plan: must be a w2s_theory.plan.Plan (load_plan / "
                                f"default_plan), got {type(plan).__name__}")
    if tables is not None and not isinstance(tables, dict):
        raise ArgumentTypeError(f"tables: must be a dict {{path: DataFrame}} or None, got "
                                f"{type(tables).__name__}")
    if tables is not None:
        tables = check_tables(tables, plan)
    rootp = repo_root(root) if (root is not None or tables is None) else None
    if tables is not None and root is not None:
        rootp = repo_root(root)
    excl = Exclusions()
    loaded = {t: load_table(plan, t, tables, rootp) for t in plan.tables()}
    families = list(plan.families) + sensitivity_families(plan, loaded, excl)
    all_rows, summaries = [], []
    for fam in families:
        sel = select_family(fam, plan, loaded, excl)
        if len(sel):
            sel = dedupe(fam, sel, plan, excl)
            expected_replication(fam, sel, plan, excl)
            sel = fit_status(fam, sel, plan, excl)
        res = paired_differences(fam, sel, plan, excl) if len(sel) else pd.DataFrame()
        rows = family_rows(fam, res, plan, rootp, excl) if len(res) else []
        ctx = setting_context(fam, sel, rows, plan.confidence) if len(sel) else {}
        rows = finish_family(fam, rows, plan)
        for r in rows:
            r["context"] = ctx.get(r["setting"], "")
            r["note"] = "; ".join(r.pop("_notes"))
            r.pop("_forced"), r.pop("_se")
        summaries.append(summary_row(fam, rows, res, plan))
        all_rows += rows
    for t, why in plan.excluded.items():
        excl.add("", "", t, "", "", "", f"not read by the plan: {why}")
    rows_df = pd.DataFrame(all_rows, columns=ROW_COLUMNS)
    summ_df = pd.DataFrame(summaries, columns=SUMMARY_COLUMNS)
    ex_df = pd.DataFrame(excl.rows, columns=EXCLUDED_COLUMNS)
    checks = plan_checks(plan, loaded, excl) if plan.claim6 else pd.DataFrame(columns=CHECK_COLUMNS)
    ex_df = pd.DataFrame(excl.rows, columns=EXCLUDED_COLUMNS)
    statements = []
    s5 = claim5_statement(plan, loaded)
    if s5:
        statements.append(s5)
    statements += lr_statements(plan, loaded)
    for s in plan.sensitivity:
        if s.note:
            statements.append(f"sensitivity {s.id}: {s.note}")
    return Ledger(rows=rows_df, summary=summ_df, excluded=ex_df, checks=checks,
                  statements=tuple(statements))
