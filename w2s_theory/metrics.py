"""Evaluation metrics for weak-to-strong runs, and paired comparisons over seeds (numpy).

Binary predictions are ``P(class 1)``, shape ``(n,)``; k-class predictions are
rows in the simplex, shape ``(n, k)``. Labels are integers in ``{0, ..., k-1}``,
shape ``(n,)``. The hard prediction is ``1[p > 1/2]`` (binary; a tie at exactly
``1/2`` counts as class 0) or ``argmax`` (k-class; ties go to the lowest index).

* `accuracy`, `auroc` (Mann–Whitney, ties as half), `ece`
  (top-label expected calibration error, equal-width bins),
* `pgr`, the performance gap recovered of Burns et al. (2023), undefined (``nan``) unless
  the ceiling beats the weak model, and `pgr_status`, the reason,
* `disagreement_rate` between two predictors' hard labels,
* `paired_test` (paired t-test and exact sign test over seeds) and
  `mean_ci` (t-based confidence interval of a mean), both computed by `w2s_theory.stats`
  (``scipy.stats``).

Inputs go through `w2s_theory._validation` (numpy arrays, lists, CPU tensors,
``requires_grad`` detached; strings and object arrays rejected). Probability rows are used
as given within the row-sum tolerance (no renormalisation, so argmax ties do not move).

References
----------
Burns et al., "Weak-to-Strong Generalization", arXiv:2312.09390 (PGR).
Hanley & McNeil, Radiology 143 (1982) (AUROC as the Mann–Whitney statistic).
Guo et al., "On Calibration of Modern Neural Networks", ICML 2017 (ECE).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from ._validation import as_float_array, check_int, check_number, check_probs
from .export import TableExport
from .stats import one_sample_t, sign_test

__all__ = [
    "hard_labels",
    "accuracy",
    "auroc",
    "ece",
    "pgr",
    "pgr_status",
    "PGR_STATUSES",
    "disagreement_rate",
    "paired_test",
    "PairedTest",
    "mean_ci",
]


def _labels(y, n: int, k: int, name: str = "y_true") -> np.ndarray:
    arr = as_float_array(y, name)                    # integers are exact in float64
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise ValueError(f"{name}: labels must be integers in [0, {k - 1}]")
    lab = arr.astype(np.int64)
    if lab.size and (lab.min() < 0 or lab.max() > k - 1):
        raise ValueError(f"{name}: labels must lie in [0, {k - 1}], got range "
                         f"[{lab.min()}, {lab.max()}]")
    return lab


def _series(x, name: str, min_size: int = 1) -> np.ndarray:
    """A finite 1-D float64 array of at least ``min_size`` values."""
    v = as_float_array(x, name)
    if v.ndim != 1 or v.size < min_size:
        raise ValueError(f"{name}: need a 1-D array of at least {min_size} values, "
                         f"got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: contains NaN or inf")
    return v


def _confidence(confidence) -> float:
    # kept as it was: ``confidence = 1`` is accepted here (an infinite interval)
    return check_number(confidence, "confidence", low=0.0, low_open=True, high=1.0)


def _pred(probs, name: str = "probs") -> np.ndarray:
    return check_probs(probs, name)


def hard_labels(probs) -> np.ndarray:
    """Hard predictions: ``1[p > 1/2]`` (binary ``(n,)``) or ``argmax`` (``(n, k)``).

    Examples:
        >>> hard_labels([0.2, 0.5, 0.9]).tolist()
        [0, 0, 1]
    """
    p = _pred(probs)
    if p.ndim == 1:
        return (p > 0.5).astype(np.int64)
    return p.argmax(axis=1).astype(np.int64)


def accuracy(y_true, probs) -> float:
    r"""Accuracy :math:`\frac1n\sum_x 1[\hat y(x) = y(x)]`.

    Args:
        y_true: integer labels, shape ``(n,)``.
        probs: ``(n,)`` P(class 1) or ``(n, k)``; hard label as in `hard_labels`.

    Examples:
        >>> accuracy([1, 0, 1, 1], [0.9, 0.4, 0.2, 0.6])
        0.75
    """
    p = _pred(probs)
    k = 2 if p.ndim == 1 else p.shape[1]
    y = _labels(y_true, p.shape[0], k)
    return float(np.mean(hard_labels(p) == y))


def auroc(y_true, scores) -> float:
    r"""Area under the ROC curve, binary: :math:`P(s^+ > s^-) + \tfrac12 P(s^+ = s^-)`.

    Computed from mid-ranks (the Mann–Whitney U statistic):
    ``(sum of ranks of positives - n1 (n1 + 1) / 2) / (n1 n0)``.

    Args:
        y_true: labels in ``{0, 1}``, shape ``(n,)``, both classes present.
        scores: any real scores, shape ``(n,)`` (e.g. P(class 1) or a logit).

    Examples:
        >>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
        >>> auroc([0, 1], [0.5, 0.5])
        0.5
    """
    s = _series(scores, "scores")
    y = _labels(y_true, s.shape[0], 2)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("y_true: AUROC needs both classes present")
    ranks = rankdata(s)  # mid-ranks for ties
    u = float(ranks[y == 1].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def ece(y_true, probs, n_bins: int = 10) -> float:
    r"""Top-label expected calibration error with ``n_bins`` equal-width bins.

    :math:`\mathrm{ECE} = \sum_b \frac{|B_b|}{n}\,|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|`,
    where the confidence of a prediction is the probability of its hard label
    (binary: ``max(p, 1 - p)``; k-class: ``max_i p_i``) and bin ``b`` holds the
    confidences in ``((b-1)/B, b/B]`` (the first bin also holds 0).

    Args:
        y_true: integer labels, shape ``(n,)``.
        probs: ``(n,)`` P(class 1) or ``(n, k)``.
        n_bins: number of bins, ``>= 1``.

    Examples:
        >>> round(ece([1, 1, 0, 0], [0.9, 0.9, 0.9, 0.1]), 6)   # bin (0.8, 0.9]: acc 3/4, conf 0.9
        0.15
    """
    n_bins = check_int(n_bins, "n_bins", low=1)
    p = _pred(probs)
    k = 2 if p.ndim == 1 else p.shape[1]
    y = _labels(y_true, p.shape[0], k)
    pred = hard_labels(p)
    conf = np.where(pred == 1, p, 1.0 - p) if p.ndim == 1 else p.max(axis=1)
    correct = (pred == y).astype(np.float64)
    # bin index: ceil(conf * B) - 1, clipped into [0, B-1] (conf = 0 goes to bin 0)
    b = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    n = p.shape[0]
    s_acc = np.bincount(b, weights=correct, minlength=n_bins)
    s_conf = np.bincount(b, weights=conf, minlength=n_bins)
    return float(np.abs(s_acc - s_conf).sum() / n)


#: `pgr_status` values: PGR is defined, the ceiling equals the weak model, or it is below it.
PGR_STATUSES = ("defined", "no_gap", "ceiling_below_weak")


def pgr_status(acc_student: float, acc_weak: float, acc_ceiling: float) -> str:
    """Whether `pgr` is defined for these accuracies, and if not, why.

    ``"defined"`` when the ceiling beats the weak model (``acc_ceiling > acc_weak``);
    ``"no_gap"`` when they are equal; ``"ceiling_below_weak"`` when the ceiling is worse (nothing
    to recover: the ratio of two negative gaps would read as recovery). Arguments as for `pgr`.

    Examples:
        >>> pgr_status(0.49, 0.82, 0.71), pgr_status(0.7, 0.6, 0.6), pgr_status(0.7, 0.6, 0.8)
        ('ceiling_below_weak', 'no_gap', 'defined')
    """
    return _pgr_parts(acc_student, acc_weak, acc_ceiling)[0]


def _pgr_parts(acc_student, acc_weak, acc_ceiling) -> tuple[str, float, float, float]:
    s = check_number(acc_student, "acc_student", low=0.0, high=1.0)
    w = check_number(acc_weak, "acc_weak", low=0.0, high=1.0)
    c = check_number(acc_ceiling, "acc_ceiling", low=0.0, high=1.0)
    status = "defined" if c > w else ("no_gap" if c == w else "ceiling_below_weak")
    return status, s, w, c


def pgr(acc_student: float, acc_weak: float, acc_ceiling: float) -> float:
    r"""Performance gap recovered :math:`(a_{sw} - a_w) / (a_{ceil} - a_w)`, when there is a gap.

    Defined only when the strong ceiling beats the weak model, ``a_ceil > a_w``: then ``1`` = the
    student matches the ceiling, ``0`` = it only matches the weak teacher, negative = it falls
    below the weak teacher, and above ``1`` only when the student beats the ceiling. When
    ``a_ceil <= a_w`` there is no gap to recover and the ratio means nothing (student and ceiling
    both below the weak model give a positive ratio: ``(0.49 - 0.82) / (0.71 - 0.82) = 3``), so
    the result is ``nan``; `pgr_status` says why (``"no_gap"`` or ``"ceiling_below_weak"``).
    Result tables follow the same rule: their ``pgr`` column is ``nan`` exactly where
    `pgr_status` of the row's ``student_acc``, ``weak_acc``, ``ceiling_acc`` is not
    ``"defined"``. Over seeds, `w2s_theory.ledger.pgr_interval` adds Fieller's interval.

    Args:
        acc_student, acc_weak, acc_ceiling: accuracies in ``[0, 1]``.

    Examples:
        >>> pgr(0.625, 0.5, 0.75)
        0.5
        >>> pgr(0.49, 0.82, 0.71)           # ceiling below the weak model: undefined
        nan
    """
    status, s, w, c = _pgr_parts(acc_student, acc_weak, acc_ceiling)
    if status != "defined":
        return float("nan")
    return (s - w) / (c - w)


def disagreement_rate(probs_a, probs_b) -> float:
    """Share of examples where two predictors' hard labels differ.

    Examples:
        >>> disagreement_rate([0.9, 0.2, 0.6], [0.7, 0.8, 0.4])
        0.6666666666666666
    """
    a = _pred(probs_a, "probs_a")
    b = _pred(probs_b, "probs_b")
    if a.shape != b.shape:
        raise ValueError(f"probs_b: shape {b.shape} does not match probs_a shape {a.shape}")
    return float(np.mean(hard_labels(a) != hard_labels(b)))


@dataclass(frozen=True)
class PairedTest(TableExport):
    """Paired comparison of ``a`` against ``b`` over matched units (seeds).

    ``to_dict()``, ``to_latex()`` and ``to_markdown()`` export the fields
    (`w2s_theory.export`).

    Attributes:
        n: number of pairs; mean_diff: mean of ``a - b``; ci_low, ci_high: 95% t interval of
        the mean difference; t_pvalue: two-sided paired t-test; sign_pvalue: two-sided exact
        sign test (ties dropped); wins, losses, ties: counts of ``a > b``, ``a < b``, ``a = b``.
    """

    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    t_pvalue: float
    sign_pvalue: float
    wins: int
    losses: int
    ties: int

    def to_dict(self) -> dict:
        """The fields as a plain ``dict``, in declaration order."""
        return asdict(self)


def paired_test(a, b, confidence: float = 0.95) -> PairedTest:
    r"""Paired t-test and exact two-sided sign test of ``a`` vs ``b`` (e.g. accuracies per seed).

    t statistic :math:`\bar d / (s_d / \sqrt n)` with ``n - 1`` degrees of freedom,
    ``d = a - b``; the sign test is the binomial test of ``#(d > 0)`` among the
    non-zero differences at 1/2. If all differences are equal the t-test has no
    spread: its p-value is 0 when the mean difference is non-zero, 1 otherwise. Computed by
    `w2s_theory.stats.one_sample_t` on ``d`` (``scipy.stats.ttest_rel``) and
    `w2s_theory.stats.sign_test`.

    Args:
        a, b: shape ``(n,)``, matched pairs, ``n >= 2``.
        confidence: level of the interval of the mean difference.

    Examples:
        >>> r = paired_test([0.7, 0.71, 0.69, 0.72, 0.7], [0.6, 0.62, 0.6, 0.61, 0.6])
        >>> r.wins, round(r.sign_pvalue, 4), r.t_pvalue < 1e-4
        (5, 0.0625, True)
    """
    x = _series(a, "a", min_size=2)
    y = _series(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"b: shape {y.shape} must equal a's shape {x.shape} (1-D)")
    conf = _confidence(confidence)
    d = x - y
    t = one_sample_t(d, conf)
    wins, losses, ties, sp = sign_test(d)
    return PairedTest(n=t.n, mean_diff=t.mean, ci_low=t.ci_low, ci_high=t.ci_high,
                      t_pvalue=t.p_value, sign_pvalue=sp, wins=wins, losses=losses, ties=ties)


def mean_ci(x, confidence: float = 0.95) -> tuple[float, float, float]:
    r"""Mean and its t-based interval :math:`\bar x \pm t_{n-1} s / \sqrt n`.

    Returns ``(mean, low, high)``; needs ``n >= 2`` values. `w2s_theory.stats.one_sample_t`
    (``scipy.stats.ttest_1samp``) with this module's input rules.

    Examples:
        >>> [round(v, 4) for v in mean_ci([1.0, 2.0, 3.0])]
        [2.0, -0.4841, 4.4841]
    """
    v = _series(x, "x", min_size=2)
    t = one_sample_t(v, _confidence(confidence))
    return t.mean, t.ci_low, t.ci_high
