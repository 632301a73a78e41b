"""The fine-tuning sweep's data bundle: pairs in slot order, weak probabilities, token ids.

`build_bundle` loads the data (the local HH-RLHF layout or ``[data] source``), fits the weak
teacher (`w2s_theory.pipelines.finetune.weak`) and tokenises every split for the strong model;
`save_bundle` / `load_bundle` store it (the GPU script ships it to the device machine).
Slot orders are fixed per split (``slot_seed``, ``+1``, ``+2`` for train_gt, train_w2s, test).
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic_io import atomic_write_bytes, atomic_write_text
from ...config import ConfigError
from ...data import N_ROWS, load_hh_rlhf, preference_task, text_digest
from ...features import feature_spec, resolve_spec
from ...hub import resolve_model
from ...metrics import accuracy
from ...models import preset_of
from ...sources import load_source, source_name
from .config import PROTOCOL_VERSION, SPLIT_SLOT_OFFSET, FinetuneSweepConfig
from .weak import n_classes_of, weak_teacher


@dataclass
class Bundle:
    """Everything a sweep trains and evaluates on (storable; see `save_bundle`).

    Attributes:
        subset: HH-RLHF subset.
        train: ``train_w2s`` pairs as a `TextTask` (labels = truth).
        test: ``test`` pairs.
        weak_train, weak_test: the weak model's ``P(A preferred)`` (``P(label 1)``) on them,
            ``(n,)`` float64, or its class probabilities ``(n, k)`` (a multiclass table).
        model_dir: folder of the strong backbone (transformers layout).
        meta: provenance (weak model, its L2 and accuracies, sources' sha256, slot seeds, ...).
        gt: ``train_gt`` pairs (labels = truth) when the sweep trains its ceiling there or
            chooses its lr on them; else ``None``.
    """

    subset: str
    train: Any
    test: Any
    weak_train: np.ndarray
    weak_test: np.ndarray
    model_dir: Path
    meta: dict
    gt: Any = None

    def ceiling_task(self):
        """The split the strong ceiling trains on (``meta['ceiling_split']``)."""
        if self.meta.get("ceiling_split", "train_w2s") == "train_gt":
            if self.gt is None:
                raise ValueError("bundle: the ceiling trains on train_gt but the bundle has no train_gt pairs")
            return self.gt
        return self.train

    def n_outputs(self) -> int:
        """The strong model's head outputs: ``meta['n_classes']`` (a multiclass table), else 1."""
        return int(self.meta.get("n_classes", 1))

    def truth_targets(self, labels) -> np.ndarray:
        """Ground-truth training targets: one-hot rows ``(n, k)`` for a multiclass table, else
        the 0/1 labels ``(n,)`` as float64."""
        labels = np.asarray(labels)
        if "n_classes" in self.meta:
            return np.eye(int(self.meta["n_classes"]))[labels.astype(np.int64)]
        return labels.astype(np.float64)


def _slots(pairs, seed: int, n: int):
    a, b, lab = preference_task(pairs, seed)
    return a[:n], b[:n], lab[:n]


def is_preset(name: str) -> bool:
    """Whether ``name`` is a model preset (or a preset's feature set), not a folder or hub id."""
    return preset_of(name) is not None


def _load_splits(cfg: FinetuneSweepConfig):
    """``(pairs or labelled texts per split, subset name, {split: rows used})``."""
    dc = cfg.data
    if dc.source is None:
        ntr, nte = dc.n_train or N_ROWS, dc.n_test or N_ROWS
        pairs = {sp: load_hh_rlhf(dc.subset, sp, dc.root) for sp in ("train_gt", "train_w2s", "test")}
        return pairs, dc.subset, {"train_gt": ntr, "train_w2s": ntr, "test": nte}
    try:
        data = load_source(dc.source, where="data.source")
    except (ValueError, OSError, ImportError) as exc:   # before any training: exit 2, one line
        raise ConfigError(f"data.source: {exc}") from None
    want = {"train_gt": dc.n_train, "train_w2s": dc.n_train, "test": dc.n_test}
    ns = {}
    for sp, v in want.items():
        have = len(data[sp])
        if v > have:
            raise ConfigError(f"data.{'n_test' if sp == 'test' else 'n_train'}: {v} rows asked, "
                              f"the source's {sp} split has {have}")
        ns[sp] = v or have
    if hasattr(data["test"], "labels"):
        k = int(max(int(np.max(d.labels)) for d in data.values())) + 1
        if k > 2 and cfg.train.task != "classification":
            raise ConfigError(f"data.source: {k} classes; the fine-tuning pipeline trains a scalar "
                              "reward head (two classes, labels 0/1). The real pipeline takes k classes.")
    if cfg.train.task == "classification" and cfg.weak.kind != "features":
        raise ConfigError("weak.kind: a multiclass table takes a weak head on features "
                          f"(kind = 'features'), got {cfg.weak.kind!r}")
    return data, source_name(dc.source), ns


def _items(data, sp: str, n: int, seed: int):
    """``(texts per slot, labels)`` of the first ``n`` rows: pairs in slot order, or texts."""
    if hasattr(data, "chosen"):
        a, b, lab = _slots(data, seed, n)
        return (list(a), list(b)), np.asarray(lab)
    return (list(data.texts[:n]),), np.asarray(data.labels[:n]).astype(np.int64)


def build_bundle(cfg: FinetuneSweepConfig, *, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> Bundle:
    """Load the data, fit the weak supervisor, tokenise for the strong model (CPU, minutes at most).

    The data: the local HH-RLHF layout, or ``[data] source`` (`w2s_theory.sources.load_source`).
    The weak supervisor: a logistic head on the weak model's features (``[weak] kind =
    "features"``), or the weak LM fine-tuned on ``train_gt`` (``kind = "finetune"``).
    """
    from transformers import AutoTokenizer

    from ...finetune import TextTask, TokenizedTexts

    log = log or (lambda *_: None)
    dc = cfg.data
    pairs, subset, ns = _load_splits(cfg)
    ntr, nte = ns["train_w2s"], ns["test"]
    items = {sp: _items(pairs[sp], sp, ns[sp], dc.slot_seed + SPLIT_SLOT_OFFSET[sp]) for sp in pairs}
    labels = {sp: items[sp][1] for sp in items}
    t0 = time.perf_counter()
    weak, l2, cv, weak_rec = weak_teacher(cfg, pairs, items, ns, progress=progress, log=log)
    weak_gt = weak["train_gt"]
    weak_s = time.perf_counter() - t0
    mdir = resolve_model_dir(cfg.strong)
    tok = AutoTokenizer.from_pretrained(str(mdir), local_files_only=True)
    tasks = {}
    need_gt = dc.ceiling_split == "train_gt" or bool(cfg.lr_select.grid)
    for sp in (("train_gt",) if need_gt else ()) + ("train_w2s", "test"):
        tasks[sp] = TextTask(tuple(TokenizedTexts.from_texts(tok, t) for t in items[sp][0]),
                             labels[sp].astype(np.int8))
    meta = {
        "protocol": PROTOCOL_VERSION, "subset": subset, "n_train": ntr, "n_test": nte,
        "slot_seeds": {sp: dc.slot_seed + SPLIT_SLOT_OFFSET[sp] for sp in pairs},
        "weak_model": cfg.weak.model, "weak_l2": l2, "weak_cv_logloss": {str(k): v for k, v in cv.items()},
        "weak_acc_train_gt": accuracy(labels["train_gt"], weak_gt),
        "weak_acc_train_w2s": accuracy(labels["train_w2s"], weak["train_w2s"]),
        "weak_acc_test": accuracy(labels["test"], weak["test"]),
        "weak_fit_s": round(weak_s, 3),
        "strong_model": cfg.strong,
        "sources_sha256": {sp: getattr(pairs[sp], "sha256", None)
                           or text_digest([t for slot in items[sp][0] for t in slot]) for sp in pairs},
        "prefix": list(tasks["test"].inputs[0].prefix), "suffix": list(tasks["test"].inputs[0].suffix),
        "pad_id": tasks["test"].inputs[0].pad_id,
    }
    if dc.ceiling_split != "train_w2s":   # old bundles (and their run keys) carry no such entry
        meta["ceiling_split"] = dc.ceiling_split
    # entries below exist only off the defaults, so the run keys of earlier sweeps stay
    if dc.source is not None:
        meta["source"] = dc.source
        if dc.n_train == 0 and ns["train_gt"] != ns["train_w2s"]:
            meta["n_train_gt"] = ns["train_gt"]
    if cfg.train.task == "classification":   # a multiclass table: a k-output head
        meta["n_classes"] = n_classes_of(items)
    if weak_rec is not None:
        meta["weak"] = {"kind": "finetune", "digest": weak_rec["digest"], "cfg": weak_rec["cfg"]}
    elif not is_preset(cfg.weak.model):
        meta["weak_digest"] = resolve_spec(feature_spec(cfg.weak.model))[2]
    if not is_preset(cfg.strong):
        meta["strong_digest"] = resolve_model(cfg.strong).digest
    return Bundle(subset, tasks["train_w2s"], tasks["test"], weak["train_w2s"], weak["test"],
                  mdir, meta, gt=tasks.get("train_gt"))


def resolve_model_dir(name_or_dir: str) -> Path:
    """The local folder of a model spec (preset or its feature set, folder, hub id ``org/name``):
    `w2s_theory.hub.resolve_model`'s ``path``."""
    return resolve_model(name_or_dir).path


def task_arrays(prefix: str, task) -> dict:
    """A `TextTask`'s arrays under ``<prefix>labels``, ``<prefix>{a,b}_{ids,offsets}``."""
    out = {f"{prefix}labels": np.asarray(task.labels, dtype=np.int8)}
    for k, t in zip("ab", task.inputs):
        out[f"{prefix}{k}_ids"] = t.ids
        out[f"{prefix}{k}_offsets"] = t.offsets
    return out


def _task_from(z, prefix: str, meta: dict):
    from ...finetune import TextTask, TokenizedTexts

    ins = tuple(TokenizedTexts(z[f"{prefix}{k}_ids"], z[f"{prefix}{k}_offsets"], meta["prefix"],
                               meta["suffix"], meta["pad_id"]) for k in "ab")
    return TextTask(ins, z[f"{prefix}labels"])


def save_bundle(bundle: Bundle, folder: str | os.PathLike) -> Path:
    """Write ``<folder>/<subset>.npz`` (token ids uint16, labels, weak probs) and ``<subset>.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gt = task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}
    arrays = {**task_arrays("train_", bundle.train), **task_arrays("test_", bundle.test), **gt,
              "weak_train": np.asarray(bundle.weak_train, np.float64),
              "weak_test": np.asarray(bundle.weak_test, np.float64)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / f"{bundle.subset}.npz", buf.getvalue())
    atomic_write_text(folder / f"{bundle.subset}.json", json.dumps(bundle.meta, indent=1, sort_keys=True))
    return folder / f"{bundle.subset}.npz"


def load_bundle(folder: str | os.PathLike, subset: str, model_dir: str | os.PathLike | None = None) -> Bundle:
    """Read a bundle written by `save_bundle` (the strong model from ``model_dir``,
    default ``<folder>/model``)."""
    folder = Path(folder)
    meta = json.loads((folder / f"{subset}.json").read_text())
    with np.load(folder / f"{subset}.npz") as z:
        train, test = _task_from(z, "train_", meta), _task_from(z, "test_", meta)
        gt = _task_from(z, "gt_", meta) if "gt_labels" in z.files else None
        wt, we = z["weak_train"].astype(np.float64), z["weak_test"].astype(np.float64)
    return Bundle(subset, train, test, wt, we, Path(model_dir) if model_dir else folder / "model", meta,
                  gt=gt)
