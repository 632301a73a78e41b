"""``python -m w2s_theory.answer``: print the answer; ``--readme`` rewrites the README block, the
docs page and the figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..plotting import figures_dir
from .figure import plot_answer
from .lines import answer_lines
from .pages import ledger_page, update_readme
from .reading import README_MAX_LINES, REPO_ROOT, read_ledger


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.answer [--readme] [--root DIR] [--ledger DIR]``: print the answer
    of the committed ledger (``ROOT/experiments/results/ledger*.csv``); ``--readme`` also
    rewrites ``ROOT/README.md``'s block, ``ROOT/figures/answer.{png,pdf}`` (the folder is
    `w2s_theory.plotting.figures_dir`'s) and ``ROOT/docs/ledger.md``. ``ROOT``: this
    checkout unless ``--root``."""
    ap = argparse.ArgumentParser(prog="python -m w2s_theory.answer",
                                 description="The answer lines of the committed claims ledger.")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite README.md's results block, figures/answer.{png,pdf} and "
                         "docs/ledger.md")
    ap.add_argument("--root", type=Path, default=REPO_ROOT,
                    help="the repository (default: this checkout)")
    ap.add_argument("--ledger", type=Path, default=None,
                    help="folder of the ledger CSVs (default ROOT/experiments/results)")
    args = ap.parse_args(argv)
    root = args.root
    try:
        led = read_ledger(args.ledger or root / "experiments" / "results")
        for line in answer_lines(led, max_lines=README_MAX_LINES):
            print(line)
        if args.readme:
            print(update_readme(led, root / "README.md"))
            png, pdf = plot_answer(led, figures_dir(root / "figures") / "answer")
            print(png)
            print(pdf)
            page = root / "docs" / "ledger.md"
            page.write_text(ledger_page(led), encoding="utf-8")
            print(page)
    except (FileNotFoundError, ValueError) as exc:
        print(f"python -m w2s_theory.answer: {exc}", file=sys.stderr)
        return 2
    return 0
