"""Full fine-tuning of a reward model (backbone + linear head) under the W2SG losses (torch).

The strong student is a pretrained transformer ``h`` (e.g. all-MiniLM-L6-v2) with
a linear head on the mean-pooled last hidden state,

``r(x) = w . mean_t h(x)_t + b``  (mean over the attention-mask tokens),

trained on soft targets ``y`` (the weak model's probabilities, optionally
corrupted by label noise) under one of `w2s_theory.losses`:

* ``task="pairwise"`` (HH-RLHF reward model, Bradley--Terry): a pair ``(A, B)``
  has logit ``z = r(A) - r(B)``, ``P(A preferred) = sigmoid(z)``;
* ``task="binary"``: one text, logit ``z = r(x)``;
* ``task="classification"``: one text, ``k`` class logits (a ``Linear(H, k)`` head, ``k`` from
  the targets' shape ``(n, k)``; softmax probabilities).

The default `FinetuneConfig` is the paper's protocol (arXiv:2502.11107,
Sec. 5): one epoch, batch 16, learning rate 1e-5, cosine decay, Adam (AdamW with
weight decay 0), dropout off (reward-model practice; it also makes a run a
deterministic function of its seed). Texts are truncated from the *left* (the
final assistant reply is what a preference is about) to ``max_length`` tokens
including the special tokens, as the shared features were.

Training runs through transformers' ``Trainer`` (`W2STrainer`, a
`w2s_theory.trainers.SoftLabelTrainer` whose loss is the run's `w2s_theory.objective.Objective`):
its AdamW, ``get_scheduler`` (cosine / constant, linear warm-up), ``DataCollatorWithPadding``,
``resume_from_checkpoint`` and accelerate (``accelerate launch -m w2s_theory.cli finetune ...``
gives data parallelism; the global batch stays ``batch_size``). Batches are length-grouped with
transformers' ``get_length_grouped_indices`` when ``group_by_length > 0``. Full fine-tuning,
``head_only=True`` (the head alone on pooled features computed once) and partial fine-tuning
(`w2s_theory.partial.train_top`: the top ``k`` blocks on cached states) are the same trainer
with a different set of trainable parameters. A killed run restarted with the same checkpoint
folder resumes from the newest complete ``Trainer`` checkpoint and ends with the same weights as
an uninterrupted run.

References
----------
Yao et al., "Revisiting Weak-to-Strong Generalization in Theory and Practice:
Reverse KL vs. Forward KL", arXiv:2502.11107 (2025).
Burns et al., "Weak-to-Strong Generalization", arXiv:2312.09390 (2023).
Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 39 (1952).
"""

from .config import POOLINGS, TASKS, FinetuneConfig
from .data import (
    MAX_CHUNKS,
    PadCollator,
    TokenCount,
    TokenRows,
    chunk_bounds,
    pad_tokenizer,
    padded_tokens,
)
from .model import (
    RewardModel,
    build_model,
    fp32_head,
    init_head_,
    load_backbone,
    mean_pool,
    pool_tokens,
    resolve_pooling,
)
from .order import OrderSampler, batch_order, real_token_fraction, task_lengths, train_order
from .run import HeadOnFeatures, check_targets, embed_texts, predict, score, train
from .targets import loss_fn, make_targets, new_buffer
from .tokens import TextTask, TokenizedTexts, special_frame
from .trainer import (
    TrainStats,
    device_name,
    end_processes,
    fit,
    last_checkpoint,
    make_engine,
    mixed_precision_for,
    training_arguments,
)

__all__ = [
    "FinetuneConfig",
    "TASKS",
    "POOLINGS",
    "TokenizedTexts",
    "TextTask",
    "special_frame",
    "RewardModel",
    "TrainStats",
    "load_backbone",
    "build_model",
    "batch_order",
    "task_lengths",
    "train_order",
    "real_token_fraction",
    "OrderSampler",
    "make_targets",
    "init_head_",
    "mean_pool",
    "pool_tokens",
    "resolve_pooling",
    "fp32_head",
    "loss_fn",
    "new_buffer",
    "make_engine",
    "end_processes",
    "mixed_precision_for",
    "device_name",
    "training_arguments",
    "last_checkpoint",
    "fit",
    "score",
    "check_targets",
    "HeadOnFeatures",
    "pad_tokenizer",
    "MAX_CHUNKS",
    "chunk_bounds",
    "padded_tokens",
    "PadCollator",
    "TokenRows",
    "TokenCount",
    "train",
    "predict",
    "embed_texts",
]
