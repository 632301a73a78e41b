"""``w2s-theory partial --config FILE``: parse, load the config, call the partial fine-tuning pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import finetune as ft
from ..pipelines import partial as pipeline
from ..pipelines import preflight
from . import common
from .report import print_short_answer

PROG = "w2s-theory partial"


def parser() -> common.Parser:
    p = common.config_parser(
        PROG, "Partial fine-tuning sweep (top k blocks) on a full fine-tuning TOML config plus "
              "[partial].",
        config="TOML file (see experiments/finetune/*_partial.toml)",
        out="result CSV (overrides [partial] out)", quiet="no progress output",
        dry_run="print the plan, check every model, data source and output folder (one line per "
                "problem), and exit (2 if the run could not start)")
    p.add_argument("--time-limit", type=common.nonneg_float, default=None,
                   help="seconds after which no new run starts")
    return p


def load(args) -> pipeline.PartialConfig:
    """The config file with ``--out`` applied (`w2s_theory.cli.common.output_path`)."""
    pc = pipeline.PartialConfig.from_toml(args.config)
    return replace(pc, out=str(common.output_path(args.out, pc.out_path()).absolute()))


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    pc = common.read_config(load, args)
    pre = preflight.finetune(pc.sweep, out=pc.out_path())
    if args.dry_run:
        sw = pc.sweep
        return common.dry_run_exit(PROG, pre, [
            f"{sw.name}: partial fine-tuning, top k blocks for k in {list(pc.blocks)}"
            f"{' + the last-layer baseline' if pc.last_layer else ''} -> {pc.out_path()}",
            *ft.plan_lines(sw)[1:-1]])
    if not pre.ok:
        return common.preflight_error(PROG, pre)
    common.track_table(pc.out_path())
    with common.quiet_progress(args.quiet, datasets=True):
        pipeline.run(pc, log=(lambda *_: None) if args.quiet else print,
                     time_limit=args.time_limit)
    if not args.quiet:
        print_short_answer(pc.out_path(), prog=PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
