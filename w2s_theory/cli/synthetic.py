"""``w2s-theory synthetic --config FILE``: parse, load the config, call the synthetic pipeline."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..pipelines import synthetic as pipeline
from .common import BAD_CONFIG, Parser, add_quiet, command, usage_error

PROG = "w2s-theory synthetic"
#: Where a run writes unless told otherwise: a folder that .gitignore ignores.
DEFAULT_OUT = "results_local/synthetic"


def parser() -> Parser:
    p = Parser(prog=PROG, description="Run a resumable synthetic W2SG sweep from a TOML config, "
                                      "write its result table and figures.")
    p.add_argument("--config", required=True, help="sweep TOML (see experiments/synthetic/)")
    p.add_argument("--ci", action="store_true", help="apply the config's [ci] (small) overrides")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"result CSV, or a folder for the table and figures (default: {DEFAULT_OUT}/, "
                        f"ignored by git; the committed tables are written only when asked, e.g. "
                        f"--out experiments/synthetic/results --figures-dir figures)")
    p.add_argument("--results", dest="results", help=argparse.SUPPRESS)   # old spelling: the CSV
    p.add_argument("--figures-dir", help="figure folder (default: the result table's folder)")
    p.add_argument("--limit", type=int, help="stop after this many new runs")
    p.add_argument("--no-figures", action="store_true")
    add_quiet(p, "no progress bar")
    return p


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    """``w2s-theory synthetic --config FILE [--ci] [--out CSV|DIR] [--limit N] [--no-figures]``.

    Writes under ``results_local/synthetic/`` (ignored by git) unless ``--out`` (a ``.csv``
    file, or a folder that gets ``<config's table name>.csv``) or ``--figures-dir`` say
    otherwise, and prints a short summary of the table.
    """
    a = parser().parse_args(argv)
    try:
        cfg = pipeline.load_sweep_config(a.config, ci=a.ci)
    except BAD_CONFIG as exc:
        return usage_error(PROG, exc)
    if a.results or a.out.endswith(".csv"):
        results = a.results or a.out
        out_dir = Path(results).parent
    else:
        out_dir = Path(a.out)
        results = str(out_dir / Path(cfg.results).name)   # the config's file name, OUT's folder
    cfg = replace(cfg, figures_dir=a.figures_dir or str(out_dir))
    out = pipeline.run(cfg, results=results, limit=a.limit, progress=not a.quiet,
                       figures=not a.no_figures, figure_suffix="_ci" if a.ci else "")
    print(pipeline.format_summary(cfg, out["table"].frame()))
    print(f"\n{cfg.name}: {out['computed']} new runs, {out['skipped']} already done, "
          f"{out['errors']} failed fits, {out['seconds']:.1f} s -> {out['table'].path}")
    for path in out["figures"]:
        print(f"figure: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
