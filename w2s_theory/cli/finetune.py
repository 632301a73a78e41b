"""``w2s-theory finetune --config FILE``: parse, load the config, call the fine-tuning pipeline.

Multi-GPU / multi-node: ``accelerate launch -m w2s_theory.cli finetune --config FILE.toml``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from ..pipelines import finetune as pipeline
from .common import BAD_CONFIG, Parser, usage_error

PROG = "w2s-theory finetune"


def parser() -> Parser:
    p = Parser(prog=PROG, description="Full fine-tuning weak-to-strong sweep (TOML config).")
    p.add_argument("--config", required=True, help="TOML file (see experiments/finetune/*.toml)")
    p.add_argument("--out", help="result CSV (overrides [run] out)")
    p.add_argument("--data-dir", help="HH-RLHF folder (overrides [data] root)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides [run] device")
    p.add_argument("--one-by-one", action="store_true",
                   help="train full runs one by one through the engine (accelerate when installed)")
    p.add_argument("--no-accelerate", action="store_true", help="plain torch engine for one-by-one runs")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds after which no new run/group starts")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (models, data, runs, training tokens) and exit; loads nothing")
    return p


def load(args) -> pipeline.FinetuneSweepConfig:
    """The config file with the command line's overrides applied."""
    cfg = pipeline.FinetuneSweepConfig.from_toml(args.config)
    run = cfg.run
    if args.out:
        run = replace(run, out=args.out)
    if args.device:
        run = replace(run, device=args.device)
    if args.one_by_one:
        run = replace(run, ensemble=False)
    if args.no_accelerate:
        run = replace(run, use_accelerate=False)
    data = replace(cfg.data, root=args.data_dir) if args.data_dir else cfg.data
    return replace(cfg, run=run, data=data)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        cfg = load(args)
    except BAD_CONFIG as exc:
        return usage_error(PROG, exc)
    if args.dry_run:
        print("\n".join(pipeline.plan_lines(cfg)))
        return 0
    res = pipeline.run(cfg, config_file=str(args.config), time_limit=args.time_limit,
                       progress=not args.no_progress)
    if res["rows"] is not None:
        s = res["summary"]
        res["log"](f"[finetune] {s['n_done']} runs trained, {len(res['rows'])} rows in {res['out']} "
                   f"({res['seconds']:.1f} s){' (stopped by the time limit)' if s['stopped'] else ''}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
