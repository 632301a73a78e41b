"""Run the four re-split tables (issue 18), minibatch heads first, then the convex fits.

Pass 1 runs every table with ``convex.seeds = []`` (trained heads only: minutes), so that all
splits' minibatch rows exist early; pass 2 reruns each config as written, which adds the exact
convex columns to the rows of ``convex.seeds`` (`w2s_theory.pipelines.real` completes finished
rows). Run keys do not depend on ``convex.seeds``: both passes write the same rows. Resumable
(rerun after a kill: finished rows are kept). ``--pass 1`` or ``--pass 2`` runs one pass only.

    python experiments/real/splits/run.py [--pass 1|2] [--only main,vader]
"""

import argparse
from dataclasses import replace
from pathlib import Path

from w2s_theory.pipelines.real import RealConfig, run_sweep

HERE = Path(__file__).resolve().parent
ORDER = ["main", "vader", "confidence", "noise"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pass", dest="which", type=int, choices=(1, 2))
    p.add_argument("--only", default=",".join(ORDER))
    a = p.parse_args(argv)
    names = [n for n in ORDER if n in a.only.split(",")]
    for which in ([a.which] if a.which else [1, 2]):
        for name in names:
            path = HERE / f"{name}.toml"
            cfg = RealConfig.from_toml(path)
            if which == 1 and cfg.convex.enabled:
                cfg = replace(cfg, convex=replace(cfg.convex, seeds=()))
            print(f"pass {which}: {name}", flush=True)
            df = run_sweep(cfg, config_file=str(path.relative_to(HERE.parents[2])))
            print(f"pass {which}: {name}: {len(df)} rows", flush=True)


if __name__ == "__main__":
    main()
