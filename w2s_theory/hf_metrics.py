r"""The weak-to-strong metrics as a ``compute_metrics`` for your own ``transformers.Trainer``.

`compute_metrics` returns the callable that ``Trainer(compute_metrics=...)`` calls at every
evaluation with an ``EvalPrediction`` (``predictions`` = the model's logits, ``label_ids`` =
the eval data set's labels). It reports, on the gold labels:

* ``student_acc`` -- accuracy of the hard prediction (`w2s_theory.metrics.accuracy`),
* ``student_auroc`` -- AUROC, binary or macro one-vs-rest for k classes
  (`w2s_theory.kclass.auroc_any`; ``nan`` when the split lacks a class),
* ``student_ece`` -- top-label expected calibration error (`w2s_theory.metrics.ece`),
* ``pgr`` -- the performance gap recovered ``(acc - weak_acc) / (ceiling_acc - weak_acc)``
  (`w2s_theory.metrics.pgr`; ``nan`` unless ``ceiling_acc > weak_acc``), when both
  ``weak_acc`` and ``ceiling_acc`` are given.

``Trainer`` prefixes each key with ``eval_`` (``eval_student_acc``, ...); the names are the
result tables' column names.

Logits to probabilities. ``(n,)`` or ``(n, 1)``: ``sigmoid`` = P(class 1); ``(n, 2)``:
``softmax[:, 1]``; ``(n, k)``: ``softmax`` rows (computed in float64). A ``predictions``
tuple (a model that also returns hidden states) is read from its first entry.

Gold labels. With `SoftLabelTrainer` the data set's ``labels`` column holds the *weak* soft
labels; pass the eval split's gold class indices as ``gold=`` (in the eval data set's order,
which ``Trainer`` keeps). Without ``gold``, ``label_ids`` must be class indices.

Examples:
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> fn = compute_metrics(weak_acc=0.5, ceiling_acc=1.0)
    >>> ev = SimpleNamespace(predictions=np.array([2.0, -1.0, 0.5, -3.0]),
    ...                      label_ids=np.array([1, 0, 0, 0]))
    >>> {k: round(v, 4) for k, v in fn(ev).items()}
    {'student_acc': 0.75, 'student_auroc': 1.0, 'student_ece': 0.2645, 'pgr': 0.5}
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

from ._validation import ArgumentTypeError, as_float_array, check_int, check_number
from .kclass import auroc_any
from .metrics import accuracy, ece, pgr

__all__ = ["compute_metrics", "logits_to_probs"]


def logits_to_probs(logits) -> np.ndarray:
    """A classifier's logits as probabilities: ``(n,)`` P(class 1) or ``(n, k)`` rows.

    Args:
        logits: ``(n,)`` or ``(n, 1)`` (one logit: sigmoid), ``(n, 2)`` (softmax, class 1's
            column) or ``(n, k)`` (softmax); any array-like or CPU tensor.

    Returns:
        float64 array of shape ``(n,)`` (binary) or ``(n, k)`` (``k > 2``).

    Examples:
        >>> logits_to_probs([[0.0], [2.0]]).round(4).tolist()
        [0.5, 0.8808]
        >>> logits_to_probs([[0.0, 0.0, 0.0]]).round(4).tolist()
        [[0.3333, 0.3333, 0.3333]]
    """
    z = as_float_array(logits, "logits")
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.ndim not in (1, 2) or z.shape[0] == 0 or (z.ndim == 2 and z.shape[1] == 0):
        raise ValueError(f"logits: expected a non-empty (n,), (n, 1) or (n, k), got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits: contains NaN or inf")
    if z.ndim == 1:
        return expit(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return p[:, 1] if p.shape[1] == 2 else p


def _gold(labels, n: int, k: int, name: str) -> np.ndarray:
    y = as_float_array(labels, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} gold class indices (shape ({n},)), got shape "
                         f"{y.shape}" + ("; with SoftLabelTrainer the labels are the weak soft "
                                         "labels: pass gold=<the eval split's class indices>"
                                         if name == "label_ids" else ""))
    if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)) or y.min() < 0 or y.max() > k - 1:
        raise ValueError(f"{name}: gold labels must be class indices in [0, {k - 1}]"
                         + ("; with SoftLabelTrainer the labels are the weak soft labels: pass "
                            "gold=<the eval split's class indices>" if name == "label_ids" else ""))
    return y.astype(np.int64)


def compute_metrics(*, gold=None, weak_acc: float | None = None,
                    ceiling_acc: float | None = None, n_bins: int = 10) -> Callable:
    """A ``compute_metrics`` for ``transformers.Trainer``: gold accuracy, AUROC, ECE and PGR.

    Args:
        gold: the eval split's gold class indices, shape ``(n,)``, in the eval data set's
            order; ``None`` reads them from ``label_ids``.
        weak_acc: the weak teacher's accuracy on the same split, in ``[0, 1]``.
        ceiling_acc: the strong ceiling's accuracy (trained on gold labels), in ``[0, 1]``.
            ``pgr`` is reported when both are given.
        n_bins: equal-width bins of the ECE, ``>= 1``.

    Returns:
        ``fn(eval_prediction) -> dict`` with ``student_acc``, ``student_auroc``,
        ``student_ece`` and (with both accuracies) ``pgr``, as Python floats.
    """
    if (weak_acc is None) != (ceiling_acc is None):
        raise ValueError(f"{'ceiling_acc' if ceiling_acc is None else 'weak_acc'}: PGR needs both "
                         f"weak_acc and ceiling_acc (or neither)")
    w = None if weak_acc is None else check_number(weak_acc, "weak_acc", low=0.0, high=1.0)
    c = None if ceiling_acc is None else check_number(ceiling_acc, "ceiling_acc", low=0.0, high=1.0)
    n_bins = check_int(n_bins, "n_bins", low=1)
    gold_arr = None if gold is None else as_float_array(gold, "gold")

    def fn(eval_prediction) -> dict[str, float]:
        if not hasattr(eval_prediction, "predictions"):
            raise ArgumentTypeError(f"eval_prediction: a transformers EvalPrediction (with "
                                    f"predictions and label_ids), got "
                                    f"{type(eval_prediction).__name__}")
        logits = eval_prediction.predictions
        if isinstance(logits, tuple):            # (logits, hidden states, ...)
            logits = logits[0]
        p = logits_to_probs(logits)
        k = 2 if p.ndim == 1 else p.shape[1]
        if gold_arr is not None:
            y = _gold(gold_arr, p.shape[0], k, "gold")
        else:
            y = _gold(getattr(eval_prediction, "label_ids", None), p.shape[0], k, "label_ids")
        acc = accuracy(y, p)
        # nan, not an error, when the eval split lacks a class (binary included)
        auc = auroc_any(y, p) if np.unique(y).size == k else float("nan")
        out = {"student_acc": acc, "student_auroc": auc,
               "student_ece": ece(y, p, n_bins=n_bins)}
        if w is not None:
            out["pgr"] = pgr(acc, w, c)
        return {key: float(v) for key, v in out.items()}

    return fn
