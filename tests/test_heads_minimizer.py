"""Ill-posed exact fits say so (issue 17): the audit of `w2s_theory.heads`' exact fits.

One test per conclusion of the module docstring's "Existence of a minimiser":

* reverse CE on a softmax head (``l2 = 0``) has no finite minimiser: the fit reports
  ``no_minimizer`` (not ``converged``), and its logits grow without bound with the iterations;
* forward KL / forward CE with every weak probability > 0: bounded logits, converged;
* forward CE on separable one-hot labels (``l2 = 0``): no minimiser (certified by the LP, the
  logits diverge); with ``l2 > 0`` or overlapping labels: a minimiser;
* reverse KL: bounded logits, converged;
* the convex head: a minimiser whatever the data (same probabilities at two tolerances).

And the synthetic pipeline writes such a fit as ``fit_status = "no_minimizer"``, NaN risks,
``fit_converged = False``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from w2s_theory.heads import (
    NO_MINIMIZER,
    fit_convex_head,
    fit_softmax_head,
    minimizer_status,
)


def _data(n=120, d=3, seed=0):
    """Soft weak labels (every coordinate in [0.02, 0.98]) that are a noisy logistic function
    of the features: the sign pattern of logit(y) is nearly linear in x."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    z = 2.0 * x[:, 0] - x[:, 1] + 0.3 * rng.normal(size=n)
    y = 0.02 + 0.96 / (1.0 + np.exp(-z))
    return x, y


def _max_logit(head, x):
    return float(np.abs(head.logits(x)).max())


def test_reverse_ce_exact_fit_reports_no_minimizer():
    x, y = _data()
    h = fit_softmax_head(x, y, loss="reverse_ce")
    assert h.report.status.startswith(NO_MINIMIZER + ": ")
    assert "linear in the probabilities" in h.report.status
    assert h.report.converged is False


def test_reverse_ce_kclass_reports_no_minimizer():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 2))
    y = rng.dirichlet(np.ones(3), size=90)
    assert minimizer_status(x, y, loss="reverse_ce") is not None
    assert fit_softmax_head(x, y, loss="reverse_ce", max_iter=50).report.converged is False


def test_reverse_ce_logits_diverge_with_iterations():
    x, y = _data()
    norms, objs = [], []
    for it in (10, 40, 160):
        h = fit_softmax_head(x, y, loss="reverse_ce", max_iter=it, newton=False, tol=1e-14)
        norms.append(_max_logit(h, x))
        objs.append(h.report.objective)
    assert norms[0] < norms[1] < norms[2] and norms[2] > 4 * norms[0], norms
    assert objs[0] > objs[1] > objs[2], objs          # still descending: no stopping point
    # ... and stays above the per-sample lower bound mean_x min_j -log y_j(x)
    assert objs[2] > np.minimum(-np.log(y), -np.log1p(-y)).mean()


@pytest.mark.parametrize("loss", ["forward_kl", "forward_ce", "reverse_kl"])
def test_smooth_label_fits_stay_bounded(loss):
    x, y = _data()
    assert minimizer_status(x, y, loss=loss) is None
    norms = []
    for it in (40, 160, 2000):
        h = fit_softmax_head(x, y, loss=loss, max_iter=it)
        norms.append(_max_logit(h, x))
    assert h.report.converged and h.report.status.startswith("lbfgs")
    assert max(norms) - min(norms) < 1e-6 * max(norms), norms
    assert max(norms) < 10.0                          # |logit y| <= logit(0.98) = 3.9 here


def test_forward_ce_separable_hard_labels_have_no_minimizer():
    x, y = _data()
    hard = (y > 0.5).astype(float)
    sep = (2 * x[:, 0] - x[:, 1] > 0).astype(float)   # linearly separable one-hot labels
    reason = minimizer_status(x, sep, loss="forward_ce")
    assert reason is not None and "separation" in reason
    h1 = fit_softmax_head(x, sep, loss="forward_ce", max_iter=20, newton=False, tol=1e-14)
    h2 = fit_softmax_head(x, sep, loss="forward_ce", max_iter=200, newton=False, tol=1e-14)
    assert _max_logit(h2, x) > 2 * _max_logit(h1, x)
    assert h2.report.status.startswith(NO_MINIMIZER) and not h2.report.converged
    # ridge or overlapping hard labels: a minimiser exists
    assert minimizer_status(x, sep, loss="forward_ce", l2=1e-3) is None
    flip = hard.copy()
    flip[np.argsort(2 * x[:, 0] - x[:, 1])[[5, -5]]] = [1.0, 0.0]  # one wrong label each side
    assert minimizer_status(x, flip, loss="forward_kl") is None
    assert fit_softmax_head(x, flip, loss="forward_kl").report.converged


def test_reverse_ce_degenerate_labels_have_a_minimizer():
    """Every constant prediction costs the same and the gradient at zero vanishes: the
    objective is constant (y = 1/2 everywhere), zero parameters minimise it."""
    x, _ = _data()
    assert minimizer_status(x, np.full(len(x), 0.5), loss="reverse_ce") is None


def test_convex_head_has_a_minimizer_on_the_same_data():
    x, y = _data()
    for div in ("reverse_kl", "forward_kl"):
        a = fit_convex_head(x, y, divergence=div, gamma=1e-3, tol=1e-10)
        b = fit_convex_head(x, y, divergence=div, gamma=1e-3, tol=1e-7)
        assert a.report.status == "Solved" and b.report.status == "Solved"
        assert np.abs(a.probs - b.probs).max() < 1e-3
        assert np.isfinite(a.coef).all() and np.abs(a.coef).max() < 10.0


def test_minimizer_status_checks_its_arguments():
    x, y = _data(n=10)
    with pytest.raises(ValueError, match="^loss"):
        minimizer_status(x, y, loss="bogus")
    with pytest.raises(ValueError, match="^weak_probs"):
        minimizer_status(x, y + 1.0, loss="reverse_ce")
    with pytest.raises(ValueError, match="^features"):
        minimizer_status(x[:5], y, loss="reverse_ce")
    with pytest.raises(ValueError, match="^l2"):
        minimizer_status(x, y, loss="reverse_ce", l2=-1.0)
    with pytest.raises(ValueError, match="^eps"):
        minimizer_status(x, y, loss="reverse_ce", eps=0.0)          # log 0 in the costs


def test_pipeline_writes_no_minimizer_rows(tmp_path):
    from w2s_theory.pipelines.synthetic import (
        HEAD_COLUMNS,
        evaluate,
        fit_method,
        run_sweep,
        summarize_lemma1,
        sweep_config_from_dict,
    )
    from w2s_theory.synthetic import SyntheticConfig, make_instance

    raw = {"sweep": {"name": "t", "kind": "lemma1", "seeds": 1,
                     "methods": ["softmax/reverse_ce", "softmax/reverse_kl",
                                 "minibatch/reverse_ce"]},
           "base": {"k": 2, "d_strong": 6, "d_weak": 2, "n_gt": 60, "n_w2s": 60, "n_test": 60,
                    "labels": "sampled"}}
    cfg = sweep_config_from_dict(raw, root=tmp_path)
    out = run_sweep(cfg, results=tmp_path / "t.csv", progress=False)
    df = out["table"].frame().set_index("method")
    assert out["errors"] == 0
    bad = df.loc["softmax/reverse_ce"]
    assert bad["fit_status"] == NO_MINIMIZER and not bool(bad["fit_converged"])
    for c in HEAD_COLUMNS:
        assert bad[c] is None or math.isnan(float(bad[c])), c
    for c in ("risk_weak", "test_acc_weak", "test_acc_bayes", "test_risk_weak"):
        assert bad[c] == df.loc["softmax/reverse_kl", c]       # the instance's columns kept
    assert np.isfinite(df.loc["minibatch/reverse_ce", "risk_strong"])  # the practical regime
    assert np.isfinite(df.loc["softmax/reverse_kl", "risk_strong"])
    summ = summarize_lemma1(out["table"].frame()).set_index("method")
    assert summ.loc["softmax/reverse_ce", "no_minimizer"] == 1
    assert summ.loc["softmax/reverse_ce", "all_hold"] is None       # no student, no verdict
    assert summ.loc["softmax/reverse_kl", "no_minimizer"] == 0
    # the row has the columns (and order) of any other row
    inst = make_instance(SyntheticConfig(d_strong=6, d_weak=2, n_gt=60, n_w2s=60, n_test=60), 0)
    good = evaluate(inst, "softmax/reverse_kl",
                    fit_method("softmax/reverse_kl", inst.w2s.h_strong, inst.weak_probs,
                               gamma=1e-3))
    ill = fit_method("softmax/reverse_ce", inst.w2s.h_strong, inst.weak_probs, gamma=1e-3)
    assert list(evaluate(inst, "softmax/reverse_ce", ill)) == list(good)


def test_a_weak_model_without_minimizer_is_refused():
    """The synthetic weak model is an exact forward-CE fit: with weak_l2 = 0 on one-hot labels
    its weak view separates (10 points in 8 dimensions), it has no minimiser: refused."""
    from w2s_theory.synthetic import SyntheticConfig, make_instance

    cfg = SyntheticConfig(d_strong=8, d_weak=8, weak_noise=0.0, n_gt=10, n_w2s=20, n_test=20,
                          labels="sampled", weak_l2=0.0)
    with pytest.raises(ValueError, match="^weak_l2: .*no finite minimiser"):
        make_instance(cfg, seed=0)
    make_instance(cfg.replace(weak_l2=1e-4), seed=0)                  # ridge: a minimiser
    make_instance(cfg.replace(labels="soft"), seed=0)                 # soft labels > 0
