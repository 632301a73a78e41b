"""Learning-rate selection of the fine-tuning sweep: on held-out ``train_gt`` pairs, never test.

`select_lr` fine-tunes the strong model with ground truth (the ceiling's objective) on the first
``n - holdout`` pairs of ``train_gt`` once per candidate lr and scores it on the last ``holdout``;
the rule (split, scores, best candidate, ties to the smaller lr) is the protocol's
(`w2s_theory.protocol.holdout_split`, ``holdout_scores``, ``select_lr``). Records are sealed in
``<out>.lr_select.json`` (`lr_select_fingerprint`), so a killed selection resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ...fingerprint import digest, fingerprint, load_records, model_files_digest, save_records
from ...protocol import holdout_scores, holdout_split
from ...protocol import select_lr as select_lr_on_holdout
from ...provenance import git_commit, machine_name
from ...runtime import resolve_device
from ...sweep import run_key
from .bundle import Bundle, task_arrays
from .config import PROTOCOL_VERSION, FinetuneSweepConfig

#: Version of the sealed records of ``<out>.lr_select.json``.
_LR_CACHE_FORMAT = 1


def lr_select_fingerprint(bundle: Bundle) -> dict:
    """What an lr-selection record is computed from besides its key: the ``train_gt`` arrays
    of the bundle, every file of the strong model's folder and the code version."""
    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle: must be a Bundle (build_bundle / load_bundle), got "
                        f"{type(bundle).__name__}")
    gt = task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}
    return fingerprint(_LR_CACHE_FORMAT, data=digest(gt),
                       strong_model=model_files_digest(bundle.model_dir))


def select_lr(cfg: FinetuneSweepConfig, bundle: Bundle, path: str | os.PathLike, *,
              progress: bool = True, log: Callable[[str], None] = print,
              engine=None) -> tuple[float, list[dict]]:
    """Choose ``[train] lr`` by `LrSelect` on held-out ``train_gt`` pairs; never test.

    Each candidate's result is kept in ``path`` (JSON, atomic rewrites) under a key of
    the data, the strong model and the run's config, so a killed selection resumes; each
    record is sealed with a fingerprint of the ``train_gt`` arrays, every file of the strong
    model's folder and the code version (`w2s_theory.fingerprint.seal`): a record that is
    older, of other inputs or corrupt is recomputed with one `CacheWarning`.

    Returns:
        ``(lr, records)``: the chosen lr (``[train] lr`` when there is no grid) and one
        record per candidate (``lr``, ``holdout_acc``, ``holdout_logloss``, ``n_fit``,
        ``n_holdout``, cost).
    """
    ls = cfg.lr_select
    if not ls.grid:
        return float(cfg.train.lr), []
    import torch

    from ...finetune import build_model, load_backbone, make_engine, make_targets, predict, train

    gt = bundle.gt
    if gt is None:
        raise ValueError("lr_select: the bundle has no train_gt pairs (build it with this config)")
    try:
        fit_idx, hold_idx = holdout_split(len(gt), ls.holdout)
    except ValueError as exc:
        raise ValueError(f"lr_select.{exc}") from None
    fit, hold = gt.subset(fit_idx), gt.subset(hold_idx)
    path = Path(path)
    fp = lr_select_fingerprint(bundle)
    done = load_records(path, fp, what="lr-selection cache")
    base = {"protocol": PROTOCOL_VERSION, "strong": cfg.strong, "role": "lr_select",
            "data": {k: bundle.meta.get(k) for k in ("subset", "n_train", "slot_seeds")},
            "holdout": ls.holdout}
    if cfg.train_args:                  # present only when given: older records keep their keys
        base["train_args"] = cfg.train_args
    dev = resolve_device(cfg.run.device)
    backbone = None

    def fit_and_score(lr: float) -> dict:
        nonlocal backbone
        c = cfg.train.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(ls.seed),
                              lr=float(lr))
        key = run_key({**base, "cfg": c.to_dict()})
        if key in done:
            return done[key]
        if backbone is None:
            backbone = load_backbone(bundle.model_dir, dropout=cfg.train.dropout)
        eng = engine or make_engine(c, cpu=dev.type == "cpu")
        model = build_model(backbone, c, n_outputs=bundle.n_outputs())
        st = train(model, fit, make_targets(bundle.truth_targets(fit.labels), c), c, engine=eng,
                   progress=progress, training_args=cfg.train_args or None)
        p = predict(model, hold, c, engine=eng)
        rec = {"lr": float(lr), **holdout_scores(hold.labels, p), "n_fit": len(fit),
               "seed": int(ls.seed), "train_wall_s": st.wall_s, "tokens_per_s": st.tokens_per_s,
               "precision": st.precision, "device": st.device, "machine": machine_name(),
               "git_commit": git_commit(), "torch_version": torch.__version__}
        done[key] = rec
        save_records(path, done, fp)
        log(f"lr_select: lr {lr:g}: held-out train_gt acc {rec['holdout_acc']:.4f}, "
            f"log-loss {rec['holdout_logloss']:.4f} ({st.wall_s:.0f} s, "
            f"{st.tokens_per_s:.0f} tok/s)")
        return rec

    return select_lr_on_holdout(ls.grid, fit_and_score, metric=ls.metric)
