"""The runs of a real sweep: one `Run` per student head (= one result row), their stable
keys, and the sub-seeds of a run seed (`derive_seed`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ...sweep import run_key
from .config import RealConfig

__all__ = ["PROTOCOL_VERSION", "Run", "protocol_dict", "enumerate_runs", "split_coord",
           "derive_seed", "head_key"]

#: Bump when the protocol changes the numbers (part of every run key and cache key).
PROTOCOL_VERSION = 1


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


def protocol_dict(cfg: RealConfig) -> dict:
    """Everything besides a run's own coordinates that changes its numbers."""
    return {"protocol": PROTOCOL_VERSION, "gamma": cfg.gamma, "noise_a": cfg.noise_a,
            "n_rows": cfg.n_rows, "train": cfg.train.to_dict(),
            "convex": cfg.convex.key_dict(),
            "vader_seed": cfg.split_seed}          # (its old name: the keys stay put)


def enumerate_runs(cfg: RealConfig) -> list[Run]:
    """All runs of a sweep, in a fixed order; each with its stable key.

    Examples:
        >>> c = RealConfig(name="t", datasets=("harmless",), pairs=(("wordllama", "all-MiniLM-L6-v2"),),
        ...                seeds=(0, 1), confidence=(False, True))
        >>> len(enumerate_runs(c))   # 2 seeds x 4 losses x 2 confidence settings
        16
    """

    base = protocol_dict(cfg)
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
                                          "confidence": bool(conf), **split_coord(split)}
                                if ds in cfg.sources:      # absent for registry data sets
                                    coords["source"] = cfg.sources[ds]
                                key = run_key({**base, **coords}, seed=int(seed))
                                out.append(Run(ds, weak, strong, int(seed), float(a), loss,
                                               bool(conf), key, int(split)))
    return out


def split_coord(split: int) -> dict:
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



def head_key(cfg: RealConfig, seed: int, **coords) -> str:

    return run_key({**protocol_dict(cfg), **coords}, seed=int(seed))
