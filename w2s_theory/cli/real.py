"""``w2s-theory real --config FILE``: parse, load the config, check it can run, call the real pipeline.

Before any work the device and every model the pairs need (installed weights or prebuilt
features) and the data files are checked (`w2s_theory.pipelines.preflight`); a missing
model stops the command with the install command, unless ``--skip-missing`` runs the pairs
whose models are present. ``--dry-run`` prints the plan and the same report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from ..pipelines import preflight
from ..pipelines import real as pipeline
from . import common
from .report import print_short_answer

PROG = "w2s-theory real"


def parser() -> common.Parser:
    p = common.config_parser(
        PROG, "Last-layer weak-to-strong sweep on LM features (HH-RLHF / VADER), each run with "
              "its Lemma 1 / Theorem 2 checks; resumable. Config: a TOML file (see "
              "experiments/real/*.toml).",
        config="TOML config file", out="result table (CSV); default: the config's 'out'",
        dry_run="list the runs and check every model, data source and output folder; one line "
                "per problem, exit 2 if any")
    p.add_argument("--seeds", help="override the seeds, e.g. 0,1,2")
    p.add_argument("--n-rows", type=common.nonneg_int, help="use only the first N rows of every split")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), help="head-training device")
    p.add_argument("--data-dir", help="HH-RLHF folder (default ../shared/data/hh_rlhf or "
                                      "$W2S_HH_RLHF_DIR)")
    p.add_argument("--features-dir", help="prebuilt features folder (default ../shared/features "
                                          "or $W2S_FEATURES_DIR)")
    p.add_argument("--cache-dir", help="cache of head weights and convex fits")
    p.add_argument("--no-convex", action="store_true", help="skip the convex heads")
    p.add_argument("--skip-missing", action="store_true",
                   help="run the pairs whose models are present, skip the others (default: "
                        "stop when a model is missing)")
    return p


def load(args) -> pipeline.RealConfig:
    """The config file with the command line's overrides applied."""
    cfg = pipeline.RealConfig.from_toml(args.config)
    over = {}
    if args.seeds:
        try:
            over["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ValueError(f"--seeds: expected integers separated by commas, got {args.seeds!r}") from None
    if args.n_rows is not None:
        over["n_rows"] = args.n_rows
    if args.device:
        over["device"] = args.device
    if args.data_dir:
        over["data_root"] = args.data_dir
    if args.features_dir:
        over["features_root"] = args.features_dir
    if args.cache_dir:
        over["cache"] = args.cache_dir
    if args.no_convex:
        over["convex"] = replace(cfg.convex, enabled=False)
    return replace(cfg, **over)


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``w2s-theory real``; returns the exit status."""
    args = parser().parse_args(argv)
    cfg = common.read_config(load, args)
    common.check_device(cfg.device)
    out = common.output_path(args.out, cfg.out_path())
    pre = preflight.real(cfg, out=out)
    keep = preflight.runnable_pairs(cfg, pre)
    skip_hint = (f"or pass --skip-missing to run the {len(keep)} of {len(cfg.pairs)} pairs whose "
                 f"models are present" if keep else "no pair has both its models")
    runnable = not pre.data and not pre.outputs and (
        not pre.missing or (args.skip_missing and keep))
    if pre.missing and args.skip_missing and keep:
        todo = replace(cfg, pairs=keep)
    else:
        todo = cfg
    if args.dry_run:
        runs = pipeline.enumerate_runs(cfg)
        gone = pre.missing_names()
        n_ok = sum(r.weak not in gone and r.strong not in gone for r in runs)
        lines = [f"{cfg.name}: {len(runs)} runs -> {out}"
                 + (f" ({n_ok} with their models present)" if gone else "")]
        for r in runs:
            flag = "  [model missing]" if r.weak in gone or r.strong in gone else ""
            lines.append(f"  {r.key} {r.dataset} {r.weak} -> {r.strong} seed={r.seed} "
                         f"noise={r.noise} {r.loss}{' +conf' if r.confidence else ''}{flag}")
        return common.dry_run_exit(PROG, pre, lines, ok=runnable, skip_hint=skip_hint)
    if not runnable:
        return common.preflight_error(PROG, pre, skip_hint=skip_hint)
    if pre.missing:
        print(f"{PROG}: skipping {len(cfg.pairs) - len(keep)} pairs whose models are missing "
              f"({', '.join(sorted(pre.missing_names()))})", file=sys.stderr)
    t0 = time.perf_counter()
    common.remove_cache_temps(PROG, todo.cache_path())
    common.track_table(out)
    with common.quiet_progress(args.quiet, datasets=True):
        df = pipeline.run(todo, out=out, progress=not args.quiet, config_file=str(args.config))
    print(f"{cfg.name}: {len(df)} rows in {out} ({time.perf_counter() - t0:.1f} s)")
    if not args.quiet:
        print_short_answer(out, prog=PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
