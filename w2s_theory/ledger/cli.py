"""``python -m w2s_theory.ledger``: rebuild the ledger from the plan and the committed tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..answer import readme_block
from ..config import UserError
from ..plan import load_plan
from .build import build
from .output import replace_readme_block, summary_text, write
from .paper import repo_root
from .records import PLAN_PATH


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.ledger [--plan PLAN] [--out DIR] [--readme]``: rebuild the
    claims ledger from the declared plan and the committed tables (plus their re-split
    tables), write its four CSVs and print the per-family summary."""
    ap = argparse.ArgumentParser(
        prog="python -m w2s_theory.ledger",
        description="Rebuild the claims ledger from the declared analysis plan "
                    "(experiments/analysis.toml) and the committed result tables: writes "
                    "ledger.csv, ledger_summary.csv, ledger_excluded.csv and ledger_checks.csv.")
    ap.add_argument("--plan", type=Path, default=None,
                    help="the analysis plan (default experiments/analysis.toml)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the four CSVs (default experiments/results)")
    ap.add_argument("--readme", action="store_true",
                    help="also rewrite the README's results block (w2s_theory.answer)")
    args = ap.parse_args(argv)
    root = repo_root(None)
    try:
        plan = load_plan(args.plan if args.plan is not None else root / PLAN_PATH)
        led = build(plan, root=root)
        out = args.out if args.out is not None else root / "experiments" / "results"
        paths = write(led, out)
        print(summary_text(led))
        for st in led.statements:
            print(st)
        for p in paths:
            print(p)
        if args.readme:
            print(replace_readme_block(root / "README.md", readme_block(led)))
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
