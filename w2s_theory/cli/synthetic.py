"""``w2s-theory synthetic --config FILE``: parse, load the config, call the synthetic pipeline."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from ..pipelines import preflight
from ..pipelines import synthetic as pipeline
from . import common
from .report import print_short_answer

PROG = "w2s-theory synthetic"


def parser() -> common.Parser:
    p = common.config_parser(
        PROG, "Run a resumable synthetic W2SG sweep from a TOML config, write its result table "
              "and figures.",
        config="sweep TOML (see experiments/synthetic/)",
        out="result CSV, or a folder for the table and figures (default: the config's [sweep] "
            "results, relative to the project root)",
        dry_run="check the config and the output folders, say how many runs the sweep has, "
                "and exit (2 if the run could not start)", quiet="no progress bar")
    p.add_argument("--ci", action="store_true", help="apply the config's [ci] (small) overrides")
    p.add_argument("--results", dest="results", help=argparse.SUPPRESS)   # old spelling: the CSV
    p.add_argument("--figures-dir", help="figure folder (default: the result table's folder)")
    p.add_argument("--limit", type=common.nonneg_int, help="stop after this many new runs")
    p.add_argument("--no-figures", action="store_true")
    return p


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    """``w2s-theory synthetic --config FILE [--ci] [--out CSV|DIR] [--limit N] [--no-figures]``.

    Writes where the config's ``[sweep] results`` points (relative to the project root), as
    every command honours its config's output key (`w2s_theory.cli.common.output_path`),
    unless ``--out`` (a ``.csv`` file, or a folder that gets ``<config's table name>.csv``)
    says otherwise; figures go beside the table unless ``--figures-dir``. Prints a short
    summary of the table.
    """
    a = parser().parse_args(argv)
    cfg = common.read_config(pipeline.load_sweep_config, a.config, ci=a.ci)
    out = a.results or a.out
    if out is None or out.endswith(".csv"):
        results = str(common.output_path(out, cfg.results))
    else:
        results = str(Path(out) / Path(cfg.results).name)   # the config's file name, OUT's folder
    cfg = replace(cfg, figures_dir=a.figures_dir or str(Path(results).parent))
    pre = preflight.synthetic(results, None if a.no_figures else cfg.figures_dir)
    if a.dry_run:
        runs = pipeline.expand_runs(cfg)
        return common.dry_run_exit(PROG, pre, [
            f"{cfg.name}: {len(runs)} runs ({len(cfg.seeds)} seeds) -> {results}"
            + ("" if a.no_figures else f"; figures -> {cfg.figures_dir}")])
    if not pre.ok:
        return common.preflight_error(PROG, pre)
    common.track_table(results)
    with common.quiet_progress(a.quiet):
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
