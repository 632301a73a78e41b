"""``w2s-theory demo``: parse, load the config, call the demo pipeline, print its table."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import demo as pipeline
from ..pipelines.preflight import output_problem
from . import common

PROG = "w2s-theory demo"
#: where the demo writes unless ``--out`` says otherwise (its config has no output key)
DEFAULT_OUT = "results_local/demo"


def parser() -> common.Parser:
    ap = common.config_parser(
        PROG, "small synthetic Lemma 1 / Theorem 2 check (seconds, no solver)",
        config="TOML file overriding the embedded defaults", config_required=False,
        quiet="no progress bar", out=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--seed", type=common.nonneg_int, help="override the config's seed (an integer >= 0)")
    return ap


def load(args) -> pipeline.DemoConfig:
    """The config file (or the embedded defaults) with the command line's overrides applied."""
    cfg = pipeline.DemoConfig.from_toml(args.config) if args.config else pipeline.DemoConfig()
    return replace(cfg, seed=args.seed) if args.seed is not None else cfg


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = common.read_config(load, args)
    out = common.output_path(args.out, None, DEFAULT_OUT)
    why = output_problem(out, "out", folder=True)
    if why is not None:
        return common.usage_error(PROG, why)
    with common.quiet_progress(args.quiet):
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
