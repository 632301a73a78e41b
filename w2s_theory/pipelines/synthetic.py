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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import heads
from ..bounds import lemma1, theorem2
from ..divergences import kl, smooth
from ..heads import NO_MINIMIZER, FitReport
from ..plotting import synthetic_figures
from ..summaries import (  # re-exported from their old home
    LEMMA1_STAGES,
    format_summary,
    summarize_curve,
    summarize_dual,
    summarize_lemma1,
    summarize_theorem2,
)
from ..sweep import ResultTable, run_key
from ..synthetic import SyntheticConfig, make_instance
from .synthetic_config import (  # the sweep's configuration, importable from here too
    CONVEX_LOSSES,
    HEADS,
    KINDS,
    MAX_SEEDS,
    SWEEP_KEYS,
    MinibatchConfig,
    SweepConfig,
    Variant,
    check_memory,
    instance_bytes,
    load_sweep_config,
    parse_method,
    sweep_config_from_dict,
)

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
    # the configuration (`w2s_theory.pipelines.synthetic_config`)
    "HEADS", "CONVEX_LOSSES", "SWEEP_KEYS", "KINDS", "MAX_SEEDS", "MinibatchConfig",
    "instance_bytes", "check_memory", "parse_method",
]

#: Tolerance floor for non-convex heads (no certificate exists; absorbs round-off only).
SOFTMAX_TOL_FLOOR = 1e-9


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
               minibatch: MinibatchConfig = MinibatchConfig(), seed: int = 0):  # noqa: B008
    """Fit the strong head of ``method`` (``"<head>/<loss>"``) on ``(features, weak_probs)``.

    An exact softmax fit with no finite minimiser (``softmax/reverse_ce``: the loss is linear
    in the probabilities) is not run: a `NoMinimizer` carries the reason instead.
    """
    head, loss = parse_method(method)
    if head == "convex":
        return heads.fit_convex_head(features, weak_probs, divergence=loss, gamma=gamma)
    if head == "softmax":
        reason = heads.minimizer_status(features, weak_probs, loss=loss)
        if reason is not None:     # nothing to fit: the optimiser would only chase infinity
            return NoMinimizer(FitReport(method="softmax/lbfgs+newton",
                                         status=f"{NO_MINIMIZER}: {reason}", converged=False,
                                         objective=math.nan))
        return heads.fit_softmax_head(features, weak_probs, loss=loss)
    return heads.fit_head_minibatch(features, weak_probs, loss=loss, optimizer=minibatch.optimizer,
                              lr=minibatch.lr, batch_size=minibatch.batch_size,
                              epochs=minibatch.epochs, seed=seed)


def _pred_class(p: np.ndarray) -> np.ndarray:
    return (p > 0.5).astype(int) if p.ndim == 1 else p.argmax(axis=1)


def evaluate(inst, method: str, head) -> dict:
    """One result row for a fitted head on an instance (see the module docstring)."""
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
            out["figures"] = synthetic_figures(cfg, df, suffix=figure_suffix)
    return out
