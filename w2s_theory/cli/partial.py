"""``w2s-theory partial --config FILE``: parse, load the config, call the partial fine-tuning pipeline."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import partial as pipeline
from ..pipelines import preflight
from .common import BAD_CONFIG, Parser, add_out, add_quiet, command, preflight_error, usage_error

PROG = "w2s-theory partial"


def parser() -> Parser:
    p = Parser(prog=PROG, description="Partial fine-tuning sweep (top k blocks) on a full "
                                      "fine-tuning TOML config plus [partial].")
    p.add_argument("--config", required=True, help="TOML file (see experiments/finetune/*_partial.toml)")
    add_out(p, "result CSV (overrides [partial] out)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds after which no new run starts")
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
    pre = preflight.finetune(pc.sweep)
    if not pre.ok:
        return preflight_error(PROG, pre)
    pipeline.run(pc, log=(lambda *_: None) if args.quiet else print, time_limit=args.time_limit)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
