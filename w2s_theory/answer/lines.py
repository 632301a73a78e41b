"""The answer in a few plain lines (`answer_lines`) and the phrases they are made of."""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_int
from ..plotting import human_name
from .reading import (
    HEADLINE_NOISE,
    HEADLINE_REGIMES,
    MINUS,
    REGIME_TITLES,
    REVERSE_LOSSES,
    answer_rows,
    as_number,
    as_text,
    is_headline,
    is_seed_only,
    paper_number,
    row_arms,
    row_claim,
    row_noise,
    row_scope,
    scope_title,
    summary_frame,
)


# ============================================================================ formatting
def signed(x: float, nd: int = 2) -> str:
    if not np.isfinite(x):
        return "n/a"
    s = f"{x:+.{nd}f}"
    if float(s) == 0.0:
        s = f"{0.0:+.{nd}f}"
    return s.replace("-", MINUS)


def _loss_name(name: str) -> str:
    return human_name(name) if name else "?"


def _noise_phrase(q: float) -> str:
    return "without noise" if q == 0 else f"at {q * 100:g} % flips"


def _word_phrase(row, tag_split: bool = False) -> str:
    word = as_text(row["word"]) or "inconclusive"
    extras = []
    if word == "equivalent within margin":
        extras.append(f"±{as_number(row['margin']):g} pt")
    counts = _word_counts(row)
    if counts:
        extras.append(counts)
    if tag_split and is_seed_only(row):
        extras.append("one data split: seed-only CI")
    paper = paper_number(row["paper_pts"])
    if np.isfinite(paper):
        extras.append(f"paper {signed(paper, 1)}")
    return word + (f" ({'; '.join(extras)})" if extras else "")


def _word_counts(row) -> str:
    """``"settings: 6 equivalent, 1 better, 4 inconclusive"`` when the family's settings do not
    all have the same word (the summary word alone would hide that); ``""`` otherwise."""
    names = (("n_equivalent", "equivalent"), ("n_better", "better"), ("n_worse", "worse"),
             ("n_inconclusive", "inconclusive"))
    got = []
    for col, name in names:
        n = as_number(row[col]) if col in row.index else float("nan")
        if np.isfinite(n) and n > 0:
            got.append(f"{int(n)} {name}")
    return "settings: " + ", ".join(got) if len(got) > 1 else ""


def short_counts(row) -> str:
    """The settings' words, short, for the figure's right column (``"6 equiv., 1 better,
    4 inconcl."``); ``""`` when the settings all have the family's word."""
    full = _word_counts(row)
    if not full:
        return ""
    return (full.removeprefix("settings: ").replace("equivalent", "equiv.")
            .replace("inconclusive", "inconcl."))


def _measured(parts) -> list:
    return [r for r in parts if np.isfinite(as_number(r["effect_pts"]))]


def _all_one_split(parts) -> bool:
    """Whether every measured part's interval is seed-only (said once, at the line's end)."""
    measured = _measured(parts)
    return bool(measured) and all(is_seed_only(r) for r in measured)


def _one_split(parts) -> str:
    """`` [one data split: seed-only CI]`` when every measured part's interval is seed-only
    (when only some are, `_effect_phrase` tags those parts instead)."""
    return " [one data split: seed-only CI]" if _all_one_split(parts) else ""


def _effect_phrase(row, tag_split: bool = False) -> str:
    eff = as_number(row["effect_pts"])
    q = row_noise(row)
    if not np.isfinite(eff):
        paper = paper_number(row["paper_pts"])
        tail = f" (paper {signed(paper, 1)})" if np.isfinite(paper) else ""
        return f"no paired runs yet {_noise_phrase(q)}{tail}"
    return (f"{signed(eff)} pt [{signed(as_number(row['ci_low']))}, {signed(as_number(row['ci_high']))}] "
            f"{_noise_phrase(q)}, {_word_phrase(row, tag_split)}")


def group_title(regime: str, loss: str, ref: str) -> str:
    title = REGIME_TITLES.get(regime, regime.replace("_", " ").strip())
    contrast = f"{_loss_name(loss)} {MINUS} {_loss_name(ref)}"
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
    summ = summary_frame(ledger)
    acc = answer_rows(summ)
    lines: list[str] = []
    if is_headline(acc):
        scopes = list(dict.fromkeys(["", *(row_scope(r) for _, r in acc.iterrows())]))
        for scope in scopes:
            for regime in HEADLINE_REGIMES:
                for loss in REVERSE_LOSSES:
                    parts = []
                    for claim, q in ((1.0, 0.0), (2.0, HEADLINE_NOISE)):
                        sel = [r for _, r in acc.iterrows()
                               if row_scope(r) == scope and r["regime"] == regime
                               and row_claim(r) == claim and row_arms(r)[0] == loss
                               and math.isclose(row_noise(r), q)]
                        if sel:
                            parts.append(sel[0])
                    if parts:
                        ref = row_arms(parts[0])[1]
                        head = f"{scope_title(scope)}: " if scope else ""
                        lines.append(f"{head}{group_title(regime, loss, ref)}: "
                                     + "; ".join(_effect_phrase(r, not _all_one_split(parts))
                                                 for r in parts)
                                     + _one_split(parts) + ".")
    else:
        for _, r in acc.iterrows():
            loss, ref = row_arms(r)
            lines.append(f"{group_title(as_text(r['regime']), loss, ref)}: {_effect_phrase(r)}"
                         f"{_one_split([r])}.")
    if len(lines) > max_lines:
        more = len(lines) - (max_lines - 1)
        lines = lines[:max_lines - 1] + [f"+ {more} more (see answer.md or the ledger's summary)"]
    return lines
