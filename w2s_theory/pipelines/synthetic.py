"""The synthetic pipeline: resumable sweeps over synthetic W2SG instances (``run(config)``).

Command line: ``w2s-theory synthetic --config FILE`` (`w2s_theory.cli.synthetic`).

A sweep (one TOML file, `SweepConfig`) is a set of *runs*; a run is one
``(instance config, seed, method)``: draw the instance
(`w2s_theory.synthetic.make_instance`), fit the strong head on the ``w2s``
split with the method, and record one row (`evaluate`): the risks, the two
disagreements, Theorem 2's slack (both forms) and its tolerance, the dual
statement's equality error, every stage of Lemma 1, the test accuracy and risk,
and the fit's solver status and accuracy. Rows go to a resumable
`w2s_theory.sweep.ResultTable` (CSV, one row per run), so a killed sweep
resumes where it stopped; then the sweep's figures are drawn. The table's summaries
(`summarize_theorem2`, ..., `format_summary`) live in `w2s_theory.summaries` and are
importable from here too.

Methods are ``"<head>/<loss>"``: ``convex/reverse_kl``, ``convex/forward_kl`` (the exact
projections onto the mixture-convex class), ``softmax/<loss>`` (tight fit) and
``minibatch/<loss>`` (one epoch of Adam, batch 16 by default) for the four losses.

TOML layout (see ``experiments/synthetic/*.toml``)::

    [sweep]
    name = "theorem2"            # figure names: figures/synthetic_<name>*.png
    kind = "theorem2"            # theorem2 | dual | lemma1 | curve  (which figures)
    seeds = 200                  # an int n (seeds 0..n-1) or a list
    methods = ["convex/reverse_kl"]
    results = "experiments/synthetic/results/theorem2.csv"
    x = "noise_frac"             # curve sweeps: the grid parameter on the x axis
    [base]                       # SyntheticConfig fields
    [random]                     # per-seed random fields: [lo, hi] or {choices = [...]}
    [grid]                       # cartesian product: field = [values]
    [minibatch]                  # optimizer, lr, batch_size, epochs
    [[variant]]                  # name, methods (optional), [variant.overrides]
    [ci]                         # overrides for the CI-size run (--ci): seeds, base, grid

Row conventions: everything on the ``w2s`` split (the population the head is fitted on,
where the theorems hold exactly) unless prefixed ``test_``. Lemma 1 is evaluated for the
γ-smoothed student ``(1 - kγ) F_sw + γ`` (its assumption, met by smoothing); test risks
are of γ-smoothed predictions too (softmax outputs can round to 0).

An exact fit whose objective has no finite minimiser (``softmax/reverse_ce``: reverse CE is
linear in the probabilities, `w2s_theory.heads.minimizer_status`) is not run: its row has
``fit_status = "no_minimizer"``, ``fit_converged = False`` and NaN in every strong-head column
(`HEAD_COLUMNS`); ``minibatch/reverse_ce`` (early stopped, a well-defined procedure) is run as
any other method.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..config import check_keys, from_mapping, load_config
from ..heads import NO_MINIMIZER
from ..summaries import (  # re-exported from their old home
    LEMMA1_STAGES,
    format_summary,
    summarize_curve,
    summarize_dual,
    summarize_lemma1,
    summarize_theorem2,
)
from ..synthetic import SyntheticConfig, config_from_dict, make_instance

__all__ = [
    "SweepConfig",
    "Variant",
    "load_sweep_config",
    "sweep_config_from_dict",
    "expand_runs",
    "fit_method",
    "evaluate",
    "run_sweep",
    "summarize_theorem2",
    "summarize_dual",
    "summarize_lemma1",
    "summarize_curve",
    "format_summary",
    "run",
    "LEMMA1_STAGES",
    "HEAD_COLUMNS",
]

HEADS = ("convex", "softmax", "minibatch")
#: the convex head's objectives (exact projections; `w2s_theory.heads.DIVERGENCES`)
CONVEX_LOSSES = ("reverse_kl", "forward_kl")
#: keys of the ``[sweep]`` table
SWEEP_KEYS = ("name", "kind", "seeds", "methods", "results", "x", "figures_dir")
KINDS = ("theorem2", "dual", "lemma1", "curve")
#: Most seeds a sweep may list (``seeds = n`` runs seeds 0..n-1; each one is one instance).
MAX_SEEDS = 1_000_000
#: Tolerance floor for non-convex heads (no certificate exists; absorbs round-off only).
SOFTMAX_TOL_FLOOR = 1e-9


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
        from .._validation import check_choice, check_int, check_number

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


# ----------------------------------------------------------------------------- runs
def _draw_random(spec: dict, seed: int) -> dict:
    """Per-seed random base fields (own RNG stream, independent of the instance's)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    out = {}
    for key in sorted(spec):
        s = spec[key]
        if isinstance(s, dict):
            choices = list(s["choices"])
            out[key] = choices[int(rng.integers(len(choices)))]
        else:
            lo, hi = s
            if isinstance(lo, int) and isinstance(hi, int):
                out[key] = int(rng.integers(lo, hi + 1))
            else:
                out[key] = float(rng.uniform(lo, hi))
    return out


@dataclass(frozen=True)
class Run:
    """One run: an instance config, a seed, a variant name, a method, and its key."""

    config: SyntheticConfig
    seed: int
    variant: str
    method: str
    key: str


#: SyntheticConfig fields added after results were first stored: left out of a run's key
#: while at their default, so that stored result tables stay valid (resumable).
_LATER_FIELDS = {"weak_temperature": 1.0}


def _key_dict(c: SyntheticConfig) -> dict:
    d = c.to_dict()
    for name, default in _LATER_FIELDS.items():
        if d.get(name) == default:
            d.pop(name)
    return d


def expand_runs(cfg: SweepConfig) -> list[Run]:
    """All runs of a sweep, in a fixed order (seed, grid point, variant, method)."""
    from ..sweep import run_key

    runs = []
    grid_keys = sorted(cfg.grid)
    points = list(itertools.product(*(cfg.grid[k] for k in grid_keys))) or [()]
    for seed in cfg.seeds:
        drawn = _draw_random(cfg.random, seed)
        for pt in points:
            for var in cfg.variants:
                upd = {**drawn, **dict(zip(grid_keys, pt, strict=True)), **var.overrides}
                if "d_weak" in upd or "d_strong" in upd:
                    d_s = upd.get("d_strong", cfg.base.d_strong)
                    upd["d_weak"] = min(upd.get("d_weak", cfg.base.d_weak), d_s)
                c = cfg.base.replace(**upd)
                for m in (var.methods or cfg.methods):
                    head, _ = parse_method(m)
                    extra = {"mb": vars(cfg.minibatch)} if head == "minibatch" else {}
                    key = run_key(_key_dict(c), seed=seed, method=m, **extra)
                    runs.append(Run(config=c, seed=int(seed), variant=var.name, method=m, key=key))
    return runs


@dataclass(frozen=True)
class NoMinimizer:
    """What `fit_method` returns for an exact fit whose objective has no finite minimiser
    (`w2s_theory.heads.minimizer_status`, e.g. ``softmax/reverse_ce``): no head, only a
    ``report`` whose status starts with ``"no_minimizer: "``."""

    report: object


def fit_method(method: str, features, weak_probs, *, gamma: float,
               minibatch: MinibatchConfig = MinibatchConfig(), seed: int = 0):
    """Fit the strong head of ``method`` (``"<head>/<loss>"``) on ``(features, weak_probs)``.

    An exact softmax fit with no finite minimiser (``softmax/reverse_ce``: the loss is linear
    in the probabilities) is not run: a `NoMinimizer` carries the reason instead.
    """
    from ..heads import fit_convex_head, fit_head_minibatch, fit_softmax_head

    head, loss = parse_method(method)
    if head == "convex":
        return fit_convex_head(features, weak_probs, divergence=loss, gamma=gamma)
    if head == "softmax":
        from ..heads import FitReport, minimizer_status

        reason = minimizer_status(features, weak_probs, loss=loss)
        if reason is not None:     # nothing to fit: the optimiser would only chase infinity
            return NoMinimizer(FitReport(method="softmax/lbfgs+newton",
                                         status=f"{NO_MINIMIZER}: {reason}", converged=False,
                                         objective=math.nan))
        return fit_softmax_head(features, weak_probs, loss=loss)
    return fit_head_minibatch(features, weak_probs, loss=loss, optimizer=minibatch.optimizer,
                              lr=minibatch.lr, batch_size=minibatch.batch_size,
                              epochs=minibatch.epochs, seed=seed)


def _pred_class(p: np.ndarray) -> np.ndarray:
    return (p > 0.5).astype(int) if p.ndim == 1 else p.argmax(axis=1)


def evaluate(inst, method: str, head) -> dict:
    """One result row for a fitted head on an instance (see the module docstring)."""
    from ..bounds import lemma1, theorem2
    from ..divergences import kl, smooth

    if str(head.report.status).startswith(NO_MINIMIZER):
        return _no_minimizer_row(inst, method, head.report)
    cfg = inst.config
    g = cfg.gamma
    fs, fw, fsw = inst.w2s.f_star, inst.weak_probs, head.probs
    hname, loss = parse_method(method)
    rep = head.report
    # Theorem 2 needs strictly positive predictions; a softmax head can round to 0 or 1.
    fsw_pos = fsw if hname == "convex" else _clip_open(fsw)
    if hname == "convex":
        tol = head.theorem2_tolerance(fs)
    else:
        tol = SOFTMAX_TOL_FLOOR + float(rep.grad_norm)
    t2 = theorem2(fs, fw, fsw_pos, tol=tol)
    d_fwd = float(kl(fw, fsw_pos).mean())
    r_w, r_s = float(kl(fs, fw).mean()), float(kl(fs, fsw_pos).mean())
    slack_fwd = r_w - d_fwd - r_s
    # dual statement: L(F_sw, F*) = L(F_w, F*) - d_fwd (forward KL, softmax class, F* in it)
    rev_w = float(kl(fw, fs).mean()) if float(np.min(fs)) > 0 else math.inf
    rev_s = float(kl(fsw_pos, fs).mean()) if float(np.min(fs)) > 0 else math.inf
    dual_err = abs(rev_s - (rev_w - d_fwd)) / rev_w if math.isfinite(rev_w) and rev_w > 0 \
        else math.nan
    l1 = lemma1(fs, fw, smooth(fsw_pos, g), gamma=g)
    # test split
    pt = head.predict(inst.test.h_strong)
    pt_s = smooth(_clip_open(pt), g)
    row = {
        "variant": None, "method": method, "head": hname, "loss": loss,
        "risk_weak": r_w, "risk_strong": r_s, "d_forward": d_fwd, "d_reverse": t2.d_reverse,
        "slack_rev": t2.slack, "slack_fwd": slack_fwd, "tol": float(tol),
        "holds_rev": bool(t2.slack >= -tol), "holds_fwd": bool(slack_fwd >= -tol),
        "rev_risk_weak": rev_w, "rev_risk_strong": rev_s, "dual_rel_err": dual_err,
        "l1_gap": l1.gap, "l1_data_dependent": l1.data_dependent_bound, "l1_tv": l1.tv_bound,
        "l1_sqrt_forward": l1.sqrt_bound_forward, "l1_sqrt_reverse": l1.sqrt_bound_reverse,
        "l1_holds": bool(l1.holds),
        "test_acc_strong": float(np.mean(_pred_class(pt) == inst.test.labels)),
        "test_acc_weak": float(np.mean(_pred_class(inst.weak_test_probs) == inst.test.labels)),
        "test_acc_bayes": float(np.mean(_pred_class(inst.test.f_star) == inst.test.labels)),
        "test_risk_strong": float(kl(inst.test.f_star, pt_s).mean()),
        "test_risk_weak": float(kl(inst.test.f_star, inst.weak_test_probs).mean()),
        "test_frac_outside": (head.fraction_outside(inst.test.h_strong) if hname == "convex"
                              else 0.0),
        "fit_status": rep.status[:60], "fit_converged": bool(rep.converged),
        "fit_objective": rep.objective, "fit_duality_gap": rep.duality_gap,
        "fit_grad_norm": rep.grad_norm, "fit_complementarity": rep.complementarity,
        "fit_max_violation": rep.max_violation, "fit_iterations": rep.iterations,
        "fit_time_s": rep.solve_time, "noise_count": int(inst.noise_mask.sum()),
        "weak_grad_norm": float(inst.weak_report.grad_norm),
    }
    return row


#: the columns of an `evaluate` row that depend on the fitted strong head
HEAD_COLUMNS = ("risk_strong", "d_forward", "d_reverse", "slack_rev", "slack_fwd", "tol",
                "holds_rev", "holds_fwd", "rev_risk_strong", "dual_rel_err", "l1_gap",
                "l1_data_dependent", "l1_tv", "l1_sqrt_forward", "l1_sqrt_reverse", "l1_holds",
                "test_acc_strong", "test_risk_strong", "test_frac_outside", "fit_objective",
                "fit_duality_gap", "fit_grad_norm", "fit_complementarity", "fit_max_violation")


def _no_minimizer_row(inst, method: str, rep) -> dict:
    """The row of a fit with no finite minimiser: ``fit_status = "no_minimizer"``,
    ``fit_converged = False``, every strong-head column (`HEAD_COLUMNS`) NaN; the weak model's,
    the truth's and the instance's columns as in any row."""
    from ..divergences import kl

    fs, fw = inst.w2s.f_star, inst.weak_probs
    hname, loss = parse_method(method)
    rev_w = float(kl(fw, fs).mean()) if float(np.min(fs)) > 0 else math.inf
    row = {"variant": None, "method": method, "head": hname, "loss": loss,
           "risk_weak": float(kl(fs, fw).mean()), "rev_risk_weak": rev_w,
           "test_acc_weak": float(np.mean(_pred_class(inst.weak_test_probs) == inst.test.labels)),
           "test_acc_bayes": float(np.mean(_pred_class(inst.test.f_star) == inst.test.labels)),
           "test_risk_weak": float(kl(inst.test.f_star, inst.weak_test_probs).mean()),
           "fit_status": NO_MINIMIZER, "fit_converged": False, "fit_iterations": 0,
           "fit_time_s": float(rep.solve_time), "noise_count": int(inst.noise_mask.sum()),
           "weak_grad_norm": float(inst.weak_report.grad_norm)}
    order = ("variant", "method", "head", "loss", "risk_weak", "risk_strong", "d_forward",
             "d_reverse", "slack_rev", "slack_fwd", "tol", "holds_rev", "holds_fwd",
             "rev_risk_weak", "rev_risk_strong", "dual_rel_err", "l1_gap", "l1_data_dependent",
             "l1_tv", "l1_sqrt_forward", "l1_sqrt_reverse", "l1_holds", "test_acc_strong",
             "test_acc_weak", "test_acc_bayes", "test_risk_strong", "test_risk_weak",
             "test_frac_outside", "fit_status", "fit_converged", "fit_objective",
             "fit_duality_gap", "fit_grad_norm", "fit_complementarity", "fit_max_violation",
             "fit_iterations", "fit_time_s", "noise_count", "weak_grad_norm")
    return {c: row.get(c, math.nan) for c in order}


def _clip_open(p: np.ndarray) -> np.ndarray:
    """Keep probabilities strictly inside (0, 1) (float64 round-off of a saturated softmax)."""
    tiny = 1e-300
    if p.ndim == 1:
        return np.clip(p, tiny, 1.0 - 1e-16)
    q = np.maximum(p, tiny)
    return q / q.sum(axis=1, keepdims=True)


def run_sweep(cfg: SweepConfig, *, results: str | Path | None = None, limit: int | None = None,
              progress: bool = True) -> dict:
    """Run (or resume) a sweep; return ``{"table", "computed", "skipped", "errors", "seconds"}``.

    Runs already in the result table are skipped; each finished run is appended
    atomically. ``limit`` stops after that many *new* runs (used to test resuming). A fit
    that raises is recorded as a row whose ``fit_status`` starts with ``"error:"`` (the
    metrics are left empty) and counted in ``errors``; the sweep goes on.
    """
    from tqdm.auto import tqdm

    from ..sweep import ResultTable

    path = Path(results or cfg.results)
    table = ResultTable(path)
    runs = expand_runs(cfg)
    todo = [r for r in runs if not table.has(r.key)]
    computed, errors, t0 = 0, 0, time.perf_counter()
    cache: dict = {}
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc=f"synthetic:{cfg.name}",
               disable=not progress, unit="run")
    for r in todo:
        if limit is not None and computed >= limit:
            break
        ikey = (r.config, r.seed)
        if ikey not in cache:
            cache.clear()                      # runs are ordered: keep one instance at a time
            cache[ikey] = make_instance(r.config, r.seed)
        inst = cache[ikey]
        row = {"run_key": r.key, "sweep": cfg.name, "seed": r.seed, **r.config.to_dict()}
        try:
            head = fit_method(r.method, inst.w2s.h_strong, inst.weak_probs,
                              gamma=r.config.gamma, minibatch=cfg.minibatch, seed=r.seed)
            row.update(evaluate(inst, r.method, head))
        except Exception as exc:   # a failed fit is a result: recorded, counted, not fatal
            hname, loss = parse_method(r.method)
            row.update({"method": r.method, "head": hname, "loss": loss,
                        "fit_status": f"error: {type(exc).__name__}: {exc}"[:200],
                        "fit_converged": False})
            errors += 1
        row["variant"] = r.variant
        table.append(row)
        computed += 1
        bar.update(1)
    bar.close()
    return {"table": table, "computed": computed, "skipped": len(runs) - len(todo),
            "errors": errors, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- entry point
def run(cfg: SweepConfig, *, results: str | Path | None = None, limit: int | None = None,
        progress: bool = True, figures: bool = False, figure_suffix: str = "") -> dict:
    """Run (or resume) the sweep and, with ``figures=True``, draw its figure.

    Returns `run_sweep`'s dict plus ``"figures"`` (the saved paths).
    """
    out = run_sweep(cfg, results=results, limit=limit, progress=progress)
    out["figures"] = []
    if figures:
        df = out["table"].frame()
        if len(df):
            from ..plotting import synthetic_figures

            out["figures"] = synthetic_figures(cfg, df, suffix=figure_suffix)
    return out
