"""The fine-tuning pipeline's entry point (`run`): weak teacher, lr selection, every run, the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ...runtime import resolve_device
from ...sweep import ResultTable
from .bundle import build_bundle
from .config import FinetuneSweepConfig
from .execute import execute
from .lr_select import select_lr
from .plan_text import preflight
from .rows import rows_from_store
from .store import InMemoryStore, PredStore, bundle_fingerprint


def run(cfg: FinetuneSweepConfig, *, config_file: str = "", time_limit: float | None = None,
        progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """The fine-tuning pipeline's entry point: weak head, lr selection, every run, the table.

    Builds the data bundle, selects the lr on held-out ``train_gt`` pairs when ``[lr_select]``
    has a grid, trains every planned run (resuming from the prediction store) and writes one
    row per run to ``cfg.out_path()`` after every finished run. Returns ``{"rows", "summary",
    "out", "seconds"}`` (``rows`` is ``None`` on non-main processes of a multi-process launch).
    """
    from ...finetune import end_processes, make_engine

    run_opts = cfg.run
    # one engine for every run: one process, or data-parallel under accelerate / torchrun
    engine = make_engine(cfg.train, cpu=resolve_device(run_opts.device).type == "cpu")
    main_proc = getattr(engine, "is_main_process", True)
    log = (log or print) if main_proc else (lambda *_: None)
    out = cfg.out_path()
    t0 = time.perf_counter()
    preflight(cfg)            # models and data reachable, before anything trains (exit 2 if not)
    bundle = build_bundle(cfg, progress=progress, log=log)
    l2 = bundle.meta["weak_l2"]
    how_weak = "fine-tuned" if l2 is None else f"L2 {l2:g}"
    log(f"[finetune] {cfg.name}: {bundle.subset}, weak {bundle.meta['weak_model']} "
        f"({how_weak}, test acc {bundle.meta['weak_acc_test']:.4f}), strong "
        f"{cfg.strong}, {len(bundle.train)} train / {len(bundle.test)} test pairs "
        f"({time.perf_counter() - t0:.1f} s)")
    lr, _ = select_lr(cfg, bundle, out.with_suffix(".lr_select.json"), progress=progress, log=log,
                      engine=engine)
    if cfg.lr_select.grid:
        log(f"[finetune] lr {lr:g} chosen on held-out train_gt pairs ({cfg.lr_select.metric})")
        cfg = replace(cfg, train=cfg.train.replace(lr=lr))
    extra = {"config_file": str(config_file), "sweep": cfg.name, "lr_rule": cfg.lr_select.rule()}
    store = PredStore(out.with_suffix(".preds.npz"), n_test=len(bundle.test),
                      fingerprint=bundle_fingerprint(bundle))
    if not main_proc:     # only the main process writes the prediction store and the table
        store = InMemoryStore(store)
    deadline = time.monotonic() + time_limit if time_limit else None
    table = ResultTable(out) if main_proc else None

    def write_rows():
        rows = rows_from_store(store, bundle.meta, bundle.test.labels, bundle.weak_test,
                               run_opts.gamma, extra=extra)
        table.extend([r for r in rows if not table.has(r["run_key"])
                      and (r["role"] == "ceiling" or not cfg.sweep.ceiling
                           or np.isfinite(r["ceiling_acc"]))])
        return rows

    # rows are written after every finished run, so a long sweep's table grows as it goes
    try:
        summary = execute(cfg, bundle, store, deadline=deadline, progress=progress, log=log,
                          engine=engine, on_done=write_rows if main_proc else None)
        rows = write_rows() if main_proc else None
        if int(getattr(engine, "num_processes", 1)) > 1:
            engine.wait_for_everyone()      # no rank leaves while the main one still writes
    finally:
        end_processes(engine)
    return {"rows": rows, "summary": summary, "out": out, "seconds": time.perf_counter() - t0,
            "log": log}
