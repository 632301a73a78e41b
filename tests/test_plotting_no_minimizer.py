"""Figures mark a method whose fit has no finite minimiser (issue 17) instead of leaving it blank."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from w2s_theory import plotting  # noqa: E402

NOTE = "no finite minimiser"


def _rows(x):
    rows = []
    for seed in range(3):
        for xv in (0.0, 0.2):
            for loss in ("forward_kl", "reverse_ce"):
                ill = loss == "reverse_ce"

                def nan_or(v, ill=ill):
                    return math.nan if ill else v

                rows.append({"seed": seed, x: xv, "method": f"softmax/{loss}", "head": "softmax",
                             "loss": loss, "gamma": 1e-3,
                             "fit_status": "no_minimizer" if ill else "converged",
                             "test_acc_strong": nan_or(0.7 + 0.01 * seed),
                             "test_risk_strong": nan_or(0.4 + 0.01 * seed),
                             "test_acc_weak": 0.6, "test_risk_weak": 0.5,
                             "l1_gap": nan_or(0.01), "l1_data_dependent": nan_or(0.1),
                             "l1_tv": nan_or(10.0), "l1_sqrt_forward": nan_or(20.0),
                             "l1_sqrt_reverse": nan_or(21.0)})
    return pd.DataFrame(rows)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in (*ax.texts, ax.title)]


def test_lemma1_figure_marks_method_without_minimiser():
    df = _rows("noise_frac")
    fig = plotting.plot_lemma1(df)
    marks = [t for t in fig.axes[0].texts if NOTE in t.get_text()]
    plt.close(fig)
    assert len(marks) == 1
    assert marks[0].get_position()[0] == 1  # the softmax/reverse_ce slot (sorted second)


def test_curve_figure_names_method_without_minimiser():
    df = _rows("noise_frac")
    fig = plotting.plot_curve(df, "noise_frac")
    titles = [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    assert titles and all("reverse CE: no finite minimiser, not fitted" in t for t in titles)


def test_fitted_methods_are_not_marked():
    df = _rows("noise_frac")
    df = df[df["loss"] == "forward_kl"]
    for fig in (plotting.plot_lemma1(df), plotting.plot_curve(df, "noise_frac")):
        texts = _texts(fig)
        plt.close(fig)
        assert not any(NOTE in t for t in texts)
