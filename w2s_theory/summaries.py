"""Summaries of a synthetic sweep's result table (one row per run): the printed summary, and
the tables behind the figures (`w2s_theory.plotting`) and the notebooks.

* `summarize_theorem2`: per (variant, method), violations of Theorem 2's ``slack >= -tol``
  in both forms, slack quantiles and tolerances.
* `summarize_dual`: per (variant, method), the dual statement's relative equality error.
* `summarize_lemma1`: per method, each stage of Lemma 1 (`LEMMA1_STAGES`) over the exact gap.
* `summarize_curve`: per (method, x), the mean over seeds and its 95 % t interval half-width
  (`w2s_theory.stats.one_sample_t`).
* `format_summary`: the short text ``w2s-theory synthetic`` prints, from the tables above.

Input is a pandas ``DataFrame`` with the columns that `w2s_theory.pipelines.synthetic.evaluate`
writes; the names stay importable from `w2s_theory.pipelines.synthetic`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .heads import NO_MINIMIZER
from .stats import one_sample_t

__all__ = ["LEMMA1_STAGES", "summarize_theorem2", "summarize_dual", "summarize_lemma1",
           "summarize_curve", "format_summary"]


def _mean_halfwidth(x) -> tuple[float, float]:
    """Mean of the finite values of ``x`` and the half-width of its 95 % t interval
    (``nan`` half-width for one value; ``(nan, nan)`` for none)."""
    v = np.asarray(x, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    t = one_sample_t(v, 0.95)
    return t.mean, t.ci_high - t.mean


def summarize_theorem2(df):
    """Per (variant, method): instances, violations of both forms, slack quantiles, tolerances."""
    rows = []
    for (var, meth), g in df.groupby(["variant", "method"], sort=True):
        viol_rev = g["slack_rev"] < -g["tol"]
        viol_fwd = g["slack_fwd"] < -g["tol"]
        rows.append({
            "variant": var, "method": meth, "n": len(g),
            "violations_rev": int(viol_rev.sum()), "frac_violations_rev": float(viol_rev.mean()),
            "violations_fwd": int(viol_fwd.sum()), "frac_violations_fwd": float(viol_fwd.mean()),
            "min_slack_rev": float(g["slack_rev"].min()),
            "median_slack_rev": float(g["slack_rev"].median()),
            "worst_violation_rev": float((-g["slack_rev"]).clip(lower=0).max()),
            "worst_rel_violation_rev": float(((-g["slack_rev"]).clip(lower=0)
                                              / g["risk_weak"]).max()),
            "max_tol": float(g["tol"].max()),
            "errors": int(g["fit_status"].astype(str).str.startswith("error").sum()),
            "all_solved": bool((g["fit_status"].astype(str).str.startswith(
                ("Solved", "lbfgs"))).all()),
        })
    return pd.DataFrame(rows)


def summarize_dual(df):
    """Per (variant, method): the dual statement's relative equality error (max, median)."""
    rows = []
    for (var, meth), g in df.groupby(["variant", "method"], sort=True):
        e = g["dual_rel_err"].astype(float)
        rows.append({"variant": var, "method": meth, "n": len(g),
                     "max_rel_err": float(e.max()), "median_rel_err": float(e.median()),
                     "frac_below_1e-6": float((e <= 1e-6).mean()),
                     "max_grad_norm": float(g["fit_grad_norm"].max())})
    return pd.DataFrame(rows)


#: The result-row columns of the stages of Lemma 1's chain of bounds.
LEMMA1_STAGES = ("l1_data_dependent", "l1_tv", "l1_sqrt_forward", "l1_sqrt_reverse")


def summarize_lemma1(df):
    """Per method: quantiles of each stage / |gap| (the looseness), and whether all held.

    Runs whose fit has no finite minimiser (``fit_status = "no_minimizer"``) have no student:
    they are counted in ``no_minimizer`` and left out of ``all_hold`` (``None`` when no run
    of the method has a student) and of the quantiles (NaN)."""
    rows = []
    for meth, g in df.groupby("method", sort=True):
        ill = g["fit_status"].astype(str) == NO_MINIMIZER if "fit_status" in g else False
        g_ill, g = g[ill], g[~ill]
        gap = g["l1_gap"].abs()
        r = {"method": meth, "n": len(g) + len(g_ill), "no_minimizer": len(g_ill),
             "all_hold": bool(g["l1_holds"].astype(bool).all()) if len(g) else None}
        for s in LEMMA1_STAGES:
            ratio = (g[s] / gap)[gap > 0]
            name = s.removeprefix("l1_")
            r[f"{name}_median"] = float(ratio.median())
            r[f"{name}_q10"] = float(ratio.quantile(0.1))
            r[f"{name}_q90"] = float(ratio.quantile(0.9))
        rows.append(r)
    return pd.DataFrame(rows)


def summarize_curve(df, x: str, metrics=("test_acc_strong", "test_risk_strong")):
    """Mean and 95% t-interval half-width over seeds, per (method, x)."""
    rows = []
    for (meth, xv), g in df.groupby(["method", x], sort=True):
        r = {"method": meth, x: xv, "n_seeds": int(g["seed"].nunique())}
        for m in (*metrics, "test_acc_weak", "test_risk_weak"):
            mean, hw = _mean_halfwidth(g[m])
            r[f"{m}_mean"], r[f"{m}_ci95"] = mean, hw
        rows.append(r)
    return pd.DataFrame(rows)


def format_summary(cfg, df) -> str:
    """A short printed summary of a sweep's table (what ``w2s-theory synthetic`` prints).

    Per kind: Theorem 2 - violations of ``slack >= -tol`` per case and method (the cases that
    break an assumption are expected to show some); dual - the dual statement's relative
    error; Lemma 1 - whether every stage held and the median ratio ``stage / |gap|``;
    noise / strength curves - mean test accuracy of the strong student at each ``x``.

    Args:
        cfg: the sweep's `w2s_theory.pipelines.synthetic.SweepConfig` (its ``name``, ``kind``
            and ``x`` are read).
        df: the sweep's result table.
    """
    if len(df) == 0:
        return f"{cfg.name}: no rows yet"
    if "fit_status" in df.columns:
        failed = df["fit_status"].astype(str).str.startswith("error")
        if failed.all():
            return (f"{cfg.name}: every fit failed ({len(df)} runs), no summary; the first: "
                    f"{df['fit_status'].iloc[0]}")
    n = int(df["seed"].nunique())
    if cfg.kind == "theorem2":
        s = summarize_theorem2(df)
        head = (f"Theorem 2: slack = R(F_w) - d_reverse - R(F_sw) >= -tol ({n} instances; only the "
                f"reverse-KL projection with F* in a convex class is guaranteed)")
        cols = {"variant": "case", "method": "head/loss", "n": "runs", "violations_rev": "violated",
                "min_slack_rev": "min slack", "median_slack_rev": "median slack"}
        guaranteed = (s["method"].str.endswith("reverse_kl") & s["method"].str.startswith("convex/")
                      & s["variant"].isin(["realizable", "confident_weak"]))
        t = s[list(cols)].rename(columns=cols)
        t["guaranteed"] = np.where(guaranteed, "yes", "no (expected to fail)")
    elif cfg.kind == "dual":
        s = summarize_dual(df)
        head = f"Dual statement: L(F_sw, F*) = L(F_w, F*) - d_forward ({n} instances)"
        cols = {"variant": "case", "method": "head/loss", "n": "runs", "max_rel_err": "max rel. error",
                "median_rel_err": "median rel. error", "frac_below_1e-6": "share <= 1e-6"}
        t = s[list(cols)].rename(columns=cols)
    elif cfg.kind == "lemma1":
        s = summarize_lemma1(df)
        head = f"Lemma 1: median bound / |gap| per stage (>= 1 when it holds; {n} instances)"
        cols = {"method": "head/loss", "n": "runs", "no_minimizer": "no minimiser",
                "all_hold": "all hold",
                **{f"{st.removeprefix('l1_')}_median": st.removeprefix("l1_") for st in LEMMA1_STAGES}}
        t = s[list(cols)].rename(columns=cols)
    else:
        s = summarize_curve(df, cfg.x)
        head = f"Strong student's mean test accuracy vs {cfg.x} ({n} seeds)"
        t = s.pivot_table(index="method", columns=cfg.x, values="test_acc_strong_mean")
        t.columns = [f"{cfg.x}={c:g}" for c in t.columns]
        t = t.reset_index().rename(columns={"method": "head/loss"})
    return head + "\n" + t.to_string(index=False, float_format=lambda v: f"{v:.4g}")
