"""w2s_theory.protocol: standardisation, log-loss, weak teacher, lr selection, the result row.

Each numerical claim is checked against an independent computation (scikit-learn, plain numpy).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from w2s_theory import protocol
from w2s_theory.bounds import lemma1, theorem2
from w2s_theory.protocol import (
    FitPopulation,
    column_scale,
    fit_weak_head,
    holdout_scores,
    holdout_split,
    log_loss,
    result_row,
    select_lr,
    standardize_pairs,
    standardize_splits,
)

RNG = np.random.default_rng(7)


# ----------------------------------------------------------------------------- standardisation
def test_standardize_splits_equals_a_scaler_fitted_on_train_gt_only():
    x = {sp: RNG.normal(loc=3.0, scale=2.0, size=(n, 4)) for sp, n in
         (("train_gt", 50), ("train_w2s", 40), ("test", 30))}
    x["train_gt"][:, 2] = 5.0                       # a constant column: scale 1, not 0
    sc = StandardScaler().fit(x["train_gt"])
    got = standardize_splits(x)
    for sp in x:
        np.testing.assert_allclose(got[sp][:, :-1], sc.transform(x[sp]), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got[sp][:, -1], 1.0)
    assert standardize_splits(x, bias=False)["test"].shape == (30, 4)
    # the test split's own statistics never enter
    y = dict(x, test=x["test"] * 100)
    np.testing.assert_array_equal(standardize_splits(y)["train_gt"], got["train_gt"])


def test_standardize_pairs_scales_differences_by_both_slots_of_train_gt():
    c = {sp: RNG.normal(size=(20, 3)) for sp in ("train_gt", "test")}
    r = {sp: RNG.normal(size=(20, 3)) * 2 for sp in ("train_gt", "test")}
    sd = np.array([np.std(np.r_[c["train_gt"][:, j], r["train_gt"][:, j]]) for j in range(3)])
    got = standardize_pairs(c, r)
    for sp in c:
        np.testing.assert_allclose(got[sp], (c[sp] - r[sp]) / sd, rtol=1e-12)


def test_standardisation_errors_name_the_argument():
    with pytest.raises(ValueError, match="^ref: 'train_gt'"):
        standardize_splits({"test": np.ones((2, 2))})
    with pytest.raises(ValueError, match="^x: "):
        column_scale(np.ones(3))
    with pytest.raises(ValueError, match="^rejected: "):
        standardize_pairs({"train_gt": np.ones((2, 2)), "test": np.ones((2, 2))},
                          {"train_gt": np.ones((2, 2))})


# ----------------------------------------------------------------------------- log-loss
def test_log_loss_matches_sklearn_binary_and_kclass():
    y = RNG.integers(0, 2, 200)
    p = RNG.uniform(0.01, 0.99, 200)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    k = RNG.dirichlet(np.ones(3), 150)
    y3 = RNG.integers(0, 3, 150)
    assert log_loss(y3, k) == pytest.approx(sk_log_loss(y3, k, labels=[0, 1, 2]), rel=1e-12)
    assert log_loss(np.eye(3)[y3], k) == pytest.approx(log_loss(y3, k), rel=1e-15)
    # soft binary targets: the cross-entropy written out
    ys = RNG.uniform(size=200)
    assert log_loss(ys, p) == pytest.approx(
        float(np.mean(-(ys * np.log(p) + (1 - ys) * np.log(1 - p)))), rel=1e-12)
    # clipping: p = 0 for a positive is -log(1e-12), not inf
    assert log_loss([1], [0.0]) == pytest.approx(-np.log(1e-12))
    with pytest.raises(ValueError, match="^y: shape"):
        log_loss([1, 0, 1], [0.5, 0.5])


# ----------------------------------------------------------------------------- weak teacher
def test_fit_weak_head_picks_the_l2_of_least_cv_log_loss():
    d = RNG.normal(size=(160, 3))
    y = (d @ np.array([1.0, -0.5, 0.0]) + 0.8 * RNG.normal(size=160) > 0).astype(float)
    grid = [1e-3, 1.0, 100.0]
    head, l2, cv = fit_weak_head(d, y, grid, folds=4, seed=3)
    from w2s_theory.heads import fit_softmax_head

    fold = np.random.default_rng(3).permutation(160) % 4
    want = {}
    for lam in grid:
        ls = []
        for k in range(4):
            tr, te = fold != k, fold == k
            h = fit_softmax_head(np.vstack([d[tr], -d[tr]]), np.r_[y[tr], 1 - y[tr]],
                                 loss="forward_ce", l2=lam)
            ls.append(sk_log_loss(y[te], h.predict(d[te]), labels=[0, 1]))
        want[lam] = np.mean(ls)
    assert set(cv) == set(grid)
    for lam in grid:
        assert cv[lam] == pytest.approx(want[lam], rel=1e-9)
    assert l2 == min(want, key=want.get)
    # symmetric: no intercept, P(A > B) = 1 - P(B > A)
    np.testing.assert_allclose(head.predict(d) + head.predict(-d), 1.0, atol=1e-6)
    # a one-value grid: no CV
    assert fit_weak_head(d, y, [0.1])[1:] == (0.1, {})


def test_corrupt_weak_labels_flips_binary_and_refuses_asymmetric_kclass():
    p = np.array([0.9, 0.2, 0.7, 0.4])
    np.testing.assert_allclose(protocol.corrupt_weak_labels(p, 1.0, rng=0), 1 - p)
    assert protocol.corrupt_weak_labels(p, 0.0) is not None
    with pytest.raises(ValueError, match="^noise_a: 3 classes"):
        protocol.corrupt_weak_labels(np.full((4, 3), 1 / 3), 0.2, noise_a=0.5, rng=0)


# ----------------------------------------------------------------------------- lr selection
def test_holdout_split_holds_out_the_last_rows():
    fit, hold = holdout_split(10, 3)
    assert fit.tolist() == list(range(7)) and hold.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="^holdout: 10 held-out rows leave none"):
        holdout_split(10, 10)


def test_select_lr_best_accuracy_ties_to_the_smaller_lr_and_logloss_metric():
    acc = {1e-4: 0.6, 1e-3: 0.8, 1e-2: 0.8, 1e-1: 0.5}
    ll = {1e-4: 0.7, 1e-3: 0.5, 1e-2: 0.4, 1e-1: 0.9}
    seen = []

    def score(lr):
        seen.append(lr)
        return {"holdout_acc": acc[lr], "holdout_logloss": ll[lr]}

    lr, recs = select_lr(list(acc), score)
    assert lr == 1e-3 and seen == list(acc)
    assert [r["lr"] for r in recs] == list(acc)
    assert select_lr(list(acc), score, metric="logloss")[0] == 1e-2
    with pytest.raises(ValueError, match="^metric: "):
        select_lr([1e-3], score, metric="auroc")
    with pytest.raises(ValueError, match="^fit_and_score: .*'holdout_acc'"):
        select_lr([1e-3], lambda lr: {})
    with pytest.raises(ValueError, match="^candidates: "):
        select_lr([], score)


def test_holdout_scores_are_accuracy_and_log_loss():
    y = RNG.integers(0, 2, 50)
    p = RNG.uniform(size=50)
    s = holdout_scores(y, p)
    assert s["holdout_acc"] == np.mean((p > 0.5) == y)
    assert s["holdout_logloss"] == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    assert s["n_holdout"] == 50


# ----------------------------------------------------------------------------- result row
def _probs(n, k=None):
    return RNG.uniform(0.05, 0.95, n) if k is None else RNG.dirichlet(np.ones(k), n)


@pytest.mark.parametrize("k", [None, 3])
def test_result_row_metrics_and_bound_checks(k):
    n, g = 120, 1e-3
    y = RNG.integers(0, 2 if k is None else 3, n)
    oh = y.astype(float) if k is None else np.eye(k)[y]
    # a ceiling near the truth, a student between, a weak model barely informative
    pw, ps, pc = 0.9 * _probs(n, k) + 0.1 * oh, 0.5 * _probs(n, k) + 0.5 * oh, \
        0.2 * _probs(n, k) + 0.8 * oh
    yf, ywf, psf, pcf = RNG.integers(0, 2 if k is None else 3, 80), _probs(80, k), _probs(80, k), \
        _probs(80, k)
    row = result_row(y, pw, ps, pc, gamma=g, n_classes=k or 2,
                     fit=FitPopulation(yf, ywf, psf, pcf))

    def hard(p):
        return (p > 0.5).astype(int) if p.ndim == 1 else p.argmax(1)

    acc = {t: float(np.mean(hard(p) == y)) for t, p in (("weak", pw), ("student", ps),
                                                         ("ceiling", pc))}
    for t, p in (("weak", pw), ("student", ps), ("ceiling", pc)):
        assert row[f"{t}_acc"] == acc[t]
        want_auc = roc_auc_score(y, p) if k is None else roc_auc_score(y, p, multi_class="ovr")
        assert row[f"{t}_auroc"] == pytest.approx(want_auc, rel=1e-12)
    assert row["pgr"] == pytest.approx((acc["student"] - acc["weak"]) / (acc["ceiling"] - acc["weak"]))
    assert row["disagree_rate"] == float(np.mean(hard(ps) != hard(pw)))
    assert row["weak_label_acc"] == float(np.mean(hard(ywf) == yf))
    assert row["student_fit_acc"] == float(np.mean(hard(psf) == yf))
    assert (row["n_classes"], row["n_test"], row["n_fit"]) == (k or 2, n, 80)
    # the bound checks see the smoothed weak / student predictions (1 - k g) p + g
    kk = k or 2

    def sm(p):
        return (1 - kk * g) * p + g

    def onehot(lab):
        return lab.astype(float) if k is None else np.eye(k)[lab]

    l1 = lemma1(onehot(y), sm(pw), sm(ps), g)
    def close(a, b):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)

    assert close(row["l1_gap"], l1.gap) and "l1_gamma" not in row
    t = theorem2(pc, sm(pw), sm(ps), tol=0.0)
    assert close(row["t2test_ceil_slack"], t.slack) and close(row["t2test_d_reverse"], t.d_reverse)
    t = theorem2(onehot(y), sm(pw), sm(ps), tol=0.0)
    assert close(row["t2test_truth_risk_strong"], t.risk_strong)
    assert close(row["t2test_truth_risk_weak"], t.risk_weak)
    t = theorem2(onehot(yf), sm(ywf), sm(psf), tol=0.0)
    assert close(row["t2fit_truth_slack"], t.slack) and row["t2fit_truth_holds"] == t.holds
    assert close(row["t2fit_ceil_slack"], theorem2(pcf, sm(ywf), sm(psf), tol=0.0).slack)


def test_result_row_without_a_ceiling_or_fit_population():
    y = RNG.integers(0, 2, 40)
    row = result_row(y, _probs(40), _probs(40), gamma=0.01, lemma1_gamma=True)
    for c in ("ceiling_acc", "pgr", "t2test_ceil_slack", "t2test_ceil_holds"):
        assert np.isnan(row[c])
    assert "n_classes" not in row and "n_fit" not in row and "t2fit_truth_slack" not in row
    assert row["l1_gamma"] == 0.01
