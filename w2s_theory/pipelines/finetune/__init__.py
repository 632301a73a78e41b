"""The fine-tuning pipeline: weak-to-strong with a *fully fine-tuned* strong student (``run(config)``).

Command line: ``w2s-theory finetune --config FILE.toml`` (`w2s_theory.cli.finetune`).

The pipeline (HH-RLHF preference pairs, Bradley--Terry reward models, or any ``[data] source``):

1. **Weak supervisor** (`weak`) -- a logistic reward head on the weak rung's features
   (default wordllama, static embeddings): ``P(A > B) = sigmoid(w . (phi(A) - phi(B)))``,
   fitted on ``train_gt`` ground truth (forward CE, L2 chosen by k-fold cross-validation on
   ``train_gt``), or the weak LM itself fine-tuned on ``train_gt``. Its soft labels on
   ``train_w2s`` are the student's targets; its probabilities on ``test`` are ``F_w`` of the
   bound checks.
2. **Learning rate** (`lr_select`) -- chosen on held-out ``train_gt`` pairs, never test.
3. **Strong ceiling** -- the strong model (default all-MiniLM-L6-v2) fine-tuned on ground
   truth (forward CE), one per seed.
4. **Students** -- the strong model fine-tuned on the weak labels under each loss x noise
   level x seed (x confidence loss), one by one by `w2s_theory.finetune.train` (`execute`).
5. **Regimes** -- ``full`` (backbone + head) and ``head_only`` (the last-layer case: the same
   trainer with a frozen backbone), same data, same seeds.

Every run's test logits are kept in a prediction store (`store`: ``<out>.preds.npz``, atomic
rewrites); result rows (`rows`) are derived from it, so a killed sweep resumes, losing at
most the run in flight. The same store is what the GPU script
(``experiments/gpu/finetune_sweep.py``) writes and ``ingest`` reads.

One module per concept: `config` (the TOML sections), `weak`, `bundle` (the data),
`lr_select`, `runs` (the plan of runs and their keys), `store`, `execute`, `rows`,
`plan_text` (``--dry-run`` and the preflight check), `entry` (`run`). Importing the package
needs numpy and scipy only; torch and transformers are imported where a model trains or a
tokenizer loads.
"""

from __future__ import annotations

from ...protocol import fit_weak_head  # the weak teacher's head (the protocol's, re-exported)
from .bundle import Bundle, build_bundle, load_bundle, resolve_model_dir, save_bundle
from .config import (
    PROTOCOL_VERSION,
    PROVENANCE_COLUMNS,
    REGIMES,
    REMOVED_RUN_KEYS,
    SPLIT_SLOT_OFFSET,
    TRAIN_OWNS,
    DataConfig,
    FinetuneSweepConfig,
    LrSelect,
    RunOptions,
    SweepSpec,
    WeakConfig,
    paper_losses,
    training_args,
)
from .entry import run
from .execute import HEAD_ONLY_GRACE_S, execute, logit, run_record
from .lr_select import lr_select_fingerprint, select_lr
from .plan_text import plan_lines, preflight
from .rows import make_row, rows_from_store
from .runs import RunSpec, plan_runs
from .store import InMemoryStore, PredStore, PredStoreWarning, bundle_fingerprint
from .weak import weak_finetune_config, weak_teacher

__all__ = [
    "DataConfig", "WeakConfig", "SweepSpec", "RunOptions", "FinetuneSweepConfig", "LrSelect",
    "PROTOCOL_VERSION", "SPLIT_SLOT_OFFSET", "REGIMES", "PROVENANCE_COLUMNS", "REMOVED_RUN_KEYS",
    "TRAIN_OWNS", "paper_losses", "training_args",
    "Bundle", "build_bundle", "save_bundle", "load_bundle", "resolve_model_dir",
    "fit_weak_head", "weak_teacher", "weak_finetune_config",
    "select_lr", "lr_select_fingerprint",
    "RunSpec", "plan_runs",
    "PredStore", "PredStoreWarning", "InMemoryStore", "bundle_fingerprint",
    "execute", "logit", "run_record", "HEAD_ONLY_GRACE_S",
    "make_row", "rows_from_store",
    "plan_lines", "preflight",
    "run",
]
