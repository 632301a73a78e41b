"""The README's result sentences come from the claims ledger: the block between its markers is
exactly what :func:`w2s_theory.ledger.results_markdown` generates from the committed ledger
summary (which tests/test_ledger.py checks against a rebuild from the result tables)."""

from pathlib import Path

import pandas as pd

from w2s_theory.ledger import README_MARKERS, results_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_block_is_generated_from_the_ledger():
    text = (ROOT / "README.md").read_text()
    a, b = README_MARKERS
    assert text.count(a) == 1 and text.count(b) == 1, "README needs exactly one results block"
    block = text.split(a, 1)[1].split(b, 1)[0].strip("\n")
    summ = pd.read_csv(ROOT / "experiments" / "results" / "ledger_summary.csv")
    assert block == results_markdown(summ), (
        "README results block is stale: run `python -m w2s_theory.ledger --readme`")


def test_results_markdown_follows_the_verdicts():
    summ = pd.read_csv(ROOT / "experiments" / "results" / "ledger_summary.csv")
    md = results_markdown(summ)
    flipped = summ.copy()
    i = flipped.index[flipped["claim"] != 6][0]
    flipped.loc[i, "verdict"] = "holds" if flipped.loc[i, "verdict"] != "holds" else "does not hold"
    assert results_markdown(flipped) != md            # a changed verdict changes the README text
