"""The fine-tuning pipeline: weak-to-strong with a *fully fine-tuned* strong student (``run(config)``).

Command line: ``w2s-theory finetune --config FILE.toml`` (`w2s_theory.cli.finetune`).

The pipeline (HH-RLHF preference pairs, Bradley--Terry reward models):

1. **Weak supervisor** -- a logistic reward head on the weak rung's features
   (default wordllama, static embeddings): ``P(A > B) = sigmoid(w . (phi(A) - phi(B)))``,
   fitted on ``train_gt`` ground truth by `w2s_theory.heads.fit_softmax_head`
   (forward CE, L2 chosen by k-fold cross-validation on ``train_gt``; the data are
   symmetrised with the swapped pairs, so the head has no slot bias). Its soft
   labels on ``train_w2s`` are the student's targets; its probabilities on ``test``
   are ``F_w`` of the bound checks.
2. **Strong ceiling** -- the strong model (default all-MiniLM-L6-v2) fine-tuned on
   ``train_w2s`` ground truth (forward CE), one per seed.
3. **Students** -- the strong model fine-tuned on the weak labels under each loss x
   noise level x seed (x confidence loss), by `w2s_theory.finetune.train`
   one by one (through accelerate when installed) or many at once by
   `w2s_theory.ensemble.train_ensemble` (same numbers up to round-off).
4. **Regimes** -- ``full`` (backbone + head) and ``head_only`` (the last-layer case:
   the same trainer with a frozen backbone), same data, same seeds.

Slot orders are fixed per split (``slot_seed``, ``+1``, ``+2`` for train_gt,
train_w2s, test); a run's seed sets its data order, head init and noisy rows.

Every run's test logits are kept in a prediction store (``<out>.preds.npz``, atomic
rewrites); result rows (`make_row`: accuracy, AUROC, ECE, PGR, Lemma 1's
stages, Theorem 2's slack with F* = truth and F* = the same-seed ceiling, cost and
provenance) are derived from it, so a killed sweep resumes, losing at most the
run (or ensemble group) in flight. The same store is what the GPU script
(``experiments/gpu/finetune_sweep.py``) writes and ``ingest`` reads.

No heavy imports at module import (numpy only); torch, transformers, scipy and
pandas are imported where used, so the GPU script can import this module on a
machine with torch and transformers only.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..config import check_keys, load_config
from ..fingerprint import CacheWarning
from ..provenance import git_commit, machine_name
from ..runtime import resolve_device

__all__ = [
    "DataConfig", "WeakConfig", "SweepSpec", "RunOptions", "FinetuneSweepConfig",
    "Bundle", "RunSpec", "PredStore", "PredStoreWarning", "build_bundle", "save_bundle", "load_bundle",
    "fit_weak_head", "plan_runs", "execute", "make_row", "rows_from_store", "run",
    "resolve_model_dir", "select_lr", "LrSelect", "PROVENANCE_COLUMNS", "plan_lines", "preflight",
    "weak_finetune_config", "bundle_fingerprint", "lr_select_fingerprint",
]

#: Bump when the protocol changes the numbers (part of every run key).
PROTOCOL_VERSION = 1
SPLIT_SLOT_OFFSET = {"train_gt": 0, "train_w2s": 1, "test": 2}
REGIMES = ("full", "head_only")
#: Seconds a started ensemble group may run past the sweep's deadline before it is cut.
GROUP_GRACE_S = 90.0
#: Columns that say where/when a row was computed (not compared across machines).
PROVENANCE_COLUMNS = ("git_commit", "machine", "device", "precision", "torch_version",
                      "train_wall_s", "group_wall_s", "eval_wall_s", "tokens_per_s",
                      "group_tokens_per_s", "created_utc", "config_file", "num_processes")


# ============================================================================= config

def paper_losses() -> tuple[str, ...]:
    """The default student losses: the registry's four losses of the paper (imports torch)."""
    from ..losses import PAPER_LOSSES

    return PAPER_LOSSES


def _from(cls, d: dict | None, section: str):
    d = dict(d or {})
    check_keys(d, [f.name for f in fields(cls)], f"[{section}]")
    for f in fields(cls):
        if f.name in d and isinstance(d[f.name], list):
            d[f.name] = tuple(d[f.name])
    return cls(**d)


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
            or two-class classification, trained as ``task = "binary"``) or ``"hh_rlhf"``.
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
            from ..sources import check_source

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
        from ..losses import check_loss_name

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
        from .._validation import check_number

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

    Attributes:
        out: result table CSV (relative to the project root unless absolute).
        ensemble: train full fine-tuning runs many at once (one device); else one by one.
        runs_per_group: runs per ensemble group.
        gamma: smoothing floor of every bound check.
        checkpoint_dir: folder for per-run checkpoints of one-by-one runs (``None`` = off).
        device: ``auto``, ``cpu`` or ``cuda``.
        use_accelerate: one-by-one runs through accelerate (``None`` = when installed).
    """

    out: str = "experiments/results/finetune/finetune.csv"
    ensemble: bool = True
    runs_per_group: int = 25
    gamma: float = 1e-3
    checkpoint_dir: str | None = None
    device: str = "auto"
    use_accelerate: bool | None = None

    def __post_init__(self):
        if not isinstance(self.runs_per_group, int) or self.runs_per_group < 1:
            raise ValueError(f"run.runs_per_group: must be an integer >= 1, got {self.runs_per_group!r}")
        if not (0.0 < self.gamma <= 0.5):
            raise ValueError(f"run.gamma: must lie in (0, 1/2], got {self.gamma!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"run.device: 'auto', 'cpu' or 'cuda', got {self.device!r}")


@dataclass(frozen=True)
class FinetuneSweepConfig:
    """A full fine-tuning W2S sweep (TOML: top-level ``name``, ``strong``; sections
    ``[data]``, ``[weak]``, ``[train]`` (a `FinetuneConfig`),
    ``[head_only]`` (overrides of ``[train]`` for the head-only regime), ``[sweep]``, ``[run]``).

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

    def __post_init__(self):
        from ..finetune import FinetuneConfig

        if self.train is None:
            object.__setattr__(self, "train", FinetuneConfig())
        if not isinstance(self.train, FinetuneConfig):
            raise ValueError("train: must be a FinetuneConfig")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        if self.data.source is not None:
            from ..sources import source_task

            want = "binary" if source_task(self.data.source) == "classification" else "pairwise"
            if self.train.task != want:   # labelled texts train one reward per text
                object.__setattr__(self, "train", self.train.replace(task=want))
        self.head_only_train()  # validates the overrides

    def head_only_train(self):
        """The `FinetuneConfig` of head-only runs (``[train]`` + ``[head_only]``)."""
        return self.train.replace(**{**dict(self.head_only), "head_only": True})

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneSweepConfig:
        from ..finetune import FinetuneConfig

        d = dict(d)
        check_keys(d, [f.name for f in fields(cls)], "top level")
        tr = dict(d.pop("train", {}) or {})
        check_keys(tr, [f.name for f in fields(FinetuneConfig)], "[train]")
        if "betas" in tr:
            tr["betas"] = tuple(tr["betas"])
        return cls(name=d.pop("name", ""), strong=d.pop("strong", "all-MiniLM-L6-v2"),
                   data=_from(DataConfig, d.pop("data", None), "data"),
                   weak=_from(WeakConfig, d.pop("weak", None), "weak"),
                   train=FinetuneConfig.from_dict(tr),
                   head_only=dict(d.pop("head_only", {"lr": 1e-3}) or {}),
                   sweep=_from(SweepSpec, d.pop("sweep", None), "sweep"),
                   run=_from(RunOptions, d.pop("run", None), "run"),
                   lr_select=_from(LrSelect, d.pop("lr_select", None), "lr_select"))

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> FinetuneSweepConfig:
        return load_config(path, cls.from_dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return json.loads(json.dumps(d))

    def out_path(self) -> Path:
        from ..data import project_root

        p = Path(self.run.out)
        return p if p.is_absolute() else project_root() / p


# ============================================================================= data bundle
@dataclass
class Bundle:
    """Everything a sweep trains and evaluates on (storable; see `save_bundle`).

    Attributes:
        subset: HH-RLHF subset.
        train: ``train_w2s`` pairs as a `TextTask` (labels = truth).
        test: ``test`` pairs.
        weak_train, weak_test: the weak model's ``P(A preferred)`` on them, ``(n,)`` float64.
        model_dir: folder of the strong backbone (transformers layout).
        meta: provenance (weak model, its L2 and accuracies, sources' sha256, slot seeds, ...).
        gt: ``train_gt`` pairs (labels = truth) when the sweep trains its ceiling there or
            chooses its lr on them; else ``None``.
    """

    subset: str
    train: Any
    test: Any
    weak_train: np.ndarray
    weak_test: np.ndarray
    model_dir: Path
    meta: dict
    gt: Any = None

    def ceiling_task(self):
        """The split the strong ceiling trains on (``meta['ceiling_split']``)."""
        if self.meta.get("ceiling_split", "train_w2s") == "train_gt":
            if self.gt is None:
                raise ValueError("bundle: the ceiling trains on train_gt but the bundle has no train_gt pairs")
            return self.gt
        return self.train


def _slots(pairs, seed: int, n: int):
    from ..data import preference_task

    a, b, lab = preference_task(pairs, seed)
    return a[:n], b[:n], lab[:n]


def _pair_diff(f: dict, labels: np.ndarray) -> np.ndarray:
    a = np.where(labels[:, None] == 1, f["chosen"], f["rejected"]).astype(np.float64)
    b = np.where(labels[:, None] == 1, f["rejected"], f["chosen"]).astype(np.float64)
    return a - b


def fit_weak_head(diff_gt: np.ndarray, labels_gt: np.ndarray, l2_grid: Sequence[float],
                  folds: int = 4, seed: int = 0, symmetric: bool = True):
    """Bradley--Terry logistic head on pair differences, L2 by k-fold CV; returns ``(head, l2, cv)``.

    The data are symmetrised: ``(d, y)`` and ``(-d, 1 - y)``, so the fitted intercept
    is 0 and ``P(A > B) = 1 - P(B > A)`` exactly (up to the solver's tolerance).
    ``symmetric=False``: a plain logistic head with its intercept (labelled texts: ``d``
    are the texts' features).
    ``cv`` maps each L2 weight to its mean held-out log-loss.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> d = rng.normal(size=(200, 3)); y = (d[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(float)
        >>> head, l2, cv = fit_weak_head(d, y, [1e-2, 1.0], folds=2)
        >>> l2 in (1e-2, 1.0), abs(float(head.intercept)) < 1e-8
        (True, True)
    """
    from ..heads import fit_softmax_head

    d = np.asarray(diff_gt, dtype=np.float64)
    y = np.asarray(labels_gt, dtype=np.float64)

    def fit(dd, yy, l2):
        if not symmetric:
            return fit_softmax_head(dd, yy, loss="forward_ce", l2=float(l2))
        return fit_softmax_head(np.vstack([dd, -dd]), np.concatenate([yy, 1 - yy]),
                                loss="forward_ce", l2=float(l2))

    grid = [float(v) for v in l2_grid]
    cv: dict[float, float] = {}
    if len(grid) > 1:
        fold = np.random.default_rng(seed).permutation(d.shape[0]) % folds
        for l2 in grid:
            losses = []
            for k in range(folds):
                h = fit(d[fold != k], y[fold != k], l2)
                p = np.clip(h.predict(d[fold == k]), 1e-12, 1 - 1e-12)
                yk = y[fold == k]
                losses.append(float(-(yk * np.log(p) + (1 - yk) * np.log1p(-p)).mean()))
            cv[l2] = float(np.mean(losses))
        best = min(cv, key=cv.get)
    else:
        best = grid[0]
    return fit(d, y, best), best, cv


def _weak_features(model: str, subset: str, split: str, n: int, pairs, root) -> dict:
    from ..data import N_ROWS

    if n == N_ROWS:
        from ..features import load_features

        return load_features(model, subset, split, data_root=root, progress=False)
    from ..features import features_for_texts

    x = features_for_texts(model, list(pairs.chosen[:n]) + list(pairs.rejected[:n]),
                           dataset=f"hh_rlhf-{subset}-{split}-first{n}", progress=False)
    return {"chosen": x[:n], "rejected": x[n:]}


def _is_preset(name: str) -> bool:
    from ..models import preset_of

    return preset_of(name) is not None


def _load_splits(cfg: FinetuneSweepConfig):
    """``(pairs or labelled texts per split, subset name, {split: rows used})``."""
    from ..config import ConfigError
    from ..data import N_ROWS, load_hh_rlhf

    dc = cfg.data
    if dc.source is None:
        ntr, nte = dc.n_train or N_ROWS, dc.n_test or N_ROWS
        pairs = {sp: load_hh_rlhf(dc.subset, sp, dc.root) for sp in ("train_gt", "train_w2s", "test")}
        return pairs, dc.subset, {"train_gt": ntr, "train_w2s": ntr, "test": nte}
    from ..sources import load_source, source_name

    try:
        data = load_source(dc.source, where="data.source")
    except (ValueError, OSError, ImportError) as exc:   # before any training: exit 2, one line
        raise ConfigError(f"data.source: {exc}") from None
    want = {"train_gt": dc.n_train, "train_w2s": dc.n_train, "test": dc.n_test}
    ns = {}
    for sp, v in want.items():
        have = len(data[sp])
        if v > have:
            raise ConfigError(f"data.{'n_test' if sp == 'test' else 'n_train'}: {v} rows asked, "
                              f"the source's {sp} split has {have}")
        ns[sp] = v or have
    if hasattr(data["test"], "labels"):
        k = int(max(int(np.max(d.labels)) for d in data.values())) + 1
        if k > 2:
            raise ConfigError(f"data.source: {k} classes; the fine-tuning pipeline trains a scalar "
                              "reward head (two classes, labels 0/1). The real pipeline takes k classes.")
    return data, source_name(dc.source), ns


def _items(data, sp: str, n: int, seed: int):
    """``(texts per slot, labels)`` of the first ``n`` rows: pairs in slot order, or texts."""
    if hasattr(data, "chosen"):
        a, b, lab = _slots(data, seed, n)
        return (list(a), list(b)), np.asarray(lab)
    return (list(data.texts[:n]),), np.asarray(data.labels[:n]).astype(np.int64)


def _weak_features_source(cfg: FinetuneSweepConfig, sp: str, data, items, n: int) -> np.ndarray:
    """The weak head's design on a source split: pair differences in slot order, or features."""
    from ..features import features_for_texts
    from ..sources import feature_tag

    tag = feature_tag(cfg.data.source, sp)
    if hasattr(data, "chosen"):
        x = features_for_texts(cfg.weak.model, list(data.chosen[:n]) + list(data.rejected[:n]),
                               dataset=tag, progress=False)
        return _pair_diff({"chosen": x[:n], "rejected": x[n:]}, items[1])
    return features_for_texts(cfg.weak.model, items[0][0], dataset=tag,
                              progress=False).astype(np.float64)


def weak_finetune_config(cfg: FinetuneSweepConfig):
    """The weak model's fine-tuning run (``[weak] kind = "finetune"``): ``[train]`` with forward
    CE on ``train_gt`` ground truth, the weak seed and lr."""
    w = cfg.weak
    return cfg.train.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(w.seed),
                             head_only=False, checkpoint_every=0,
                             **({"lr": float(w.lr)} if w.lr is not None else {}))


def _weak_finetuned(cfg: FinetuneSweepConfig, items: dict, progress: bool,
                    log: Callable[[str], None]) -> tuple[dict, dict]:
    """``({split: P(label 1)}, record)`` of the weak LM fine-tuned on ``train_gt`` ground truth,
    cached in ``<out>.weak.json`` under a key of the model's digest, the run config and the texts,
    each record sealed with a fingerprint of the model folder's files (``config.json`` and
    tokenizer included) and the code version (`w2s_theory.fingerprint.seal`); a record that
    is older, of other model files or corrupt is recomputed with one `CacheWarning`."""
    from transformers import AutoTokenizer

    from ..data import text_digest
    from ..finetune import (
        TextTask,
        TokenizedTexts,
        build_model,
        load_backbone,
        make_engine,
        predict,
        train,
    )
    from ..hub import resolve_model
    from ..sweep import run_key

    r = resolve_model(cfg.weak.model)
    c = weak_finetune_config(cfg)
    digests = {sp: text_digest([t for slot in items[sp][0] for t in slot]) for sp in items}
    key = run_key({"protocol": PROTOCOL_VERSION, "weak": cfg.weak.model, "digest": r.digest,
                   "cfg": c.to_dict(), "texts": digests,
                   "labels": text_digest([str(v) for v in items["train_gt"][1].tolist()])})
    from ..fingerprint import fingerprint, load_records, model_files_digest, save_records

    fp = fingerprint(_WEAK_CACHE_FORMAT, weak_model=model_files_digest(r.path))
    path = cfg.out_path().with_suffix(".weak.json")
    cached = load_records(path, fp, what="weak-model cache")
    if isinstance(cached.get(key, {}).get("probs"), dict):
        rec = cached[key]
        return {sp: np.asarray(v, dtype=np.float64) for sp, v in rec["probs"].items()}, rec
    tok = AutoTokenizer.from_pretrained(str(r.path))
    tasks = {sp: TextTask(tuple(TokenizedTexts.from_texts(tok, t) for t in items[sp][0]),
                          items[sp][1].astype(np.int8)) for sp in items}
    model = build_model(load_backbone(r.path, dropout=c.dropout), c)
    eng = make_engine(c, use_accelerate=False, cpu=resolve_device(cfg.run.device).type == "cpu")
    gt = tasks["train_gt"]
    st = train(model, gt, gt.labels.astype(np.float64), c, engine=eng, progress=progress)
    probs = {sp: predict(model, tasks[sp], c, engine=eng) for sp in tasks}
    rec = {"probs": {sp: p.tolist() for sp, p in probs.items()}, "model": cfg.weak.model,
           "digest": r.digest, "cfg": c.to_dict(), "train_wall_s": st.wall_s,
           "tokens_per_s": st.tokens_per_s, "device": st.device}
    if getattr(eng, "is_main_process", True):
        save_records(path, {**cached, key: rec}, fp)
    log(f"[finetune] weak model {cfg.weak.model} fine-tuned on {len(gt)} train_gt rows "
        f"({st.wall_s:.1f} s)")
    return probs, rec


def build_bundle(cfg: FinetuneSweepConfig, *, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> Bundle:
    """Load the data, fit the weak supervisor, tokenise for the strong model (CPU, minutes at most).

    The data: the local HH-RLHF layout, or ``[data] source`` (`w2s_theory.sources.load_source`).
    The weak supervisor: a logistic head on the weak model's features (``[weak] kind =
    "features"``), or the weak LM fine-tuned on ``train_gt`` (``kind = "finetune"``).
    """
    from transformers import AutoTokenizer

    from ..data import text_digest
    from ..finetune import TextTask, TokenizedTexts
    from ..metrics import accuracy

    log = log or (lambda *_: None)
    dc = cfg.data
    pairs, subset, ns = _load_splits(cfg)
    ntr, nte = ns["train_w2s"], ns["test"]
    binary = not hasattr(pairs["test"], "chosen")
    items = {sp: _items(pairs[sp], sp, ns[sp], dc.slot_seed + SPLIT_SLOT_OFFSET[sp]) for sp in pairs}
    labels = {sp: items[sp][1] for sp in items}
    t0 = time.perf_counter()
    weak_rec = None
    if cfg.weak.kind == "finetune":
        probs, weak_rec = _weak_finetuned(cfg, items, progress, log)
        l2, cv = None, {}
        weak = {sp: probs[sp] for sp in ("train_w2s", "test")}
        weak_gt = probs["train_gt"]
    else:
        if dc.source is None:
            slots = {sp: (*items[sp][0], items[sp][1]) for sp in items}
            feats = {sp: _weak_features(cfg.weak.model, dc.subset, sp, ns[sp], pairs[sp], dc.root)
                     for sp in pairs}
            diffs = {sp: _pair_diff({k: v[:ns[sp]] for k, v in feats[sp].items()}, slots[sp][2])
                     for sp in pairs}
        else:
            diffs = {sp: _weak_features_source(cfg, sp, pairs[sp], items[sp], ns[sp]) for sp in pairs}
        head, l2, cv = fit_weak_head(diffs["train_gt"], labels["train_gt"], cfg.weak.l2_grid,
                                     cfg.weak.folds, seed=dc.slot_seed, symmetric=not binary)
        weak = {sp: head.predict(diffs[sp]) for sp in ("train_w2s", "test")}
        weak_gt = head.predict(diffs["train_gt"])
    weak_s = time.perf_counter() - t0
    mdir = resolve_model_dir(cfg.strong)
    tok = AutoTokenizer.from_pretrained(str(mdir), local_files_only=True)
    tasks = {}
    need_gt = dc.ceiling_split == "train_gt" or bool(cfg.lr_select.grid)
    for sp in (("train_gt",) if need_gt else ()) + ("train_w2s", "test"):
        tasks[sp] = TextTask(tuple(TokenizedTexts.from_texts(tok, t) for t in items[sp][0]),
                             labels[sp].astype(np.int8))
    meta = {
        "protocol": PROTOCOL_VERSION, "subset": subset, "n_train": ntr, "n_test": nte,
        "slot_seeds": {sp: dc.slot_seed + SPLIT_SLOT_OFFSET[sp] for sp in pairs},
        "weak_model": cfg.weak.model, "weak_l2": l2, "weak_cv_logloss": {str(k): v for k, v in cv.items()},
        "weak_acc_train_gt": accuracy(labels["train_gt"], weak_gt),
        "weak_acc_train_w2s": accuracy(labels["train_w2s"], weak["train_w2s"]),
        "weak_acc_test": accuracy(labels["test"], weak["test"]),
        "weak_fit_s": round(weak_s, 3),
        "strong_model": cfg.strong,
        "sources_sha256": {sp: getattr(pairs[sp], "sha256", None)
                           or text_digest([t for slot in items[sp][0] for t in slot]) for sp in pairs},
        "prefix": list(tasks["test"].inputs[0].prefix), "suffix": list(tasks["test"].inputs[0].suffix),
        "pad_id": tasks["test"].inputs[0].pad_id,
    }
    if dc.ceiling_split != "train_w2s":   # old bundles (and their run keys) carry no such entry
        meta["ceiling_split"] = dc.ceiling_split
    # entries below exist only off the defaults, so the run keys of earlier sweeps stay
    if dc.source is not None:
        meta["source"] = dc.source
        if dc.n_train == 0 and ns["train_gt"] != ns["train_w2s"]:
            meta["n_train_gt"] = ns["train_gt"]
    if weak_rec is not None:
        meta["weak"] = {"kind": "finetune", "digest": weak_rec["digest"], "cfg": weak_rec["cfg"]}
    elif not _is_preset(cfg.weak.model):
        from ..features import feature_spec, resolve_spec

        meta["weak_digest"] = resolve_spec(feature_spec(cfg.weak.model))[2]
    if not _is_preset(cfg.strong):
        from ..hub import resolve_model

        meta["strong_digest"] = resolve_model(cfg.strong).digest
    return Bundle(subset, tasks["train_w2s"], tasks["test"], weak["train_w2s"], weak["test"],
                  mdir, meta, gt=tasks.get("train_gt"))


def resolve_model_dir(name_or_dir: str) -> Path:
    """The local folder of a model spec (preset or its feature set, folder, hub id ``org/name``):
    `w2s_theory.hub.resolve_model`'s ``path``."""
    from ..hub import resolve_model

    return resolve_model(name_or_dir).path


def _task_arrays(prefix: str, task) -> dict:
    out = {f"{prefix}labels": np.asarray(task.labels, dtype=np.int8)}
    for k, t in zip("ab", task.inputs):
        out[f"{prefix}{k}_ids"] = t.ids
        out[f"{prefix}{k}_offsets"] = t.offsets
    return out


def _task_from(z, prefix: str, meta: dict):
    from ..finetune import TextTask, TokenizedTexts

    ins = tuple(TokenizedTexts(z[f"{prefix}{k}_ids"], z[f"{prefix}{k}_offsets"], meta["prefix"],
                               meta["suffix"], meta["pad_id"]) for k in "ab")
    return TextTask(ins, z[f"{prefix}labels"])


def save_bundle(bundle: Bundle, folder: str | os.PathLike) -> Path:
    """Write ``<folder>/<subset>.npz`` (token ids uint16, labels, weak probs) and ``<subset>.json``."""
    from ..atomic_io import atomic_write_bytes, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gt = _task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}
    arrays = {**_task_arrays("train_", bundle.train), **_task_arrays("test_", bundle.test), **gt,
              "weak_train": np.asarray(bundle.weak_train, np.float64),
              "weak_test": np.asarray(bundle.weak_test, np.float64)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / f"{bundle.subset}.npz", buf.getvalue())
    atomic_write_text(folder / f"{bundle.subset}.json", json.dumps(bundle.meta, indent=1, sort_keys=True))
    return folder / f"{bundle.subset}.npz"


def load_bundle(folder: str | os.PathLike, subset: str, model_dir: str | os.PathLike | None = None) -> Bundle:
    """Read a bundle written by `save_bundle` (the strong model from ``model_dir``,
    default ``<folder>/model``)."""
    folder = Path(folder)
    meta = json.loads((folder / f"{subset}.json").read_text())
    with np.load(folder / f"{subset}.npz") as z:
        train, test = _task_from(z, "train_", meta), _task_from(z, "test_", meta)
        gt = _task_from(z, "gt_", meta) if "gt_labels" in z.files else None
        wt, we = z["weak_train"].astype(np.float64), z["weak_test"].astype(np.float64)
    return Bundle(subset, train, test, wt, we, Path(model_dir) if model_dir else folder / "model", meta,
                  gt=gt)


# ============================================================================= lr selection
def select_lr(cfg: FinetuneSweepConfig, bundle: Bundle, path: str | os.PathLike, *,
              progress: bool = True, log: Callable[[str], None] = print,
              engine=None) -> tuple[float, list[dict]]:
    """Choose ``[train] lr`` by `LrSelect` on held-out ``train_gt`` pairs; never test.

    Each candidate's result is kept in ``path`` (JSON, atomic rewrites) under a key of
    the data, the strong model and the run's config, so a killed selection resumes; each
    record is sealed with a fingerprint of the ``train_gt`` arrays, every file of the strong
    model's folder and the code version (`w2s_theory.fingerprint.seal`): a record that is
    older, of other inputs or corrupt is recomputed with one `CacheWarning`.

    Returns:
        ``(lr, records)``: the chosen lr (``[train] lr`` when there is no grid) and one
        record per candidate (``lr``, ``holdout_acc``, ``holdout_logloss``, ``n_fit``,
        ``n_holdout``, cost).
    """
    from ..sweep import run_key

    ls = cfg.lr_select
    if not ls.grid:
        return float(cfg.train.lr), []
    import torch

    from ..finetune import build_model, load_backbone, make_engine, make_targets, predict, train
    from ..metrics import accuracy

    gt = bundle.gt
    if gt is None:
        raise ValueError("lr_select: the bundle has no train_gt pairs (build it with this config)")
    n = len(gt)
    if ls.holdout >= n:
        raise ValueError(f"lr_select.holdout: {ls.holdout} held-out pairs leave none of the {n} "
                         "train_gt pairs to fit on")
    fit, hold = gt.subset(np.arange(n - ls.holdout)), gt.subset(np.arange(n - ls.holdout, n))
    from ..fingerprint import load_records, save_records

    path = Path(path)
    fp = lr_select_fingerprint(bundle)
    done = load_records(path, fp, what="lr-selection cache")
    base = {"protocol": PROTOCOL_VERSION, "strong": cfg.strong, "role": "lr_select",
            "data": {k: bundle.meta.get(k) for k in ("subset", "n_train", "slot_seeds")},
            "holdout": ls.holdout}
    dev = resolve_device(cfg.run.device)
    backbone = None
    records = []
    for lr in ls.grid:
        c = cfg.train.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(ls.seed),
                              lr=float(lr))
        key = run_key({**base, "cfg": c.to_dict()})
        rec = done.get(key)
        if rec is None:
            if backbone is None:
                backbone = load_backbone(bundle.model_dir, dropout=cfg.train.dropout)
            eng = engine or make_engine(c, use_accelerate=False, cpu=dev.type == "cpu")
            model = build_model(backbone, c)
            st = train(model, fit, make_targets(fit.labels.astype(np.float64), c), c, engine=eng,
                       progress=progress)
            p = predict(model, hold, c, engine=eng)
            y = hold.labels.astype(np.float64)
            pc = np.clip(p, 1e-12, 1 - 1e-12)
            rec = {"lr": float(lr), "holdout_acc": accuracy(hold.labels, p),
                   "holdout_logloss": float(-(y * np.log(pc) + (1 - y) * np.log1p(-pc)).mean()),
                   "n_fit": len(fit), "n_holdout": len(hold), "seed": int(ls.seed),
                   "train_wall_s": st.wall_s, "tokens_per_s": st.tokens_per_s,
                   "precision": st.precision, "device": st.device, "machine": machine_name(),
                   "git_commit": git_commit(), "torch_version": torch.__version__}
            done[key] = rec
            save_records(path, done, fp)
            del model
            log(f"lr_select: lr {lr:g}: held-out train_gt acc {rec['holdout_acc']:.4f}, "
                f"log-loss {rec['holdout_logloss']:.4f} ({st.wall_s:.0f} s, "
                f"{st.tokens_per_s:.0f} tok/s)")
        records.append(rec)
    if ls.metric == "accuracy":
        best = max(records, key=lambda r: (r["holdout_acc"], -r["lr"]))
    else:
        best = min(records, key=lambda r: (r["holdout_logloss"], r["lr"]))
    return float(best["lr"]), records


# ============================================================================= runs
@dataclass(frozen=True)
class RunSpec:
    """One run = one result row."""

    regime: str                 # "full" | "head_only"
    role: str                   # "ceiling" | "student"
    cfg: Any                    # FinetuneConfig (loss, noise, confidence, seed, ...)
    key: str

    def coords(self) -> dict:
        c = self.cfg
        return {"regime": self.regime, "role": self.role, "loss": c.loss,
                "confidence": bool(c.confidence), "noise": float(c.noise), "seed": int(c.seed)}


def plan_runs(cfg: FinetuneSweepConfig, bundle_meta: dict) -> list[RunSpec]:
    """All runs of the sweep: ceilings first, then students; each with its stable key.

    The key hashes the protocol, the data (subset, sizes, slot seeds, weak model and
    its L2), the strong model, the run's full `FinetuneConfig` and its role.

    Examples:
        >>> c = FinetuneSweepConfig(name="t", sweep=SweepSpec(noise=(0.0, 0.1), seeds=(0,)))
        >>> runs = plan_runs(c, {"subset": "harmless"})
        >>> len(runs), runs[0].role, runs[-1].role   # (1 ceiling + 8 students) x 2 regimes
        (18, 'ceiling', 'student')
    """
    from ..sweep import run_key

    base = {"protocol": PROTOCOL_VERSION, "strong": cfg.strong,
            "data": {k: bundle_meta.get(k) for k in ("subset", "n_train", "n_test", "slot_seeds",
                                                     "weak_model", "weak_l2")}}
    if bundle_meta.get("ceiling_split", "train_w2s") != "train_w2s":
        base["ceiling_split"] = bundle_meta["ceiling_split"]
    # present only off the defaults (other data, a fine-tuned weak LM, hub / folder models)
    for k in ("source", "n_train_gt", "weak", "weak_digest", "strong_digest"):
        if k in bundle_meta:
            base[k] = bundle_meta[k]
    s = cfg.sweep
    out: list[RunSpec] = []
    # seed by seed (its ceiling, then its students), so that a sweep stopped part-way has
    # complete seeds: a student's row is written once its seed's ceiling exists
    for regime in s.regimes:
        tc = cfg.train if regime == "full" else cfg.head_only_train()
        for seed in s.seeds:
            if s.ceiling:
                c = tc.replace(loss="forward_ce", noise=0.0, confidence=False, seed=int(seed))
                out.append(RunSpec(regime, "ceiling", c,
                                   run_key({**base, "role": "ceiling", "cfg": c.to_dict()})))
            for a in s.noise:
                for loss in s.losses:
                    for conf in s.confidence:
                        c = tc.replace(loss=loss, noise=float(a), confidence=bool(conf), seed=int(seed))
                        out.append(RunSpec(regime, "student", c,
                                           run_key({**base, "role": "student", "cfg": c.to_dict()})))
    return out


class PredStoreWarning(CacheWarning):
    """A prediction store on disk was (partly) unusable: its bad runs are dropped and recomputed."""


#: Version of the prediction store's envelope (fingerprint + per-run checksums).
_PRED_CACHE_FORMAT = 1
#: Versions of the sealed records of ``<out>.weak.json`` and ``<out>.lr_select.json``.
_WEAK_CACHE_FORMAT = 1
_LR_CACHE_FORMAT = 1
#: Bundle meta entries that record cost, not inputs (left out of the fingerprint).
_BUNDLE_TIMINGS = ("weak_fit_s",)


def bundle_fingerprint(bundle: Bundle) -> dict:
    """What every prediction of a sweep is computed from besides its run config (which is in
    its key): the bundle's arrays (token ids, labels, weak probabilities), its meta data
    (data digests, weak model, slot seeds; timings left out), the content of every file of
    the strong model's folder (``config.json``, tokenizer, weights) and the code version
    (`w2s_theory.fingerprint`)."""
    from ..fingerprint import digest, fingerprint, model_files_digest

    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle: must be a Bundle (build_bundle / load_bundle), got "
                        f"{type(bundle).__name__}")
    arrays = {**_task_arrays("train_", bundle.train), **_task_arrays("test_", bundle.test),
              **(_task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}),
              "weak_train": np.asarray(bundle.weak_train, np.float64),
              "weak_test": np.asarray(bundle.weak_test, np.float64)}
    meta = {k: v for k, v in bundle.meta.items() if k not in _BUNDLE_TIMINGS}
    return fingerprint(_PRED_CACHE_FORMAT, data=digest(arrays),
                       meta=digest(json.loads(json.dumps(meta, default=str))),
                       strong_model=model_files_digest(bundle.model_dir))


def lr_select_fingerprint(bundle: Bundle) -> dict:
    """What an lr-selection record is computed from besides its key: the ``train_gt`` arrays
    of the bundle, every file of the strong model's folder and the code version."""
    from ..fingerprint import digest, fingerprint, model_files_digest

    if not isinstance(bundle, Bundle):
        raise TypeError(f"bundle: must be a Bundle (build_bundle / load_bundle), got "
                        f"{type(bundle).__name__}")
    gt = _task_arrays("gt_", bundle.gt) if bundle.gt is not None else {}
    return fingerprint(_LR_CACHE_FORMAT, data=digest(gt),
                       strong_model=model_files_digest(bundle.model_dir))


def _run_checksum(logits: np.ndarray, record: dict) -> str:
    from ..fingerprint import digest

    return digest(np.asarray(logits, dtype=np.float32),
                  json.loads(json.dumps(record, sort_keys=True)))


#: fields of a stored run record that the rows are built from (`rows_from_store`)
_RECORD_FIELDS = ("regime", "role", "seed", "config")


class PredStore:
    """Test logits and run records of finished runs, in one ``.npz`` rewritten atomically.

    ``logits[key]`` is the ``(n_test,)`` float32 array ``z = r(A) - r(B)``;
    ``records[key]`` a dict (run coordinates, config, cost, device).

    The file also holds ``fingerprint`` (what its predictions were computed from:
    `bundle_fingerprint`) and ``checksums`` (sha256 of each run's logits and record).

    The file is validated on read. An unreadable store (not a zip, truncated, a half-written
    member, missing ``keys`` / ``records`` / ``logits``, records that are not JSON, logits
    that do not line up with the keys) is dropped whole, and so is, when ``fingerprint``
    is given, a store without one (an older format) or with another one (other data, other
    model files, another version); a run whose record is missing or incomplete, whose logits
    are not finite, whose checksum does not match, or (with ``n_test``) whose logits do not
    have ``n_test`` entries is dropped alone. Either way a `PredStoreWarning` names the
    file and what was wrong, and the dropped runs are simply not ``has()``: the sweep
    recomputes them, and the next `add` rewrites the file without them.

    Examples:
        >>> import tempfile, pathlib, numpy as np
        >>> s = PredStore(pathlib.Path(tempfile.mkdtemp()) / "p.npz")
        >>> rec = {"regime": "full", "role": "ceiling", "seed": 0, "config": {}}
        >>> s.add({"k": (np.zeros(3), rec)}); PredStore(s.path, n_test=3).records["k"]["role"]
        'ceiling'
    """

    def __init__(self, path: str | os.PathLike, n_test: int | None = None,
                 fingerprint: dict | None = None):
        self.path = Path(path)
        self.n_test = None if n_test is None else int(n_test)
        self.fingerprint = None if fingerprint is None else dict(fingerprint)
        self.logits: dict[str, np.ndarray] = {}
        self.records: dict[str, dict] = {}
        self._envelope: dict = {}
        if self.path.exists():
            self._load()

    def _warn(self, what: str) -> None:
        warnings.warn(f"{self.path}: {what}", PredStoreWarning, stacklevel=4)

    def _read(self) -> tuple[list[str], dict, np.ndarray]:
        """``(keys, records, logits)`` of the file; ``ValueError`` saying why it cannot be used."""
        import zipfile
        import zlib

        try:
            with open(self.path, "rb") as fh:    # our handle: closed on every error too
                z = np.load(fh, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise ValueError("a single array, not an .npz archive")
                with z:
                    arrays = {m: z[m] for m in ("keys", "records", "logits", "fingerprint",
                                                "checksums") if m in z.files}
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError, ValueError) as exc:
            raise ValueError(f"not a readable .npz ({type(exc).__name__}: {exc})") from None
        missing = [m for m in ("keys", "records", "logits") if m not in arrays]
        if missing:
            raise ValueError(f"no {', '.join(map(repr, missing))} in the archive")
        keys, recs, lg = arrays["keys"], arrays["records"], arrays["logits"]
        if keys.ndim != 1 or (keys.size and keys.dtype.kind != "U"):
            raise ValueError(f"'keys' is not a 1-D array of strings (dtype {keys.dtype}, "
                             f"shape {keys.shape})")
        try:
            records = json.loads(str(recs))
        except ValueError as exc:
            raise ValueError(f"'records' is not JSON ({exc})") from None
        if not isinstance(records, dict):
            raise ValueError(f"'records' is a JSON {type(records).__name__}, not an object")
        if lg.dtype.kind != "f" or lg.ndim != 2 or lg.shape[0] != keys.size:
            raise ValueError(f"'logits' (dtype {lg.dtype}, shape {lg.shape}) is not a float "
                             f"array with one row per key ({keys.size} keys)")
        self._envelope = {}
        for m in ("fingerprint", "checksums"):     # absent in stores of older versions
            if m in arrays:
                try:
                    self._envelope[m] = json.loads(str(arrays[m]))
                except ValueError as exc:
                    raise ValueError(f"{m!r} is not JSON ({exc})") from None
        return [str(k) for k in keys], records, lg

    def _load(self) -> None:
        try:
            keys, records, lg = self._read()
        except ValueError as exc:
            self._warn(f"unreadable prediction store, dropped whole: {exc}; every run it held "
                       f"will be recomputed")
            return
        if self.fingerprint is not None:
            from ..fingerprint import mismatch_reason

            why = mismatch_reason(self._envelope.get("fingerprint"), self.fingerprint)
            if why is not None:
                self._warn(f"prediction store not used, dropped whole: {why}; every run it "
                           f"held will be recomputed")
                return
        sums = self._envelope.get("checksums")
        if sums is not None and not isinstance(sums, dict):
            self._warn("prediction store not used, dropped whole: 'checksums' is not a JSON "
                       "object; every run it held will be recomputed")
            return
        if keys and self.n_test is not None and lg.shape[1] != self.n_test:
            self._warn(f"stored logits have {lg.shape[1]} entries per run, the test split has "
                       f"{self.n_test} pairs (another data size?); all {len(keys)} stored runs "
                       f"dropped and will be recomputed")
            return
        bad: dict[str, str] = {}
        for i, k in enumerate(keys):
            rec = records.get(k)
            if not isinstance(rec, dict):
                bad[k] = "no record"
            elif any(f not in rec for f in _RECORD_FIELDS):
                bad[k] = f"record lacks {', '.join(f for f in _RECORD_FIELDS if f not in rec)}"
            elif not np.isfinite(lg[i]).all():
                bad[k] = f"{int((~np.isfinite(lg[i])).sum())} non-finite logits"
            elif sums is not None and sums.get(k) != _run_checksum(lg[i], rec):
                bad[k] = "checksum mismatch (corrupted)"
            else:
                self.logits[k] = lg[i].copy()
                self.records[k] = rec
        if bad:
            shown = "; ".join(f"{k[:12]}: {why}" for k, why in list(bad.items())[:5])
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            self._warn(f"dropped the stored predictions of {len(bad)} of {len(keys)} runs "
                       f"({shown}{more}); they will be recomputed")

    def has(self, key: str) -> bool:
        return key in self.logits

    def add(self, items: dict[str, tuple[np.ndarray, dict]]) -> None:
        """Add ``{key: (logits, record)}`` and rewrite the file atomically."""
        from ..atomic_io import atomic_write_bytes

        for k, (z, rec) in items.items():
            self.logits[k] = np.asarray(z, dtype=np.float32)
            self.records[k] = rec
        keys = list(self.logits)
        sums = {k: _run_checksum(self.logits[k], self.records[k]) for k in keys}
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(keys), records=np.array(json.dumps(self.records, sort_keys=True)),
                 logits=np.stack([self.logits[k] for k in keys]) if keys else np.zeros((0, 0), np.float32),
                 fingerprint=np.array(json.dumps(self.fingerprint, sort_keys=True)),
                 checksums=np.array(json.dumps(sums, sort_keys=True)))
        atomic_write_bytes(self.path, buf.getvalue())


class _InMemory:
    """A prediction store's view for non-main processes: reads the file, never writes it."""

    def __init__(self, inner: PredStore):
        self._inner = inner

    def has(self, key: str) -> bool:
        return self._inner.has(key)

    def add(self, items: dict) -> None:
        for k, (z, rec) in items.items():
            self._inner.logits[k] = np.asarray(z, dtype=np.float32)
            self._inner.records[k] = rec


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, None)
    return np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16))




def _record(spec: RunSpec, extra: dict) -> dict:
    import torch

    return {**spec.coords(), "config": spec.cfg.to_dict(), "torch_version": torch.__version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_name(), "git_commit": git_commit(), **extra}


def _chunks(seq: list, size: int) -> list[list]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def execute(cfg: FinetuneSweepConfig, bundle: Bundle, store: PredStore, *,
            deadline: float | None = None, progress: bool = True,
            log: Callable[[str], None] = print, engine=None,
            on_done: Callable[[], Any] | None = None) -> dict:
    """Train and evaluate every unfinished run of the sweep; logits go into ``store``.

    Full fine-tuning runs are trained by `w2s_theory.ensemble.train_ensemble`
    in groups of ``run.runs_per_group`` (``run.ensemble = true``, one process) or one
    by one by `w2s_theory.finetune.train` (through ``engine``, an accelerate
    ``Accelerator`` when available). Head-only runs share one feature pass of the
    pretrained backbone and train all at once (`w2s_theory.ensemble.StackedHead`)
    or, one by one, on the CPU.
    ``deadline`` (``time.monotonic()``): a group starts only when the groups before
    it say it will end in time; a group cut by the deadline anyway is dropped.

    Returns:
        timing summary ``{"full_s", "head_only_s", "n_done", "n_skipped", "stopped"}``.
    """
    if on_done is None:
        return _execute(cfg, bundle, store, deadline, progress, log, engine)

    class _Reporting:   # the store, calling on_done after every update
        def __init__(self, inner):
            self._inner = inner

        def has(self, key):
            return self._inner.has(key)

        def add(self, items):
            self._inner.add(items)
            on_done()

    return _execute(cfg, bundle, _Reporting(store), deadline, progress, log, engine)


def _execute(cfg, bundle, store, deadline, progress, log, engine) -> dict:
    import torch

    from ..finetune import (
        PlainEngine,
        RewardModel,
        build_model,
        embed_texts,
        load_backbone,
        make_engine,
        make_targets,
        predict,
        train,
    )

    runs = [r for r in plan_runs(cfg, bundle.meta) if not store.has(r.key)]
    summary = {"full_s": 0.0, "head_only_s": 0.0, "n_done": 0, "n_todo": len(runs), "stopped": False}
    if not runs:
        return summary
    dev = resolve_device(cfg.run.device)
    ceil_task = bundle.ceiling_task()

    def targets(spec):
        return ceil_task.labels.astype(np.float64) if spec.role == "ceiling" else bundle.weak_train

    def task_of(spec):
        return ceil_task if spec.role == "ceiling" else bundle.train

    backbone = load_backbone(bundle.model_dir, dropout=cfg.train.dropout)
    n_test = len(bundle.test)

    def past_deadline():
        return deadline is not None and time.monotonic() > deadline

    # ---------------------------------------------------------------- full fine-tuning
    full = [r for r in runs if r.regime == "full"]
    t_full = time.perf_counter()
    nproc = int(getattr(engine, "num_processes", 1)) if engine is not None else 1
    if full and cfg.run.ensemble and nproc == 1:
        # ceilings first (they are needed by every student row), then the rest; a group
        # starts only if the groups so far say it will end before the deadline
        per_run = None
        # one group trains on one split: ceilings on train_gt form groups of their own
        split_by_task = ceil_task is not bundle.train
        chunks = (_chunks([r for r in full if r.role == "ceiling"], cfg.run.runs_per_group)
                  + _chunks([r for r in full if r.role != "ceiling"], cfg.run.runs_per_group)
                  if split_by_task else _chunks(full, cfg.run.runs_per_group))
        for gi, group in enumerate(chunks):
            need = 0.0 if per_run is None else 1.1 * per_run * len(group)
            if deadline is not None and time.monotonic() + need > deadline:
                summary["stopped"] = True
                log(f"deadline: not starting a group of {len(group)} full runs "
                    f"(needs ~{need:.0f} s)")
                break
            t_g = time.perf_counter()
            log(f"full group {gi + 1}/{len(chunks)}: {len(group)} runs "
                f"({sum(r.role == 'ceiling' for r in group)} ceilings)")
            # a started group may overrun the deadline by GROUP_GRACE_S before it is cut
            hard = None if deadline is None else deadline + GROUP_GRACE_S
            res = _train_group(group, bundle, backbone, targets, dev, hard, progress, log,
                               task=task_of(group[0]))
            if res is None:
                summary["stopped"] = True
                break
            store.add(res)
            per_run = (time.perf_counter() - t_g) / len(group)
            summary["n_done"] += len(group)
    elif full:
        for spec in full:
            if past_deadline():
                summary["stopped"] = True
                log("deadline: stop before a full run")
                break
            eng = engine or make_engine(spec.cfg, use_accelerate=cfg.run.use_accelerate,
                                        cpu=dev.type == "cpu")
            model = build_model(backbone, spec.cfg)
            ck = None
            if cfg.run.checkpoint_dir:
                ck = Path(cfg.run.checkpoint_dir) / f"{spec.key}.pt"
            t0 = time.perf_counter()
            st = train(model, task_of(spec), make_targets(targets(spec), spec.cfg), spec.cfg,
                       engine=eng, checkpoint=ck, progress=progress)
            t1 = time.perf_counter()
            p = predict(model, bundle.test, spec.cfg, engine=eng)
            t2 = time.perf_counter()
            if getattr(eng, "is_main_process", True):
                store.add({spec.key: (_logit(p), _record(spec, {
                    "device": st.device, "precision": st.precision, "num_processes": st.num_processes,
                    "train_wall_s": st.wall_s, "eval_wall_s": t2 - t1, "group_size": 1,
                    "group_wall_s": t2 - t0, "train_tokens": st.real_tokens,
                    "train_padded_tokens": st.padded_tokens, "tokens_per_s": st.tokens_per_s,
                    "group_tokens_per_s": st.tokens_per_s, "final_loss": st.losses[-1] if st.losses else None,
                    "resumed_from": st.resumed_from}))})
            if ck is not None and ck.exists() and getattr(eng, "is_main_process", True):
                ck.unlink()
            summary["n_done"] += 1
            log(f"full {spec.role} {spec.cfg.loss} noise={spec.cfg.noise} seed={spec.cfg.seed}: "
                f"{st.wall_s:.1f} s, {st.tokens_per_s:.0f} tok/s")
    summary["full_s"] = time.perf_counter() - t_full

    # ---------------------------------------------------------------- head only
    heads = [r for r in runs if r.regime == "head_only"]
    # head-only runs are cheap (one feature pass + all heads at once): they still run when the
    # deadline stopped the full runs, within the grace period, so both regimes share their seeds
    if heads and not (deadline is not None and time.monotonic() > deadline + GROUP_GRACE_S):
        t_h = time.perf_counter()
        hc = heads[0].cfg
        # one feature pass of the frozen pretrained backbone on the device ...
        feng = make_engine(hc, use_accelerate=False, cpu=dev.type == "cpu")
        base = RewardModel(backbone, seed=0, head_init_std=hc.head_init_std, pooling=hc.pooling)
        t0 = time.perf_counter()
        ftr = tuple(embed_texts(base, t, hc, engine=feng) for t in bundle.train.inputs)
        fte = tuple(embed_texts(base, t, hc, engine=feng) for t in bundle.test.inputs)
        fgt = ftr
        if ceil_task is not bundle.train and any(r.role == "ceiling" for r in heads):
            fgt = tuple(embed_texts(base, t, hc, engine=feng) for t in ceil_task.inputs)

        def feats_of(spec):
            return fgt if spec.role == "ceiling" else ftr
        feat_s = time.perf_counter() - t0
        log(f"head-only: features of {len(bundle.train)} + {n_test} pairs in {feat_s:.1f} s")
        if cfg.run.ensemble:
            # all heads at once (stacked weights), on the device
            from ..ensemble import predict_heads, train_ensemble

            hgroups = (_chunks([r for r in heads if r.role == "ceiling"], 1000)
                       + _chunks([r for r in heads if r.role != "ceiling"], 1000)
                       if fgt is not ftr else _chunks(heads, 1000))
            for group in hgroups:
                model, st = train_ensemble(backbone, task_of(group[0]), [targets(r) for r in group],
                                           [r.cfg for r in group], device=dev, progress=progress,
                                           features=feats_of(group[0]), desc=f"heads x{len(group)}",
                                           log=log)
                probs = predict_heads(model, fte)
                R = len(group)
                store.add({spec.key: (_logit(probs[r]), _record(spec, {
                    "device": st.device, "precision": "no", "num_processes": 1,
                    "train_wall_s": st.wall_s / R, "eval_wall_s": 0.0, "group_size": R,
                    "group_wall_s": st.wall_s, "feature_s": feat_s, "train_tokens": 0,
                    "train_padded_tokens": 0, "tokens_per_s": float("nan"),
                    "group_tokens_per_s": float("nan"), "final_loss": float(st.losses[-1, r]),
                    "resumed_from": 0})) for r, spec in enumerate(group)})
                summary["n_done"] += R
                log(f"{R} head-only runs at once: {st.wall_s:.1f} s on {st.device}")
        else:
            # one by one on the CPU (a 1 x H head per step is launch-bound on a GPU);
            # the runs share the frozen backbone object (no copies)
            heng = PlainEngine("cpu")
            backbone.to("cpu")
            for spec in heads:
                if past_deadline():
                    summary["stopped"] = True
                    break
                m = RewardModel(backbone, seed=spec.cfg.seed, head_init_std=spec.cfg.head_init_std,
                                pooling=spec.cfg.pooling)
                st = train(m, task_of(spec), make_targets(targets(spec), spec.cfg), spec.cfg,
                           engine=heng, progress=False, features=feats_of(spec))
                with torch.no_grad():
                    w = m.head.weight.detach().double().cpu().numpy()[0]
                z = (fte[0].astype(np.float64) - fte[1].astype(np.float64)) @ w
                store.add({spec.key: (z, _record(spec, {
                    "device": st.device, "precision": st.precision, "num_processes": 1,
                    "train_wall_s": st.wall_s, "eval_wall_s": 0.0, "group_size": 1,
                    "group_wall_s": st.wall_s, "feature_s": feat_s, "train_tokens": 0,
                    "train_padded_tokens": 0, "tokens_per_s": float("nan"),
                    "group_tokens_per_s": float("nan"),
                    "final_loss": st.losses[-1] if st.losses else None, "resumed_from": 0}))})
                summary["n_done"] += 1
        summary["head_only_s"] = time.perf_counter() - t_h
    return summary


def _train_group(group: list[RunSpec], bundle: Bundle, backbone, targets, dev, deadline,
                 progress, log, task=None):
    """One ensemble group -> ``{key: (logits, record)}``, or ``None`` if cut by the deadline.

    On CUDA out-of-memory the group is split in halves and retried.
    """
    import torch

    from ..ensemble import predict_ensemble, train_ensemble

    cfgs = [r.cfg for r in group]
    task = bundle.train if task is None else task
    try:
        t0 = time.perf_counter()
        model, st = train_ensemble(backbone, task, [targets(r) for r in group], cfgs,
                                   device=dev, progress=progress, deadline=deadline,
                                   desc=f"full x{len(group)}", log=log)
        if st.stopped_early:
            log(f"deadline: dropped a group of {len(group)} full runs after {st.steps} steps")
            return None
        t1 = time.perf_counter()
        probs = predict_ensemble(model, bundle.test, cfgs[0], device=dev,
                                 batch_size=max(cfgs[0].eval_batch_size, 64))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t2 = time.perf_counter()
        del model
    except torch.cuda.OutOfMemoryError:
        if len(group) == 1:
            raise
        log(f"CUDA out of memory with {len(group)} runs at once: splitting the group")
        torch.cuda.empty_cache()
        half = len(group) // 2
        out = {}
        for g in (group[:half], group[half:]):
            r = _train_group(g, bundle, backbone, targets, dev, deadline, progress, log, task)
            if r is None:
                return out or None
            out.update(r)
        return out
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    log(f"group of {len(group)} full runs: train {st.wall_s:.1f} s ({st.tokens_per_s:.0f} real tok/s "
        f"over all runs, {st.real_tokens / max(st.padded_tokens, 1):.0%} real), eval {t2 - t1:.1f} s "
        f"on {st.device}")
    out = {}
    R = len(group)
    for r, spec in enumerate(group):
        out[spec.key] = (_logit(probs[r]), _record(spec, {
            "device": st.device, "precision": st.precision, "num_processes": 1,
            "train_wall_s": st.wall_s / R, "eval_wall_s": (t2 - t1) / R, "group_size": R,
            "group_wall_s": t2 - t0, "train_tokens": st.real_tokens // R,
            "train_padded_tokens": st.padded_tokens // R, "tokens_per_s": st.tokens_per_s / R,
            "group_tokens_per_s": st.tokens_per_s, "final_loss": float(st.losses[-1, r]),
            "resumed_from": 0}))
    return out


# ============================================================================= rows
def make_row(rec: dict, logits: np.ndarray, truth: np.ndarray, weak_test: np.ndarray,
             ceiling_logits: np.ndarray | None, gamma: float) -> dict:
    r"""The result row of one run from its test logits (metrics and bound checks).

    ``F*`` = the test truth (one-hot labels), ``F_w`` = the weak model's test
    probabilities, ``F_sw`` = ``sigmoid(logits)``; for Lemma 1 and Theorem 2 both
    ``F_w`` and ``F_sw`` are smoothed, ``(1 - 2 gamma) p + gamma``. Theorem 2 is also
    checked with ``F*`` = the same-seed, same-regime strong ceiling (the realizable
    proxy). Columns follow the last-layer sweep (`w2s_theory.sweeps.real`):
    ``student_acc/auroc/ece``, ``weak_*``, ``ceiling_*``, ``pgr``, ``disagree_rate``,
    ``l1_*`` (every stage), ``t2test_{truth,ceil}_{slack,risk_weak,risk_strong,holds}``.
    """
    from scipy.special import expit

    from ..bounds import lemma1, theorem2
    from ..divergences import smooth
    from ..metrics import accuracy, auroc, disagreement_rate, ece, pgr

    y = np.asarray(truth).astype(np.int64)
    yf = y.astype(np.float64)
    ps = expit(np.asarray(logits, dtype=np.float64))
    pw = np.asarray(weak_test, dtype=np.float64)
    acc_s, acc_w = accuracy(y, ps), accuracy(y, pw)
    row = {k: v for k, v in rec.items() if k != "config"}
    c = rec["config"]
    row.update({k: c[k] for k in ("lr", "epochs", "batch_size", "max_length", "truncation_side",
                                  "schedule", "grad_accum", "head_only")})
    row.update({"n_test": int(y.size), "student_acc": acc_s, "student_auroc": auroc(y, ps),
                "student_ece": ece(y, ps), "weak_acc": acc_w, "weak_auroc": auroc(y, pw),
                "weak_ece": ece(y, pw), "disagree_rate": disagreement_rate(ps, pw)})
    fw, fs = smooth(pw, gamma), smooth(ps, gamma)
    l1 = lemma1(yf, fw, fs, gamma)
    row.update({f"l1_{k}": v for k, v in l1.to_dict().items() if k != "n"})
    targets = [("truth", yf)]
    if ceiling_logits is not None:
        pc = expit(np.asarray(ceiling_logits, dtype=np.float64))
        acc_c = accuracy(y, pc)
        row.update({"ceiling_acc": acc_c, "ceiling_auroc": auroc(y, pc), "ceiling_ece": ece(y, pc),
                    "pgr": pgr(acc_s, acc_w, acc_c)})
        targets.append(("ceil", pc))
    else:
        row.update({"ceiling_acc": np.nan, "ceiling_auroc": np.nan, "ceiling_ece": np.nan,
                    "pgr": np.nan})
    for tag, fstar in targets:
        t = theorem2(fstar, fw, fs, tol=0.0)
        row[f"t2test_{tag}_slack"] = t.slack
        row[f"t2test_{tag}_risk_weak"] = t.risk_weak
        row[f"t2test_{tag}_risk_strong"] = t.risk_strong
        row[f"t2test_{tag}_holds"] = t.holds
        row["t2test_d_reverse"] = t.d_reverse
    if ceiling_logits is None:
        for k in ("slack", "risk_weak", "risk_strong", "holds"):
            row[f"t2test_ceil_{k}"] = np.nan
    return row


def rows_from_store(store: PredStore, bundle_meta: dict, truth: np.ndarray, weak_test: np.ndarray,
                    gamma: float, extra: dict | None = None) -> list[dict]:
    """Result rows of every run in ``store`` (ceilings matched by regime and seed)."""
    ceil = {}
    for k, rec in store.records.items():
        if rec["role"] == "ceiling":
            ceil[(rec["regime"], rec["seed"])] = store.logits[k]
    rows = []
    base = {"subset": bundle_meta["subset"], "weak": bundle_meta["weak_model"],
            "strong": bundle_meta["strong_model"], "n_train": bundle_meta["n_train"],
            "weak_l2": bundle_meta["weak_l2"], **(extra or {})}
    csplit = bundle_meta.get("ceiling_split", "train_w2s")
    for k, rec in store.records.items():
        row = {"run_key": k, **base,
               "train_split": csplit if rec["role"] == "ceiling" else "train_w2s"}
        row.update(make_row(rec, store.logits[k], truth, weak_test,
                            ceil.get((rec["regime"], rec["seed"])), gamma))
        rows.append(row)
    return rows


# ============================================================================= plan
def _spec_kind(name: str) -> str:
    """``preset``, ``folder`` or ``hub id`` (+ whether the hub cache holds it); no download."""
    if _is_preset(name):
        from ..features import FEATURE_SETS
        from ..models import REGISTRY, is_installed

        m = FEATURE_SETS[name].model if name in FEATURE_SETS else name
        return f"preset ({'installed' if m in REGISTRY and is_installed(m) else 'not installed'})"
    if Path(name).expanduser().is_dir():
        return "local folder"
    from ..hub import parse_spec

    repo, rev = parse_spec(name)
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, "config.json", revision=rev)
        where = "in the local hub cache" if isinstance(hit, str) else "not in the local hub cache"
    except Exception:  # noqa: BLE001 - only a hint
        where = "hub cache not checked"
    return f"hub id, {where}"


def plan_lines(cfg: FinetuneSweepConfig) -> list[str]:
    """What a sweep would do, without loading a model or the data (``--dry-run``).

    Models (and whether each is a preset, a folder or a hub id in the local cache), data,
    the number of runs per regime and role, and an upper bound on the training tokens
    (every text at ``max_length``; the real count is lower by the texts' length).

    Example:
        >>> lines = plan_lines(FinetuneSweepConfig(name="t", sweep=SweepSpec(seeds=(0,))))
        >>> lines[0], lines[-2].split(":")[0]
        ('t: 10 runs (full 5: 1 ceilings + 4 students; head_only 5: 1 ceilings + 4 students)', 'training tokens')
    """
    from ..data import N_ROWS
    from ..sources import describe_source

    dc, tr = cfg.data, cfg.train
    runs = plan_runs(cfg, {"subset": dc.subset})
    parts = []
    for regime in cfg.sweep.regimes:
        rr = [r for r in runs if r.regime == regime]
        nc = sum(r.role == "ceiling" for r in rr)
        parts.append(f"{regime} {len(rr)}: {nc} ceilings + {len(rr) - nc} students")
    src = dc.source
    sizes = (src or {}).get("sizes") or ([N_ROWS] * 3 if src is None or src["kind"] == "hh_rlhf"
                                         else None)
    n_w2s = dc.n_train or (sizes[1] if sizes else None)
    n_gt = dc.n_train or (sizes[0] if sizes else None)
    n_te = dc.n_test or (sizes[2] if sizes else None)
    data = (describe_source(src) if src is not None else
            f"HH-RLHF local 4K/4K/4K layout, subset {dc.subset} ({dc.root or 'default root'})")
    texts = 1 if tr.task == "binary" else 2
    weak = (f"{cfg.weak.model} [{_spec_kind(cfg.weak.model)}], fine-tuned on train_gt "
            f"(forward CE, seed {cfg.weak.seed}, lr {weak_finetune_config(cfg).lr:g})"
            if cfg.weak.kind == "finetune" else
            f"{cfg.weak.model} [{_spec_kind(cfg.weak.model)}], logistic head on its features")
    lines = [f"{cfg.name}: {len(runs)} runs ({'; '.join(parts)})",
             f"  weak:   {weak}",
             f"  strong: {cfg.strong} [{_spec_kind(cfg.strong)}], pooling {tr.pooling}",
             f"  data:   {data}; rows train_gt {n_gt or 'all'} / train_w2s {n_w2s or 'all'} / "
             f"test {n_te or 'all'}",
             f"  train:  {tr.epochs} epoch(s), batch {tr.batch_size}, lr "
             f"{'chosen from ' + str(list(cfg.lr_select.grid)) if cfg.lr_select.grid else f'{tr.lr:g}'}"
             f", max length {tr.max_length}, precision {tr.precision}; losses "
             f"{', '.join(cfg.sweep.losses)}; noise {', '.join(f'{a:g}' for a in cfg.sweep.noise)}; "
             f"seeds {', '.join(map(str, cfg.sweep.seeds))}"]
    n_full = sum(r.regime == "full" for r in runs)
    if n_w2s and n_gt:
        per = {"train_gt": n_gt, "train_w2s": n_w2s}
        ceil_split = dc.ceiling_split
        tok = sum(tr.epochs * (per[ceil_split] if r.role == "ceiling" else n_w2s) * texts
                  for r in runs if r.regime == "full") * tr.max_length
        if cfg.weak.kind == "finetune":
            tok += tr.epochs * n_gt * texts * tr.max_length
        if cfg.lr_select.grid:
            tok += len(cfg.lr_select.grid) * tr.epochs * max(n_gt - cfg.lr_select.holdout, 0) \
                * texts * tr.max_length
        lines.append(f"training tokens: at most {tok:,} ({tok / 1e6:.0f}M; {n_full} full runs "
                     f"x {tr.epochs} epoch(s) x {n_w2s} rows x {texts} text(s) x {tr.max_length} "
                     "tokens, + the weak model and lr selection; shorter texts take fewer)")
    else:
        lines.append("training tokens: unknown until the data are read (sizes not in the config)")
    lines.append(f"  out:    {cfg.out_path()} (device {cfg.run.device})")
    return lines


def preflight(cfg: FinetuneSweepConfig) -> None:
    """Check, before anything trains, that every model can be had (a preset installed, a folder
    with ``config.json``, a hub id downloadable or in the local hub cache) and that the
    default data folder exists; a `ConfigError` says what to do."""
    from ..config import ConfigError
    from ..features import FEATURE_SETS
    from ..models import REGISTRY, get_info, is_installed

    def check(what: str, name: str) -> None:
        m = FEATURE_SETS[name].model if name in FEATURE_SETS else name
        if m in REGISTRY:
            if not is_installed(m):
                raise ConfigError(f"{what}: model preset {m!r} is not installed: run "
                                  f"`{get_info(m).install}`")
            return
        from ..hub import resolve_model

        try:
            resolve_model(name)
        except ValueError as exc:
            raise ConfigError(f"{what}: {exc}") from None

    check("strong", cfg.strong)
    check("weak.model", cfg.weak.model)
    if cfg.data.source is None:
        from ..data import hh_rlhf_root

        try:
            hh_rlhf_root(cfg.data.root)
        except FileNotFoundError as exc:
            raise ConfigError(f"data.root: {exc}") from None


# ============================================================================= entry point
def run(cfg: FinetuneSweepConfig, *, config_file: str = "", time_limit: float | None = None,
        progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """The fine-tuning pipeline's entry point: weak head, lr selection, every run, the table.

    Builds the data bundle, selects the lr on held-out ``train_gt`` pairs when ``[lr_select]``
    has a grid, trains every planned run (resuming from the prediction store) and writes one
    row per run to ``cfg.out_path()`` after every finished run. Returns ``{"rows", "summary",
    "out", "seconds"}`` (``rows`` is ``None`` on non-main processes of a multi-process launch).
    """
    from ..finetune import make_engine
    from ..sweep import ResultTable

    run_opts = cfg.run
    if run_opts.ensemble and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # launched by accelerate/torchrun on several processes: data-parallel runs one by one
        # (the many-runs-at-once ensemble is a single-device computation)
        run_opts = replace(run_opts, ensemble=False)
        cfg = replace(cfg, run=run_opts)
    engine = None
    if not run_opts.ensemble:
        engine = make_engine(cfg.train, use_accelerate=run_opts.use_accelerate,
                             cpu=resolve_device(run_opts.device).type == "cpu")
    main_proc = getattr(engine, "is_main_process", True)
    log = (log or print) if main_proc else (lambda *_: None)
    out = cfg.out_path()
    t0 = time.perf_counter()
    preflight(cfg)            # models and data reachable, before anything trains (exit 2 if not)
    bundle = build_bundle(cfg, progress=progress, log=log)
    l2 = bundle.meta["weak_l2"]
    how_weak = "fine-tuned" if l2 is None else f"L2 {l2:g}"
    log(f"[finetune] {cfg.name}: {bundle.subset}, weak {bundle.meta['weak_model']} "
        f"({how_weak}, test acc {bundle.meta['weak_acc_test']:.4f}), strong "
        f"{cfg.strong}, {len(bundle.train)} train / {len(bundle.test)} test pairs "
        f"({time.perf_counter() - t0:.1f} s)")
    lr, _ = select_lr(cfg, bundle, out.with_suffix(".lr_select.json"), progress=progress, log=log,
                      engine=engine)
    if cfg.lr_select.grid:
        log(f"[finetune] lr {lr:g} chosen on held-out train_gt pairs ({cfg.lr_select.metric})")
        cfg = replace(cfg, train=cfg.train.replace(lr=lr))
    extra = {"config_file": str(config_file), "sweep": cfg.name, "lr_rule": cfg.lr_select.rule()}
    store = PredStore(out.with_suffix(".preds.npz"), n_test=len(bundle.test),
                      fingerprint=bundle_fingerprint(bundle))
    if not main_proc:     # only the main process writes the prediction store and the table
        store = _InMemory(store)
    deadline = time.monotonic() + time_limit if time_limit else None
    table = ResultTable(out) if main_proc else None

    def write_rows():
        rows = rows_from_store(store, bundle.meta, bundle.test.labels, bundle.weak_test,
                               run_opts.gamma, extra=extra)
        table.extend([r for r in rows if not table.has(r["run_key"])
                      and (r["role"] == "ceiling" or not cfg.sweep.ceiling
                           or np.isfinite(r["ceiling_acc"]))])
        return rows

    # rows are written after every finished run, so a long sweep's table grows as it goes
    try:
        summary = execute(cfg, bundle, store, deadline=deadline, progress=progress, log=log,
                          engine=engine, on_done=write_rows if main_proc else None)
        rows = write_rows() if main_proc else None
        if int(getattr(engine, "num_processes", 1)) > 1:
            engine.wait_for_everyone()      # no rank leaves while the main one still writes
    finally:
        from ..finetune import end_processes

        end_processes(engine)
    return {"rows": rows, "summary": summary, "out": out, "seconds": time.perf_counter() - t0,
            "log": log}
