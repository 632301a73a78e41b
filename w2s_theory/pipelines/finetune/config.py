"""The fine-tuning sweep's configuration: the TOML sections as typed, checked dataclasses.

``[data]`` `DataConfig`, ``[weak]`` `WeakConfig`, ``[train]`` (a `w2s_theory.finetune.FinetuneConfig`,
with ``[train.args]`` passed to transformers' ``TrainingArguments``: `training_args`),
``[head_only]``, ``[sweep]`` `SweepSpec`, ``[run]`` `RunOptions`, ``[lr_select]`` `LrSelect`;
the whole file is a `FinetuneSweepConfig`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..._validation import check_number
from ...config import ConfigError, check_keys, from_mapping, load_config
from ...data import project_root
from ...hf_args import check_table
from ...sources import check_source, source_task

#: Bump when the protocol changes the numbers (part of every run key).
PROTOCOL_VERSION = 1
SPLIT_SLOT_OFFSET = {"train_gt": 0, "train_w2s": 1, "test": 2}
REGIMES = ("full", "head_only")
#: Columns that say where/when a row was computed (not compared across machines).
PROVENANCE_COLUMNS = ("git_commit", "machine", "device", "precision", "torch_version",
                      "train_wall_s", "group_wall_s", "eval_wall_s", "tokens_per_s",
                      "group_tokens_per_s", "created_utc", "config_file", "num_processes")
_ENSEMBLE_GONE = ("removed in issue 19 with the stacked ensemble (it ran at 0.78x the speed of "
                  "one-by-one runs on a 2-core AMD EPYC): every run now trains on its own; "
                  "delete the key")
#: ``[run]`` keys removed in issue 19, with why: a config naming one is a `ConfigError`.
REMOVED_RUN_KEYS = {
    "ensemble": _ENSEMBLE_GONE,
    "runs_per_group": _ENSEMBLE_GONE,
    "use_accelerate": "removed in issue 19: every run goes through transformers' Trainer, that "
                      "is through accelerate (one process, or as many as `accelerate launch` "
                      "starts); it did nothing since; delete the key",
}
#: ``TrainingArguments`` fields that ``[train]`` (or the pipeline) sets: one place per setting.
TRAIN_OWNS = {
    "learning_rate": "[train] lr", "num_train_epochs": "[train] epochs",
    "max_steps": "[train] epochs", "per_device_train_batch_size": "[train] batch_size",
    "per_device_eval_batch_size": "[train] eval_batch_size",
    "gradient_accumulation_steps": "[train] grad_accum", "weight_decay": "[train] weight_decay",
    "adam_beta1": "[train] betas", "adam_beta2": "[train] betas", "adam_epsilon": "[train] adam_eps",
    "lr_scheduler_type": "[train] schedule", "warmup_steps": "[train] warmup_frac", "max_grad_norm": "[train] max_grad_norm",
    "bf16": "[train] precision", "fp16": "[train] precision",
    "save_steps": "[train] checkpoint_every",
    "seed": "[sweep] seeds", "data_seed": "[sweep] seeds", "output_dir": "the pipeline",
    "use_cpu": "[run] device",
}


def training_args(table: Any, where: str = "train.args") -> dict:
    """Check a ``[train.args]`` table: `w2s_theory.hf_args.check_table` with the fields
    ``[train]`` already sets reserved (`TRAIN_OWNS`: ``learning_rate`` is ``[train] lr``, one
    place per setting).

    The table's keys pass through to ``TrainingArguments`` as given (gradient checkpointing,
    ``report_to``, ``torch_compile``, FSDP / DeepSpeed settings, ...). An empty table needs no
    transformers.

    Args:
        table: the ``[train.args]`` table (a dict).
        where: the table's name in messages.

    Returns:
        A plain ``dict`` copy of the table.

    Examples:
        >>> training_args({})
        {}
        >>> training_args({"gradient_checkpointing": True})
        {'gradient_checkpointing': True}
        >>> training_args({"learning_rate": 1e-4})
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: train.args.learning_rate: set by [train] lr, not in [train.args] (one place per setting)
    """
    return check_table(table, prefix=where, reserved=TRAIN_OWNS)


def paper_losses() -> tuple[str, ...]:
    """The default student losses: the registry's four losses of the paper (imports torch)."""
    from ...losses import PAPER_LOSSES

    return PAPER_LOSSES


@dataclass(frozen=True)
class DataConfig:
    """Which data: an HH-RLHF subset, optionally its first rows only.

    Attributes:
        subset: ``harmless`` or ``helpful``.
        n_train: pairs of ``train_gt`` and of ``train_w2s`` used (0 = all 4000).
        n_test: pairs of ``test`` used (0 = all).
        slot_seed: slot orders use ``slot_seed + {0, 1, 2}`` for train_gt, train_w2s, test.
        root: HH-RLHF folder (default of `w2s_theory.data.hh_rlhf_root`).
        ceiling_split: where the strong ceiling is trained on ground truth: ``train_gt``
            (the data's README: the split with ground truth, shared with the weak model) or
            ``train_w2s`` (the student's pairs with their true labels; the default of
            configs written before ``train_gt`` ceilings existed).
        source: any other data (a ``[data.source]`` table, `w2s_theory.sources.check_source`):
            ``kind = "hh_rlhf_hub"`` (``Anthropic/hh-rlhf`` in its hub form, or a local folder
            in that layout), ``"split_files"`` (e.g. the authors' CAI-Harmless files),
            ``"table"`` (any JSONL / CSV / Parquet with a column mapping: preference pairs,
            or two-class classification, trained as ``task = "binary"``; a ``task =
            "multiclass"`` table trains a ``k``-output softmax head, ``task = "classification"``
            of `w2s_theory.finetune.FinetuneConfig`) or ``"hh_rlhf"``.
            ``None`` (the default): the local 4K/4K/4K HH-RLHF layout, subset ``subset``.
    """

    subset: str = "harmless"
    n_train: int = 0
    n_test: int = 0
    slot_seed: int = 0
    root: str | None = None
    ceiling_split: str = "train_w2s"
    source: dict | None = None

    def __post_init__(self):
        if self.source is not None:
            object.__setattr__(self, "source", check_source(self.source, "data.source"))
        if self.subset not in ("harmless", "helpful"):
            raise ValueError(f"data.subset: 'harmless' or 'helpful', got {self.subset!r}")
        if self.ceiling_split not in ("train_gt", "train_w2s"):
            raise ValueError(f"data.ceiling_split: 'train_gt' or 'train_w2s', got {self.ceiling_split!r}")
        for k in ("n_train", "n_test", "slot_seed"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"data.{k}: must be an integer >= 0, got {v!r}")


@dataclass(frozen=True)
class WeakConfig:
    """The weak supervisor: a logistic BT head on a weak model's features, or a fine-tuned LM.

    Attributes:
        model: a feature set of `w2s_theory.features.FEATURE_SETS` (default wordllama),
            a model preset, a local folder or a hub id ``org/name[@revision]``.
        l2_grid: candidate L2 weights (on standardised features); one value = no search.
        folds: cross-validation folds on ``train_gt`` to pick the L2 weight.
        kind: ``features`` (a logistic head on the model's frozen features) or ``finetune``
            (the paper's weak model: ``model`` fully fine-tuned as a reward model on
            ``train_gt`` ground truth with ``[train]``'s protocol and forward CE; its
            predictions are cached next to the result table).
        seed: the weak fine-tuning run's seed (``kind = "finetune"``).
        lr: its learning rate (default ``[train] lr``).
    """

    model: str = "wordllama"
    l2_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    folds: int = 4
    kind: str = "features"
    seed: int = 0
    lr: float | None = None

    def __post_init__(self):
        if self.kind not in ("features", "finetune"):
            raise ValueError(f"weak.kind: 'features' or 'finetune', got {self.kind!r}")
        if self.lr is not None and not float(self.lr) > 0:
            raise ValueError(f"weak.lr: must be > 0, got {self.lr!r}")
        if not self.l2_grid or any(float(v) < 0 for v in self.l2_grid):
            raise ValueError(f"weak.l2_grid: need non-negative values, got {self.l2_grid!r}")
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"weak.folds: must be an integer >= 2, got {self.folds!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"weak.seed: must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class SweepSpec:
    """The grid: losses x noise x seeds x confidence, per regime, plus ceilings.

    Attributes:
        losses, noise, seeds, confidence: grid values.
        regimes: subset of ``("full", "head_only")``.
        ceiling: also train the strong ceiling (needed for PGR and the proxy Theorem 2 check).
    """

    losses: tuple[str, ...] = field(default_factory=lambda: paper_losses())
    noise: tuple[float, ...] = (0.0,)
    seeds: tuple[int, ...] = (0, 1, 2)
    confidence: tuple[bool, ...] = (False,)
    regimes: tuple[str, ...] = REGIMES
    ceiling: bool = True

    def __post_init__(self):
        from ...losses import check_loss_name

        for l in self.losses:
            check_loss_name(l, "sweep.losses")
        for r in self.regimes:
            if r not in REGIMES:
                raise ValueError(f"sweep.regimes: unknown regime {r!r}; choose from {REGIMES}")
        if not self.regimes:
            raise ValueError("sweep.regimes: empty, so this sweep would run nothing")
        if not self.ceiling and not (self.losses and self.noise and self.confidence):
            raise ValueError("sweep.losses / noise / confidence: no student runs and ceiling = "
                             "false, so this sweep would run nothing")
        if not self.seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0
                                 for s in self.seeds):
            raise ValueError(f"sweep.seeds: need non-negative integers, got {self.seeds!r}")
        object.__setattr__(self, "noise", tuple(check_number(a, "sweep.noise", low=0.0, high=1.0)
                                                for a in self.noise))
        object.__setattr__(self, "confidence", tuple(bool(c) for c in self.confidence))


@dataclass(frozen=True)
class LrSelect:
    """How ``[train] lr`` is chosen: never on test pairs.

    With a ``grid``, the strong model is fine-tuned with ground truth (forward CE, the
    ceiling's objective, seed ``seed``) on the first ``n - holdout`` pairs of ``train_gt``
    (in slot order) once per candidate lr, and scored on the last ``holdout`` pairs of
    ``train_gt``; the best ``metric`` wins (ties: the smaller lr). Every run of the sweep
    (ceilings and students of every loss) then uses that one lr, so losses are compared at
    identical budgets. Without a grid, ``[train] lr`` is used as given and ``source`` must
    say where it came from (it is written into every row).

    Attributes:
        grid: candidate learning rates (empty: no selection).
        holdout: ``train_gt`` pairs held out for scoring (taken from the end of the slot order).
        seed: the selection runs' seed.
        metric: ``accuracy`` (higher is better) or ``logloss`` (lower is better).
        source: how a fixed lr was chosen, when there is no grid.
    """

    grid: tuple[float, ...] = ()
    holdout: int = 1000
    seed: int = 0
    metric: str = "accuracy"
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "grid", tuple(float(v) for v in self.grid))
        if any(not (v > 0) for v in self.grid):
            raise ValueError(f"lr_select.grid: learning rates must be > 0, got {self.grid!r}")
        if not isinstance(self.holdout, int) or self.holdout < 1:
            raise ValueError(f"lr_select.holdout: must be an integer >= 1, got {self.holdout!r}")
        if self.metric not in ("accuracy", "logloss"):
            raise ValueError(f"lr_select.metric: 'accuracy' or 'logloss', got {self.metric!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"lr_select.seed: must be an integer >= 0, got {self.seed!r}")

    def rule(self) -> str:
        """One line that says how the lr was chosen (stored in every row)."""
        if not self.grid:
            return f"fixed: {self.source or 'no source given'}"
        return (f"train_gt holdout: best {self.metric} on the last {self.holdout} train_gt pairs "
                f"over lr {list(self.grid)} (ceiling objective, seed {self.seed})")


@dataclass(frozen=True)
class RunOptions:
    """How to run (not what: these do not change the numbers beyond round-off).

    Every run trains on its own, one after the other, through transformers' ``Trainer`` (so
    through accelerate). ``ensemble`` and ``runs_per_group`` (the stacked many-runs-at-once
    trainer, 0.78x the speed of one-by-one runs on a 2-core AMD EPYC) and ``use_accelerate``
    (no other engine is left) were removed in issue 19; a config that still names one is a
    `ConfigError` (`REMOVED_RUN_KEYS`).

    Attributes:
        out: result table CSV (relative to the project root unless absolute).
        gamma: smoothing floor of every bound check.
        checkpoint_dir: folder for per-run checkpoints of one-by-one runs (``None`` = off).
        device: ``auto``, ``cpu`` or ``cuda``.
    """

    out: str = "experiments/results/finetune/finetune.csv"
    gamma: float = 1e-3
    checkpoint_dir: str | None = None
    device: str = "auto"

    def __post_init__(self):
        if not (0.0 < self.gamma <= 0.5):
            raise ValueError(f"run.gamma: must lie in (0, 1/2], got {self.gamma!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"run.device: 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass(frozen=True)
class FinetuneSweepConfig:
    """A full fine-tuning W2S sweep (TOML: top-level ``name``, ``strong``; sections
    ``[data]``, ``[weak]``, ``[train]`` (a `FinetuneConfig`),
    ``[head_only]`` (overrides of ``[train]`` for the head-only regime), ``[sweep]``, ``[run]``,
    ``[lr_select]``). ``[train.args]``: fields of transformers' ``TrainingArguments`` passed
    through as given (``train_args``; checked by `training_args`).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
        >>> _ = p.write_text('name = "x"\\n[train]\\nmax_length = 64\\n[sweep]\\nnoise = [0.0, 0.2]\\n')
        >>> c = FinetuneSweepConfig.from_toml(p)
        >>> c.train.max_length, c.train.lr, c.sweep.noise, c.head_only_train().lr
        (64, 1e-05, (0.0, 0.2), 0.001)
    """

    name: str
    strong: str = "all-MiniLM-L6-v2"
    data: DataConfig = field(default_factory=DataConfig)
    weak: WeakConfig = field(default_factory=WeakConfig)
    train: Any = None
    head_only: dict = field(default_factory=lambda: {"lr": 1e-3})
    sweep: SweepSpec = field(default_factory=SweepSpec)
    run: RunOptions = field(default_factory=RunOptions)
    lr_select: LrSelect = field(default_factory=LrSelect)
    train_args: dict = field(default_factory=dict)

    def __post_init__(self):
        from ...finetune import FinetuneConfig

        if self.train is None:
            object.__setattr__(self, "train", FinetuneConfig())
        if not isinstance(self.train, FinetuneConfig):
            raise ValueError("train: must be a FinetuneConfig")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        if self.data.source is not None:
            # pairs: a reward per text; two classes: one logit; k classes: a k-output head
            want = {"pairwise": "pairwise", "multiclass": "classification"}.get(
                source_task(self.data.source), "binary")
            if self.train.task != want:
                object.__setattr__(self, "train", self.train.replace(task=want))
        if self.train.task == "classification" and any(self.sweep.confidence):
            raise ValueError("sweep.confidence: the confidence loss is binary; a multiclass "
                             "table takes confidence = [false]")
        check_keys(self.head_only, [f.name for f in fields(FinetuneConfig)], "[head_only]")
        self.head_only_train()  # validates the overrides
        if not isinstance(self.train_args, dict):
            raise ValueError(f"train_args: a dict of TrainingArguments fields, got "
                             f"{type(self.train_args).__name__}")

    def head_only_train(self):
        """The `FinetuneConfig` of head-only runs (``[train]`` + ``[head_only]``)."""
        return self.train.replace(**{**dict(self.head_only), "head_only": True})

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneSweepConfig:
        """Build from the TOML dict by the fields' types (`w2s_theory.config.from_mapping`):
        ``[train]`` is a `FinetuneConfig`, its ``[train.args]`` sub-table `train_args`
        (checked by `training_args`); the removed ``[run]`` keys are refused by name."""
        from ...finetune import FinetuneConfig

        d = dict(d)
        check_keys(d, [f.name for f in fields(cls) if f.name != "train_args"], "top level")
        tr = dict(d.pop("train", None) or {})
        d["train_args"] = training_args(tr.pop("args", None) or {}, "train.args")
        d["train"] = tr
        for k, why in REMOVED_RUN_KEYS.items():
            if k in (d.get("run") or {}):
                raise ConfigError(f"run.{k}: {why}")
        d.setdefault("name", "")                 # refused by name in __post_init__
        return from_mapping(cls, d, where="top level", types={"train": FinetuneConfig})

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> FinetuneSweepConfig:
        return load_config(path, cls.from_dict)

    def to_dict(self) -> dict:
        """The TOML dict (`from_dict` reads it back; ``[train.args]`` inside ``train``)."""
        d = asdict(self)
        d["train"] = self.train.to_dict()
        args = d.pop("train_args")
        if args:
            d["train"]["args"] = args
        return json.loads(json.dumps(d))

    def out_path(self) -> Path:
        p = Path(self.run.out)
        return p if p.is_absolute() else project_root() / p
