"""The weak teacher of the fine-tuning sweep: a logistic head on a weak model's features, or a
fine-tuned weak LM (`weak_teacher`), fitted on ``train_gt`` ground truth.

A head on features (the protocol's `w2s_theory.protocol.fit_weak_head`):
``P(A > B) = sigmoid(w . (phi(A) - phi(B)))`` (forward CE, L2 chosen by k-fold cross-validation
on ``train_gt``; the pairs are symmetrised with the swapped pairs, so the head has no slot bias).
A fine-tuned weak LM (``[weak] kind = "finetune"``, `weak_finetune_config`): ``[train]`` with
forward CE on ``train_gt``, its predictions sealed in ``<out>.weak.json``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...data import N_ROWS, text_digest
from ...features import features_for_texts, load_features
from ...fingerprint import fingerprint, load_records, model_files_digest, save_records
from ...hub import resolve_model
from ...protocol import fit_weak_head
from ...runtime import resolve_device
from ...sources import feature_tag
from ...sweep import run_key
from .config import PROTOCOL_VERSION, FinetuneSweepConfig

#: Version of the sealed records of ``<out>.weak.json``.
_WEAK_CACHE_FORMAT = 1


def _pair_diff(f: dict, labels: np.ndarray) -> np.ndarray:
    """``phi(A) - phi(B)`` in slot order (``labels == 1``: A is the chosen text), float64."""
    a = np.where(labels[:, None] == 1, f["chosen"], f["rejected"]).astype(np.float64)
    b = np.where(labels[:, None] == 1, f["rejected"], f["chosen"]).astype(np.float64)
    return a - b


def _weak_features(model: str, subset: str, split: str, n: int, pairs, root) -> dict:
    """The weak model's features of the local HH-RLHF split (cached extraction when whole)."""
    if n == N_ROWS:
        return load_features(model, subset, split, data_root=root, progress=False)
    x = features_for_texts(model, list(pairs.chosen[:n]) + list(pairs.rejected[:n]),
                           dataset=f"hh_rlhf-{subset}-{split}-first{n}", progress=False)
    return {"chosen": x[:n], "rejected": x[n:]}


def _weak_features_source(cfg: FinetuneSweepConfig, sp: str, data, items, n: int) -> np.ndarray:
    """The weak head's design on a source split: pair differences in slot order, or features."""
    tag = feature_tag(cfg.data.source, sp)
    if hasattr(data, "chosen"):
        x = features_for_texts(cfg.weak.model, list(data.chosen[:n]) + list(data.rejected[:n]),
                               dataset=tag, progress=False)
        return _pair_diff({"chosen": x[:n], "rejected": x[n:]}, items[1])
    return features_for_texts(cfg.weak.model, items[0][0], dataset=tag,
                              progress=False).astype(np.float64)


def n_classes_of(items: dict) -> int:
    """The number of classes of labelled texts: ``1 +`` the largest label of any split used.

    Examples:
        >>> n_classes_of({"a": ((["x", "y"],), np.array([0, 2])), "b": ((["z"],), np.array([1]))})
        3
    """
    return int(max(int(np.max(lab)) for _, lab in items.values())) + 1


def weak_finetune_config(cfg: FinetuneSweepConfig):
    """The weak model's fine-tuning run (``[weak] kind = "finetune"``): ``[train]`` with forward
    CE on ``train_gt`` ground truth, the weak seed and lr."""
    w = cfg.weak
    return cfg.train.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(w.seed),
                             head_only=False, checkpoint_every=0,
                             **({"lr": float(w.lr)} if w.lr is not None else {}))


def _weak_finetuned(cfg: FinetuneSweepConfig, items: dict, progress: bool,
                    log: Callable[[str], None]) -> tuple[dict, dict]:
    """``({split: P(label 1)}, record)`` of the weak LM fine-tuned on ``train_gt`` ground truth,
    cached in ``<out>.weak.json`` under a key of the model's digest, the run config and the texts,
    each record sealed with a fingerprint of the model folder's files (``config.json`` and
    tokenizer included) and the code version (`w2s_theory.fingerprint.seal`); a record that
    is older, of other model files or corrupt is recomputed with one `CacheWarning`."""
    from transformers import AutoTokenizer

    from ...finetune import (
        TextTask,
        TokenizedTexts,
        build_model,
        load_backbone,
        make_engine,
        predict,
        train,
    )

    r = resolve_model(cfg.weak.model)
    c = weak_finetune_config(cfg)
    digests = {sp: text_digest([t for slot in items[sp][0] for t in slot]) for sp in items}
    key = run_key({"protocol": PROTOCOL_VERSION, "weak": cfg.weak.model, "digest": r.digest,
                   "cfg": c.to_dict(), "texts": digests,
                   "labels": text_digest([str(v) for v in items["train_gt"][1].tolist()]),
                   **({"train_args": cfg.train_args} if cfg.train_args else {})})
    fp = fingerprint(_WEAK_CACHE_FORMAT, weak_model=model_files_digest(r.path))
    path = cfg.out_path().with_suffix(".weak.json")
    cached = load_records(path, fp, what="weak-model cache")
    if isinstance(cached.get(key, {}).get("probs"), dict):
        rec = cached[key]
        return {sp: np.asarray(v, dtype=np.float64) for sp, v in rec["probs"].items()}, rec
    tok = AutoTokenizer.from_pretrained(str(r.path))
    tasks = {sp: TextTask(tuple(TokenizedTexts.from_texts(tok, t) for t in items[sp][0]),
                          items[sp][1].astype(np.int8)) for sp in items}
    model = build_model(load_backbone(r.path, dropout=c.dropout), c)
    eng = make_engine(c, cpu=resolve_device(cfg.run.device).type == "cpu")
    gt = tasks["train_gt"]
    st = train(model, gt, gt.labels.astype(np.float64), c, engine=eng, progress=progress,
               training_args=cfg.train_args or None)
    probs = {sp: predict(model, tasks[sp], c, engine=eng) for sp in tasks}
    rec = {"probs": {sp: p.tolist() for sp, p in probs.items()}, "model": cfg.weak.model,
           "digest": r.digest, "cfg": c.to_dict(), "train_wall_s": st.wall_s,
           "tokens_per_s": st.tokens_per_s, "device": st.device}
    if getattr(eng, "is_main_process", True):
        save_records(path, {**cached, key: rec}, fp)
    log(f"[finetune] weak model {cfg.weak.model} fine-tuned on {len(gt)} train_gt rows "
        f"({st.wall_s:.1f} s)")
    return probs, rec


def weak_teacher(cfg: FinetuneSweepConfig, data: dict, items: dict, ns: dict, *,
                 progress: bool = False, log: Callable[[str], None] | None = None
                 ) -> tuple[dict, float | None, dict, dict | None]:
    """The weak teacher's ``P(label 1)`` on every split, fitted on ``train_gt`` ground truth.

    ``[weak] kind = "features"``: a logistic head on the weak model's features
    (`w2s_theory.protocol.fit_weak_head`;
    pairs: on ``phi(A) - phi(B)`` in slot order, symmetrised; labelled texts: on the features,
    with an intercept); ``kind = "finetune"``: the weak LM fine-tuned on ``train_gt``
    (`weak_finetune_config`, cached next to the result table).

    Args:
        cfg: the sweep config.
        data: ``{split: pairs or labelled texts}`` (``train_gt``, ``train_w2s``, ``test``).
        items: ``{split: (texts per slot, labels)}`` of the rows used, in slot order.
        ns: ``{split: rows used}``.
        progress: progress bars of the weak LM's fine-tuning.
        log: progress lines.

    Returns:
        ``(probs, l2, cv, record)``: ``{split: (n,) float64}`` (``(n, k)`` class probabilities
        for a multiclass table: a multinomial head on one-hot ``train_gt`` rows), the chosen L2 weight and the
        cross-validated log-loss per weight (``None`` and ``{}`` for a fine-tuned weak LM),
        and the fine-tuned weak LM's cache record (``None`` for a head on features).
    """
    log = log or (lambda *_: None)
    if cfg.weak.kind == "finetune":
        probs, rec = _weak_finetuned(cfg, items, progress, log)
        return {sp: probs[sp] for sp in items}, None, {}, rec
    dc = cfg.data
    if dc.source is None:
        feats = {sp: _weak_features(cfg.weak.model, dc.subset, sp, ns[sp], data[sp], dc.root)
                 for sp in data}
        diffs = {sp: _pair_diff({k: v[:ns[sp]] for k, v in feats[sp].items()}, items[sp][1])
                 for sp in data}
    else:
        diffs = {sp: _weak_features_source(cfg, sp, data[sp], items[sp], ns[sp]) for sp in data}
    binary = not hasattr(data["test"], "chosen")
    y = items["train_gt"][1]
    if cfg.train.task == "classification":      # k classes: a multinomial head on one-hot rows
        y = np.eye(n_classes_of(items))[np.asarray(y, dtype=np.int64)]
    head, l2, cv = fit_weak_head(diffs["train_gt"], y, cfg.weak.l2_grid,
                                 cfg.weak.folds, seed=dc.slot_seed, symmetric=not binary)
    return {sp: head.predict(diffs[sp]) for sp in data}, l2, cv, None
