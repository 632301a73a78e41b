"""``w2s-theory demo``: parse, load the config, call the demo pipeline, print its table."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..pipelines import demo as pipeline
from .common import (
    BAD_CONFIG,
    Parser,
    add_out,
    add_quiet,
    command,
    nonneg_int,
    quiet_progress,
    usage_error,
)

PROG = "w2s-theory demo"


def parser() -> Parser:
    ap = Parser(prog=PROG, description="small synthetic Lemma 1 / Theorem 2 check (seconds, no solver)")
    add_out(ap, "output folder (default: %(default)s)", default="results_local/demo")
    ap.add_argument("--config", help="TOML file overriding the embedded defaults")
    ap.add_argument("--seed", type=nonneg_int, help="override the config's seed (an integer >= 0)")
    add_quiet(ap, "no progress bar")
    return ap


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cfg = pipeline.DemoConfig.from_toml(args.config) if args.config else pipeline.DemoConfig()
        if args.seed is not None:
            cfg = replace(cfg, seed=args.seed)
    except BAD_CONFIG as exc:
        return usage_error(PROG, exc)
    out = Path(args.out)
    from ..pipelines.preflight import output_problem

    why = output_problem(out, "out", folder=True)
    if why is not None:
        return usage_error(PROG, why)
    with quiet_progress(args.quiet):
        res = pipeline.run(cfg, out, progress=not args.quiet)
    print(pipeline.format_table(res["summary"]))
    print(f"\nwrote {out}/lemma1_trials.csv, theorem2_cases.csv, summary.csv, config.json, demo.png, demo.pdf "
          f"({res['seconds']:.1f} s)")
    lem_bad, thm_bad = pipeline.violations(res["summary"])
    if lem_bad or thm_bad:
        print(f"FAILED: {lem_bad} Lemma-1 and {thm_bad} Theorem-2 (reverse, realizable) violations",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
