r"""The real pipeline: the paper's last-layer W2SG protocol on LM features (``run(config)``).

Command line: ``w2s-theory real --config FILE.toml`` (`w2s_theory.cli.real`).

Protocol (arXiv:2502.11107, last-layer version), for every data set, ladder pair
(weak model, strong model) and seed:

1. **Weak model**: a head on the weak model's features, trained on ``train_gt``
   ground truth (forward CE on hard labels).
2. **Weak labels**: its soft predictions on ``train_w2s``, then corrupted by
   `w2s_theory.noise.corrupt_labels` (a fraction ``noise`` of them flipped,
   ``y -> 1 - y``, or to another class; the same rows for every loss of a seed).
3. **Strong ceiling**: a head on the strong model's features trained on ``train_w2s``
   ground truth.
4. **Strong students**: heads on the strong features trained on the weak labels under
   forward KL, reverse KL, forward CE, reverse CE, with and without the confidence loss.

All heads are linear, trained from zero by Adam, one epoch, batch 16 (the paper's
practical regime; `w2s_theory.training.TrainConfig`). Features are standardised
per coordinate with the ``train_gt`` statistics of each model. **Preference data**
(HH-RLHF): a Bradley–Terry reward head, ``P(A preferred) = sigmoid(r(h_A) - r(h_B))``
with linear ``r``, i.e. a bias-free logistic head on ``h_A - h_B`` with the seeded slot
order of `w2s_theory.data.preference_slots` (label 1 when slot A holds the chosen
reply). **Sentiment** (VADER): a logistic head with a bias on the text's features.
**k classes** (labelled texts with ``k > 2`` classes): a softmax head with ``k`` outputs, one-hot
ground truth, weak labels that are ``k``-vectors, noise by `w2s_theory.noise.flip_kclass` (a
flipped row moves to one of the other ``k - 1`` classes), the same bound checks on ``(n, k)``
rows (`w2s_theory.kclass`); every row records ``n_classes``.

Every student gives one row of a tidy result table
(`w2s_theory.sweep.ResultTable`), holding its accuracy/AUROC/ECE, PGR,
disagreements, and its bound checks on the test split: Lemma 1 (every stage, both
directions; predictions smoothed by `w2s_theory.divergences.smooth` with the
configured ``gamma``), Theorem 2's slack with ``F* =`` truth and with ``F* =`` the
strong ceiling, and the same on the fitting population (``train_w2s``, ``F_w`` = the
weak labels the student saw). The same row holds the convex head of ``docs/theory.md``
(`w2s_theory.heads.fit_convex_head`, reverse and forward KL) fitted on the same
strong features (projected on their top ``pca_dim`` principal components of
``train_w2s`` to keep the exponential-cone program small) with the same weak labels;
its realizable reference is the convex ceiling (the same class fitted to the ground
truth), so Theorem 2's assumptions hold there by construction.

Resumable: all heads of a phase (teachers, then students) are trained in one batched
computation (`w2s_theory.training.train_heads`), their weights cached; rows are
evaluated and appended one by one, so a killed sweep loses at most the row in flight
and a rerun recomputes nothing already stored.
"""

from __future__ import annotations

from .bank import FeatureBank, is_pairwise
from .config import ConvexConfig, RealConfig, paper_losses
from .convex import T2MIS_FIELDS, convex_results, into_box, read_convex_cache
from .phases import train_students, train_teachers, weak_labels
from .runs import PROTOCOL_VERSION, Run, derive_seed, enumerate_runs
from .sweep import MODEL_NOTES, PROVENANCE_COLUMNS, evaluate_run, run, run_sweep

__all__ = ["ConvexConfig", "RealConfig", "Run", "enumerate_runs", "run_sweep", "run", "FeatureBank",
           "derive_seed", "T2MIS_FIELDS", "read_convex_cache",
           "MODEL_NOTES", "PROTOCOL_VERSION", "PROVENANCE_COLUMNS",
           "paper_losses", "is_pairwise", "into_box", "convex_results", "evaluate_run",
           "train_teachers", "train_students", "weak_labels"]
