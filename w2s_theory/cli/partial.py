"""``w2s-theory partial --config FILE``: parse, load the config, call the partial fine-tuning pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import partial as pipeline
from ..pipelines import preflight
from .common import (
    BAD_CONFIG,
    Parser,
    add_out,
    add_quiet,
    command,
    nonneg_float,
    preflight_error,
    quiet_progress,
    track_table,
    usage_error,
)
from .report import print_short_answer

PROG = "w2s-theory partial"


def parser() -> Parser:
    p = Parser(prog=PROG, description="Partial fine-tuning sweep (top k blocks) on a full "
                                      "fine-tuning TOML config plus [partial].")
    p.add_argument("--config", required=True, help="TOML file (see experiments/finetune/*_partial.toml)")
    add_out(p, "result CSV (overrides [partial] out)")
    p.add_argument("--time-limit", type=nonneg_float, default=None,
                   help="seconds after which no new run starts")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, check every model, data source and output folder (one "
                        "line per problem), and exit (2 if the run could not start)")
    add_quiet(p, "no progress output")
    return p


@command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        pc = pipeline.PartialConfig.from_toml(args.config)
    except BAD_CONFIG as exc:
        return usage_error(PROG, exc)
    if args.out:
        pc = replace(pc, out=args.out)
    pre = preflight.finetune(pc.sweep, out=pc.out_path())
    if args.dry_run:
        from ..pipelines import finetune as ft

        sw = pc.sweep
        print(f"{sw.name}: partial fine-tuning, top k blocks for k in {list(pc.blocks)}"
              f"{' + the last-layer baseline' if pc.last_layer else ''} -> {pc.out_path()}")
        print("\n".join(ft.plan_lines(sw)[1:-1] + pre.lines()))
        return 0 if pre.ok else preflight_error(PROG, pre)
    if not pre.ok:
        return preflight_error(PROG, pre)
    track_table(pc.out_path())
    with quiet_progress(args.quiet, datasets=True):
        pipeline.run(pc, log=(lambda *_: None) if args.quiet else print,
                     time_limit=args.time_limit)
    if not args.quiet:
        print_short_answer(pc.out_path(), prog=PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
