"""Every figure of the toolkit, in one place (matplotlib, imported on call).

Each ``plot_*`` function takes result tables (pandas) and returns a ``matplotlib`` figure;
:func:`synthetic_figures` draws and saves the figure of a synthetic sweep kind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["loss_colors", "loss_styles", "plot_demo", "plot_theorem2", "plot_dual", "plot_lemma1", "plot_curve",
           "synthetic_figures", "save_figure"]


# ----------------------------------------------------------------------------- loss colours
#: the paper's four losses keep their colours and line styles in every figure
_PAPER_COLORS = {"forward_kl": "tab:blue", "forward_ce": "tab:cyan", "reverse_kl": "tab:red",
                 "reverse_ce": "tab:orange"}
_PAPER_STYLES = {"forward_kl": "-", "forward_ce": ":", "reverse_kl": "-", "reverse_ce": "--"}
_OTHER_COLORS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:gray")


def loss_colors(names) -> dict:
    """A colour per loss name: fixed for the paper's four, then a cycle for any other.

    Example:
        >>> loss_colors(["reverse_kl", "js"])
        {'reverse_kl': 'tab:red', 'js': 'tab:green'}
    """
    others = iter(_OTHER_COLORS * (1 + len(list(names)) // len(_OTHER_COLORS)))
    return {n: _PAPER_COLORS.get(n) or next(others) for n in names}


def loss_styles(names) -> dict:
    """A line style per loss name (the paper's four fixed, ``"-."`` for the others)."""
    return {n: _PAPER_STYLES.get(n, "-.") for n in names}


# ----------------------------------------------------------------------------- demo
def plot_demo(L, T, cfg):
    """The demo's figure: Lemma 1 tightness ratios (left), Theorem 2 slack per class (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    stages = [("data_dependent", "E[TV/m]"), ("tv", "E TV / γ"), ("sqrt_forward", "√(d_fwd/2) / γ"),
              ("sqrt_reverse", "√(d_rev/2) / γ")]
    finite = L[np.isfinite(L["ratio_tv"])]
    data = [np.log10(finite[f"ratio_{s}"].to_numpy()) for s, _ in stages]
    ax1.boxplot(data, showfliers=True, flierprops={"markersize": 2})
    ax1.set_xticks(range(1, len(stages) + 1), [lab for _, lab in stages])
    ax1.axhline(0.0, color="red", lw=1, ls="--", label="bound = |gap| (ratio 1)")
    ax1.set_ylabel("log10(bound / |gap|)  (dimensionless)")
    ax1.set_title(f"Lemma 1 tightness: {len(finite)} populations × {cfg.rows} rows,\n"
                  f"γ ∈ {{{', '.join(f'{g:g}' for g in cfg.gammas)}}}, k ∈ {{{', '.join(map(str, cfg.classes))}}}",
                  fontsize=10)
    ax1.legend(loc="upper left", fontsize=8)
    groups = [("hull", "reverse", True), ("hull", "reverse", False), ("segment", "reverse", True),
              ("segment", "forward", True)]
    labels = ["hull\nreverse KL\nF* ∈ C", "hull\nreverse KL\nF* ∉ C", "segment\nreverse KL\nF* ∈ C",
              "segment\nforward KL\nF* ∈ C"]
    rng = np.random.default_rng(0)
    for x, (cls, proj, real) in enumerate(groups):
        g = T[(T["class"] == cls) & (T["projection"] == proj) & (T["realizable"] == real)]
        bad = ~g["holds"].to_numpy()
        jitter = x + rng.uniform(-0.15, 0.15, len(g))
        ax2.scatter(jitter[~bad], g["slack"].to_numpy()[~bad], s=10, color="tab:blue",
                    label="holds (slack ≥ −tol)" if x == 0 else None)
        ax2.scatter(jitter[bad], g["slack"].to_numpy()[bad], s=10, color="tab:red", marker="x",
                    label="violated (slack < −tol)" if x == 1 else None)
    ax2.axhline(0.0, color="black", lw=0.8)
    ax2.set_xticks(range(len(groups)), labels, fontsize=8)
    ax2.set_ylabel("slack = R(F_w) − d_rev − R(F_sw)  (nats)")
    ax2.set_title(f"Theorem 2 on exact projections: {cfg.hull_instances} hull + "
                  f"{cfg.segment_instances} segment instances,\n{cfg.theorem2_rows} rows, "
                  f"k = {cfg.theorem2_classes}", fontsize=10)
    ax2.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"w2s-theory demo (seed {cfg.seed})", fontsize=11)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- synthetic sweeps
def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Save ``fig`` as ``path`` (folders created), tight bounding box; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def plot_theorem2(df, title_extra: str = ""):
    """Theorem 2 slack ``R(F_w) - d_rev - R(F_sw)`` per (variant, method): a signed-log strip
    plot with the fraction of violations (``slack < -tol``); forward methods also show the
    fraction for the ``d_fwd`` form."""
    import matplotlib.pyplot as plt

    from .pipelines import synthetic

    summ = synthetic.summarize_theorem2(df)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    labels = []
    rng = np.random.default_rng(0)
    for i, r in enumerate(summ.itertuples()):
        g = df[(df["variant"] == r.variant) & (df["method"] == r.method)]
        s = g["slack_rev"].to_numpy()
        viol = s < -g["tol"].to_numpy()
        xs = i + rng.uniform(-0.25, 0.25, len(s))
        ax.scatter(xs[~viol], s[~viol], s=8, color="tab:blue", alpha=0.6)
        ax.scatter(xs[viol], s[viol], s=8, color="tab:red", alpha=0.8)
        lab = f"{r.variant}\n{r.method}\nviol {viol.mean():.0%}"
        if "forward" in r.method:
            lab += f"\n(d_fwd form: {r.frac_violations_fwd:.0%})"
        labels.append(lab)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("slack  R(F_w) − d_rev − R(F_sw)  [nats]")
    n = df["seed"].nunique()
    ax.set_title(f"Theorem 2 on the w2s split: slack ≥ −tol? ({n} instances; red = violation)"
                 f"{title_extra}", fontsize=9)
    return fig


def plot_dual(df, title_extra: str = ""):
    """Histogram (log10) of the dual statement's relative equality error per variant/method."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    bins = np.linspace(-18, 1, 39)
    for (var, meth), g in df.groupby(["variant", "method"], sort=True):
        e = np.log10(np.maximum(g["dual_rel_err"].astype(float).to_numpy(), 1e-18))
        ax.hist(e, bins=bins, alpha=0.6, label=f"{var}: {meth} (n={len(g)})")
    ax.axvline(-6, color="k", ls="--", lw=1, label="1e-6 target")
    ax.set_xlabel("log10 relative error of  L(F_sw,F*) = L(F_w,F*) − d_fwd  (exact 0 shown at −18)")
    ax.set_ylabel("instances")
    n = df["seed"].nunique()
    ax.set_title(f"Dual statement on the w2s split ({n} instances): forward KL on a softmax head "
                 f"gains exactly d_fwd{title_extra}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_lemma1(df, title_extra: str = ""):
    """Box plots of log10(stage / |gap|) for each loss and each stage of Lemma 1."""
    import matplotlib.pyplot as plt

    from .pipelines import synthetic

    meths = sorted(df["method"].unique())
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(synthetic.LEMMA1_STAGES)
    colors = ["tab:green", "tab:blue", "tab:orange", "tab:red"]
    for j, s in enumerate(synthetic.LEMMA1_STAGES):
        data = []
        for m in meths:
            g = df[df["method"] == m]
            gap = g["l1_gap"].abs()
            data.append(np.log10((g[s] / gap)[gap > 0].to_numpy()))
        pos = np.arange(len(meths)) + (j - 1.5) * width
        bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                        showfliers=False)
        for b in bp["boxes"]:
            b.set_facecolor(colors[j])
            b.set_alpha(0.6)
        ax.plot([], [], color=colors[j], lw=6, alpha=0.6, label=s.removeprefix("l1_"))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(meths)), [m.replace("/", "\n") for m in meths], fontsize=8)
    ax.set_ylabel("log10( bound / |R(F_sw) − R(F_w)| )")
    n = df["seed"].nunique()
    ax.set_title(f"Lemma 1 tightness: each stage over the exact gap ({n} instances; "
                 f"C1 = 1/(γ√2), γ = {df['gamma'].iloc[0]:g}){title_extra}", fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    return fig


_XLABELS = {"noise_frac": "fraction of flipped weak labels (noise_frac)",
            "weak_noise": "noise std of the weak view (weak_noise; larger = weaker teacher)"}
_HEAD_TITLES = {"softmax": "exact fit (softmax head; float64 L-BFGS + Newton)",
                "minibatch": "practical regime (minibatch optimiser, early stopped)",
                "convex": "exact convex projection (affine-probability head)"}


def plot_curve(df, x: str, title_extra: str = ""):
    """Test accuracy and risk vs ``x`` for each method: mean and 95% CI over seeds."""
    import matplotlib.pyplot as plt

    from .pipelines import synthetic

    summ = synthetic.summarize_curve(df, x)
    heads = sorted(df["head"].unique())
    fig, axes = plt.subplots(len(heads), 2, figsize=(10, 3.4 * len(heads)), squeeze=False)
    for i, h in enumerate(heads):
        for j, (m, lab) in enumerate((("test_acc_strong", "test accuracy"),
                                      ("test_risk_strong", "test risk  E KL(F*‖F) [nats]"))):
            ax = axes[i, j]
            for meth, g in summ[summ["method"].str.startswith(h + "/")].groupby("method"):
                ax.errorbar(g[x], g[f"{m}_mean"], yerr=g[f"{m}_ci95"], capsize=3, marker="o",
                            ms=3, label=meth.split("/")[1])
            wk = summ.groupby(x)[m.replace("strong", "weak") + "_mean"].mean()
            ax.plot(wk.index, wk.to_numpy(), "k--", lw=1, label="weak model")
            ax.set_xlabel(_XLABELS.get(x, x))
            ax.set_ylabel(lab)
            if m == "test_risk_strong":
                ax.set_yscale("log")
            ax.set_title(_HEAD_TITLES.get(h, f"{h} head"), fontsize=9)
            ax.legend(fontsize=7)
    n = df["seed"].nunique()
    fig.suptitle(f"Strong student on the test split vs {x} (mean ± 95% CI over {n} seeds)"
                 f"{title_extra}", fontsize=10)
    fig.tight_layout()
    return fig


def synthetic_figures(cfg, df, *, suffix: str = "") -> list[Path]:
    """Draw the sweep kind's figure and save it as ``figures/synthetic_<name><suffix>.png``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    extra = f" [{cfg.name}{suffix}]"
    if cfg.kind == "theorem2":
        fig = plot_theorem2(df, extra)
    elif cfg.kind == "dual":
        fig = plot_dual(df, extra)
    elif cfg.kind == "lemma1":
        fig = plot_lemma1(df, extra)
    else:
        fig = plot_curve(df, cfg.x, extra)
    path = save_figure(fig, Path(cfg.figures_dir) / f"synthetic_{cfg.name}{suffix}.png")
    plt.close(fig)
    return [path]
