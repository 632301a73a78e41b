"""The synthetic sweep's configuration: `SweepConfig` (one TOML file: ``[sweep]``, ``[base]``,
``[random]``, ``[grid]``, ``[minibatch]``, ``[[variant]]``, ``[ci]``), its methods
(`parse_method`) and the memory check of its instances (`check_memory`).

The names are importable from `w2s_theory.pipelines.synthetic` too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .._validation import check_choice, check_int, check_number
from ..config import check_keys, from_mapping, load_config
from ..synthetic import SyntheticConfig, config_from_dict

__all__ = ["HEADS", "CONVEX_LOSSES", "SWEEP_KEYS", "KINDS", "MAX_SEEDS", "Variant",
           "MinibatchConfig", "instance_bytes", "SweepConfig", "check_memory", "parse_method",
           "sweep_config_from_dict", "load_sweep_config"]

HEADS = ("convex", "softmax", "minibatch")
#: the convex head's objectives (exact projections; `w2s_theory.heads.DIVERGENCES`)
CONVEX_LOSSES = ("reverse_kl", "forward_kl")
#: keys of the ``[sweep]`` table
SWEEP_KEYS = ("name", "kind", "seeds", "methods", "results", "x", "figures_dir")
KINDS = ("theorem2", "dual", "lemma1", "curve")
#: Most seeds a sweep may list (``seeds = n`` runs seeds 0..n-1; each one is one instance).
MAX_SEEDS = 1_000_000


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Variant:
    """A named change of the base config, with its own methods (default: the sweep's)."""

    name: str = "default"
    overrides: dict = field(default_factory=dict)
    methods: tuple = ()


@dataclass(frozen=True)
class MinibatchConfig:
    """The practical regime's optimiser settings (see `w2s_theory.heads.fit_head_minibatch`)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 16
    epochs: int = 1

    def __post_init__(self):
        check_choice(self.optimizer, "[minibatch] optimizer", ("adam", "sgd"))
        check_number(self.lr, "[minibatch] lr", low=0.0, low_open=True)
        check_int(self.batch_size, "[minibatch] batch_size", low=1)
        check_int(self.epochs, "[minibatch] epochs", low=1)


#: the SyntheticConfig fields that size an instance's arrays (`check_memory`)
_SIZE_FIELDS = ("n_gt", "n_w2s", "n_test", "d_strong", "d_weak", "k")


def _physical_memory() -> int | None:
    """This machine's memory in bytes (``None`` where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def instance_bytes(sizes: dict) -> int:
    """A rough upper bound on the memory one instance takes, in bytes (float64 arrays):

    ``bytes = 3 * 8 * (n_gt + n_w2s + n_test) * (d_strong + d_weak + 4 k)``

    Each row holds the strong and weak features, the truth, the weak predictions and the
    fitted head's predictions (``d_strong + d_weak + 4 k`` floats of 8 bytes); the fit and
    the draws make about 3 copies of that at once.

    Example:
        >>> instance_bytes({"n_gt": 10, "n_w2s": 10, "n_test": 10, "d_strong": 4, "d_weak": 2, "k": 2})
        10080
    """
    n = sizes["n_gt"] + sizes["n_w2s"] + sizes["n_test"]
    return int(3 * 8 * n * (sizes["d_strong"] + sizes["d_weak"] + 4 * sizes["k"]))


def _gib(b: float) -> str:
    for unit, f in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20)):
        if b >= f:
            return f"{b / f:.1f} {unit}"
    return f"{b:.0f} B"


@dataclass(frozen=True)
class SweepConfig:
    """A synthetic sweep, as read from TOML.

    Attributes:
        name: figure/result name. kind: ``theorem2``, ``dual``, ``lemma1`` or ``curve``.
        base: the `SyntheticConfig` every run starts from.
        seeds: the seeds (instances) to run.
        methods: default methods ``"<head>/<loss>"``.
        variants: named overrides of ``base`` with their methods.
        random: per-seed random draws of base fields: ``[lo, hi]`` (int if both ints,
            inclusive) or ``{"choices": [...]}``.
        grid: field -> list of values, run as a cartesian product.
        minibatch: `MinibatchConfig`.
        results: CSV path of the result table. x: the x-axis field of ``curve`` sweeps.
        figures_dir: where figures go.
    """

    name: str
    kind: str
    base: SyntheticConfig
    seeds: tuple
    methods: tuple
    variants: tuple = (Variant(),)
    random: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    minibatch: MinibatchConfig = MinibatchConfig()
    results: str = "results.csv"
    x: str = ""
    figures_dir: str = "figures"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {self.kind!r}")
        for s in self.seeds:
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
                raise ValueError(f"[sweep] seeds: need non-negative integers, got {s!r}")
        for key, spec in self.random.items():
            _check_random(key, spec, self.base)
        for key, values in self.grid.items():
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"[grid] {key}: a non-empty list of values, got {values!r}")
        for v in self.variants:
            for m in (v.methods or self.methods):
                parse_method(m)
        if not self.seeds:
            raise ValueError("seeds: need at least one seed")
        if not any(v.methods or self.methods for v in self.variants):
            raise ValueError("methods: this sweep would run nothing (no [sweep] methods and no "
                             "[[variant]] methods)")
        if self.kind == "curve" and self.x not in self.grid:
            raise ValueError(f"x: a curve sweep needs x to name a grid field, got {self.x!r} "
                             f"(grid: {sorted(self.grid)})")
        check_memory(self)


def _check_random(key: str, spec, base: SyntheticConfig) -> None:
    """``[random] KEY``: ``[lo, hi]`` (two numbers, ``lo <= hi``) or ``{choices = [...]}``,
    every value of which makes a valid instance config."""
    where = f"[random] {key}"
    if isinstance(spec, dict):
        if set(spec) != {"choices"} or not isinstance(spec["choices"], (list, tuple)) \
                or not spec["choices"]:
            raise ValueError(f"{where}: {{choices = [...]}} with a non-empty list, got {spec!r}")
        values = list(spec["choices"])
    else:
        if not isinstance(spec, (list, tuple)) or len(spec) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
            raise ValueError(f"{where}: [lo, hi] (two numbers) or {{choices = [...]}}, got {spec!r}")
        lo, hi = spec
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"{where}: [lo, hi] needs finite lo <= hi, got {list(spec)!r}")
        values = [lo, hi]
    for v in values:
        upd = {key: v}
        if key in ("d_weak", "d_strong"):      # expand_runs clamps d_weak to d_strong
            d_s = v if key == "d_strong" else base.d_strong
            upd["d_weak"] = min(v if key == "d_weak" else base.d_weak, d_s)
        try:
            base.replace(**upd)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: the value {v!r} gives an invalid instance ({exc})") from None


def check_memory(cfg: SweepConfig, available: int | None = None) -> None:
    """Refuse a sweep whose largest instance cannot fit in memory (`instance_bytes`
    against ``available`` bytes, default this machine's memory): a `ValueError` naming the
    largest size key and where its value comes from, at config load, not a ``MemoryError``
    minutes in."""
    sizes, origin = {}, {}
    for f in _SIZE_FIELDS:
        sizes[f], origin[f] = getattr(cfg.base, f), f"[base] {f}"
        cands = []
        spec = cfg.random.get(f)
        if isinstance(spec, dict):
            cands += [(v, f"[random] {f}") for v in spec.get("choices", ())]
        elif isinstance(spec, (list, tuple)):
            cands += [(v, f"[random] {f}") for v in spec]
        cands += [(v, f"[grid] {f}") for v in cfg.grid.get(f, ())]
        cands += [(var.overrides[f], f"[[variant]] {var.name} {f}") for var in cfg.variants
                  if f in var.overrides]
        for v, where in cands:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v > sizes[f]:
                sizes[f], origin[f] = v, where
    need = instance_bytes(sizes)
    have = available if available is not None else _physical_memory()
    if have is not None and need > have:
        worst = max(("n_gt", "n_w2s", "n_test"), key=lambda f: sizes[f])
        raise ValueError(f"{origin[worst]}: {int(sizes[worst]):,} rows (with d_strong = "
                         f"{int(sizes['d_strong'])}, k = {int(sizes['k'])}) need about {_gib(need)} of "
                         f"memory, more than this machine's {_gib(have)}")


def parse_method(m: str) -> tuple[str, str]:
    """``"<head>/<loss>"`` -> ``(head, loss)``; the loss names come from the loss registry.

    Examples:
        >>> parse_method("minibatch/reverse_kl")
        ('minibatch', 'reverse_kl')
    """
    from ..losses import loss_names

    head, _, loss = str(m).partition("/")
    names = loss_names()
    if head not in HEADS or loss not in names or (head == "convex" and loss not in CONVEX_LOSSES):
        raise ValueError(f"methods: {m!r} is not '<head>/<loss>' with head in {HEADS} and loss in "
                         f"{names} (convex: {' or '.join(CONVEX_LOSSES)})")
    return head, loss


def _deep_update(d: dict, upd: dict) -> dict:
    out = dict(d)
    for key, val in upd.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], val)
        else:
            out[key] = val
    return out


def sweep_config_from_dict(raw: dict, *, ci: bool = False, root: Path | None = None) -> SweepConfig:
    """Build a `SweepConfig` from a TOML-like dict; ``ci=True`` applies ``[ci]``.

    Relative ``results`` / ``figures_dir`` paths are resolved against ``root``.

    Examples:
        >>> cfg = sweep_config_from_dict({"sweep": {"name": "t", "kind": "theorem2", "seeds": 3,
        ...     "methods": ["convex/reverse_kl"]}, "base": {"truth": "affine", "truth_scale": 0.9}})
        >>> cfg.seeds, cfg.base.truth
        ((0, 1, 2), 'affine')
    """
    raw = dict(raw)
    ci_upd = raw.pop("ci", {})
    if ci:
        raw = _deep_update(raw, {k: v for k, v in ci_upd.items() if k != "seeds"})
        if "seeds" in ci_upd:
            raw.setdefault("sweep", {})
            raw["sweep"] = {**raw["sweep"], "seeds": ci_upd["seeds"]}
    check_keys(raw, {"sweep", "base", "random", "grid", "minibatch", "variant", "ci"}, "top level")
    check_keys(ci_upd, {"seeds", "sweep", "base", "random", "grid", "minibatch"}, "[ci]")
    sw = dict(raw.get("sweep", {}))
    check_keys(sw, SWEEP_KEYS, "[sweep]")
    for i, v in enumerate(raw.get("variant", [])):
        check_keys(v, {"name", "methods", "overrides"}, f"[[variant]] #{i + 1}")
    for req in ("name", "kind"):
        if req not in sw:
            raise ValueError(f"sweep.{req}: required")
    seeds = sw.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"[sweep] seeds: a count in [1, {MAX_SEEDS}] (seeds 0..n-1) or a "
                             f"list of seeds, got {seeds!r}")
        seeds = tuple(range(seeds))
    elif isinstance(seeds, (list, tuple)) and all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        seeds = tuple(seeds)
    else:
        raise ValueError(f"[sweep] seeds: an integer n (seeds 0..n-1) or a list of integer "
                         f"seeds, got {seeds!r}")
    base = config_from_dict(raw.get("base", {}))
    names = {f.name for f in fields(SyntheticConfig)}
    for tbl in ("random", "grid"):
        bad = sorted(set(raw.get(tbl, {})) - names)
        if bad:
            raise ValueError(f"{tbl}: unknown SyntheticConfig fields {bad}")
    variants = tuple(Variant(name=v.get("name", f"v{i}"), overrides=dict(v.get("overrides", {})),
                             methods=tuple(v.get("methods", ())))
                     for i, v in enumerate(raw.get("variant", []))) or (Variant(),)
    for v in variants:
        bad = sorted(set(v.overrides) - names)
        if bad:
            raise ValueError(f"variant {v.name}: unknown SyntheticConfig fields {bad}")
    mb = from_mapping(MinibatchConfig, raw.get("minibatch", {}), where="[minibatch]",
                      path="minibatch")
    root = Path(root) if root is not None else Path.cwd()
    results = sw.get("results", f"experiments/synthetic/results/{sw['name']}.csv")
    if ci and "results" not in ci_upd.get("sweep", {}):
        results = str(Path(results).with_name(Path(results).stem + "_ci.csv"))
    return SweepConfig(
        name=str(sw["name"]), kind=str(sw["kind"]), base=base, seeds=seeds,
        methods=tuple(sw.get("methods", ())), variants=variants,
        random=dict(raw.get("random", {})), grid=dict(raw.get("grid", {})), minibatch=mb,
        results=str(root / results), x=str(sw.get("x", "")),
        figures_dir=str(root / sw.get("figures_dir", "figures")),
    )


def load_sweep_config(path, *, ci: bool = False, root=None) -> SweepConfig:
    """Read a sweep TOML file (paths inside resolve against ``root``, default: the cwd).

    Unknown keys, bad values and a sweep that would run nothing raise
    `ConfigError` naming the file."""
    return load_config(path, lambda raw: sweep_config_from_dict(raw, ci=ci, root=root))
