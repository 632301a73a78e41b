"""Result rows of a fine-tuning sweep, derived from its prediction store (`rows_from_store`).

One row per stored run (`make_row`): accuracy, AUROC, ECE, PGR, Lemma 1's stages, Theorem 2's
slack with ``F*`` = truth and ``F*`` = the same-seed ceiling, cost and provenance.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax

from ...protocol import result_row
from .store import PredStore

#: The column order of a fine-tuning row's results (as before `result_row` was shared).
_RESULT_ORDER = ("n_test", "student_acc", "student_auroc", "student_ece", "weak_acc",
                 "weak_auroc", "weak_ece", "disagree_rate", "l1_", "ceiling_acc", "ceiling_auroc",
                 "ceiling_ece", "pgr", "t2test_truth_", "t2test_d_reverse", "t2test_ceil_")


def _probs(stored: np.ndarray) -> np.ndarray:
    """Test probabilities from the stored form: ``sigmoid(z)`` ``(n,)``, or ``softmax`` of the
    log class probabilities ``(n, k)`` (a multiclass table)."""
    z = np.asarray(stored, dtype=np.float64)
    return expit(z) if z.ndim == 1 else softmax(z, axis=1)


def make_row(rec: dict, logits: np.ndarray, truth: np.ndarray, weak_test: np.ndarray,
             ceiling_logits: np.ndarray | None, gamma: float) -> dict:
    r"""The result row of one run from its test logits: its record (less the config), the
    config's training settings and `w2s_theory.protocol.result_row`'s metrics and bound checks.

    ``F*`` = the test truth, ``F_w`` = the weak model's test probabilities, ``F_sw`` =
    ``sigmoid(logits)``; for Lemma 1 and Theorem 2 both ``F_w`` and ``F_sw`` are smoothed,
    ``(1 - 2 gamma) p + gamma``. Theorem 2 is also checked with ``F*`` = the same-seed,
    same-regime strong ceiling (the realizable proxy). The columns are those of the last-layer
    sweep (`w2s_theory.pipelines.real.evaluate_run`, the same `result_row`):
    ``student_acc/auroc/ece``, ``weak_*``, ``ceiling_*``, ``pgr``, ``disagree_rate``,
    ``l1_*`` (every stage, ``l1_gamma`` included),
    ``t2test_{truth,ceil}_{slack,risk_weak,risk_strong,holds}``, ``t2test_d_reverse``.

    Args:
        rec: the run's stored record (coordinates, ``config``, cost, provenance).
        logits: the student's test logits ``z = r(A) - r(B)``, ``(n,)``, or its log class
            probabilities ``(n, k)`` (a multiclass table: the row then has ``n_classes = k``
            and k-class metrics, accuracy by argmax).
        truth: test labels ``(n,)``.
        weak_test: the weak model's test probabilities ``(n,)`` or ``(n, k)``.
        ceiling_logits: the same-seed ceiling's test logits, or ``None`` (its columns NaN).
        gamma: smoothing floor of the bound checks.
    """
    res = result_row(truth, weak_test, _probs(logits),
                     None if ceiling_logits is None else _probs(ceiling_logits),
                     gamma=gamma, lemma1_gamma=True,
                     n_classes=int(np.shape(logits)[1]) if np.ndim(logits) == 2 else None)
    row = {k: v for k, v in rec.items() if k != "config"}
    c = rec["config"]
    row.update({k: c[k] for k in ("lr", "epochs", "batch_size", "max_length", "truncation_side",
                                  "schedule", "grad_accum", "head_only")})
    for head in _RESULT_ORDER:
        row.update({k: v for k, v in res.items() if k == head or (head.endswith("_")
                                                                 and k.startswith(head))})
    row.update({k: v for k, v in res.items() if k not in row})
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
