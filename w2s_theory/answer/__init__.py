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

Submodules, one concept each: `reading` (constants, the summary rows, `read_ledger`), `lines`
(`answer_lines`), `figure` (`figure_rows`, `plot_answer`), `tables` (Markdown / LaTeX), `pages`
(README block, docs page, `update_readme`) and `cli` (``python -m w2s_theory.answer``).
"""

from __future__ import annotations

from .cli import main
from .figure import figure_rows, plot_answer
from .lines import answer_lines
from .pages import ledger_page, readme_block, update_readme
from .reading import (
    HEADLINE_NOISE,
    HEADLINE_REGIMES,
    MAX_FIGURE_ROWS,
    REGIME_TITLES,
    REVERSE_LOSSES,
    STATEMENTS_FILE,
    read_ledger,
)
from .reading import README_MAX_LINES as README_MAX_LINES  # noqa: F401 - re-exported
from .reading import SCOPE_TITLES as SCOPE_TITLES  # noqa: F401 - re-exported
from .tables import latex_table, markdown_table

__all__ = ["HEADLINE_REGIMES", "REGIME_TITLES", "REVERSE_LOSSES", "HEADLINE_NOISE", "MAX_FIGURE_ROWS", "STATEMENTS_FILE", "answer_lines", "figure_rows", "plot_answer", "markdown_table", "latex_table", "readme_block", "ledger_page", "read_ledger", "update_readme", "main"]
