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

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..config import ConfigError, from_mapping, load_config
from ..models import PresetView
from ..protocol import (
    FitPopulation,
    corrupt_weak_labels,
    result_row,
    standardize_pairs,
    standardize_splits,
)
from ..provenance import git_commit, machine_name
from ..runtime import thread_limit

if TYPE_CHECKING:  # pragma: no cover
    from ..training import TrainConfig

__all__ = ["ConvexConfig", "RealConfig", "Run", "enumerate_runs", "run_sweep", "run", "FeatureBank",
           "derive_seed", "T2MIS_FIELDS", "read_convex_cache",
           "MODEL_NOTES", "PROTOCOL_VERSION", "PROVENANCE_COLUMNS"]

#: Bump when the protocol changes the numbers (part of every run key and cache key).
PROTOCOL_VERSION = 1
#: Versions of the cache envelopes (`w2s_theory.fingerprint`) of the head weights
#: (``teachers.npz`` / ``students.npz``) and of the convex JSON entries.
_HEADS_CACHE_FORMAT = 1
_CONVEX_CACHE_FORMAT = 1

#: What each feature set is, for honest labels in tables and figures (a live view of each
#: preset's ``notes`` in `w2s_theory.models.REGISTRY`).
MODEL_NOTES = PresetView(lambda p: p.notes)

#: Columns that describe where/when a row was computed, not what it found (excluded when
#: checking that the same config and seed give the same row).
PROVENANCE_COLUMNS = ("git_commit", "machine", "device", "torch_version", "train_wall_s",
                      "eval_wall_s", "cvx_wall_s", "cvx_t2mis_wall_s", "created_utc", "config_file")


# ============================================================================= config

def paper_losses() -> tuple[str, ...]:
    """The default student losses: the registry's four losses of the paper (imports torch)."""
    from ..losses import PAPER_LOSSES

    return PAPER_LOSSES


@dataclass(frozen=True)
class ConvexConfig:
    """The convex (affine-probability) head of Theorem 2, fitted alongside each student group.

    Attributes:
        enabled: fit it (exponential-cone programs; about 2 s each at ``pca_dim=32``, n=4000).
        pca_dim: project the strong features on their top principal components of
            ``train_w2s`` (0 = use all features; slow: minutes per fit at n = 4000).
        divergences: subset of ``("reverse_kl", "forward_kl")``.
        seeds: the run seeds that get convex fits (``None``: all). The exact fits cost
            ~20-40 s a group on CPU, the trained heads milliseconds, so a sweep can run 20
            seeds of heads and fit the convex heads on 5 of them. Not part of any run or
            cache key (it chooses which runs get the columns, not their values).
        misspecified: also check Theorem 2 without realizability on every reverse-KL fit
            (`w2s_theory.misspecification.theorem2_misspecified`; one linear program a
            group): the ``cvx_rkl_t2mis_*`` columns. Not part of any key either: rows and
            caches that lack the columns are completed on the next run of the sweep.
    """

    enabled: bool = True
    pca_dim: int = 32
    divergences: tuple[Literal["reverse_kl", "forward_kl"], ...] = ("reverse_kl", "forward_kl")
    seeds: tuple[int, ...] | None = None
    misspecified: bool = True

    def __post_init__(self):
        if not isinstance(self.pca_dim, int) or self.pca_dim < 0:
            raise ValueError(f"convex.pca_dim: must be an integer >= 0, got {self.pca_dim!r}")
        if self.seeds is not None and (
                not isinstance(self.seeds, tuple)
                or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in self.seeds)):
            raise ValueError(f"convex.seeds: need a list of non-negative integers, got "
                             f"{self.seeds!r}")
        if not isinstance(self.misspecified, bool):
            raise ValueError(f"convex.misspecified: must be true or false, got "
                             f"{self.misspecified!r}")
        for d in self.divergences:
            if d not in ("reverse_kl", "forward_kl"):
                raise ValueError(f"convex.divergences: unknown divergence {d!r}")

    def covers(self, seed: int) -> bool:
        """Whether runs of ``seed`` get convex fits."""
        return self.enabled and (self.seeds is None or int(seed) in self.seeds)

    def key_dict(self) -> dict:
        """The fields that change the convex columns' values (run and cache keys)."""
        return {"enabled": self.enabled, "pca_dim": self.pca_dim,
                "divergences": list(self.divergences)}


@dataclass(frozen=True)
class RealConfig:
    """A real-model sweep (loaded from TOML by `from_toml`).

    Attributes:
        name: sweep name (default result file ``experiments/results/real/<name>.csv``).
        datasets: ``"harmless"``, ``"helpful"`` (HH-RLHF) and/or ``"vader"``.
        pairs: ``(weak, strong)`` feature-set names (`w2s_theory.features.FEATURE_SETS`).
        losses: student losses (names of `w2s_theory.losses.loss_names`).
        confidence: confidence-loss settings to run (``[false]``, ``[false, true]``).
        noise: fractions of weak labels flipped, in ``[0, 1]``.
        seeds: run seeds (slot order, data order, noise rows).
        gamma: smoothing floor of every bound check.
        noise_a: corruption ``y -> 1/2 + a (y - 1/2)`` (``-1`` flips).
        n_rows: use only the first ``n_rows`` rows of every split (quick runs, tests).
        train: `w2s_theory.training.TrainConfig`; convex: `ConvexConfig`.
        out: result table (CSV), relative to the project root unless absolute.
        cache: folder of cached head weights and convex results (default
            ``<w2s cache>/real``, see `w2s_theory.data.cache_dir`).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` for head training.
        threads: torch CPU threads while training heads and fitting (0 = torch's default);
            one is fastest for these small per-step kernels on a shared machine.
        feature_threads: torch CPU threads while a model computes features (0 = as many as
            outside the sweep, torch's default): a transformer's forward passes use every core.
        data_root, features_root: HH-RLHF folder and prebuilt features folder (defaults of
            `w2s_theory.data` / `w2s_theory.features`).
        vader_seed: seed of the VADER 4K/4K/4K split (fixed across run seeds).
        splits: data splits to run (the unit of replication of ``experiments/analysis.toml``).
            Split ``0`` is the data set's own split (the published HH-RLHF files; VADER's
            ``vader_seed`` split; a source's own files). Split ``s > 0`` pools the three
            splits of split 0 and deals them out again at random (a permutation seeded by
            ``derive_seed(s, "resplit", dataset)``) with the same sizes; the features are
            the cached ones (a split is an index set), the standardisation is recomputed
            on the new ``train_gt``, and the weak teacher and the ceiling are retrained on
            the new split. Rows then carry a ``split`` column (absent when ``splits = [0]``,
            so the keys and columns of single-split sweeps are unchanged).
        sources: data sets of the user's own, ``{name: source table}`` (TOML
            ``[sources.NAME]``, `w2s_theory.sources.check_source`): ``NAME`` may then be
            listed in ``datasets``. Preference pairs train a Bradley--Terry head, a
            table of two classes a logistic head (as VADER), of ``k > 2`` classes a softmax head. Models in ``pairs`` may be feature
            sets, presets, local folders or hub ids (``org/name[@revision]``).
    """

    name: str
    datasets: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    losses: tuple[str, ...] = field(default_factory=lambda: paper_losses())
    confidence: tuple[bool, ...] = (False,)
    noise: tuple[float, ...] = (0.0,)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    gamma: float = 1e-3
    noise_a: float = -1.0
    n_rows: int | None = None
    train: TrainConfig | None = None
    convex: ConvexConfig = field(default_factory=ConvexConfig)
    out: str | None = None
    cache: str | None = None
    device: str = "cpu"
    threads: int = 1
    feature_threads: int = 0
    data_root: str | None = None
    features_root: str | None = None
    vader_seed: int = 0
    sources: dict = field(default_factory=dict)
    splits: tuple[int, ...] = (0,)

    def __post_init__(self):
        from ..losses import check_loss_name
        from ..training import TrainConfig

        if self.train is None:
            object.__setattr__(self, "train", TrainConfig())
        if not isinstance(self.train, TrainConfig):
            raise ValueError("train: must be a TrainConfig")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        from ..datasets import dataset_spec
        from ..sources import check_source

        if not isinstance(self.sources, dict):
            raise ValueError("sources: a table of [sources.NAME] tables")
        object.__setattr__(self, "sources", {str(k): check_source(v, f"sources.{k}")
                                             for k, v in self.sources.items()})
        for d in self.datasets:
            if d not in self.sources:
                dataset_spec(d)
        if not self.datasets:
            raise ValueError("datasets: need at least one")
        if not self.pairs:
            raise ValueError("pairs: need at least one (weak, strong) pair")
        for p in self.pairs:
            if len(p) != 2 or p[0] == p[1]:
                raise ValueError(f"pairs: each entry must be [weak, strong] of two models, got {p!r}")
        for l in self.losses:
            check_loss_name(l, "losses")
        for name in ("losses", "confidence", "noise"):
            if not getattr(self, name):
                raise ValueError(f"{name}: empty, so this sweep would run nothing")
        for a in self.noise:
            if not (0.0 <= float(a) <= 1.0):
                raise ValueError(f"noise: fractions must lie in [0, 1], got {a!r}")
        if not self.seeds or any((not isinstance(s, int)) or isinstance(s, bool) or s < 0
                                 for s in self.seeds):
            raise ValueError(f"seeds: need non-negative integers, got {self.seeds!r}")
        if not (0.0 < self.gamma <= 0.5):
            raise ValueError(f"gamma: must lie in (0, 1/2], got {self.gamma!r}")
        if not (-1.0 <= self.noise_a <= 1.0):
            raise ValueError(f"noise_a: must lie in [-1, 1], got {self.noise_a!r}")
        if self.n_rows is not None and (not isinstance(self.n_rows, int) or self.n_rows < 16):
            raise ValueError(f"n_rows: must be an integer >= 16 or absent, got {self.n_rows!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads: must be an integer >= 0, got {self.threads!r}")
        if (not isinstance(self.feature_threads, int) or isinstance(self.feature_threads, bool)
                or self.feature_threads < 0):
            raise ValueError(f"feature_threads: must be an integer >= 0, "
                             f"got {self.feature_threads!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device: must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if not isinstance(self.vader_seed, int) or isinstance(self.vader_seed, bool) \
                or self.vader_seed < 0:
            raise ValueError(f"vader_seed: must be an integer >= 0, got {self.vader_seed!r}")
        if (not isinstance(self.splits, tuple) or not self.splits
                or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in self.splits)
                or len(set(self.splits)) != len(self.splits)):
            raise ValueError(f"splits: need distinct non-negative integers (0 = the data set's "
                             f"own split), got {self.splits!r}")

    @property
    def resplit(self) -> bool:
        """Whether the sweep runs any split but the data set's own (rows get a ``split`` column)."""
        return self.splits != (0,)

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, d: dict) -> RealConfig:
        """Build from a plain dict (TOML layout: top-level keys, ``[train]``, ``[convex]``) by
        the fields' types (`w2s_theory.config.from_mapping`); ``confidence`` may be one
        setting instead of a list."""
        from ..training import TrainConfig

        d = dict(d)
        if "confidence" in d and not isinstance(d["confidence"], (list, tuple)):
            d["confidence"] = [d["confidence"]]
        if isinstance(d.get("noise"), list):       # fractions are floats in the run keys
            d["noise"] = [float(x) if isinstance(x, int) and not isinstance(x, bool) else x
                          for x in d["noise"]]
        return from_mapping(cls, d, where="top level", types={"train": TrainConfig | None})

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> RealConfig:
        """Read a TOML config file.

        Examples:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
            >>> _ = p.write_text('name = "x"\\ndatasets = ["harmless"]\\n'
            ...                  'pairs = [["wordllama", "all-MiniLM-L6-v2"]]\\n[train]\\nlr = 0.002\\n')
            >>> c = RealConfig.from_toml(p); c.train.lr, c.seeds
            (0.002, (0, 1, 2, 3, 4))
        """
        return load_config(path, cls.from_dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return json.loads(json.dumps(d))

    def out_path(self) -> Path:
        from ..data import project_root

        p = Path(self.out) if self.out else Path("experiments/results/real") / f"{self.name}.csv"
        return p if p.is_absolute() else project_root() / p

    def cache_path(self) -> Path:
        from ..data import cache_dir

        return Path(self.cache).expanduser() if self.cache else cache_dir() / "real"


# ============================================================================= runs
@dataclass(frozen=True)
class Run:
    """One student head (= one result row)."""

    dataset: str
    weak: str
    strong: str
    seed: int
    noise: float
    loss: str
    confidence: bool
    key: str
    split: int = 0

    @property
    def group(self) -> tuple:
        """Runs sharing weak labels (and hence the convex heads)."""
        return (self.split, self.dataset, self.weak, self.strong, self.seed, self.noise)


def _protocol_dict(cfg: RealConfig) -> dict:
    """Everything besides a run's own coordinates that changes its numbers."""
    return {"protocol": PROTOCOL_VERSION, "gamma": cfg.gamma, "noise_a": cfg.noise_a,
            "n_rows": cfg.n_rows, "train": cfg.train.to_dict(),
            "convex": cfg.convex.key_dict(),
            "vader_seed": cfg.vader_seed}


def enumerate_runs(cfg: RealConfig) -> list[Run]:
    """All runs of a sweep, in a fixed order; each with its stable key.

    Examples:
        >>> c = RealConfig(name="t", datasets=("harmless",), pairs=(("wordllama", "all-MiniLM-L6-v2"),),
        ...                seeds=(0, 1), confidence=(False, True))
        >>> len(enumerate_runs(c))   # 2 seeds x 4 losses x 2 confidence settings
        16
    """
    from ..sweep import run_key

    base = _protocol_dict(cfg)
    out = []
    for split in cfg.splits:
        for ds in cfg.datasets:
            for weak, strong in cfg.pairs:
                for seed in cfg.seeds:
                    for a in cfg.noise:
                        for loss in cfg.losses:
                            for conf in cfg.confidence:
                                coords = {"dataset": ds, "weak": weak, "strong": strong,
                                          "noise": float(a), "loss": loss,
                                          "confidence": bool(conf), **_split_coord(split)}
                                if ds in cfg.sources:      # absent for registry data sets
                                    coords["source"] = cfg.sources[ds]
                                key = run_key({**base, **coords}, seed=int(seed))
                                out.append(Run(ds, weak, strong, int(seed), float(a), loss,
                                               bool(conf), key, int(split)))
    return out


def _split_coord(split: int) -> dict:
    """The split as a key coordinate: absent for split 0, so that the keys of single-split
    sweeps (and of every table made before re-splitting existed) are unchanged."""
    return {"split": int(split)} if split else {}


def derive_seed(seed: int, *tags) -> int:
    """A sub-seed for one use of a run seed (sha256 of the seed and tags, 31 bits).

    Examples:
        >>> derive_seed(0, "weak") == derive_seed(0, "weak") != derive_seed(0, "ceiling")
        True
    """
    blob = json.dumps([int(seed), *map(str, tags)]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little") & 0x7FFFFFFF


# ============================================================================= features
def _pairwise(dataset: str, sources: dict | None = None) -> bool:
    """Whether a data set is a preference-pair task (else binary labelled texts)."""
    if sources and dataset in sources:
        from ..sources import source_task

        return source_task(sources[dataset]) == "pairwise"
    from ..datasets import dataset_spec

    return dataset_spec(dataset).task == "pairwise"


class FeatureBank:
    """Standardised features per (data set, model), and the task's rows per (split, seed).

    ``loader(dataset, model, split)``, when given, replaces
    `w2s_theory.features.load_features` for HH-RLHF (it must return
    ``{"chosen": (n, h), "rejected": (n, h)}`` with rows in file order).

    HH-RLHF: ``D = (h_chosen - h_rejected) / sd`` (``sd`` per coordinate over the
    ``train_gt`` chosen and rejected texts); the row of pair ``i`` with slot sign
    ``s_i = +1`` (A = chosen) or ``-1`` is ``s_i D_i`` and its label ``(s_i + 1) / 2``.
    VADER: ``[(h - mu) / sd, 1]`` (a constant feature = the bias), labels from the data.

    ``split`` (`RealConfig.splits`): ``0`` the data set's own split; ``s > 0`` the rows of
    the three splits pooled and dealt out again by `split_index` (same sizes), before the
    standardisation. ``share`` (another bank) re-uses its raw features: banks of several
    splits then read each feature file once.
    """

    def __init__(self, cfg: RealConfig, progress: bool = True,
                 loader: Callable[[str, str, str], dict] | None = None,
                 feature_threads: int | None = None, split: int = 0,
                 share: FeatureBank | None = None):
        self.cfg = cfg
        self.progress = progress
        self.loader = loader
        # torch threads of the feature pass (None: whatever is in force when base() runs)
        self.feature_threads = cfg.feature_threads or feature_threads
        self.split = int(split)
        self._base: dict = {}
        self._texts: dict = {} if share is None else share._texts
        self._sources: dict = {} if share is None else share._sources
        self._raw: dict = {} if share is None else share._raw

    def _pairwise(self, dataset: str) -> bool:
        return _pairwise(dataset, self.cfg.sources)

    def source_splits(self, dataset: str) -> dict:
        """The three splits of a ``[sources.NAME]`` data set (read once)."""
        if dataset not in self._sources:
            from ..config import ConfigError
            from ..sources import load_source

            try:
                data = load_source(self.cfg.sources[dataset], where=f"sources.{dataset}")
            except (ValueError, OSError, ImportError) as exc:
                raise ConfigError(f"sources.{dataset}: {exc}") from None
            self._sources[dataset] = data
        return self._sources[dataset]

    # -- raw
    def _text_splits(self, dataset: str) -> dict:
        """The three splits of a registry data set of labelled texts (read once)."""
        if dataset not in self._texts:
            from ..data import SPLITS, load_vader
            from ..datasets import dataset_spec

            self._texts[dataset] = load_vader(seed=self.cfg.vader_seed) if dataset == "vader" \
                else {sp: dataset_spec(dataset).load(sp, seed=self.cfg.vader_seed) for sp in SPLITS}
        return self._texts[dataset]

    def n_classes(self, dataset: str) -> int:
        """Classes of a data set's task: 2 for preference pairs, else the largest label + 1."""
        if self._pairwise(dataset):
            return 2
        from ..kclass import count_classes

        src = self.source_splits(dataset) if dataset in self.cfg.sources else self._text_splits(dataset)
        return count_classes(*(np.asarray(d.labels) for d in src.values()))

    def _cut(self, x):
        return x if self.cfg.n_rows is None else x[: self.cfg.n_rows]

    def base(self, dataset: str, model: str) -> dict:
        """``{split: float64 (n, d)}`` standardised base rows (see class doc)."""
        key = (dataset, model)
        if key not in self._base:
            with thread_limit(self.feature_threads):
                self._base[key] = self._compute_base(dataset, model)
        return self._base[key]

    def _raw_features(self, dataset: str, model: str) -> dict:
        """Split 0's raw features in file order, read once per bank family:
        ``{split: (chosen, rejected)}`` for preference pairs, ``{split: h}`` otherwise."""
        from ..data import SPLITS

        key = (dataset, model)
        if key in self._raw:
            return self._raw[key]
        if dataset in self.cfg.sources:
            from ..features import features_for_texts
            from ..sources import feature_tag

            spec = self.cfg.sources[dataset]
            data = self.source_splits(dataset)
            raw = {}
            for sp in SPLITS:
                d = data[sp]
                texts = list(d.chosen) + list(d.rejected) if self._pairwise(dataset) else list(d.texts)
                h = features_for_texts(model, texts, dataset=feature_tag(spec, sp),
                                       progress=self.progress)
                raw[sp] = (h[:len(d)], h[len(d):]) if self._pairwise(dataset) else h
        elif self._pairwise(dataset):
            if self.loader is not None:
                got = {sp: self.loader(dataset, model, sp) for sp in SPLITS}
            else:
                from ..features import load_features

                got = {sp: load_features(model, dataset, sp, root=self.cfg.features_root,
                                         data_root=self.cfg.data_root, progress=self.progress)
                       for sp in SPLITS}
            raw = {sp: (got[sp]["chosen"], got[sp]["rejected"]) for sp in SPLITS}
        else:
            from ..datasets import feature_cache_tag
            from ..features import features_for_texts

            splits = self._text_splits(dataset)
            raw = {sp: features_for_texts(
                       model, splits[sp].texts,
                       dataset=feature_cache_tag(dataset, sp, seed=self.cfg.vader_seed),
                       progress=self.progress) for sp in SPLITS}
        self._raw[key] = raw
        return raw

    def _sizes(self, dataset: str) -> dict:
        """Rows of each split of split 0 (before any ``n_rows`` cut)."""
        from ..data import N_ROWS, SPLITS

        if dataset in self.cfg.sources:
            return {sp: len(self.source_splits(dataset)[sp]) for sp in SPLITS}
        if self._pairwise(dataset):
            got = [raw for (ds, _m), raw in self._raw.items() if ds == dataset]
            return {sp: (len(got[0][sp][0]) if got else N_ROWS) for sp in SPLITS}
        return {sp: len(self._text_splits(dataset)[sp].labels) for sp in SPLITS}

    def split_index(self, dataset: str, sizes: dict | None = None) -> dict | None:
        """``{split: indices into the pool}`` of this bank's split (``None`` for split 0).

        The pool is split 0's ``train_gt``, ``train_w2s`` and ``test`` rows concatenated in
        that order (``sizes``: their row counts; default the data set's); split ``s`` deals a
        seeded permutation of it out with the same sizes.
        """
        if self.split == 0:
            return None
        from ..data import SPLITS

        n = sizes if sizes is not None else self._sizes(dataset)
        perm = np.random.default_rng(derive_seed(self.split, "resplit", dataset)).permutation(
            sum(n.values()))
        out, at = {}, 0
        for sp in SPLITS:
            out[sp] = perm[at:at + n[sp]]
            at += n[sp]
        return out

    def _deal(self, dataset: str, per_split: dict) -> dict:
        """Arrays ``{split: (n_split, ...)}`` of split 0 re-dealt to this bank's split, then cut
        to ``n_rows``."""
        idx = self.split_index(dataset, {sp: len(v) for sp, v in per_split.items()})
        if idx is not None:
            from ..data import SPLITS

            pool = np.concatenate([np.asarray(per_split[sp]) for sp in SPLITS])
            per_split = {sp: pool[idx[sp]] for sp in SPLITS}
        return {sp: self._cut(v) for sp, v in per_split.items()}

    def _compute_base(self, dataset: str, model: str) -> dict:
        from ..data import SPLITS

        raw = self._raw_features(dataset, model)
        if self._pairwise(dataset):
            c = self._deal(dataset, {sp: np.asarray(raw[sp][0], dtype=np.float64) for sp in SPLITS})
            r = self._deal(dataset, {sp: np.asarray(raw[sp][1], dtype=np.float64) for sp in SPLITS})
            return standardize_pairs(c, r, ref="train_gt")
        h = self._deal(dataset, {sp: np.asarray(raw[sp], dtype=np.float64) for sp in SPLITS})
        return standardize_splits(h, ref="train_gt", bias=True)

    def fingerprint(self, dataset: str, model: str) -> str:
        """Content digest of the standardised rows of ``(dataset, model)`` (every split) and,
        for labelled texts, of the labels: what every head and fit on them is computed from
        (features of other model files or other data give another digest). Memoised."""
        from ..fingerprint import digest

        memo = self.__dict__.setdefault("_fingerprints", {})
        key = (dataset, model)
        if key not in memo:
            base = self.base(dataset, model)
            labels = {} if self._pairwise(dataset) else {
                sp: self.labels(dataset, sp, 0) for sp in sorted(base)}
            memo[key] = digest({sp: base[sp] for sp in sorted(base)}, labels)
        return memo[key]

    def signs(self, dataset: str, split: str, seed: int, n: int) -> np.ndarray:
        """Slot signs ``+-1`` of a split for a run seed (all ``+1`` for VADER)."""
        if not self._pairwise(dataset):
            return np.ones(n)
        from ..data import preference_slots

        return preference_slots(n, derive_seed(seed, "slots", dataset, split)).astype(np.float64) * 2 - 1

    def labels(self, dataset: str, split: str, seed: int) -> np.ndarray:
        """Integer labels ``(n,)`` of a split under a run seed."""
        if self._pairwise(dataset):
            n = self._n(dataset, split)
            return ((self.signs(dataset, split, seed, n) + 1) / 2).astype(np.int64)
        from ..data import SPLITS

        src = self.source_splits(dataset) if dataset in self.cfg.sources else self._text_splits(dataset)
        return self._deal(dataset, {sp: np.asarray(src[sp].labels) for sp in SPLITS})[split].astype(np.int64)

    def _n(self, dataset: str, split: str = "test") -> int:
        from ..data import N_ROWS

        if dataset in self.cfg.sources:
            n = len(self.source_splits(dataset)[split])
        else:
            n = N_ROWS if self._pairwise(dataset) else len(self._text_splits(dataset)["test"].labels)
        return n if self.cfg.n_rows is None else min(n, self.cfg.n_rows)

    def rows(self, dataset: str, model: str, split: str, seed: int) -> np.ndarray:
        """The task's rows ``(n, d)`` (float64) for a run seed."""
        b = self.base(dataset, model)[split]
        return b * self.signs(dataset, split, seed, b.shape[0])[:, None]

    def probs(self, dataset: str, model: str, split: str, seed: int, w: np.ndarray) -> np.ndarray:
        """Head probabilities ``sigmoid(rows @ w)`` (``softmax(rows @ W)``, ``(n, k)``, for a
        k-class head's ``(d, k)`` weights) in float64."""
        from ..training import predict_proba

        b = self.base(dataset, model)[split]
        if np.ndim(w) == 2:                     # labelled texts: no slot signs
            return predict_proba(b, w)
        s = self.signs(dataset, split, seed, b.shape[0])
        z = s * (b @ np.asarray(w, dtype=np.float64))
        return predict_proba(z[:, None], np.ones(1))


# ============================================================================= weight cache
def _save_weights(path: Path, weights: dict, meta: dict, fp: dict) -> None:
    """Head weights + ``meta`` in a checksummed ``.npz`` with the fingerprint ``fp``."""
    from ..fingerprint import save_npz

    keys = sorted(weights)
    save_npz(path, {"keys": np.array(keys), "meta": np.array(json.dumps(meta)),
                    **{f"w{i}": np.asarray(weights[k], dtype=np.float64)
                       for i, k in enumerate(keys)}}, fp)


def _load_weights(path: Path, fp: dict, what: str) -> tuple[dict, dict]:
    """``(weights, meta)`` of a verified weight cache; ``({}, {})`` when it is missing, or (with
    one `w2s_theory.fingerprint.CacheWarning`) unreadable, older, computed from other
    inputs than ``fp`` or corrupt."""
    from ..fingerprint import CacheWarning, load_npz

    z = load_npz(path, fp, what=what, stacklevel=3)
    if z is None:
        return {}, {}
    try:
        keys = [str(k) for k in z["keys"]]
        meta = json.loads(str(z["meta"]))
        return {k: z[f"w{i}"].copy() for i, k in enumerate(keys)}, meta
    except (KeyError, ValueError) as exc:
        import warnings

        warnings.warn(f"{what} {path}: malformed ({type(exc).__name__}: {exc}); recomputing",
                      CacheWarning, stacklevel=3)
        return {}, {}


def _heads_fingerprint(cfg: RealConfig, bank: FeatureBank, pairs, teachers: dict | None = None) -> dict:
    """What cached head weights are computed from: the protocol (training config included),
    the content of the features of each ``(dataset, model)`` in ``pairs`` and, for students,
    the teachers' weights."""
    from ..fingerprint import digest, fingerprint

    parts = {"protocol": digest(_protocol_dict(cfg)),
             "features": digest({f"{ds}|{m}": bank.fingerprint(ds, m) for ds, m in sorted(set(pairs))})}
    if teachers is not None:
        parts["teachers"] = digest({"|".join(map(str, k)): w for k, w in teachers.items()})
    return fingerprint(_HEADS_CACHE_FORMAT, **parts)


def _head_key(cfg: RealConfig, seed: int, **coords) -> str:
    from ..sweep import run_key

    return run_key({**_protocol_dict(cfg), **coords}, seed=int(seed))


# ============================================================================= phases
def _teacher_specs(cfg: RealConfig, runs: list[Run]) -> list[tuple]:
    """Unique weak and ceiling heads of the runs: ``[(key, role, dataset, model, seed)]``."""
    seen, out = set(), []
    for r in runs:
        for role, model in (("weak", r.weak), ("ceiling", r.strong)):
            t = (role, r.dataset, model, r.seed)
            if (r.split, t) not in seen:
                seen.add((r.split, t))
                out.append((_head_key(cfg, r.seed, role=role, dataset=r.dataset, model=model,
                                      **_split_coord(r.split)), *t))
    return out


def train_teachers(cfg: RealConfig, runs: list[Run], bank: FeatureBank, cache: Path,
                   progress: bool = True) -> tuple[dict, dict]:
    """Weak heads (on ``train_gt``) and ceilings (on ``train_w2s``), one batched computation.

    Returns ``({(role, dataset, model, seed): weights}, meta)``.
    """
    from ..kclass import truth
    from ..training import HeadSpec, train_head_sets

    todo = _teacher_specs(cfg, runs)
    path = cache / "teachers.npz"
    fp = _heads_fingerprint(cfg, bank, [(ds, model) for _k, _r, ds, model, _s in todo])
    stored, meta = _load_weights(path, fp, "teacher cache")
    if all(k in stored for k, *_ in todo):
        return {tuple(t): stored[k] for k, *t in todo}, meta
    groups, specs, targets, gindex = [], [], [], {}
    for _k, role, ds, model, seed in todo:
        split = "train_gt" if role == "weak" else "train_w2s"
        gk = (ds, model, split, seed)
        if gk not in gindex:
            gindex[gk] = len(groups)
            groups.append(bank.rows(ds, model, split, seed))
        specs.append(HeadSpec("forward_ce", False, derive_seed(seed, role, ds, model), gindex[gk]))
        targets.append(truth(bank.labels(ds, split, seed), bank.n_classes(ds)))
    res = train_head_sets(groups, targets, specs, cfg.train, device=cfg.device,
                          progress=progress, num_threads=cfg.threads or None)
    meta = {"wall_s": res.wall_s, "n_heads": len(specs), "device": res.device}
    weights = {k: w for (k, *_), w in zip(todo, res.weights)}
    _save_weights(path, {**stored, **weights}, meta, fp)
    return {tuple(t): w for (k, *t), w in zip(todo, res.weights)}, meta


def weak_labels(cfg: RealConfig, bank: FeatureBank, teachers: dict, dataset: str, weak: str,
                seed: int, noise: float) -> np.ndarray:
    """The weak model's soft labels on ``train_w2s``, with a fraction ``noise`` corrupted
    (`w2s_theory.noise.corrupt_labels`: k-class rows are flipped to another class)."""
    w = teachers[("weak", dataset, weak, seed)]
    p = bank.probs(dataset, weak, "train_w2s", seed, w)
    if p.ndim == 2 and noise != 0.0 and cfg.noise_a != -1.0:
        raise ConfigError(f"noise_a: {dataset} has {p.shape[1]} classes, whose weak labels take "
                          f"only symmetric flips (noise_a = -1), got {cfg.noise_a!r}")
    return corrupt_weak_labels(p, noise, noise_a=cfg.noise_a,
                               rng=derive_seed(seed, "noise", dataset, weak, noise))


def train_students(cfg: RealConfig, runs: list[Run], bank: FeatureBank, teachers: dict,
                   cache: Path, progress: bool = True) -> tuple[dict, dict]:
    """Every student of the sweep in one batched computation; ``({run.key: weights}, meta)``."""
    from ..training import HeadSpec, train_head_sets

    path = cache / "students.npz"
    fp = _heads_fingerprint(cfg, bank, [(r.dataset, m) for r in runs for m in (r.weak, r.strong)],
                            teachers)
    stored, meta = _load_weights(path, fp, "student cache")
    if all(r.key in stored for r in runs):
        return {r.key: stored[r.key] for r in runs}, meta
    groups, gindex, specs, targets, tcache = [], {}, [], [], {}
    for r in runs:
        gk = (r.dataset, r.strong, r.seed)
        if gk not in gindex:
            gindex[gk] = len(groups)
            groups.append(bank.rows(r.dataset, r.strong, "train_w2s", r.seed))
        tk = (r.dataset, r.weak, r.seed, r.noise)
        if tk not in tcache:
            tcache[tk] = weak_labels(cfg, bank, teachers, *tk)
        specs.append(HeadSpec(r.loss, r.confidence, derive_seed(r.seed, "student", r.dataset),
                              gindex[gk]))
        targets.append(tcache[tk])
    res = train_head_sets(groups, targets, specs, cfg.train, device=cfg.device,
                          progress=progress, num_threads=cfg.threads or None)
    meta = {"wall_s": res.wall_s, "n_heads": len(specs), "device": res.device}
    weights = {r.key: w for r, w in zip(runs, res.weights)}
    _save_weights(path, weights, meta, fp)
    return weights, meta


# ============================================================================= evaluation
def _pca_basis(x: np.ndarray, r: int) -> np.ndarray:
    """Top-``r`` right singular vectors of the centred rows, ``(d, r)``; signs fixed so that
    the largest-magnitude entry of each vector is positive."""
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    v = vt[:r].T.copy()
    i = np.abs(v).argmax(axis=0)
    v *= np.sign(v[i, np.arange(v.shape[1])])
    return v


def into_box(p: np.ndarray, gamma: float) -> tuple[np.ndarray, float]:
    r"""Mix binary affine probabilities with the constant 1/2 just enough that all lie in
    ``[gamma, 1 - gamma]``; returns ``(mixed, violation)``. k-class rows ``(n, k)`` are mixed
    with the uniform ``1/k`` the same way (``m`` = the smallest coordinate).

    ``(1 - lam) p + lam / 2`` with ``lam = (gamma - m) / (1/2 - m)``, ``m = min(p, 1 - p)``,
    is again affine in the features, so it is a member of the mixture-convex class of
    Theorem 2 even when the solver's ``p`` leaves the box by its feasibility tolerance
    (``violation = max(gamma - m, 0)``, typically ~1e-11). Theorem 2 holds for every member.

    Examples:
        >>> q, v = into_box(np.array([0.0999, 0.5, 0.9]), 0.1)
        >>> q.round(6).tolist(), round(v, 6)
        ([0.1, 0.5, 0.8999], 0.0001)
        >>> q, v = into_box(np.array([[0.05, 0.15, 0.8], [0.3, 0.3, 0.4]]), 0.1)
        >>> q.round(6).tolist(), round(v, 6)
        ([[0.1, 0.182353, 0.717647], [0.305882, 0.305882, 0.388235]], 0.05)
    """
    if p.ndim == 2:
        m, k = float(p.min()), p.shape[1]
        if m >= gamma:
            return p, 0.0
        lam = (gamma - m) / (1.0 / k - m)
        return (1.0 - lam) * p + lam / k, gamma - m
    m = float(min(p.min(), 1.0 - p.max()))
    if m >= gamma:
        return p, 0.0
    lam = (gamma - m) / (0.5 - m)
    return (1.0 - lam) * p + 0.5 * lam, gamma - m


#: Columns of `theorem2_misspecified` stored per reverse-KL convex fit (prefix
#: ``cvx_rkl_t2mis_``).
T2MIS_FIELDS = ("epsilon", "guaranteed_gain", "slack", "holds", "gain_positive", "tol", "gain",
                "d_reverse", "tv_to_class", "max_log_ratio", "realizable_slack", "csiszar_term",
                "holder_term", "eps_status", "eps_duality_gap")


def _convex_inputs(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run) -> dict:
    """The arrays of a run group's convex fits (PCA-projected strong features, labels)."""
    from ..divergences import smooth

    g = cfg.gamma
    xs = bank.rows(run.dataset, run.strong, "train_w2s", run.seed)
    xt = bank.rows(run.dataset, run.strong, "test", run.seed)
    from ..kclass import truth

    r = cfg.convex.pca_dim
    if r and r < xs.shape[1]:
        v = _pca_basis(xs, r)
        xs, xt = xs @ v, xt @ v
    k = bank.n_classes(run.dataset)
    return {
        "xs": xs, "xt": xt,
        "y_fit": truth(bank.labels(run.dataset, "train_w2s", run.seed), k),
        "y_test": truth(bank.labels(run.dataset, "test", run.seed), k),
        "yw": smooth(weak_labels(cfg, bank, teachers, run.dataset, run.weak, run.seed,
                                 run.noise), g),
        "pw_test": smooth(bank.probs(run.dataset, run.weak, "test", run.seed,
                                     teachers[("weak", run.dataset, run.weak, run.seed)]), g),
    }


def _misspecified_columns(a: dict, head, gamma: float) -> dict:
    """``cvx_rkl_t2mis_*``: Theorem 2 without realizability on the fit population, against
    the real (one-hot) labels; an LP failure is recorded in ``cvx_rkl_t2mis_eps_status``."""
    from ..misspecification import theorem2_misspecified

    try:
        r = theorem2_misspecified(a["y_fit"], a["yw"], head.probs, a["xs"], gamma, head=head)
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        return {"cvx_rkl_t2mis_eps_status": f"error: {type(exc).__name__}: {exc}"[:200]}
    d = r.to_dict()
    return {f"cvx_rkl_t2mis_{k}": d[k] for k in T2MIS_FIELDS}


def _expected_convex_columns(cfg: RealConfig) -> tuple[list[str], list[str]]:
    """(numeric columns a complete convex cache entry must hold, status columns)."""
    num, status = ["cvx_dim"], ["cvx_ceiling_status"]
    for div in cfg.convex.divergences:
        tag = "cvx_rkl" if div == "reverse_kl" else "cvx_fkl"
        status.append(f"{tag}_status")
        num += [f"{tag}_{c}" for c in ("acc", "d_reverse_fit", "t2fit_truth_slack",
                                       "t2test_truth_slack", "l1test_gap")]
    return num, status


def read_convex_cache(path: Path, cfg: RealConfig, fp: dict | None = None) -> dict | None:
    """A convex cache entry, verified; ``None`` (with one warning naming the file and the
    defect) when it has no fingerprint (an older format), was computed from other inputs than
    ``fp`` (when given), fails its content checksum, is missing a column, holds a non-finite
    number or does not parse -- the caller then refits, so such an entry is never used.

    The entry is a JSON object of the columns plus ``"__cache__": {"fingerprint", "checksum"}``
    (`w2s_theory.fingerprint.seal`); the columns are returned without it."""
    import math
    import warnings

    from ..fingerprint import CacheWarning, unseal

    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path}: unreadable convex cache entry ({exc}); refitting", CacheWarning,
                      stacklevel=2)
        return None
    num, status = _expected_convex_columns(cfg)
    problem = None
    if not isinstance(d, dict):
        problem = f"expected a JSON object, got {type(d).__name__}"
    else:
        d, problem = unseal(d, fp)
    if problem is None:
        for c in status:
            if not isinstance(d.get(c), str):
                problem = f"missing or non-text {c!r}"
                break
        else:
            failed = {c.split("_status")[0] for c in status if d[c].startswith("error")}
            for c in num:
                if any(c.startswith(f"{t}_") for t in failed):
                    continue
                v = d.get(c)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    problem = f"column {c!r} is {v!r}, not a finite number"
                    break
    if problem is not None:
        warnings.warn(f"{path}: convex cache entry not used ({problem}); refitting", CacheWarning,
                      stacklevel=2)
        return None
    return d


def _write_convex_cache(path: Path, cols: dict, fp: dict) -> None:
    """Write the convex columns with their fingerprint and checksum (atomic)."""
    from ..atomic_io import atomic_write_text
    from ..fingerprint import seal

    atomic_write_text(path, json.dumps(seal(cols, fp), sort_keys=True))


def _convex_fingerprint(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run,
                        key: str) -> dict:
    """What a run group's convex fits are computed from: its key (protocol, coordinates),
    the content of the weak and strong features and the weak teacher's weights."""
    from ..fingerprint import digest, fingerprint

    return fingerprint(_CONVEX_CACHE_FORMAT, key=key,
                       strong=bank.fingerprint(run.dataset, run.strong),
                       weak=bank.fingerprint(run.dataset, run.weak),
                       teacher=digest(teachers[("weak", run.dataset, run.weak, run.seed)]))


def convex_results(cfg: RealConfig, bank: FeatureBank, teachers: dict, run: Run,
                   cache: Path) -> dict:
    """Convex-head columns for a run's group, cached as ``<cache>/<key>.json`` (the key holds
    everything that changes them, so sweeps share the cache).

    Fits, on the strong features of ``train_w2s`` (PCA-projected), the convex ceiling (forward
    KL to the ground truth; made a member of the class by `into_box`) and the convex
    students (reverse / forward KL to the smoothed weak labels); Theorem 2 on the fitting
    population with ``F* =`` the ceiling, tolerance from the solver
    (`w2s_theory.heads.ConvexHead.theorem2_tolerance`), and, for the reverse-KL fit,
    Theorem 2 without realizability against the real labels (``cvx_rkl_t2mis_*``,
    `T2MIS_FIELDS`; ``cfg.convex.misspecified``). A solver failure is recorded in the
    ``*_status`` column and leaves that head's columns empty. A cache entry is validated on
    read (`read_convex_cache`); one made before the misspecified columns existed is
    completed (the reverse-KL fit redone, the rest kept).
    """
    from ..bounds import lemma1, theorem2
    from ..heads import fit_convex_head
    from ..kclass import auroc_any
    from ..metrics import accuracy

    extra = {"source": cfg.sources[run.dataset]} if run.dataset in cfg.sources else {}
    key = _head_key(cfg, run.seed, role="convex", dataset=run.dataset, weak=run.weak,
                    strong=run.strong, noise=run.noise, **_split_coord(run.split), **extra)
    path = cache / f"{key}.json"
    g = cfg.gamma
    want_mis = cfg.convex.misspecified and "reverse_kl" in cfg.convex.divergences
    fp = _convex_fingerprint(cfg, bank, teachers, run, key)
    cached = read_convex_cache(path, cfg, fp)
    if cached is not None:
        if (not want_mis or "cvx_rkl_t2mis_eps_status" in cached
                or cached["cvx_rkl_status"].startswith("error")):
            return cached
        a = _convex_inputs(cfg, bank, teachers, run)            # complete an older entry
        t0 = time.perf_counter()
        h = fit_convex_head(a["xs"], a["yw"], divergence="reverse_kl", gamma=g)
        cached.update(_misspecified_columns(a, h, g))
        cached["cvx_t2mis_wall_s"] = time.perf_counter() - t0
        cached = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in cached.items()}
        _write_convex_cache(path, cached, fp)
        return cached
    a = _convex_inputs(cfg, bank, teachers, run)
    xs, xt, y_fit, y_test, yw, pw_test = (a[k] for k in ("xs", "xt", "y_fit", "y_test", "yw",
                                                         "pw_test"))
    lab_test = bank.labels(run.dataset, "test", run.seed)
    t0 = time.perf_counter()
    out = {"cvx_dim": int(xs.shape[1])}
    try:
        try:
            ceil = fit_convex_head(xs, y_fit, divergence="forward_kl", gamma=g)
            how = ""
        except Exception:  # noqa: BLE001 - Clarabel occasionally fails on one-hot targets:
            # F* only has to be *a member* of the class; fit the smoothed truth instead.
            from ..divergences import smooth

            ceil = fit_convex_head(xs, smooth(y_fit, g), divergence="forward_kl", gamma=g)
            how = " (fitted to the smoothed truth)"
        ref, viol = into_box(ceil.probs, g)
        ceil_test = ceil.predict(xt)
        out.update({"cvx_ceiling_status": ceil.report.status + how, "cvx_ceiling_violation": viol,
                    "cvx_ceiling_acc": accuracy(lab_test, ceil_test)})
    except Exception as exc:  # noqa: BLE001 - a solver failure is recorded, not fatal
        ceil = ref = ceil_test = None
        out["cvx_ceiling_status"] = f"error: {type(exc).__name__}: {exc}"[:200]
    for div in cfg.convex.divergences:
        tag = "cvx_rkl" if div == "reverse_kl" else "cvx_fkl"
        try:
            h = fit_convex_head(xs, yw, divergence=div, gamma=g)
        except Exception as exc:  # noqa: BLE001
            out[f"{tag}_status"] = f"error: {type(exc).__name__}: {exc}"[:200]
            continue
        ph = h.predict(xt)
        t_fit_t = theorem2(y_fit, yw, h.probs)
        t_test_t = theorem2(y_test, pw_test, ph)
        l1 = lemma1(y_test, pw_test, ph, g)
        out.update({
            f"{tag}_status": h.report.status,
            f"{tag}_duality_gap": h.report.duality_gap,
            f"{tag}_acc": accuracy(lab_test, ph),
            f"{tag}_auroc": auroc_any(lab_test, ph),
            f"{tag}_d_reverse_fit": t_fit_t.d_reverse,
            f"{tag}_t2fit_truth_slack": t_fit_t.slack,
            f"{tag}_t2test_truth_slack": t_test_t.slack,
            f"{tag}_l1test_gap": l1.gap,
            f"{tag}_l1test_holds": l1.holds,
            f"{tag}_test_outside": h.fraction_outside(xt),
        })
        if ceil is not None:
            tol = h.theorem2_tolerance(ref)
            t_fit_c = theorem2(ref, yw, h.probs, tol=tol)
            out.update({
                f"{tag}_t2fit_ceil_slack": t_fit_c.slack,
                f"{tag}_t2fit_ceil_tol": tol,
                f"{tag}_t2fit_ceil_holds": t_fit_c.holds,
                f"{tag}_t2test_ceil_slack": theorem2(ceil_test, pw_test, ph).slack,
            })
        if tag == "cvx_rkl" and want_mis:
            out.update(_misspecified_columns(a, h, g))
    out["cvx_wall_s"] = time.perf_counter() - t0
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in out.items()}
    _write_convex_cache(path, out, fp)
    return out


def evaluate_run(cfg: RealConfig, bank: FeatureBank, teachers: dict, students: dict,
                 run: Run) -> dict:
    """The result columns of one student run (`w2s_theory.protocol.result_row`: metrics and
    bound checks on the test split and the fitting population; no provenance)."""
    ds, sd = run.dataset, run.seed
    wc = teachers[("ceiling", ds, run.strong, sd)]
    ws = students[run.key]
    fit = FitPopulation(labels=bank.labels(ds, "train_w2s", sd),
                        weak_labels=weak_labels(cfg, bank, teachers, ds, run.weak, sd, run.noise),
                        student=bank.probs(ds, run.strong, "train_w2s", sd, ws),
                        ceiling=bank.probs(ds, run.strong, "train_w2s", sd, wc))
    return result_row(bank.labels(ds, "test", sd),
                      bank.probs(ds, run.weak, "test", sd, teachers[("weak", ds, run.weak, sd)]),
                      bank.probs(ds, run.strong, "test", sd, ws),
                      bank.probs(ds, run.strong, "test", sd, wc),
                      gamma=cfg.gamma, n_classes=bank.n_classes(ds), fit=fit)


# ============================================================================= provenance


# ============================================================================= sweep
def run_sweep(cfg: RealConfig, *, out: str | os.PathLike | None = None, progress: bool = True,
              config_file: str = "", after_row: Callable[[dict], None] | None = None,
              bank: FeatureBank | None = None):
    """Run (or resume) a sweep; returns the result table as a DataFrame.

    Rows already in the table are skipped; trained weights are cached under
    ``cfg.cache_path()/<name>-<hash>``; each finished row is appended atomically,
    then ``after_row(row)`` is called (tests use it to interrupt a sweep). ``bank``
    replaces the default `FeatureBank` (e.g. with features computed live).
    """
    import torch

    outside = torch.get_num_threads()     # the feature pass gets these back (feature_threads = 0)
    with thread_limit(cfg.threads or None, blas=True):   # 0: torch's default
        return _run_sweep(cfg, out, progress, config_file, after_row, bank, outside)


def _run_sweep(cfg, out, progress, config_file, after_row, bank, outside_threads=None):
    import torch

    from ..sweep import ResultTable, run_key

    path = Path(out) if out is not None else cfg.out_path()
    table = ResultTable(path)
    runs = enumerate_runs(cfg)
    pending = [r for r in runs if not table.has(r.key)]
    incomplete = _incomplete_convex_rows(cfg, runs, table)
    if not pending and not incomplete:
        return table.frame()
    sweep_hash = run_key({"runs": [r.key for r in runs]})
    cache0 = cfg.cache_path() / f"{cfg.name}-{sweep_hash}"
    commit, machine = git_commit(), machine_name()
    first = bank
    for split in cfg.splits:                      # one split at a time: its own teachers
        s_pending = [r for r in pending if r.split == split]
        s_incomplete = [(r, row) for r, row in incomplete if r.split == split]
        if not s_pending and not s_incomplete:
            continue
        s_runs = [r for r in runs if r.split == split]
        cache = cache0 if split == 0 else cache0 / f"split-{split}"
        cache.mkdir(parents=True, exist_ok=True)
        if split == 0 and bank is not None:
            s_bank = bank
        else:
            s_bank = FeatureBank(cfg, progress=progress, feature_threads=outside_threads,
                                 split=split, share=first,
                                 loader=None if first is None else first.loader)
        first = first or s_bank
        _run_split(cfg, s_runs, s_pending, s_incomplete, s_bank, cache, table, progress,
                   config_file, after_row, commit, machine, torch.__version__)
    return table.frame()


def _run_split(cfg, runs, pending, incomplete, bank, cache, table, progress, config_file,
               after_row, commit, machine, torch_version) -> None:
    """Teachers, students and rows of the runs of one data split."""
    teachers, tmeta = train_teachers(cfg, runs, bank, cache, progress)
    students, smeta = train_students(cfg, runs, bank, teachers, cache, progress)
    if incomplete:
        _complete_convex_rows(cfg, bank, teachers, incomplete, table, progress, after_row)
    it: Iterable = pending
    if progress:
        from tqdm.auto import tqdm

        desc = f"{cfg.name}: evaluating" + (f" (split {bank.split})" if cfg.resplit else "")
        it = tqdm(pending, desc=desc, unit="run")
    for run in it:
        t0 = time.perf_counter()
        row = {"run_key": run.key, "sweep": cfg.name, "dataset": run.dataset, "weak": run.weak,
               "strong": run.strong, "strong_note": MODEL_NOTES.get(run.strong, ""),
               "loss": run.loss, "confidence": run.confidence, "noise": run.noise,
               "seed": run.seed, "gamma": cfg.gamma, "lr": cfg.train.lr,
               "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size,
               "train_dtype": cfg.train.dtype, "protocol": PROTOCOL_VERSION}
        if cfg.resplit:
            row["split"] = run.split
        row.update(evaluate_run(cfg, bank, teachers, students, run))
        if cfg.convex.covers(run.seed):
            row.update(convex_results(cfg, bank, teachers, run, cfg.cache_path() / "convex"))
        row.update({
            "train_heads": smeta.get("n_heads"), "train_wall_s": smeta.get("wall_s"),
            "eval_wall_s": time.perf_counter() - t0, "device": smeta.get("device"),
            "machine": machine, "git_commit": commit, "torch_version": torch_version,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "config_file": config_file,
        })
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        table.append(row)
        if after_row is not None:
            after_row(row)


def _incomplete_convex_rows(cfg: RealConfig, runs: list[Run], table) -> list[tuple[Run, dict]]:
    """Finished rows that lack convex columns their config asks for: ``[(run, row)]``. A row
    of a covered seed without any convex fit (made while ``convex.seeds`` left it out), or
    without the misspecified Theorem 2 columns (made before they existed)."""
    if not cfg.convex.enabled:
        return []
    want_mis = cfg.convex.misspecified and "reverse_kl" in cfg.convex.divergences
    by_key = {r.key: r for r in runs if cfg.convex.covers(r.seed) and table.has(r.key)}
    if not by_key:
        return []
    out = []
    for row in table.frame().to_dict("records"):
        run = by_key.get(row["run_key"])
        if run is None:
            continue
        if not isinstance(row.get("cvx_ceiling_status"), str):
            out.append((run, row))            # no convex fit yet (convex.seeds widened)
            continue
        if not want_mis:
            continue
        st = row.get("cvx_rkl_status")
        if not isinstance(st, str) or st.startswith("error"):
            continue                          # no reverse-KL fit to check
        if isinstance(row.get("cvx_rkl_t2mis_eps_status"), str):
            continue
        out.append((run, row))
    return out


def _complete_convex_rows(cfg, bank, teachers, incomplete, table, progress, after_row) -> None:
    """Add the convex columns a finished row lacks: all of them when the row has no convex
    fit (a sweep rerun with more ``convex.seeds``), else the misspecified Theorem 2 columns
    (one reverse-KL refit and one LP a group); through the convex cache. The row's other
    columns, provenance included, are kept."""
    cache = cfg.cache_path() / "convex"
    it: Iterable = incomplete
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(incomplete, desc=f"{cfg.name}: convex columns of finished rows", unit="row")
    for run, row in it:
        cols = convex_results(cfg, bank, teachers, run, cache)
        if not isinstance(row.get("cvx_ceiling_status"), str):
            new = cols
        else:
            new = {k: v for k, v in cols.items() if k.startswith("cvx_rkl_t2mis_")
                   or k == "cvx_t2mis_wall_s"}
        row = {**row, **new}
        row = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        table.append(row)
        if after_row is not None:
            after_row(row)


def run(cfg: RealConfig, *, out: str | os.PathLike | None = None, progress: bool = True,
        config_file: str = "", after_row: Callable[[dict], None] | None = None,
        bank: FeatureBank | None = None):
    """The real pipeline's entry point: `run_sweep` (the result table as a DataFrame)."""
    return run_sweep(cfg, out=out, progress=progress, config_file=config_file,
                     after_row=after_row, bank=bank)
