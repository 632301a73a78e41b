#!/usr/bin/env python3
"""Full fine-tuning weak-to-strong sweep on one GPU (all-MiniLM-L6-v2 students, wordllama teacher).

Three sub-commands:

``prepare`` (here, on the CPU machine with the project's venv)::

    .venv/bin/python experiments/gpu/finetune_sweep.py prepare --out .device/ft

writes everything the GPU run needs into one folder (checked to stay under
``--max-mib``, default 55 MiB, since it travels in one 64 MiB call):
``model/`` (the strong backbone, fp16 safetensors + config + tokenizer files),
``<subset>.npz`` (uint16 token ids of train_w2s / test pairs without special
tokens, slot labels, the weak model's soft labels on train_w2s and test),
``<subset>.json`` (provenance: weak model and its CV-chosen L2 and accuracies,
sources' sha256, slot seeds), ``sweep.json`` / ``sweep_cpu.json`` (the resolved
sweep configs from ``experiments/finetune/gpu_sweep.toml`` / ``gpu_cpu.toml``) and
``manifest.json`` (sizes, sha256).

``run`` (on the GPU machine; needs only python3 + torch + transformers + numpy,
tqdm; accelerate and scipy are optional)::

    PYTHONUNBUFFERED=1 python3 experiments/gpu/finetune_sweep.py run --data .device/ft --out $OUT

trains, per subset (harmless first): the strong ceilings and the students
(4 losses x 6 noise levels x 3 seeds) fully fine-tuned one by one
(`w2s_theory.finetune.train`, batch 16, one epoch, lr 1e-5, cosine, bf16 autocast), then
the same grid head-only (last layer); the first student is trained again to time it and to
check that it reproduces its stored predictions. A time guard (``--time-budget`` seconds
from the start) stops launching new runs and keeps what finished. Writes to ``--out``:
``<subset>.preds.npz`` (test logits + run records), ``timings.json``, ``log.txt``
and, if scipy is there, ``<subset>_rows.csv``. Without CUDA it runs the reduced
``sweep_cpu.json`` on the first rows (tests do that).

``ingest`` (back here)::

    .venv/bin/python experiments/gpu/finetune_sweep.py ingest --from <folder with the run's files> \\
        --data .device/ft --to experiments/results/finetune

turns the prediction stores into result rows with the project's metrics and
bound checks (``gpu_sweep.csv``) and copies ``timings.json`` and the log as
``gpu_timings.json`` / ``gpu_log.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

SUBSETS = ("harmless", "helpful")


class Log:
    """Print (flushed) and append to a log file."""

    def __init__(self, path: Path | None):
        self.path = path
        self.t0 = time.monotonic()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

    def __call__(self, msg: str) -> None:
        line = f"[{time.monotonic() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20


# ============================================================================= prepare
def _save_model(src: Path, dest: Path, tiny: bool) -> dict:
    """The strong backbone as fp16 safetensors + its tokenizer (or a tiny random BERT for tests)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.finetune import load_backbone

    tok = AutoTokenizer.from_pretrained(str(src), local_files_only=True)
    if tiny:
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=512)
        model = BertModel(cfg, add_pooling_layer=False)
    else:
        model = load_backbone(src)
    if dest.exists():
        shutil.rmtree(dest)
    model.half().save_pretrained(str(dest), safe_serialization=True)
    tok.save_pretrained(str(dest))
    return {"source": str(src), "tiny_random": tiny, "params": sum(p.numel() for p in model.parameters())}


def cmd_prepare(args) -> int:
    from w2s_theory.atomic_io import atomic_write_text
    from w2s_theory.pipelines.finetune import (
        FinetuneSweepConfig,
        build_bundle,
        resolve_model_dir,
        save_bundle,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(None)
    gpu = FinetuneSweepConfig.from_toml(args.config)
    cpu = FinetuneSweepConfig.from_toml(args.cpu_config)
    src = resolve_model_dir(gpu.strong)
    if args.reuse and (out / "model" / "config.json").exists():
        info = {"source": str(src), "tiny_random": args.tiny, "kept": True}
    else:
        info = _save_model(src, out / "model", args.tiny)
    log(f"model: {info}")
    for subset in args.subsets:
        if args.reuse and (out / f"{subset}.npz").exists() and (out / f"{subset}.json").exists():
            log(f"{subset}: kept the existing {subset}.npz / {subset}.json (--reuse)")
            continue
        data = gpu.data.__class__(**{**gpu.data.__dict__, "subset": subset,
                                     "n_train": args.n_train, "n_test": args.n_test})
        cfg = gpu.__class__(**{**gpu.__dict__, "data": data})
        t0 = time.perf_counter()
        b = build_bundle(cfg, progress=False)
        b.meta["model_fp16"] = True
        b.meta["model_info"] = info
        save_bundle(b, out)
        log(f"{subset}: {len(b.train)} train / {len(b.test)} test pairs, weak {b.meta['weak_model']} "
            f"L2 {b.meta['weak_l2']:g} test acc {b.meta['weak_acc_test']:.4f} "
            f"({time.perf_counter() - t0:.1f} s)")
    for name, c in (("sweep.json", gpu), ("sweep_cpu.json", cpu)):
        atomic_write_text(out / name, json.dumps(c.to_dict(), indent=1, sort_keys=True))
    files = {str(p.relative_to(out)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    mib = _folder_mib(out)
    atomic_write_text(out / "manifest.json", json.dumps(
        {"subsets": list(args.subsets), "total_mib": round(mib, 2), "files": files,
         "config": str(args.config), "cpu_config": str(args.cpu_config)}, indent=1))
    mib = _folder_mib(out)
    log(f"prepared {out}: {mib:.1f} MiB in {len(files) + 1} files")
    if mib > args.max_mib:
        log(f"ERROR: {mib:.1f} MiB exceeds --max-mib {args.max_mib}")
        return 1
    return 0


# ============================================================================= run
def _config(path: Path):
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig

    return FinetuneSweepConfig.from_dict(json.loads(path.read_text()))


def _one_by_one_check(cfg, bundle, store, dev, log) -> dict:
    """Train the first full student again; time it and compare with its stored predictions."""
    import torch

    from w2s_theory.finetune import (
        build_model,
        load_backbone,
        make_engine,
        make_targets,
        predict,
        train,
    )
    from w2s_theory.pipelines.finetune import plan_runs

    spec = next(r for r in plan_runs(cfg, bundle.meta) if r.regime == "full" and r.role == "student")
    if not store.has(spec.key):
        return {}
    backbone = load_backbone(bundle.model_dir)
    model = build_model(backbone, spec.cfg)
    eng = make_engine(spec.cfg, cpu=dev.type == "cpu")
    st = train(model, bundle.train, make_targets(bundle.weak_train, spec.cfg), spec.cfg, engine=eng,
               progress=False)
    t0 = time.perf_counter()
    p1 = predict(model, bundle.test, spec.cfg, engine=eng)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    ev = time.perf_counter() - t0
    pe = 1.0 / (1.0 + np.exp(-store.logits[spec.key].astype(np.float64)))
    y = bundle.test.labels
    out = {"run": spec.coords(), "one_by_one_train_s": st.wall_s, "one_by_one_eval_s": ev,
           "one_by_one_tokens_per_s": st.tokens_per_s, "one_by_one_real_tokens": st.real_tokens,
           "one_by_one_padded_tokens": st.padded_tokens, "precision": st.precision,
           "max_abs_prob_diff": float(np.abs(p1 - pe).max()),
           "mean_abs_prob_diff": float(np.abs(p1 - pe).mean()),
           "hard_label_agreement": float(np.mean((p1 > 0.5) == (pe > 0.5))),
           "acc_one_by_one": float(np.mean((p1 > 0.5) == (y == 1))),
           "acc_stored": float(np.mean((pe > 0.5) == (y == 1)))}
    log(f"one-by-one check ({spec.cfg.loss}, noise {spec.cfg.noise}, seed {spec.cfg.seed}): "
        f"{st.wall_s:.1f} s, {st.tokens_per_s:.0f} tok/s; |p - p_stored| max {out['max_abs_prob_diff']:.2e} "
        f"mean {out['mean_abs_prob_diff']:.2e}, acc {out['acc_one_by_one']:.4f} vs "
        f"{out['acc_stored']:.4f}")
    return out


def _try_rows(store, bundle, cfg, path: Path, log) -> None:
    try:
        import scipy  # noqa: F401
    except ImportError:
        log("scipy missing: result rows are left to `ingest`")
        return
    import csv

    from w2s_theory.pipelines.finetune import rows_from_store

    rows = rows_from_store(store, bundle.meta, bundle.test.labels, bundle.weak_test, cfg.run.gamma)
    cols = sorted({k for r in rows for k in r})
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    log(f"{len(rows)} rows -> {path.name}")


def _cut(bundle, n_train: int, n_test: int):
    from w2s_theory.pipelines.finetune import Bundle

    ntr, nte = min(n_train, len(bundle.train)), min(n_test, len(bundle.test))
    meta = {**bundle.meta, "n_train": ntr, "n_test": nte}
    return Bundle(bundle.subset, bundle.train.subset(np.arange(ntr)), bundle.test.subset(np.arange(nte)),
                  bundle.weak_train[:ntr], bundle.weak_test[:nte], bundle.model_dir, meta)


def cmd_run(args) -> int:
    t_start = time.monotonic()
    deadline = t_start + args.time_budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.txt")
    import torch

    from w2s_theory.pipelines.finetune import PredStore, bundle_fingerprint, execute, load_bundle

    data = Path(args.data)
    cuda = torch.cuda.is_available() and not args.cpu
    dev = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(max(1, min(args.threads, os.cpu_count() or 1)))
    cfg = _config(data / ("sweep.json" if cuda else "sweep_cpu.json"))
    from dataclasses import replace

    cfg = replace(cfg, run=replace(cfg.run, device=dev.type))
    try:
        import transformers
        tv = transformers.__version__
    except Exception:  # noqa: BLE001
        tv = "?"
    devname = torch.cuda.get_device_name(dev) if cuda else f"cpu ({platform.processor() or platform.machine()})"
    log(f"device {devname}; torch {torch.__version__}, transformers {tv}, python "
        f"{platform.python_version()}; sweep {cfg.name}; budget {args.time_budget:.0f} s")
    timings = {"device": devname, "torch": torch.__version__, "transformers": tv,
               "sweep": cfg.name, "time_budget_s": args.time_budget, "subsets": {}}
    subsets = args.subsets or json.loads((data / "manifest.json").read_text())["subsets"]
    for subset in subsets:
        if time.monotonic() > deadline:
            log(f"deadline: skip {subset}")
            break
        t0 = time.perf_counter()
        bundle = load_bundle(data, subset)
        if not cuda:
            bundle = _cut(bundle, args.cpu_rows, args.cpu_rows)
        store = PredStore(out / f"{subset}.preds.npz", n_test=len(bundle.test),
                          fingerprint=bundle_fingerprint(bundle))
        log(f"{subset}: {len(bundle.train)} train / {len(bundle.test)} test pairs; weak test acc "
            f"{bundle.meta['weak_acc_test']:.4f}; {len(store.records)} runs already stored")
        try:
            summary = execute(cfg, bundle, store, deadline=deadline, progress=args.progress, log=log)
        except Exception as exc:  # noqa: BLE001 - keep what finished, report, go on
            import traceback

            log(f"ERROR in {subset}: {exc!r}\n{traceback.format_exc()}")
            summary = {"error": repr(exc), "full_s": 0.0, "head_only_s": 0.0, "n_done": 0,
                       "stopped": True}
        sub = {"wall_s": time.perf_counter() - t0, **summary, "n_stored": len(store.records),
               "n_train": len(bundle.train), "n_test": len(bundle.test)}
        full = [r for r in store.records.values() if r["regime"] == "full"]
        if full:
            sub["full_runs_per_s"] = len(full) / max(summary["full_s"], 1e-9) if summary["full_s"] else None
        if not args.skip_check and subset == subsets[0] and time.monotonic() + 30 < deadline:
            try:
                sub["one_by_one"] = _one_by_one_check(cfg, bundle, store, dev, log)
            except Exception as exc:  # noqa: BLE001
                log(f"ERROR in the one-by-one check: {exc!r}")
                sub["one_by_one"] = {"error": repr(exc)}
        timings["subsets"][subset] = sub
        _write_json(out / "timings.json", timings)
        _try_rows(store, bundle, cfg, out / f"{subset}_rows.csv", log)
        shutil.copy(data / f"{subset}.json", out / f"{subset}.bundle.json") if args.copy_meta else None
        log(f"{subset}: done in {sub['wall_s']:.1f} s ({summary['n_done']} runs this call, "
            f"{len(store.records)} stored){' - stopped by the time guard' if summary['stopped'] else ''}")
    timings["total_s"] = time.monotonic() - t_start
    _write_json(out / "timings.json", timings)
    log(f"total {timings['total_s']:.1f} s")
    return 0


def _write_json(path: Path, obj) -> None:
    from w2s_theory.atomic_io import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=1, default=float))


# ============================================================================= ingest
def cmd_ingest(args) -> int:
    from w2s_theory.atomic_io import atomic_write_text
    from w2s_theory.pipelines.finetune import PredStore, load_bundle, rows_from_store
    from w2s_theory.sweep import ResultTable

    src, dst, data = Path(args.src), Path(args.to), Path(args.data)
    dst.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((data / "sweep.json").read_text())
    gamma = float(cfg["run"]["gamma"])
    ran = {}
    if (src / "timings.json").exists():
        ran = json.loads((src / "timings.json").read_text()).get("subsets", {})
    rows = []
    for p in sorted(src.glob("*.preds.npz")):
        subset = p.name.split(".")[0]
        bundle = load_bundle(data, subset)
        store = PredStore(p)
        devices = {r["device"] for r in store.records.values()}
        ntest = {len(v) for v in store.logits.values()}
        used = ran.get(subset, {}).get("n_test", len(bundle.test))
        if ntest != {used} or used > len(bundle.test):
            raise ValueError(f"{p}: logits of length {ntest} do not match the {used} test pairs "
                             f"the run used of {data / subset}.npz (prepared for another size?)")
        if used < len(bundle.test):          # the CPU path ran on the first rows
            bundle = _cut(bundle, ran[subset]["n_train"], used)
        rows += rows_from_store(store, bundle.meta, bundle.test.labels, bundle.weak_test, gamma,
                                extra={"config_file": "sweep.json (experiments/finetune/gpu_sweep.toml)",
                                       "sweep": cfg["name"]})
        print(f"{p.name}: {len(store.records)} runs on {sorted(devices)}")
    out = dst / args.name
    if out.exists():
        out.unlink()
    table = ResultTable(out)
    table.extend(rows)
    for name, new in (("timings.json", "gpu_timings.json"), ("log.txt", "gpu_log.txt")):
        if (src / name).exists():
            atomic_write_text(dst / new, (src / name).read_text())
    print(f"{len(rows)} rows -> {out}")
    return 0


# ============================================================================= CLI
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare", help="write the data folder for the GPU run (here)")
    a.add_argument("--out", default=str(REPO / ".device" / "ft"))
    a.add_argument("--config", default=str(REPO / "experiments/finetune/gpu_sweep.toml"))
    a.add_argument("--cpu-config", default=str(REPO / "experiments/finetune/gpu_cpu.toml"))
    a.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=SUBSETS)
    a.add_argument("--n-train", type=int, default=0, help="pairs per train split (0 = all)")
    a.add_argument("--n-test", type=int, default=0, help="test pairs (0 = all)")
    a.add_argument("--tiny", action="store_true", help="a tiny random BERT instead of the strong model (tests)")
    a.add_argument("--max-mib", type=float, default=55.0)
    a.add_argument("--reuse", action="store_true",
                   help="keep model/ and <subset>.npz/.json already in --out; rewrite the sweep configs")
    r = sub.add_parser("run", help="train and evaluate (GPU, or a reduced sweep on CPU)")
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--time-budget", type=float, default=330.0, help="seconds; no new run after it")
    r.add_argument("--subsets", nargs="+", choices=SUBSETS)
    r.add_argument("--cpu", action="store_true", help="force the CPU path")
    r.add_argument("--cpu-rows", type=int, default=32, help="CPU path: first rows of each split")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--skip-check", action="store_true", help="no repeated run (timing and reproducibility)")
    r.add_argument("--copy-meta", action="store_true", help="also copy <subset>.json to --out")
    r.add_argument("--progress", action="store_true", help="tqdm bars (off: log lines only)")
    g = sub.add_parser("ingest", help="result rows from a run's prediction stores (here)")
    g.add_argument("--from", dest="src", required=True)
    g.add_argument("--data", default=str(REPO / ".device" / "ft"))
    g.add_argument("--to", default=str(REPO / "experiments" / "results" / "finetune"))
    g.add_argument("--name", default="gpu_sweep.csv")
    args = p.parse_args(argv)
    return {"prepare": cmd_prepare, "run": cmd_run, "ingest": cmd_ingest}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
