"""The runs of a fine-tuning sweep: one `RunSpec` (regime, role, `FinetuneConfig`, stable key)
per result row, ceilings first (`plan_runs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...sweep import run_key
from .config import PROTOCOL_VERSION, FinetuneSweepConfig


@dataclass(frozen=True)
class RunSpec:
    """One run = one result row."""

    regime: str                 # "full" | "head_only"
    role: str                   # "ceiling" | "student"
    cfg: Any                    # FinetuneConfig (loss, noise, confidence, seed, ...)
    key: str

    def coords(self) -> dict:
        c = self.cfg
        return {"regime": self.regime, "role": self.role, "loss": c.loss,
                "confidence": bool(c.confidence), "noise": float(c.noise), "seed": int(c.seed)}


def plan_runs(cfg: FinetuneSweepConfig, bundle_meta: dict) -> list[RunSpec]:
    """All runs of the sweep: ceilings first, then students; each with its stable key.

    The key hashes the protocol, the data (subset, sizes, slot seeds, weak model and
    its L2), the strong model, the run's full `FinetuneConfig` and its role.

    Examples:
        >>> from w2s_theory.pipelines.finetune import FinetuneSweepConfig, SweepSpec
        >>> c = FinetuneSweepConfig(name="t", sweep=SweepSpec(noise=(0.0, 0.1), seeds=(0,)))
        >>> runs = plan_runs(c, {"subset": "harmless"})
        >>> len(runs), runs[0].role, runs[-1].role   # (1 ceiling + 8 students) x 2 regimes
        (18, 'ceiling', 'student')
    """
    base = {"protocol": PROTOCOL_VERSION, "strong": cfg.strong,
            "data": {k: bundle_meta.get(k) for k in ("subset", "n_train", "n_test", "slot_seeds",
                                                     "weak_model", "weak_l2")}}
    if bundle_meta.get("ceiling_split", "train_w2s") != "train_w2s":
        base["ceiling_split"] = bundle_meta["ceiling_split"]
    # present only off the defaults (other data, a fine-tuned weak LM, hub / folder models)
    for k in ("source", "n_train_gt", "weak", "weak_digest", "strong_digest"):
        if k in bundle_meta:
            base[k] = bundle_meta[k]
    if cfg.train_args:                  # [train.args]: fields of TrainingArguments
        base["train_args"] = cfg.train_args
    s = cfg.sweep
    out: list[RunSpec] = []
    # seed by seed (its ceiling, then its students), so that a sweep stopped part-way has
    # complete seeds: a student's row is written once its seed's ceiling exists
    for regime in s.regimes:
        tc = cfg.train if regime == "full" else cfg.head_only_train()
        for seed in s.seeds:
            if s.ceiling:
                c = tc.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(seed))
                out.append(RunSpec(regime, "ceiling", c,
                                   run_key({**base, "role": "ceiling", "cfg": c.to_dict()})))
            for a in s.noise:
                for loss in s.losses:
                    for conf in s.confidence:
                        c = tc.replace(loss=loss, noise=float(a), confidence=bool(conf), seed=int(seed))
                        out.append(RunSpec(regime, "student", c,
                                           run_key({**base, "role": "student", "cfg": c.to_dict()})))
    return out
