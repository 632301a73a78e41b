"""``python -m w2s_theory.results_table {check,record} PATH...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .reading import read_table, record_schema
from .schema import ResultTableError


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.results_table {check,record} PATH...``: validate tables, or
    record their schema and row digests (after an intended edit by another program)."""
    ap = argparse.ArgumentParser(prog="python -m w2s_theory.results_table",
                                 description="Check result tables against their schema and row "
                                             "digests, or record them.")
    ap.add_argument("action", choices=["check", "record"])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args(argv)
    status = 0
    for p in args.paths:
        try:
            if args.action == "record":
                print(f"{p}: recorded {record_schema(p)}")
            else:
                n = len(read_table(p))
                print(f"{p}: {n} rows, all valid")
        except (ResultTableError, FileNotFoundError) as exc:
            print(str(exc), file=sys.stderr)
            status = 2
    return status
