"""Running a real sweep: every run's row (`evaluate_run`, `w2s_theory.protocol.result_row`),
appended to a resumable result table (`run_sweep`, `run`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ...models import PresetView
from ...protocol import FitPopulation, result_row
from ...provenance import git_commit, machine_name
from ...runtime import thread_limit
from ...sweep import ResultTable, run_key
from .bank import FeatureBank
from .config import RealConfig
from .convex import convex_results
from .phases import train_students, train_teachers, weak_labels
from .runs import PROTOCOL_VERSION, Run, enumerate_runs

__all__ = ["MODEL_NOTES", "PROVENANCE_COLUMNS", "evaluate_run", "run_sweep", "run"]

#: What each feature set is, for honest labels in tables and figures (a live view of each
#: preset's ``notes`` in `w2s_theory.models.REGISTRY`).
MODEL_NOTES = PresetView(lambda p: p.notes)

#: Columns that describe where/when a row was computed, not what it found (excluded when
#: checking that the same config and seed give the same row).
PROVENANCE_COLUMNS = ("git_commit", "machine", "device", "torch_version", "train_wall_s",
                      "eval_wall_s", "cvx_wall_s", "cvx_t2mis_wall_s", "created_utc", "config_file")


def evaluate_run(cfg: RealConfig, bank: FeatureBank, teachers: dict, students: dict,
                 run: Run) -> dict:
    """The result columns of one student run (`w2s_theory.protocol.result_row`: metrics and
    bound checks on the test split and the fitting population; no provenance)."""
    ds, sd = run.dataset, run.seed
    wc = teachers[("ceiling", ds, run.strong, sd)]
    ws = students[run.key]
    fit = FitPopulation(labels=bank.labels(ds, "train_w2s", sd),
                        weak_labels=weak_labels(cfg, bank, teachers, ds, run.weak, sd, run.noise),
                        student=bank.probs(ds, run.strong, "train_w2s", sd, ws),
                        ceiling=bank.probs(ds, run.strong, "train_w2s", sd, wc))
    return result_row(bank.labels(ds, "test", sd),
                      bank.probs(ds, run.weak, "test", sd, teachers[("weak", ds, run.weak, sd)]),
                      bank.probs(ds, run.strong, "test", sd, ws),
                      bank.probs(ds, run.strong, "test", sd, wc),
                      gamma=cfg.gamma, n_classes=bank.n_classes(ds), fit=fit)



def run_sweep(cfg: RealConfig, *, out: str | os.PathLike | None = None, progress: bool = True,
              config_file: str = "", after_row: Callable[[dict], None] | None = None,
              bank: FeatureBank | None = None):
    """Run (or resume) a sweep; returns the result table as a DataFrame.

    Rows already in the table are skipped; trained weights are cached under
    ``cfg.cache_path()/<name>-<hash>``; each finished row is appended atomically,
    then ``after_row(row)`` is called (tests use it to interrupt a sweep). ``bank``
    replaces the default `FeatureBank` (e.g. with features computed live).
    """
    import torch

    outside = torch.get_num_threads()     # the feature pass gets these back (feature_threads = 0)
    with thread_limit(cfg.threads or None, blas=True):   # 0: torch's default
        return _run_sweep(cfg, out, progress, config_file, after_row, bank, outside)


def _run_sweep(cfg, out, progress, config_file, after_row, bank, outside_threads=None):
    import torch

    path = Path(out) if out is not None else cfg.out_path()
    table = ResultTable(path)
    runs = enumerate_runs(cfg)
    pending = [r for r in runs if not table.has(r.key)]
    incomplete = _incomplete_convex_rows(cfg, runs, table)
    if not pending and not incomplete:
        return table.frame()
    sweep_hash = run_key({"runs": [r.key for r in runs]})
    cache0 = cfg.cache_path() / f"{cfg.name}-{sweep_hash}"
    commit, machine = git_commit(), machine_name()
    first = bank
    for split in cfg.splits:                      # one split at a time: its own teachers
        s_pending = [r for r in pending if r.split == split]
        s_incomplete = [(r, row) for r, row in incomplete if r.split == split]
        if not s_pending and not s_incomplete:
            continue
        s_runs = [r for r in runs if r.split == split]
        cache = cache0 if split == 0 else cache0 / f"split-{split}"
        cache.mkdir(parents=True, exist_ok=True)
        if split == 0 and bank is not None:
            s_bank = bank
        else:
            s_bank = FeatureBank(cfg, progress=progress, feature_threads=outside_threads,
                                 split=split, share=first,
                                 loader=None if first is None else first.loader)
        first = first or s_bank
        _run_split(cfg, s_runs, s_pending, s_incomplete, s_bank, cache, table, progress,
                   config_file, after_row, commit, machine, torch.__version__)
    return table.frame()


def _run_split(cfg, runs, pending, incomplete, bank, cache, table, progress, config_file,
               after_row, commit, machine, torch_version) -> None:
    """Teachers, students and rows of the runs of one data split."""
    teachers, tmeta = train_teachers(cfg, runs, bank, cache, progress)
    students, smeta = train_students(cfg, runs, bank, teachers, cache, progress)
    if incomplete:
        _complete_convex_rows(cfg, bank, teachers, incomplete, table, progress, after_row)
    it: Iterable = pending
    if progress:
        from tqdm.auto import tqdm

        desc = f"{cfg.name}: evaluating" + (f" (split {bank.split})" if cfg.resplit else "")
        it = tqdm(pending, desc=desc, unit="run")
    for run in it:
        t0 = time.perf_counter()
        row = {"run_key": run.key, "sweep": cfg.name, "dataset": run.dataset, "weak": run.weak,
               "strong": run.strong, "strong_note": MODEL_NOTES.get(run.strong, ""),
               "loss": run.loss, "confidence": run.confidence, "noise": run.noise,
               "seed": run.seed, "gamma": cfg.gamma, "lr": cfg.train.lr,
               "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size,
               "train_dtype": cfg.train.dtype, "protocol": PROTOCOL_VERSION}
        if cfg.resplit:
            row["split"] = run.split
        row.update(evaluate_run(cfg, bank, teachers, students, run))
        if cfg.convex.covers(run.seed):
            row.update(convex_results(cfg, bank, teachers, run, cfg.cache_path() / "convex"))
        row.update({
            "train_heads": smeta.get("n_heads"), "train_wall_s": smeta.get("wall_s"),
            "eval_wall_s": time.perf_counter() - t0, "device": smeta.get("device"),
            "machine": machine, "git_commit": commit, "torch_version": torch_version,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config_file": config_file,
        })
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        table.append(row)
        if after_row is not None:
            after_row(row)


def _incomplete_convex_rows(cfg: RealConfig, runs: list[Run], table) -> list[tuple[Run, dict]]:
    """Finished rows that lack convex columns their config asks for: ``[(run, row)]``. A row
    of a covered seed without any convex fit (made while ``convex.seeds`` left it out), or
    without the misspecified Theorem 2 columns (made before they existed)."""
    if not cfg.convex.enabled:
        return []
    want_mis = cfg.convex.misspecified and "reverse_kl" in cfg.convex.divergences
    by_key = {r.key: r for r in runs if cfg.convex.covers(r.seed) and table.has(r.key)}
    if not by_key:
        return []
    out = []
    for row in table.frame().to_dict("records"):
        run = by_key.get(row["run_key"])
        if run is None:
            continue
        if not isinstance(row.get("cvx_ceiling_status"), str):
            out.append((run, row))            # no convex fit yet (convex.seeds widened)
            continue
        if not want_mis:
            continue
        st = row.get("cvx_rkl_status")
        if not isinstance(st, str) or st.startswith("error"):
            continue                          # no reverse-KL fit to check
        if isinstance(row.get("cvx_rkl_t2mis_eps_status"), str):
            continue
        out.append((run, row))
    return out


def _complete_convex_rows(cfg, bank, teachers, incomplete, table, progress, after_row) -> None:
    """Add the convex columns a finished row lacks: all of them when the row has no convex
    fit (a sweep rerun with more ``convex.seeds``), else the misspecified Theorem 2 columns
    (one reverse-KL refit and one LP a group); through the convex cache. The row's other
    columns, provenance included, are kept."""
    cache = cfg.cache_path() / "convex"
    it: Iterable = incomplete
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(incomplete, desc=f"{cfg.name}: convex columns of finished rows", unit="row")
    for run, row in it:
        cols = convex_results(cfg, bank, teachers, run, cache)
        if not isinstance(row.get("cvx_ceiling_status"), str):
            new = cols
        else:
            new = {k: v for k, v in cols.items() if k.startswith("cvx_rkl_t2mis_")
                   or k == "cvx_t2mis_wall_s"}
        row = {**row, **new}
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        table.append(row)
        if after_row is not None:
            after_row(row)


def run(cfg: RealConfig, *, out: str | os.PathLike | None = None, progress: bool = True,
        config_file: str = "", after_row: Callable[[dict], None] | None = None,
        bank: FeatureBank | None = None):
    """The real pipeline's entry point: `run_sweep` (the result table as a DataFrame)."""
    return run_sweep(cfg, out=out, progress=progress, config_file=config_file,
                     after_row=after_row, bank=bank)
