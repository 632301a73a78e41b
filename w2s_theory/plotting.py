"""Every figure of the toolkit, in one place (matplotlib, imported on call), in one shared style.

Each ``plot_*`` function takes result tables (pandas) and returns a ``matplotlib`` figure;
`synthetic_figures` draws and saves the figure of a synthetic sweep kind. The notebooks
draw their own figures with the same pieces:

* `STYLE` / `style` - fonts of 8-9 pt at the figure's printed size
  (`TEXT_WIDTH` = 7 in for a two-column paper's full width, `COLUMN_WIDTH` = 3.4 in
  for one column), the Okabe-Ito colour-blind-safe palette (`OKABE_ITO`), no top/right
  spines, TrueType fonts in PDFs.
* `loss_colors`, `loss_styles`, `loss_markers`, `loss_line` - one
  colour, line style and marker per loss in every figure; the forward pair (KL and CE, whose
  students coincide: same gradient ``p - y``) differ in line style and marker (filled vs open)
  so that both lines stay visible where the values are equal.
* `human_name` - the names a figure shows for models, losses and cases (`NAMES`).
* `figure_legend` - one legend per figure, below the panels, with every line of every
  panel (reference lines such as chance included).
* `save_figure` - every figure as PNG *and* PDF.
* `figures_dir` - where figures go: ``<root>/figures``, or the folder named by the
  environment variable ``W2S_FIGURES_DIR`` (the test run sets it, so running the notebooks
  under ``pytest --nbval`` leaves the committed ``figures/`` untouched).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from cycler import cycler

from . import summaries
from .models import PresetView

__all__ = ["OKABE_ITO", "STYLE", "NAMES", "TEXT_WIDTH", "COLUMN_WIDTH", "style", "apply_style", "human_name",
           "loss_colors", "loss_styles", "loss_markers", "loss_line", "figure_legend",
           "plot_demo", "plot_theorem2", "plot_dual", "plot_lemma1", "plot_curve",
           "synthetic_figures", "save_figure", "figures_dir", "FIGURES_ENV"]

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7"}
#: Full text width and one column of a two-column paper (inches): figure sizes are chosen at
#: these widths, so the 8-9 pt fonts are 8-9 pt in print.
TEXT_WIDTH = 7.0
COLUMN_WIDTH = 3.4

#: The shared matplotlib settings (``matplotlib.rc_context(STYLE)``; see `style`).
STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "legend.fontsize": 8, "figure.titlesize": 10,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
    "lines.linewidth": 1.5, "lines.markersize": 4, "figure.dpi": 100, "savefig.dpi": 200,
    "pdf.fonttype": 42, "ps.fonttype": 42,            # TrueType: editable text in the PDFs
    "legend.frameon": False,
}
_CYCLE = [OKABE_ITO[c] for c in ("blue", "vermillion", "bluish_green", "orange", "reddish_purple",
                                 "sky_blue", "black", "yellow")]


@contextmanager
def style():
    """Context manager: draw figures inside it in the shared `STYLE` (colour cycle included)."""
    import matplotlib

    with matplotlib.rc_context({**STYLE, "axes.prop_cycle": cycler(color=_CYCLE)}):
        yield


def apply_style() -> None:
    """Set the shared `STYLE` (and the Okabe-Ito colour cycle) for the whole session (notebooks)."""
    import matplotlib

    matplotlib.rcParams.update({**STYLE, "axes.prop_cycle": cycler(color=_CYCLE)})


#: Human names for the identifiers that figures show (losses, models, cases, heads); the models'
#: names are read live from each preset's ``display`` (`w2s_theory.models.REGISTRY`).
NAMES = PresetView(lambda p: p.display, base={
    # losses
    "forward_kl": "forward KL", "forward_ce": "forward CE", "reverse_kl": "reverse KL",
    "reverse_ce": "reverse CE", "alpha_0.25_forward": "α = 0.25 (forward)",
    "alpha_0.25_reverse": "α = 0.25 (reverse)", "alpha_0.5": "α = 0.5", "js": "Jensen-Shannon",
    # synthetic cases
    "realizable": "realizable F*", "unrealizable": "F* outside the class",
    "confident_weak": "confident weak model", "softmax_truth": "softmax class (not convex)",
    "default": "default",
    # heads / regimes
    "convex": "convex head", "softmax": "softmax head", "minibatch": "minibatch head",
    "full": "full fine-tuning", "head_only": "last layer only",
})


def human_name(key) -> str:
    """The name a figure shows for an identifier: `NAMES`, ``head/loss`` joined, else as is.

    Examples:
        >>> human_name("reverse_kl"), human_name("convex/forward_kl"), human_name("new_case")
        ('reverse KL', 'convex head, forward KL', 'new case')
    """
    key = str(key)
    if key in NAMES:
        return NAMES[key]
    if "/" in key:
        return ", ".join(human_name(p) for p in key.split("/"))
    return key.replace("_", " ")


# ----------------------------------------------------------------------------- loss colours
#: the paper's four losses keep their colour, line style and marker in every figure; the
#: forward pair coincide in value, so they differ in dash and marker fill as well as colour
_PAPER_COLORS = {"forward_kl": OKABE_ITO["blue"], "forward_ce": OKABE_ITO["sky_blue"],
                 "reverse_kl": OKABE_ITO["vermillion"], "reverse_ce": OKABE_ITO["orange"]}  # display order
_PAPER_STYLES = {"forward_kl": "-", "forward_ce": (0, (4, 2)), "reverse_kl": "-", "reverse_ce": (0, (4, 2))}
_PAPER_MARKERS = {"forward_kl": "o", "forward_ce": "s", "reverse_kl": "^", "reverse_ce": "D"}
_OPEN = {"forward_ce", "reverse_ce"}                   # open markers: a filled one shows through
_OTHER_COLORS = tuple(OKABE_ITO[c] for c in ("bluish_green", "reddish_purple", "black", "yellow"))
_OTHER_MARKERS = ("v", "P", "X", "*", "h", "<", ">")


def _paper_order(names) -> list:
    """The paper's four losses first (forward KL, forward CE, reverse KL, reverse CE), then the rest sorted."""
    first = [n for n in _PAPER_COLORS if n in names]
    return first + sorted(set(names) - set(first))


def loss_colors(names) -> dict:
    """A colour per loss name: fixed for the paper's four, then a cycle for any other (Okabe-Ito).

    Examples:
        >>> loss_colors(["reverse_kl", "js"])
        {'reverse_kl': '#D55E00', 'js': '#009E73'}
    """
    names = list(names)
    others = iter(_OTHER_COLORS * (1 + len(names) // len(_OTHER_COLORS)))
    return {n: _PAPER_COLORS.get(n) or next(others) for n in names}


def loss_styles(names) -> dict:
    """A line style per loss name (the paper's four fixed, ``"-."`` for the others)."""
    return {n: _PAPER_STYLES.get(n, "-.") for n in names}


def loss_markers(names) -> dict:
    """A marker per loss name (the paper's four fixed, then a cycle)."""
    names = list(names)
    others = iter(_OTHER_MARKERS * (1 + len(names) // len(_OTHER_MARKERS)))
    return {n: _PAPER_MARKERS.get(n) or next(others) for n in names}


def loss_line(name, names=None) -> dict:
    """Keyword arguments of ``ax.plot`` / ``ax.errorbar`` for one loss (colour, dash, marker, label).

    Examples:
        >>> kw = loss_line("forward_ce")
        >>> kw["label"], kw["marker"], kw["markerfacecolor"]
        ('forward CE', 's', 'white')
    """
    names = list(names) if names is not None else [name]
    c = loss_colors(names)[name]
    top = name in _OPEN                                # thin dashed line drawn over the thick solid one
    return {"color": c, "linestyle": loss_styles(names)[name], "marker": loss_markers(names)[name],
            "markerfacecolor": "white" if top else c, "markeredgecolor": c,
            "linewidth": 1.2 if top else 2.4, "zorder": 3 if top else 2, "label": human_name(name)}


def figure_legend(fig, *, ncol: int | None = None, title: str | None = None):
    """One legend for the whole figure, below the panels, with every labelled artist of every axis.

    Each label appears once (first occurrence); legends drawn on single axes are removed.
    ``save_figure``'s tight bounding box keeps the legend inside the saved file.
    """
    handles, labels = [], []
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return None
    ncol = ncol or min(len(labels), 4)
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
                      title=title, frameon=False)


# ----------------------------------------------------------------------------- demo
_HOLDS = {"color": OKABE_ITO["blue"], "marker": "o"}
_VIOLATED = {"color": OKABE_ITO["vermillion"], "marker": "x"}


def plot_demo(L, T, cfg):
    """The demo's figure: Lemma 1 tightness ratios (left), Theorem 2 slack per case (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with style():
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(TEXT_WIDTH, 3.2))
        stages = [("data_dependent", "E[TV/m]"), ("tv", "E TV / γ"), ("sqrt_forward", "√(d_fwd/2)/γ"),
                  ("sqrt_reverse", "√(d_rev/2)/γ")]
        finite = L[np.isfinite(L["ratio_tv"])]
        data = [np.log10(finite[f"ratio_{s}"].to_numpy()) for s, _ in stages]
        ax1.boxplot(data, showfliers=True, flierprops={"markersize": 2})
        ax1.set_xticks(range(1, len(stages) + 1), [lab for _, lab in stages], fontsize=7)
        ax1.axhline(0.0, color=OKABE_ITO["vermillion"], lw=1, ls="--", label="bound = |gap| (ratio 1)")
        ax1.set_ylabel("log10(bound / |gap|)")
        ax1.set_title(f"Lemma 1: {len(finite)} populations × {cfg.rows} rows\n"
                      f"γ ∈ {{{', '.join(f'{g:g}' for g in cfg.gammas)}}}, k ∈ {{{', '.join(map(str, cfg.classes))}}}",
                      fontsize=8)
        groups = [("hull", "reverse", True), ("hull", "reverse", False), ("segment", "reverse", True),
                  ("segment", "forward", True)]
        labels = ["convex hull\nreverse KL\nF* in class", "convex hull\nreverse KL\nF* outside\n(expected\nto fail)",
                  "segment\nreverse KL\nF* in class", "segment\nforward KL\nF* in class\n(expected\nto fail)"]
        rng = np.random.default_rng(0)
        for x, (cls, proj, real) in enumerate(groups):
            g = T[(T["class"] == cls) & (T["projection"] == proj) & (T["realizable"] == real)]
            bad = ~g["holds"].to_numpy()
            jitter = x + rng.uniform(-0.15, 0.15, len(g))
            ax2.scatter(jitter[~bad], g["slack"].to_numpy()[~bad], s=10, **_HOLDS, label="holds (slack ≥ −tol)")
            ax2.scatter(jitter[bad], g["slack"].to_numpy()[bad], s=12, **_VIOLATED,
                        label="violated (slack < −tol)")
        ax2.axhline(0.0, color="black", lw=0.8, label="slack = 0")
        ax2.set_xticks(range(len(groups)), labels, fontsize=7)
        ax2.set_ylabel("slack = R(F_w) − d_rev − R(F_sw) (nats)")
        ax2.set_title(f"Theorem 2 on exact projections: {cfg.hull_instances} hull +\n"
                      f"{cfg.segment_instances} segment instances, {cfg.theorem2_rows} rows, "
                      f"k = {cfg.theorem2_classes}", fontsize=8)
        fig.suptitle(f"w2s-theory demo (seed {cfg.seed})")
        fig.tight_layout()
        figure_legend(fig)
    return fig


# ----------------------------------------------------------------------------- synthetic sweeps
#: The environment variable that redirects saved figures (see `figures_dir`).
FIGURES_ENV = "W2S_FIGURES_DIR"


def figures_dir(default) -> Path:
    """The folder figures are saved in: ``$W2S_FIGURES_DIR`` when set (non-empty), else ``default``.

    The notebooks call ``figures_dir(ROOT / "figures")`` (the command-line sweeps take
    ``--figures-dir`` instead). ``tests/conftest.py`` points the variable at a temporary folder,
    so ``make test`` redraws every figure without rewriting the committed files.

    >>> import os
    >>> old = os.environ.pop("W2S_FIGURES_DIR", None)
    >>> figures_dir("figures").as_posix()
    'figures'
    >>> os.environ["W2S_FIGURES_DIR"] = "/tmp/elsewhere"
    >>> figures_dir("figures").as_posix()
    '/tmp/elsewhere'
    >>> _ = os.environ.pop("W2S_FIGURES_DIR") if old is None else os.environ.update(W2S_FIGURES_DIR=old)
    """
    env = os.environ.get(FIGURES_ENV, "").strip()
    return Path(env) if env else Path(default)


def save_figure(fig, path: Path, dpi: int = 200, formats=("png", "pdf")) -> Path:
    """Save ``fig`` as ``path`` and in every other format of ``formats`` (same stem), tight box.

    ``path``'s own suffix is one of the formats (default: PNG and PDF, the PDF for papers).
    Dates and software versions are left out of the files' metadata, so a redrawn figure
    differs only where its content does. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmts = [path.suffix.lstrip(".").lower()] + [f for f in formats if f != path.suffix.lstrip(".").lower()]
    for fmt in fmts:
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else {}
        fig.savefig(path.with_suffix("." + fmt), dpi=dpi, bbox_inches="tight", metadata=meta)
    return path


def _finish(fig, title: str, ncol: int, ax=None, **labels) -> None:
    """How each sweep figure ends: ``ax``'s axis labels (``xlabel=``, ``ylabel=``) and
    ``title`` (the figure's own title when ``ax`` is None), a tight layout, one legend below."""
    if ax is None:
        fig.suptitle(title)
    else:
        ax.set(title=title, **labels)
    fig.tight_layout()
    figure_legend(fig, ncol=ncol)


def plot_theorem2(df, title_extra: str = ""):
    """Theorem 2 slack ``R(F_w) - d_rev - R(F_sw)`` per (case, method): a signed-log strip
    plot with the fraction of violations (``slack < -tol``); forward methods also show the
    fraction for the ``d_fwd`` form."""
    import matplotlib.pyplot as plt

    summ = summaries.summarize_theorem2(df)
    with style():
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.4))
        labels = []
        rng = np.random.default_rng(0)
        for i, r in enumerate(summ.itertuples()):
            g = df[(df["variant"] == r.variant) & (df["method"] == r.method)]
            s = g["slack_rev"].to_numpy()
            viol = s < -g["tol"].to_numpy()
            xs = i + rng.uniform(-0.25, 0.25, len(s))
            ax.scatter(xs[~viol], s[~viol], s=6, alpha=0.6, **_HOLDS, label="holds (slack ≥ −tol)")
            ax.scatter(xs[viol], s[viol], s=8, alpha=0.8, **_VIOLATED, label="violated (slack < −tol)")
            head, loss = r.method.split("/", 1)
            lab = f"{human_name(r.variant)}\n{human_name(head)}\n{human_name(loss)}\nviolated {viol.mean():.0%}"
            if "forward" in r.method:
                lab += f"\n(d_fwd form: {r.frac_violations_fwd:.0%})"
            labels.append(lab.replace("softmax class (not convex)", "softmax class\n(not convex)")
                          .replace("confident weak model", "confident\nweak model")
                          .replace("F* outside the class", "F* outside\nthe class"))
        ax.axhline(0.0, color="k", lw=0.8, label="slack = 0")
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        n = df["seed"].nunique()
        _finish(fig, f"Theorem 2 on the w2s split: slack ≥ −tol? ({n} instances){title_extra}", 3,
                ax, ylabel="slack R(F_w) − d_rev − R(F_sw) (nats)")
    return fig


def plot_dual(df, title_extra: str = ""):
    """Histogram (log10) of the dual statement's relative equality error per case/method."""
    import matplotlib.pyplot as plt

    with style():
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.2))
        bins = np.linspace(-18, 1, 39)
        hatches = iter(["", "//", "\\\\", "..", "xx", "oo"] * 4)
        for (var, meth), g in df.groupby(["variant", "method"], sort=True):
            e = np.log10(np.maximum(g["dual_rel_err"].astype(float).to_numpy(), 1e-18))
            ax.hist(e, bins=bins, alpha=0.6, hatch=next(hatches),
                    label=f"{human_name(var)}: {human_name(meth)} (n={len(g)})")
        ax.axvline(-6, color="k", ls="--", lw=1, label="1e-6 target")
        n = df["seed"].nunique()
        _finish(fig, f"Dual statement on the w2s split ({n} instances): forward KL on a softmax head\n"
                     f"gains exactly d_fwd{title_extra}", 2, ax,
                xlabel="log10 relative error of L(F_sw,F*) = L(F_w,F*) − d_fwd (exact 0 shown at −18)",
                ylabel="instances")
    return fig


_STAGE_NAMES = {"data_dependent": "E[TV/m]", "tv": "E TV / γ", "sqrt_forward": "√(d_fwd/2)/γ",
                "sqrt_reverse": "√(d_rev/2)/γ"}


def plot_lemma1(df, title_extra: str = ""):
    """Box plots of log10(stage / |gap|) for each loss and each stage of Lemma 1."""
    import matplotlib.pyplot as plt

    meths = sorted(df["method"].unique())
    with style():
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.4))
        width = 0.8 / len(summaries.LEMMA1_STAGES)
        colors = [OKABE_ITO[c] for c in ("bluish_green", "blue", "orange", "vermillion")]
        hatches = ["", "//", "..", "xx"]
        for j, s in enumerate(summaries.LEMMA1_STAGES):
            data = []
            for m in meths:
                g = df[df["method"] == m]
                gap = g["l1_gap"].abs()
                data.append(np.log10((g[s] / gap)[gap > 0].to_numpy()))
            pos = np.arange(len(meths)) + (j - 1.5) * width
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True,
                            showfliers=False, medianprops={"color": "black"})
            for b in bp["boxes"]:
                b.set_facecolor(colors[j % 4])
                b.set_alpha(0.7)
                b.set_hatch(hatches[j % 4])
            stage = s.removeprefix("l1_").removesuffix("_bound")
            ax.fill_between([], [], color=colors[j % 4], alpha=0.7, hatch=hatches[j % 4],
                            label=_STAGE_NAMES.get(stage, stage))
        for i, m in enumerate(meths):  # a method with no student is marked, not left blank
            if _no_minimizer(df, m):
                ax.text(i, 0.5, "no finite minimiser:\nnot fitted", transform=ax.get_xaxis_transform(),
                        ha="center", va="center", rotation=90, fontsize=7)
        ax.axhline(0, color="k", lw=0.8, label="bound = |gap|")
        ax.set_xticks(range(len(meths)), [m.split("/")[0] + "\n" + human_name(m.split("/")[-1])
                                          for m in meths], fontsize=7)
        n = df["seed"].nunique()
        _finish(fig, f"Lemma 1 tightness: each stage over the exact gap ({n} instances; "
                     f"C1 = 1/(γ√2), γ = {df['gamma'].iloc[0]:g}){title_extra}", 5, ax,
                xlabel="head and student loss", ylabel="log10(bound / |R(F_sw) − R(F_w)|)")
    return fig


def _no_minimizer(df, method: str) -> bool:
    """Whether every row of ``method`` is a fit with no finite minimiser (no student to draw)."""
    g = df[df["method"] == method]
    return bool(len(g)) and "fit_status" in g and bool((g["fit_status"].astype(str) == "no_minimizer").all())


_XLABELS = {"noise_frac": "fraction of flipped weak labels",
            "weak_noise": "noise std of the weak view (larger = weaker teacher)"}
_HEAD_TITLES = {"softmax": "exact fit (softmax head; float64 L-BFGS + Newton)",
                "minibatch": "practical regime (minibatch optimiser, early stopped)",
                "convex": "exact convex projection (affine-probability head)"}


def plot_curve(df, x: str, title_extra: str = ""):
    """Test accuracy and risk vs ``x`` for each method: mean and 95% CI over seeds.

    One row of panels per head; the accuracy panels share their y axis, and so do the risk
    panels; one legend below the figure.
    """
    import matplotlib.pyplot as plt

    summ = summaries.summarize_curve(df, x)
    heads = sorted(df["head"].unique())
    with style():
        fig, axes = plt.subplots(len(heads), 2, figsize=(TEXT_WIDTH, 2.6 * len(heads)), squeeze=False,
                                 sharex=True, sharey="col")
        for i, h in enumerate(heads):
            for j, (m, lab) in enumerate((("test_acc_strong", "test accuracy"),
                                          ("test_risk_strong", "test risk E KL(F*‖F) (nats)"))):
                ax = axes[i, j]
                sub = summ[summ["method"].str.startswith(h + "/")]
                names = _paper_order({meth.split("/")[1] for meth in sub["method"].unique()})
                for loss in names:
                    g = sub[sub["method"] == f"{h}/{loss}"]
                    kw = loss_line(loss, names)
                    ax.errorbar(g[x], g[f"{m}_mean"], yerr=g[f"{m}_ci95"], capsize=2, ms=4, **kw)
                wk = summ.groupby(x)[m.replace("strong", "weak") + "_mean"].mean()
                ax.plot(wk.index, wk.to_numpy(), "k:", lw=1.2, label="weak model")
                if i == len(heads) - 1:
                    ax.set_xlabel(_XLABELS.get(x, x))
                ax.set_ylabel(lab)
                if m == "test_risk_strong":
                    ax.set_yscale("log")
                unfit = [human_name(loss) for loss in names if _no_minimizer(df, f"{h}/{loss}")]
                ax.set_title(_HEAD_TITLES.get(h, f"{h} head") + "".join(
                    f"\n{n}: no finite minimiser, not fitted" for n in unfit), fontsize=8)
        n = df["seed"].nunique()
        _finish(fig, f"Strong student on the test split vs {_XLABELS.get(x, x)}\n"
                     f"(mean ± 95% CI over {n} seeds){title_extra}", 5)
    return fig


def synthetic_figures(cfg, df, *, suffix: str = "", folder=None) -> list[Path]:
    """Draw the sweep kind's figure; save it as ``<folder>/synthetic_<name><suffix>.png`` and ``.pdf``
    (``folder`` defaults to the config's ``figures_dir``)."""
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
    path = save_figure(fig, Path(cfg.figures_dir if folder is None else folder)
                       / f"synthetic_{cfg.name}{suffix}.png")
    plt.close(fig)
    return [path, path.with_suffix(".pdf")]
