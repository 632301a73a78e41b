"""Result rows of a fine-tuning sweep, derived from its prediction store (`rows_from_store`).

One row per stored run (`make_row`): accuracy, AUROC, ECE, PGR, Lemma 1's stages, Theorem 2's
slack with ``F*`` = truth and ``F*`` = the same-seed ceiling, cost and provenance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ...bounds import lemma1, theorem2
from ...divergences import smooth
from ...metrics import accuracy, auroc, disagreement_rate, ece, pgr
from .store import PredStore


def make_row(rec: dict, logits: np.ndarray, truth: np.ndarray, weak_test: np.ndarray,
             ceiling_logits: np.ndarray | None, gamma: float) -> dict:
    r"""The result row of one run from its test logits (metrics and bound checks).

    ``F*`` = the test truth (one-hot labels), ``F_w`` = the weak model's test
    probabilities, ``F_sw`` = ``sigmoid(logits)``; for Lemma 1 and Theorem 2 both
    ``F_w`` and ``F_sw`` are smoothed, ``(1 - 2 gamma) p + gamma``. Theorem 2 is also
    checked with ``F*`` = the same-seed, same-regime strong ceiling (the realizable
    proxy). Columns follow the last-layer sweep (`w2s_theory.pipelines.real`):
    ``student_acc/auroc/ece``, ``weak_*``, ``ceiling_*``, ``pgr``, ``disagree_rate``,
    ``l1_*`` (every stage), ``t2test_{truth,ceil}_{slack,risk_weak,risk_strong,holds}``.
    """
    y = np.asarray(truth).astype(np.int64)
    yf = y.astype(np.float64)
    ps = expit(np.asarray(logits, dtype=np.float64))
    pw = np.asarray(weak_test, dtype=np.float64)
    acc_s, acc_w = accuracy(y, ps), accuracy(y, pw)
    row = {k: v for k, v in rec.items() if k != "config"}
    c = rec["config"]
    row.update({k: c[k] for k in ("lr", "epochs", "batch_size", "max_length", "truncation_side",
                                  "schedule", "grad_accum", "head_only")})
    row.update({"n_test": int(y.size), "student_acc": acc_s, "student_auroc": auroc(y, ps),
                "student_ece": ece(y, ps), "weak_acc": acc_w, "weak_auroc": auroc(y, pw),
                "weak_ece": ece(y, pw), "disagree_rate": disagreement_rate(ps, pw)})
    fw, fs = smooth(pw, gamma), smooth(ps, gamma)
    l1 = lemma1(yf, fw, fs, gamma)
    row.update({f"l1_{k}": v for k, v in l1.to_dict().items() if k != "n"})
    targets = [("truth", yf)]
    if ceiling_logits is not None:
        pc = expit(np.asarray(ceiling_logits, dtype=np.float64))
        acc_c = accuracy(y, pc)
        row.update({"ceiling_acc": acc_c, "ceiling_auroc": auroc(y, pc), "ceiling_ece": ece(y, pc),
                    "pgr": pgr(acc_s, acc_w, acc_c)})
        targets.append(("ceil", pc))
    else:
        row.update({"ceiling_acc": np.nan, "ceiling_auroc": np.nan, "ceiling_ece": np.nan,
                    "pgr": np.nan})
    for tag, fstar in targets:
        t = theorem2(fstar, fw, fs, tol=0.0)
        row[f"t2test_{tag}_slack"] = t.slack
        row[f"t2test_{tag}_risk_weak"] = t.risk_weak
        row[f"t2test_{tag}_risk_strong"] = t.risk_strong
        row[f"t2test_{tag}_holds"] = t.holds
        row["t2test_d_reverse"] = t.d_reverse
    if ceiling_logits is None:
        for k in ("slack", "risk_weak", "risk_strong", "holds"):
            row[f"t2test_ceil_{k}"] = np.nan
    return row


def rows_from_store(store: PredStore, bundle_meta: dict, truth: np.ndarray, weak_test: np.ndarray,
                    gamma: float, extra: dict | None = None) -> list[dict]:
    """Result rows of every run in ``store`` (ceilings matched by regime and seed)."""
    ceil = {}
    for k, rec in store.records.items():
        if rec["role"] == "ceiling":
            ceil[(rec["regime"], rec["seed"])] = store.logits[k]
    rows = []
    base = {"subset": bundle_meta["subset"], "weak": bundle_meta["weak_model"],
            "strong": bundle_meta["strong_model"], "n_train": bundle_meta["n_train"],
            "weak_l2": bundle_meta["weak_l2"], **(extra or {})}
    csplit = bundle_meta.get("ceiling_split", "train_w2s")
    for k, rec in store.records.items():
        row = {"run_key": k, **base,
               "train_split": csplit if rec["role"] == "ceiling" else "train_w2s"}
        row.update(make_row(rec, store.logits[k], truth, weak_test,
                            ceil.get((rec["regime"], rec["seed"])), gamma))
        rows.append(row)
    return rows
