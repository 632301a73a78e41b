"""``w2s-theory finetune --config FILE``: parse, load the config, check it can run, call the pipeline.

Before any work the device, the strong model (a folder or an installed preset), the weak
supervisor's features and the data files are checked (`w2s_theory.pipelines.preflight`);
``--dry-run`` prints the plan and that report.

Multi-GPU / multi-node: ``accelerate launch -m w2s_theory.cli finetune --config FILE.toml``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ..pipelines import finetune as pipeline
from ..pipelines import preflight
from . import common
from .report import print_short_answer

PROG = "w2s-theory finetune"


def parser() -> common.Parser:
    p = common.config_parser(
        PROG, "Full fine-tuning weak-to-strong sweep (TOML config).",
        config="TOML file (see experiments/finetune/*.toml)",
        out="result CSV (overrides [run] out)",
        dry_run="print the plan (models, data, runs, training tokens; trains nothing), check "
                "every model, data source and output folder (one line per problem), and exit "
                "(2 if the run could not start)")
    p.add_argument("--data-dir", help="HH-RLHF folder (overrides [data] root)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="overrides [run] device")
    p.add_argument("--time-limit", type=common.nonneg_float, default=None,
                   help="seconds after which no new run starts")
    return p


def load(args) -> pipeline.FinetuneSweepConfig:
    """The config file with the command line's overrides applied."""
    cfg = pipeline.FinetuneSweepConfig.from_toml(args.config)
    run = replace(cfg.run, out=str(common.output_path(args.out, cfg.out_path()).absolute()))
    if args.device:
        run = replace(run, device=args.device)
    data = replace(cfg.data, root=args.data_dir) if args.data_dir else cfg.data
    return replace(cfg, run=run, data=data)


def plan_lines(cfg: pipeline.FinetuneSweepConfig) -> list[str]:
    """The ``--dry-run`` list of runs, below the pipeline's plan (`pipeline.plan_lines`).

    Run keys also hash the weak head's L2, fitted when the sweep runs, so they are not listed.
    """
    runs = pipeline.plan_runs(cfg, {"subset": cfg.data.subset, "ceiling_split": cfg.data.ceiling_split})
    lines = ["  runs:   regime role loss noise seed"]
    for r in runs:
        c = r.cfg
        lines.append(f"    {r.regime} {r.role} {c.loss} noise={c.noise} seed={c.seed}"
                     f"{' +conf' if c.confidence else ''}")
    return lines


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    cfg = common.read_config(load, args)
    common.check_device(cfg.run.device)
    pre = preflight.finetune(cfg)
    if args.dry_run:
        return common.dry_run_exit(PROG, pre, pipeline.plan_lines(cfg) + plan_lines(cfg))
    if not pre.ok:
        return common.preflight_error(PROG, pre)
    common.track_table(cfg.out_path())
    with common.quiet_progress(args.quiet, datasets=True):
        res = pipeline.run(cfg, config_file=str(args.config), time_limit=args.time_limit,
                           progress=not args.quiet)
    if res["rows"] is not None:
        s = res["summary"]
        res["log"](f"[finetune] {s['n_done']} runs trained, {len(res['rows'])} rows in {res['out']} "
                   f"({res['seconds']:.1f} s){' (stopped by the time limit)' if s['stopped'] else ''}")
        if not args.quiet:
            print_short_answer(res["out"], prog=PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
