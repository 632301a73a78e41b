r"""Claims ledger: the paper's six claims tested per regime and setting, from a declared plan.

The ledger is computed from the declared analysis plan (``experiments/analysis.toml``,
`w2s_theory.plan`): `build` (families and settings from the plan, the data split as the unit
of replication, split-aware intervals, TOST with the declared margin, Holm within each family,
four verdict words, every excluded setting / seed / fit listed with its reason, claim 6's
checks with Clopper-Pearson intervals, sensitivity families never pooled), `Ledger`, `write`
(``ledger.csv``, ``ledger_summary.csv``, ``ledger_excluded.csv``, ``ledger_checks.csv``),
`summary_text` and ``python -m w2s_theory.ledger``. A researcher's own table:
``build(default_plan(frame), {"results.csv": frame})``.

Submodules, one concept each: `paper` (claims, regimes, the paper's patterns), `records` (the
`Ledger` and its columns), `tables` (reading tables), `families` (a family's paired runs),
`rows` (rows, Holm, words, summaries), `sensitivity`, `checks` (claim 6, statements), `build`,
`output` (CSVs, text, README block) and `cli` (``python -m w2s_theory.ledger``).

Seed-level statistics used by the notebooks (defined in `w2s_theory.stats`, importable here):
`paired_effect` (mean of paired differences over seeds, 95 % t interval, paired t-test),
`holm` (Holm's step-down adjustment within a family), `gap_filter` (a setting has a
weak-to-strong gap only if ``ceiling - weak`` has a t interval above 0), `pgr_interval` (PGR
with Fieller's interval, undefined when the gap's interval contains 0),
`symmetric_loss_defect` (Ghosh et al.'s symmetry condition of a loss) and `paper_patterns`
(the paper's reported patterns, from ``experiments/paper_reference/``).

Conventions: accuracy effects are in percentage points (``100 x`` accuracy); seeds pair runs
(an effect for seed ``s`` compares the two arms of seed ``s``).

References
----------
Yao et al., arXiv:2502.11107 (2025): the claims (as summarized in ``experiments/paper_reference``).
Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
Fieller, "Some problems in interval estimation", J. R. Statist. Soc. B 16 (1954).
Ghosh, Kumar & Sastry, "Robust loss functions under label noise for deep neural networks",
AAAI 2017 (symmetric losses are noise-tolerant under symmetric label flips).
Burns et al., arXiv:2312.09390 (PGR).
"""

from __future__ import annotations

from ..stats import (
    PairedEffect,
    PGRInterval,
    gap_filter,
    holm,
    paired_effect,
    pgr_interval,
)
from .build import build
from .output import summary_text, write
from .paper import ALPHA as ALPHA
from .paper import CLAIMS, REGIMES, paper_patterns, symmetric_loss_defect
from .records import (
    CHECK_COLUMNS,
    EXCLUDED_COLUMNS,
    PLAN_PATH,
    ROW_COLUMNS,
    SUMMARY_COLUMNS,
    Ledger,
)
from .records import (
    LEDGER_FILES as LEDGER_FILES,
)
from .records import (
    README_MARKERS as README_MARKERS,
)

__all__ = [
    "CHECK_COLUMNS",
    "CLAIMS",
    "EXCLUDED_COLUMNS",
    "PLAN_PATH",
    "REGIMES",
    "ROW_COLUMNS",
    "SUMMARY_COLUMNS",
    "Ledger",
    "PGRInterval",
    "PairedEffect",
    "build",
    "gap_filter",
    "holm",
    "paired_effect",
    "paper_patterns",
    "pgr_interval",
    "summary_text",
    "symmetric_loss_defect",
    "write",
]
