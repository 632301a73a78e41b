"""``w2s-theory synthetic --config FILE``: parse, load the config, call the synthetic pipeline."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..pipelines import preflight
from ..pipelines import synthetic as pipeline
from .common import (
    BAD_CONFIG,
    Parser,
    add_quiet,
    command,
    nonneg_int,
    preflight_error,
    quiet_progress,
    track_table,
    usage_error,
)
from .report import print_short_answer

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
    p.add_argument("--limit", type=nonneg_int, help="stop after this many new runs")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config and the output folders, say how many runs the sweep has, "
                        "and exit (2 if the run could not start)")
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
    pre = preflight.synthetic(results, None if a.no_figures else cfg.figures_dir)
    if a.dry_run:
        runs = pipeline.expand_runs(cfg)
        print(f"{cfg.name}: {len(runs)} runs ({len(cfg.seeds)} seeds) -> {results}"
              + ("" if a.no_figures else f"; figures -> {cfg.figures_dir}"))
        print("\n".join(pre.lines()))
        return 0 if pre.ok else preflight_error(PROG, pre)
    if not pre.ok:
        return preflight_error(PROG, pre)
    track_table(results)
    with quiet_progress(a.quiet):
        out = pipeline.run(cfg, results=results, limit=a.limit, progress=not a.quiet,
                           figures=not a.no_figures, figure_suffix="_ci" if a.ci else "")
    print(pipeline.format_summary(cfg, out["table"].frame()))
    print(f"\n{cfg.name}: {out['computed']} new runs, {out['skipped']} already done, "
          f"{out['errors']} failed fits, {out['seconds']:.1f} s -> {out['table'].path}")
    for path in out["figures"]:
        print(f"figure: {path}")
    if not a.quiet:
        print_short_answer(out["table"].path, prog=PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
