"""The ledger's summary as a Markdown or LaTeX table."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice
from ..export import frame_to_latex, frame_to_markdown
from .lines import signed
from .reading import MINUS, REGIME_TITLES, as_number, as_text, row_noise, summary_frame

# ============================================================================ tables
#: which families a table holds
_WHICH = ("all", "primary", "sensitivity")


def _table_records(ledger, which: str = "all"):
    which = check_choice(which, "which", _WHICH)
    summ = summary_frame(ledger)
    sens = summ["family"].astype(str).str.startswith("sens.")
    summ = summ[~sens] if which == "primary" else summ[sens] if which == "sensitivity" else summ
    out = []
    for _, r in summ.iterrows():
        eff = as_number(r["effect_pts"])
        counts = [r.get(c) for c in ("n_better", "n_worse", "n_equivalent", "n_inconclusive")]
        counts_txt = (" / ".join(str(int(as_number(c))) if np.isfinite(as_number(c)) else "-" for c in counts)
                      if all(c is not None for c in counts) else "")
        paper = as_text(r["paper_pts"]).strip("[]").replace(" ", "")
        out.append({
            "family": as_text(r["family"]),
            "regime": REGIME_TITLES.get(as_text(r["regime"]), as_text(r["regime"])),
            "contrast": as_text(r["contrast"]),
            "noise": row_noise(r),
            "settings": int(as_number(r["n_settings"])) if "n_settings" in r and np.isfinite(
                as_number(r["n_settings"])) else "",
            "effect (pt)": signed(eff).replace(MINUS, "-") if np.isfinite(eff) else "",
            "95 % CI (pt)": (f"[{signed(as_number(r['ci_low'])).replace(MINUS, '-')}, "
                             f"{signed(as_number(r['ci_high'])).replace(MINUS, '-')}]"
                             if np.isfinite(as_number(r["ci_low"])) else ""),
            "verdict": as_text(r["word"]),
            "better / worse / equiv. / inconcl.": counts_txt,
            "margin": as_number(r["margin"]),
            "paper (pt)": paper.replace(",", ", "),
            "note": as_text(r["note"]),
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
    return frame_to_latex(_table_records(ledger, which), caption=caption, label=label,
                          float_format="{:g}")
