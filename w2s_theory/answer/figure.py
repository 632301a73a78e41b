"""The answer's forest plot: `figure_rows` and `plot_answer`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import ArgumentTypeError, check_int, check_number
from ..plotting import STYLE, save_figure
from .lines import group_title, short_counts
from .reading import (
    HEADLINE_REGIMES,
    MAX_FIGURE_ROWS,
    MINUS,
    REVERSE_LOSSES,
    WORD_COLORS,
    answer_rows,
    as_number,
    as_text,
    is_headline,
    is_seed_only,
    paper_number,
    row_arms,
    row_noise,
    row_scope,
    scope_title,
    summary_frame,
)


# ============================================================================ the figure
def figure_rows(ledger, max_rows: int = MAX_FIGURE_ROWS):
    """The rows of `plot_answer`: one per accuracy family, grouped by (regime, loss, reference).

    For the paper's plan: the claim-1 and claim-2 accuracy families of `HEADLINE_REGIMES`
    and `REVERSE_LOSSES` (all noise levels of claim 2); otherwise every accuracy family.
    Within a group the rows go by noise level. At most ``max_rows`` rows (the first ones).

    Args:
        ledger: a `w2s_theory.ledger.Ledger` (its ``summary``; ``rows`` for ``n_splits``).
        max_rows: the most rows kept, ``>= 1``.

    Returns:
        a pandas ``DataFrame`` with the summary's columns plus ``group`` (the group's title),
        ``label`` (the row's label: "no noise", "30 % flips", ...), ``loss``, ``reference``,
        ``paper`` (the paper's first number or ``nan``) and ``seed_only``; and the number of
        rows left out.
    """
    max_rows = check_int(max_rows, "max_rows", low=1)
    summ = summary_frame(ledger)
    acc = answer_rows(summ)
    headline = is_headline(acc)
    out = []
    for _, r in acc.iterrows():
        loss, ref = row_arms(r)
        if headline and (r["regime"] not in HEADLINE_REGIMES or loss not in REVERSE_LOSSES):
            continue
        q = row_noise(r)
        d = r.to_dict()
        scope = row_scope(r)
        head = f"{scope_title(scope)}: " if scope else ""
        d.update(group=head + group_title(as_text(r["regime"]), loss, ref), loss=loss, reference=ref,
                 row_scope=scope,
                 label="no noise" if q == 0 else f"{q * 100:g} % flips",
                 paper=paper_number(r["paper_pts"]), seed_only=is_seed_only(r), _q=q)
        out.append(d)
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame, 0
    regime_rank = {g: i for i, g in enumerate(HEADLINE_REGIMES)}
    loss_rank = {g: i for i, g in enumerate(REVERSE_LOSSES)}
    first = {g: i for i, g in enumerate(dict.fromkeys(frame["group"]))}
    scope_rank = {g: i for i, g in enumerate(dict.fromkeys(["", *frame["row_scope"]]))}
    frame["_key"] = [(scope_rank[sc], regime_rank.get(r, len(regime_rank)),
                      loss_rank.get(lo, len(loss_rank)), first[g], q)
                     for sc, r, lo, g, q in zip(frame["row_scope"], frame["regime"], frame["loss"],
                                                frame["group"], frame["_q"])]
    frame = frame.sort_values("_key", kind="stable")
    left_out = max(0, len(frame) - max_rows)
    frame = frame.head(max_rows).drop(columns=["_key", "_q", "row_scope"])
    return frame.reset_index(drop=True), left_out


def plot_answer(ledger, path_stem, *, width: float = 3.5, max_rows: int = MAX_FIGURE_ROWS):
    r"""One forest plot that answers the question: reverse minus forward, per regime and noise.

    Rows (`figure_rows`): per group (a regime and a reverse loss against its reference) one
    row per noise level; each row shows the effect (dot, coloured by its verdict word) and its
    split-aware 95 % interval (bar), the ``±margin`` equivalence band shaded, the paper's GPT-2
    value once (a hollow diamond; none when the plan gives no paper value), and the verdict
    word at the right. Rows whose interval is seed-only (one data split) say "(1 split)"
    (the legend says it once when every measured row is).
    Drawn in `w2s_theory.plotting.STYLE` at 7-8 pt, ``width`` inches wide, and saved as PNG
    (200 dpi) and PDF by `w2s_theory.plotting.save_figure`.

    Args:
        ledger: a `w2s_theory.ledger.Ledger` (its ``summary``).
        path_stem: where to write, without suffix (``figures/answer`` writes
            ``figures/answer.png`` and ``figures/answer.pdf``).
        width: the figure's width in inches (a column: 3.5).
        max_rows: the most effect rows (at most `MAX_FIGURE_ROWS` is readable).

    Returns:
        ``(png_path, pdf_path)``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    if isinstance(path_stem, (bytes, bytearray)) or not isinstance(path_stem, (str, Path)):
        raise ArgumentTypeError(f"path_stem: must be a path, got {type(path_stem).__name__}")
    width = check_number(width, "width", low=1.0, high=20.0)
    stem = Path(path_stem)
    if stem.suffix.lower() in (".png", ".pdf"):
        stem = stem.with_suffix("")
    rows, left_out = figure_rows(ledger, max_rows=max_rows)
    if rows.empty:
        raise ValueError("ledger: no accuracy contrast to plot (its summary has no acc family)")

    # layout: one line per group header and per row, top to bottom
    items = []           # (kind, payload)
    for group, g in rows.groupby("group", sort=False):
        items.append(("header", group))
        items.extend(("row", r) for _, r in g.iterrows())
    n = len(items)
    ys = np.arange(n)[::-1].astype(float)
    measured = rows[rows["effect_pts"].map(as_number).map(np.isfinite)]
    # every measured row on one split: said once in the legend, not on each row
    all_one = bool(len(measured)) and bool(measured["seed_only"].all())

    style = {**STYLE, "font.size": 7, "axes.labelsize": 7, "xtick.labelsize": 7,
             "ytick.labelsize": 7, "legend.fontsize": 7, "axes.titlesize": 8}
    with matplotlib.rc_context(style):
        height = 0.24 * n + 1.05
        fig = plt.figure(figsize=(width, height))
        left, right = 0.21, 0.64
        bottom = 0.72 / height
        top = 1.0 - 0.18 / height
        ax = fig.add_axes((left, bottom, right - left, top - bottom))
        lows = []
        highs = []
        for (kind, item), y in zip(items, ys):
            if kind == "header":
                ax.text(-0.04 - left / (right - left), y, item, transform=ax.get_yaxis_transform(),
                        ha="left", va="center", fontweight="bold", fontsize=7)
                continue
            r = item
            m = as_number(r["margin"])
            if np.isfinite(m):
                ax.fill_betweenx([y - 0.5, y + 0.5], -m, m, color="#D9D9D9", lw=0, zorder=0)
            eff, lo, hi = as_number(r["effect_pts"]), as_number(r["ci_low"]), as_number(r["ci_high"])
            word = as_text(r["word"]) or "inconclusive"
            color = WORD_COLORS.get(word, "#7F7F7F")
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y, y], color=color, lw=1.4, solid_capstyle="butt", zorder=2)
                lows.append(lo)
                highs.append(hi)
            if np.isfinite(eff):
                ax.plot([eff], [y], "o", color=color, ms=3.6, zorder=3)
                lows.append(eff)
                highs.append(eff)
            if np.isfinite(r["paper"]):
                ax.plot([r["paper"]], [y], "D", mfc="white", mec="black", mew=0.8, ms=3.6,
                        zorder=4)
                lows.append(r["paper"])
                highs.append(r["paper"])
            label = r["label"] + (" (1 split)" if r["seed_only"] and not all_one else "")
            ax.text(-0.03, y, label, transform=ax.get_yaxis_transform(), ha="right",
                    va="center", fontsize=7)
            text = word if np.isfinite(eff) else "no runs yet"
            counts = short_counts(r) if np.isfinite(eff) else ""
            ax.text(1.03, y + (0.2 if counts else 0.0), text, transform=ax.get_yaxis_transform(),
                    ha="left", va="center", fontsize=7, color=color)
            if counts:
                ax.text(1.03, y - 0.24, counts, transform=ax.get_yaxis_transform(), ha="left",
                        va="center", fontsize=7, color="#595959")
        # the zero line over each group's rows only (the group titles stay clear)
        row_y = [y for (kind, _), y in zip(items, ys) if kind == "row"]
        runs = []
        for y in row_y:
            if runs and runs[-1][0] - y == 1:
                runs[-1][0] = y
            else:
                runs.append([y, y])
        for lo_y, hi_y in runs:
            ax.plot([0.0, 0.0], [lo_y - 0.5, hi_y + 0.5], color="black", lw=0.6, zorder=1)
        lo_x = min([*lows, -1.0])
        hi_x = max([*highs, 1.0])
        pad = 0.06 * (hi_x - lo_x)
        ax.set_xlim(lo_x - pad, hi_x + pad)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.set_xlabel(f"accuracy, reverse {MINUS} forward (points)")
        ax.tick_params(axis="x", length=2, pad=1.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
        margins = sorted({as_number(m) for m in rows["margin"] if np.isfinite(as_number(m))})
        band = (f"±{margins[0]:g} pt: equivalence margin" if len(margins) == 1
                else "±margin: equivalence margin")
        what = ("effect, 95 % CI over seeds (one data split)" if all_one
                else "effect, 95 % CI over data splits")
        handles = [Line2D([], [], color="#404040", marker="o", ms=3.6, lw=1.4, label=what),
                   Patch(color="#D9D9D9", label=band)]
        if rows["paper"].notna().any():
            handles.insert(1, Line2D([], [], ls="", marker="D", mfc="white", mec="black",
                                     mew=0.8, ms=3.6, label="paper (GPT-2)"))
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 0.0), ncol=1,
                   handlelength=1.4, borderaxespad=0.2, labelspacing=0.25)
        if left_out:
            fig.text(1.0, 0.0, f"+ {left_out} rows not shown", ha="right", va="bottom",
                     fontsize=7)
        png = save_figure(fig, stem.with_suffix(".png"))
        plt.close(fig)
    return png, png.with_suffix(".pdf")
