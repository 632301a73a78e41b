r"""The pieces of the paper's W2SG protocol that every pipeline shares (numpy only).

Last-layer sweeps (`w2s_theory.pipelines.real`), fine-tuning and partial fine-tuning
sweeps all do the same five things; each is written once here:

* **Standardisation** on the ``train_gt`` statistics (`column_scale`, `standardize_splits`,
  `standardize_pairs`): features of every split are scaled per coordinate by the mean and the
  standard deviation of ``train_gt`` (ground truth the weak model is trained on; never test).
  A constant coordinate gets scale 1.
* **Log-loss** of binary or k-class predictions (`log_loss`).
* **The weak teacher fit** (`fit_weak_head`: a logistic / Bradley--Terry head on
  ``train_gt``, its L2 weight by k-fold cross-validated log-loss) and the weak labels the
  students see (`corrupt_weak_labels`).
* **Learning-rate selection on held-out train_gt** (`holdout_split`, `holdout_scores`,
  `select_lr`): the last ``holdout`` rows of ``train_gt`` are held out, every candidate is
  fitted on the rest and scored on them; the best mean held-out accuracy wins (ties: the
  smaller lr). Test data never enter.
* **The result row** (`result_row`): accuracy / AUROC / ECE of the weak model, the ceiling and
  the student, PGR, disagreement, and every bound check (Lemma 1, Theorem 2 with ``F* =``
  truth and ``F* =`` the ceiling, on the test split and, when given, on the fitting
  population).

Examples:
    >>> import numpy as np
    >>> x = {"train_gt": np.array([[0.0], [2.0]]), "test": np.array([[1.0], [3.0]])}
    >>> standardize_splits(x)["test"].tolist()      # (x - 1) / 1, then the bias column
    [[0.0, 1.0], [2.0, 1.0]]
    >>> select_lr([0.1, 0.01], lambda lr: {"holdout_acc": 0.9 if lr == 0.01 else 0.8})[0]
    0.01
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import heads
from ._validation import check_choice, check_int, check_number
from .bounds import lemma1, theorem2
from .divergences import smooth
from .heads.design import column_scale  # the one implementation (heads' layer)
from .kclass import auroc_any, truth
from .metrics import accuracy, disagreement_rate, ece, pgr
from .noise import corrupt_labels

__all__ = ["column_scale", "standardize_splits", "standardize_pairs", "log_loss",
           "fit_weak_head", "corrupt_weak_labels", "holdout_split", "holdout_scores",
           "select_lr", "LR_METRICS", "FitPopulation", "result_row"]

#: What `select_lr` maximises (``accuracy``) or minimises (``logloss``) on the held-out rows.
LR_METRICS = ("accuracy", "logloss")


# ============================================================================= standardisation
def standardize_splits(splits: Mapping[str, np.ndarray], ref: str = "train_gt", *,
                       bias: bool = True) -> dict[str, np.ndarray]:
    """``{split: (x - mu) / sd}`` with ``mu, sd`` = `column_scale` of ``splits[ref]``, and a
    constant column 1 appended when ``bias`` (the intercept of a linear head).

    Args:
        splits: ``{split: (n_split, d)}`` features.
        ref: the split whose statistics are used (``train_gt``: never test).
        bias: append the constant feature.

    Returns:
        ``{split: float64 (n_split, d + bias)}``.
    """
    if ref not in splits:
        raise ValueError(f"ref: {ref!r} is not one of the splits {sorted(splits)}")
    mu, sd = column_scale(splits[ref])
    out = {}
    for sp, x in splits.items():
        z = (np.asarray(x, dtype=np.float64) - mu) / sd
        out[sp] = np.hstack([z, np.ones((z.shape[0], 1))]) if bias else z
    return out


def standardize_pairs(chosen: Mapping[str, np.ndarray], rejected: Mapping[str, np.ndarray],
                      ref: str = "train_gt") -> dict[str, np.ndarray]:
    r"""Bradley--Terry rows ``(h_chosen - h_rejected) / sd`` of every split, ``sd`` per coordinate
    over the chosen and the rejected texts of ``ref`` together (no centring: a difference of
    two slots is already centred in distribution).

    Examples:
        >>> a = {"train_gt": np.array([[1.0, 2.0], [3.0, 2.0]])}
        >>> b = {"train_gt": np.array([[0.0, 2.0], [1.0, 4.0]])}
        >>> standardize_pairs(a, b)["train_gt"].round(3).tolist()
        [[0.918, 0.0], [1.835, -2.309]]
    """
    if ref not in chosen or ref not in rejected:
        raise ValueError(f"ref: {ref!r} is not a split of both chosen and rejected")
    if set(chosen) != set(rejected):
        raise ValueError(f"rejected: splits {sorted(rejected)} differ from chosen's {sorted(chosen)}")
    _, sd = column_scale(np.concatenate([np.asarray(chosen[ref], dtype=np.float64),
                                         np.asarray(rejected[ref], dtype=np.float64)]))
    return {sp: (np.asarray(chosen[sp], dtype=np.float64)
                 - np.asarray(rejected[sp], dtype=np.float64)) / sd for sp in chosen}


# ============================================================================= log-loss
def log_loss(y, p, eps: float = 1e-12) -> float:
    r"""Mean log-loss :math:`-\frac1n\sum_i [y_i \log p_i + (1 - y_i)\log(1 - p_i)]` (binary,
    ``p`` = P(class 1), ``y`` soft or hard in ``[0, 1]``), or
    :math:`-\frac1n\sum_i\sum_c y_{ic}\log p_{ic}` for k-class rows ``p`` ``(n, k)`` with
    ``y`` class indices ``(n,)`` or rows ``(n, k)``; ``p`` clipped to ``[eps, 1 - eps]``.

    Examples:
        >>> round(log_loss([1, 0], [0.8, 0.4]), 6)    # -(log 0.8 + log 0.6) / 2
        0.366985
        >>> round(log_loss([0, 2], np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])), 6)
        0.458145
    """
    eps = check_number(eps, "eps", low=0.0, high=0.5, low_open=True)
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    if p.ndim == 2:
        if y.ndim == 1:
            y = np.eye(p.shape[1])[y.astype(np.int64)]
        if y.shape != p.shape:
            raise ValueError(f"y: shape {y.shape} does not match p's {p.shape}")
        return float(-(y * np.log(p)).sum(axis=1).mean())
    if y.shape != p.shape:
        raise ValueError(f"y: shape {y.shape} does not match p's {p.shape}")
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


# ============================================================================= weak teacher
def fit_weak_head(features: np.ndarray, labels: np.ndarray, l2_grid: Sequence[float],
                  folds: int = 4, seed: int = 0, symmetric: bool = True):
    """The weak teacher: a logistic head on ``train_gt``, its L2 weight by k-fold CV log-loss.

    ``symmetric=True`` (preference pairs, ``features`` = slot differences): the data are
    symmetrised, ``(d, y)`` and ``(-d, 1 - y)``, so the fitted intercept is 0 and
    ``P(A > B) = 1 - P(B > A)`` exactly (up to the solver's tolerance); ``symmetric=False``: a
    plain logistic head with its intercept (labelled texts).

    Returns:
        ``(head, l2, cv)``: the `w2s_theory.heads.fit_softmax_head` head refitted on all rows
        with the chosen L2 weight, that weight, and ``{l2: mean held-out log-loss}`` (empty
        for a one-value grid).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> d = rng.normal(size=(200, 3)); y = (d[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
        >>> head, l2, cv = fit_weak_head(d, y, [1e-2, 1.0], folds=2)
        >>> l2 in (1e-2, 1.0), abs(float(head.intercept)) < 1e-8
        (True, True)
    """
    fit_softmax_head = heads.fit_softmax_head

    folds = check_int(folds, "folds", low=2)
    d = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)

    def fit(dd, yy, l2):
        if not symmetric:
            return fit_softmax_head(dd, yy, loss="forward_ce", l2=float(l2))
        return fit_softmax_head(np.vstack([dd, -dd]), np.concatenate([yy, 1 - yy]),
                                loss="forward_ce", l2=float(l2))

    grid = [float(v) for v in l2_grid]
    if not grid:
        raise ValueError("l2_grid: need at least one L2 weight")
    cv: dict[float, float] = {}
    if len(grid) > 1:
        fold = np.random.default_rng(seed).permutation(d.shape[0]) % folds
        for l2 in grid:
            losses = []
            for k in range(folds):
                h = fit(d[fold != k], y[fold != k], l2)
                losses.append(log_loss(y[fold == k], h.predict(d[fold == k])))
            cv[l2] = float(np.mean(losses))
        best = min(cv, key=cv.get)
    else:
        best = grid[0]
    return fit(d, y, best), best, cv


def corrupt_weak_labels(p: np.ndarray, noise: float, *, noise_a: float = -1.0, rng=None,
                        where: str = "noise_a") -> np.ndarray:
    """The weak labels a student sees: the weak model's probabilities ``p`` with a fraction
    ``noise`` of the rows corrupted (`w2s_theory.noise.corrupt_labels`); ``p`` itself when
    ``noise == 0``. k-class rows ``(n, k)`` take only symmetric flips (``noise_a = -1``):
    anything else is a ``ValueError`` naming ``where``.

    Examples:
        >>> corrupt_weak_labels(np.array([0.9, 0.2]), 0.0).tolist()
        [0.9, 0.2]
        >>> corrupt_weak_labels(np.array([0.9, 0.2]), 1.0, rng=0).round(6).tolist()
        [0.1, 0.8]
    """
    p = np.asarray(p, dtype=np.float64)
    if noise == 0.0:
        return p
    if p.ndim == 2 and noise_a != -1.0:
        raise ValueError(f"{where}: {p.shape[1]} classes, whose weak labels take only "
                         f"symmetric flips (noise_a = -1), got {noise_a!r}")
    return corrupt_labels(p, noise, a=noise_a, rng=rng)


# ============================================================================= lr selection
def holdout_split(n: int, holdout: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_idx, hold_idx)``: the last ``holdout`` of ``n`` train_gt rows are held out.

    Examples:
        >>> [a.tolist() for a in holdout_split(5, 2)]
        [[0, 1, 2], [3, 4]]
    """
    n = check_int(n, "n", low=1)
    holdout = check_int(holdout, "holdout", low=1)
    if holdout >= n:
        raise ValueError(f"holdout: {holdout} held-out rows leave none of the {n} train_gt "
                         "rows to fit on")
    return np.arange(n - holdout), np.arange(n - holdout, n)


def holdout_scores(y, p) -> dict:
    """``{"holdout_acc", "holdout_logloss", "n_holdout"}`` of predictions ``p`` of the held-out
    labels ``y`` (class indices).

    Examples:
        >>> s = holdout_scores([1, 0, 1], [0.9, 0.3, 0.4]); s["holdout_acc"], s["n_holdout"]
        (0.6666666666666666, 3)
    """
    y = np.asarray(y)
    return {"holdout_acc": accuracy(y, p), "holdout_logloss": log_loss(y, p),
            "n_holdout": int(y.shape[0])}


def select_lr(candidates: Sequence[float], fit_and_score: Callable[[float], Mapping], *,
              metric: str = "accuracy") -> tuple[float, list[dict]]:
    """The learning rate of the best held-out score among ``candidates``.

    ``fit_and_score(lr)`` fits on the ``train_gt`` rows left after `holdout_split` and returns a
    record holding ``holdout_acc`` (``metric="accuracy"``, maximised) or ``holdout_logloss``
    (``metric="logloss"``, minimised), e.g. from `holdout_scores`; it never sees test data.
    Ties go to the smaller learning rate.

    Returns:
        ``(lr, records)``: the chosen lr and one record per candidate, each with ``lr`` added.

    Examples:
        >>> score = {1e-3: 0.7, 1e-2: 0.8, 1e-1: 0.8}
        >>> lr, recs = select_lr([1e-3, 1e-2, 1e-1], lambda lr: {"holdout_acc": score[lr]})
        >>> lr, len(recs)
        (0.01, 3)
    """
    metric = check_choice(metric, "metric", LR_METRICS)
    if not callable(fit_and_score):
        raise TypeError(f"fit_and_score: a function lr -> record, got {type(fit_and_score).__name__}")
    cands = [check_number(c, "candidates", low=0.0, low_open=True) for c in candidates]
    if not cands:
        raise ValueError("candidates: need at least one learning rate")
    records = []
    for lr in cands:
        rec = dict(fit_and_score(lr))
        need = "holdout_acc" if metric == "accuracy" else "holdout_logloss"
        if need not in rec:
            raise ValueError(f"fit_and_score: its record for lr {lr:g} has no {need!r}")
        rec.setdefault("lr", float(lr))
        records.append(rec)
    if metric == "accuracy":
        best = max(records, key=lambda r: (r["holdout_acc"], -r["lr"]))
    else:
        best = min(records, key=lambda r: (r["holdout_logloss"], r["lr"]))
    return float(best["lr"]), records


# ============================================================================= result row
@dataclass(frozen=True)
class FitPopulation:
    """The fitting population (``train_w2s``) of a student, for the ``t2fit_*`` columns.

    Attributes:
        labels: ground-truth class indices ``(n,)``.
        weak_labels: the (possibly corrupted) weak labels the student was trained on.
        student: the student's probabilities on these rows.
        ceiling: the strong ceiling's probabilities on these rows.
    """

    labels: np.ndarray
    weak_labels: np.ndarray
    student: np.ndarray
    ceiling: np.ndarray


def _theorem2_columns(prefix: str, fstar, fw, fs, risks: bool) -> dict:
    t = theorem2(fstar, fw, fs, tol=0.0)
    out = {f"{prefix}_slack": t.slack}
    if risks:
        out.update({f"{prefix}_risk_weak": t.risk_weak, f"{prefix}_risk_strong": t.risk_strong})
    out[f"{prefix}_holds"] = t.holds
    return out, t.d_reverse


def result_row(labels, weak, student, ceiling=None, *, gamma: float,
               n_classes: int | None = None, fit: FitPopulation | None = None,
               lemma1_gamma: bool = False) -> dict:
    r"""The result columns of one student (metrics and every bound check; no coordinates).

    ``F*`` = the test truth (`w2s_theory.kclass.truth`), ``F_w`` = the weak model's test
    probabilities, ``F_sw`` = the student's; for Lemma 1 and Theorem 2 ``F_w`` and ``F_sw``
    are smoothed (`w2s_theory.divergences.smooth`, floor ``gamma``). Theorem 2 is also checked
    with ``F*`` = the strong ceiling (the realizable proxy); without a ceiling its columns,
    ``ceiling_*`` and ``pgr`` are NaN.

    Args:
        labels: test class indices ``(n,)``.
        weak, student, ceiling: test probabilities, ``(n,)`` P(class 1) or ``(n, k)``.
        gamma: smoothing floor of the bound checks.
        n_classes: written as ``n_classes`` when given (default: 2 or ``k`` of the rows).
        fit: the fitting population: adds ``n_fit``, ``weak_label_acc``, ``student_fit_acc``
            and ``t2fit_{truth,ceil}_{slack,holds}``, ``t2fit_d_reverse`` (``F_w`` = the weak
            labels the student saw).
        lemma1_gamma: keep Lemma 1's ``l1_gamma`` column.

    Returns:
        ``{column: value}``: ``[n_classes], n_test, [n_fit], weak_/ceiling_/student_{acc,auroc,
        ece}, pgr, [weak_label_acc, student_fit_acc], disagree_rate, l1_*,
        t2test_{truth,ceil}_{slack,risk_weak,risk_strong,holds}, t2test_d_reverse, [t2fit_*]``.

    Examples:
        >>> y = np.array([1, 0, 1, 0])
        >>> row = result_row(y, np.array([0.6, 0.4, 0.4, 0.3]), np.array([0.9, 0.2, 0.7, 0.1]),
        ...                  np.array([0.95, 0.1, 0.8, 0.2]), gamma=1e-3)
        >>> row["weak_acc"], row["student_acc"], row["pgr"]
        (0.75, 1.0, 1.0)
    """
    y = np.asarray(labels).astype(np.int64)
    pw, ps = np.asarray(weak, dtype=np.float64), np.asarray(student, dtype=np.float64)
    k = n_classes if n_classes is not None else (2 if ps.ndim == 1 else ps.shape[1])
    pc = None if ceiling is None else np.asarray(ceiling, dtype=np.float64)
    nan = float("nan")
    acc_w, acc_s = accuracy(y, pw), accuracy(y, ps)
    row: dict = {} if n_classes is None else {"n_classes": int(n_classes)}
    row["n_test"] = int(y.size)
    if fit is not None:
        row["n_fit"] = int(np.asarray(fit.labels).size)
    row.update({"weak_acc": acc_w, "weak_auroc": auroc_any(y, pw), "weak_ece": ece(y, pw)})
    if pc is not None:
        acc_c = accuracy(y, pc)
        row.update({"ceiling_acc": acc_c, "ceiling_auroc": auroc_any(y, pc),
                    "ceiling_ece": ece(y, pc)})
    else:
        row.update({"ceiling_acc": nan, "ceiling_auroc": nan, "ceiling_ece": nan})
    row.update({"student_acc": acc_s, "student_auroc": auroc_any(y, ps),
                "student_ece": ece(y, ps),
                "pgr": pgr(acc_s, acc_w, acc_c) if pc is not None else nan})
    if fit is not None:
        row["weak_label_acc"] = accuracy(fit.labels, fit.weak_labels)
        row["student_fit_acc"] = accuracy(fit.labels, fit.student)
    row["disagree_rate"] = disagreement_rate(ps, pw)
    fw, fs = smooth(pw, gamma), smooth(ps, gamma)
    yt = truth(y, k)
    l1 = lemma1(yt, fw, fs, gamma)
    drop = ("n",) if lemma1_gamma else ("gamma", "n")
    row.update({f"l1_{c}": v for c, v in l1.to_dict().items() if c not in drop})
    cols, d_rev = _theorem2_columns("t2test_truth", yt, fw, fs, risks=True)
    row.update(cols)
    if pc is not None:
        cols, d_rev = _theorem2_columns("t2test_ceil", pc, fw, fs, risks=True)
        row.update(cols)
    else:
        row.update({f"t2test_ceil_{c}": nan for c in ("slack", "risk_weak", "risk_strong")})
        row["t2test_ceil_holds"] = nan
    row["t2test_d_reverse"] = d_rev
    if fit is not None:
        fwf, fsf = smooth(np.asarray(fit.weak_labels, dtype=np.float64), gamma), smooth(
            np.asarray(fit.student, dtype=np.float64), gamma)
        cols, _ = _theorem2_columns("t2fit_truth", truth(fit.labels, k), fwf, fsf, risks=False)
        row.update(cols)
        cols, d_rev = _theorem2_columns("t2fit_ceil", fit.ceiling, fwf, fsf, risks=False)
        row.update(cols)
        row["t2fit_d_reverse"] = d_rev
    return row
