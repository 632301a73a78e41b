"""``w2s-theory report RESULTS.csv [RESULTS2.csv ...] [--plan PLAN.toml] [--out DIR]``.

The claims ledger's machinery on a researcher's own result table: every registered loss in it
against forward KL (or ``--reference``), at every noise level present, over every setting, with
split-aware intervals when the table has a ``split`` column (`w2s_theory.plan.default_plan`),
or the families of a plan they wrote (``--plan``, `w2s_theory.plan.load_plan`; the RESULTS
files are then tables the plan names, relative to the working folder). Prints the
answer lines (`w2s_theory.answer.answer_lines`) and writes into ``--out`` (default
``./report``): the ledger CSVs (`w2s_theory.ledger.write`), ``answer.png`` and ``answer.pdf``
(`w2s_theory.answer.plot_answer`), ``answer.md`` and ``answer.tex`` (the answer and the
summary table).

A table needs the columns ``loss``, ``seed`` and ``student_acc``; ``split``, ``noise``,
``dataset``, ``weak`` and ``strong`` are read where present. The toolkit's own tables are
read as they are written: a fine-tuning table's ``role = "ceiling"`` rows are left out,
``subset`` names its data set, a synthetic table's ``test_acc_strong`` and ``noise_frac`` are
its student accuracy and noise, and design columns that vary (`DESIGN_COLUMNS`: the regime,
head, confidence term, lr, the number of classes ``n_classes`` ...) become part of the
setting, so runs of different designs (a binary and a k-class table) are never paired. A
missing file, a table without the needed columns, an unknown loss name or a plan that does
not load is one line on stderr and exit 2.

`print_short_answer` is what the sweeps (``real``, ``finetune``, ``partial``, ``synthetic``)
print last: the same answer lines for the table they wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from .. import answer
from .. import ledger as ledger_mod
from ..answer import answer_lines
from ..config import UserError
from ..plan import DEFAULT_TABLE, default_plan, load_plan
from .common import Parser, add_out, command, usage_error

PROG = "w2s-theory report"

#: Columns every result table needs.
REQUIRED_COLUMNS = ("loss", "seed", "student_acc")
#: Columns that name a setting (a data set and a weak -> strong pair), read where present.
SETTING_COLUMNS = ("dataset", "weak", "strong")
#: Columns of a design choice: where one varies within a table, its value joins the setting
#: (folded into ``strong``), so that runs of different designs are never paired.
DESIGN_COLUMNS = ("regime", "head", "confidence", "lr", "epochs", "batch_size", "weak_noise",
                  "variant", "partial_k", "n_test", "protocol", "train_split", "n_classes")
#: Columns of the toolkit's own tables renamed to the report's (when the target is missing).
ALIASES = {"student_acc": "test_acc_strong", "noise": "noise_frac", "dataset": "subset"}

__all__ = ["PROG", "REQUIRED_COLUMNS", "SETTING_COLUMNS", "DESIGN_COLUMNS", "ALIASES",
           "ReportError", "read_table", "prepare_table", "build_report", "print_short_answer",
           "main"]


class ReportError(UserError, ValueError):
    """A result table or plan the report cannot use (the message names the file)."""


def read_table(path):
    """Read one result CSV; `ReportError` naming ``path`` when it is missing, a folder, empty
    or not a CSV."""
    p = Path(path)
    if not p.exists():
        raise ReportError(f"{p}: file not found")
    if p.is_dir():
        raise ReportError(f"{p}: is a folder, not a result table (CSV)")
    try:
        frame = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise ReportError(f"{p}: is empty (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ReportError(f"{p}: is not a readable CSV ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise ReportError(f"{p}: has a header but no rows")
    return frame


def prepare_table(frame, name: str = "table"):
    """The rows and columns the report reads, from one of the toolkit's tables or any table
    with ``loss``, ``seed``, ``student_acc`` (see the module's docstring).

    Args:
        frame: a pandas ``DataFrame``.
        name: how errors name the table (its path).

    Returns:
        a new ``DataFrame``.

    Raises:
        ReportError: a needed column is missing, or a loss is not registered
            (`w2s_theory.losses.loss_names`).
    """
    from ..losses import loss_names

    t = frame.copy()
    if "role" in t.columns:                         # fine-tuning tables: ceilings are not students
        t = t[t["role"].astype(str) == "student"]
    for target, source in ALIASES.items():
        if target not in t.columns and source in t.columns:
            t[target] = t[source]
    missing = [c for c in REQUIRED_COLUMNS if c not in t.columns]
    if missing:
        raise ReportError(
            f"{name}: lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(a result table needs loss, seed, student_acc; the setting columns "
            f"{', '.join(SETTING_COLUMNS)} and split, noise are read where present)")
    if t.empty:
        raise ReportError(f"{name}: has no student rows")
    known = set(loss_names())
    unknown = sorted({str(x) for x in pd.unique(t["loss"])} - known)
    if unknown:
        raise ReportError(f"{name}: unknown loss name{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))} (registered: {', '.join(sorted(known))};"
                          f" add one with w2s_theory.losses.register)")
    vary = [c for c in DESIGN_COLUMNS if c in t.columns and t[c].nunique(dropna=False) > 1]
    if vary:
        design = t[vary].astype(str).apply(
            lambda r: ", ".join(f"{c}={v}" for c, v in zip(vary, r)), axis=1)
        base = t["strong"].astype(str) + " " if "strong" in t.columns else ""
        t["strong"] = base + "[" + design + "]"
    return t.reset_index(drop=True)


def _tables(paths):
    frames = [prepare_table(read_table(p), str(p)) for p in paths]
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    dropped = 0
    if "run_key" in frame.columns and len(frames) > 1:
        dup = frame["run_key"].duplicated()
        dropped = int(dup.sum())
        frame = frame[~dup].reset_index(drop=True)
    return frame, dropped


def build_report(paths, plan=None, *, reference: str = "forward_kl", margin: float = 0.5):
    """The ledger of result tables: the default plan on their rows, or ``plan`` (a path).

    Args:
        paths: one or more result CSVs (concatenated; a run_key seen twice is counted once).
        plan: a plan TOML (`w2s_theory.plan.load_plan`): then every path must be a table
            the plan names, relative to the working folder, and the plan's tables (and their
            re-split tables) are read from there as they are (its members select the rows).
        reference: the reference loss of the default plan.
        margin: the equivalence margin of the default plan, in accuracy points.

    Returns:
        ``(ledger, frame)``: the `w2s_theory.ledger.Ledger` and the table it was built from
        (``None`` with a plan).

    Raises:
        ReportError: a table or the plan cannot be used (one line naming it).
    """
    paths = [Path(p) for p in paths]
    names = ", ".join(str(p) for p in paths)
    if plan is not None:
        try:
            pl = load_plan(plan)
        except FileNotFoundError:
            raise ReportError(f"{plan}: plan file not found") from None
        except ValueError as exc:               # ConfigError: "plan: <key>: ..."
            raise ReportError(f"{plan}: {exc}") from None
        root = Path.cwd()
        named = {(root / t).resolve(): t for t in pl.tables()}
        for p in paths:
            read_table(p)                       # exists, is a CSV with rows
            if p.resolve() not in named:
                raise ReportError(f"{p}: not a table the plan reads (paths relative to the "
                                  f"working folder {root}: {', '.join(pl.tables())})")
        frame = None
        tables = {}                             # the plan's tables and their re-split tables
        for t in pl.tables():
            names_t = [t]
            if pl.resplit_table_pattern:
                names_t.append(pl.resplit_table_pattern.format(stem=Path(t).stem))
            for name in names_t:
                if (root / name).is_file():
                    tables[name] = read_table(root / name)
            tables.setdefault(t, None)          # not run yet: ledger.build lists it missing
        root = None
    else:
        frame, _ = _tables(paths)
        try:
            pl = default_plan(frame, margin=margin, reference=reference, table=DEFAULT_TABLE)
        except ValueError as exc:
            raise ReportError(f"{names}: {exc}") from None
        tables = {DEFAULT_TABLE: frame}
        root = None
    try:
        led = ledger_mod.build(pl, tables=tables, root=root)
    except ValueError as exc:                   # data the plan cannot use (names the table)
        raise ReportError(f"{names}: {exc}") from None
    return led, frame


def _print_lines(lines, file=None) -> None:
    """Print ``lines``; where the output cannot encode ``−`` / ``±`` (an ASCII terminal), as
    ``-`` / ``+/-``."""
    out = file or sys.stdout
    enc = getattr(out, "encoding", None) or "utf-8"
    for line in lines:
        try:
            line.encode(enc)
        except (UnicodeEncodeError, LookupError):
            line = line.replace("\u2212", "-").replace("±", "+/-")
            line = line.encode("ascii", "replace").decode("ascii")
        print(line, file=out)


def print_short_answer(table_path, *, prog: str = PROG) -> list[str]:
    """Print the answer lines of the table a sweep wrote (the default plan, forward KL as the
    reference); the sweeps call it last.

    Prints nothing when the table has fewer than two losses or no forward KL to compare with
    (a one-loss sweep asks no question). A table the report cannot read prints one line
    ``PROG: short answer skipped: ...`` on stderr and does not fail the sweep; any other error
    is a bug and propagates.

    Args:
        table_path: the result CSV the sweep wrote.
        prog: the sweep's name, for the skipped line.

    Returns:
        the printed answer lines (empty when none were printed).
    """
    try:
        frame = prepare_table(read_table(table_path), str(table_path))
        if frame["loss"].nunique() < 2 or "forward_kl" not in set(frame["loss"].astype(str)):
            return []
        led, _ = build_report([table_path])
    except ReportError as exc:
        print(f"{prog}: short answer skipped: {exc}", file=sys.stderr)
        return []
    lines = answer_lines(led)
    if lines:
        print(f"\nanswer (reverse minus forward, accuracy points, 95 % CI; "
              f"w2s-theory report {table_path} for the figure and the ledger):")
        _print_lines(lines)
    return lines


def parser() -> Parser:
    p = Parser(prog=PROG, description="The claims ledger, the answer lines and the answer "
                                      "figure for your own result tables.")
    p.add_argument("results", nargs="+", metavar="RESULTS.csv",
                   help="result table(s): columns loss, seed, student_acc (and split, noise, "
                        "dataset, weak, strong where present)")
    p.add_argument("--plan", default=None, metavar="PLAN.toml",
                   help="an analysis plan (see experiments/analysis.toml); default: every "
                        "registered loss of the table against --reference at every noise level")
    p.add_argument("--reference", default="forward_kl",
                   help="the default plan's reference loss (default forward_kl)")
    p.add_argument("--margin", type=float, default=0.5,
                   help="the default plan's equivalence margin in accuracy points (default 0.5)")
    add_out(p, "folder for the ledger CSVs, answer.png/pdf, answer.md, answer.tex "
               "(default ./report)")
    return p


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.plan is not None and not Path(args.plan).is_file():
        return usage_error(PROG, f"{args.plan}: plan file not found")
    led, _ = build_report(args.results, args.plan, reference=args.reference, margin=args.margin)
    lines = answer.answer_lines(led)
    if not lines:
        print(f"{PROG}: the table(s) hold no accuracy contrast (one loss only?)", file=sys.stderr)
    _print_lines(lines)
    out = Path(args.out or "report")
    out.mkdir(parents=True, exist_ok=True)
    written = list(ledger_mod.write(led, out))
    if lines:
        written += list(answer.plot_answer(led, out / "answer"))
    md = out / "answer.md"
    md.write_text("\n".join([f"- {line}" for line in lines] + ["", answer.markdown_table(led), ""]),
                  encoding="utf-8")
    tex = out / "answer.tex"
    tex.write_text(answer.latex_table(led) + "\n", encoding="utf-8")
    written += [md, tex]
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
