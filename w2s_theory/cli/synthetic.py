"""``w2s-theory synthetic --config FILE``: parse, load the config, call the synthetic pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import synthetic as pipeline
from .common import BAD_CONFIG, Parser, add_out, add_quiet, command, usage_error

PROG = "w2s-theory synthetic"


def parser() -> Parser:
    p = Parser(prog=PROG, description="Run a resumable synthetic W2SG sweep from a TOML config, "
                                      "write its result table and figures.")
    p.add_argument("--config", required=True, help="sweep TOML (see experiments/synthetic/)")
    p.add_argument("--ci", action="store_true", help="apply the config's [ci] (small) overrides")
    add_out(p, "result CSV (default: the config's)", old=("--results",))
    p.add_argument("--figures-dir", help="figure folder (default: the config's, 'figures')")
    p.add_argument("--limit", type=int, help="stop after this many new runs")
    p.add_argument("--no-figures", action="store_true")
    add_quiet(p, "no progress bar")
    return p


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    """``w2s-theory synthetic --config FILE [--ci] [--out CSV] [--limit N] [--no-figures]``."""
    a = parser().parse_args(argv)
    try:
        cfg = pipeline.load_sweep_config(a.config, ci=a.ci)
        if a.figures_dir:
            cfg = replace(cfg, figures_dir=a.figures_dir)
    except BAD_CONFIG as exc:
        return usage_error(PROG, exc)
    out = pipeline.run(cfg, results=a.out, limit=a.limit, progress=not a.quiet,
                       figures=not a.no_figures, figure_suffix="_ci" if a.ci else "")
    print(f"{cfg.name}: {out['computed']} new runs, {out['skipped']} already done, "
          f"{out['errors']} failed fits, {out['seconds']:.1f} s -> {out['table'].path}")
    for path in out["figures"]:
        print(f"figure: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
