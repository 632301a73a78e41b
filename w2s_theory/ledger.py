r"""Claims ledger: the paper's six claims tested per regime and setting on the committed tables.

Two layers:

* **Statistics** (pure numpy/scipy/statsmodels functions): `paired_effect` (mean of
  paired differences over seeds, 95 % t interval, paired t-test), `holm` (Holm's
  step-down adjustment within a family), `gap_filter` (a setting counts for
  weak-to-strong claims only if ``ceiling - weak`` has a t interval above 0) and
  `pgr_interval` (PGR with Fieller's interval, undefined when the gap's interval
  contains 0).
* **Ledger**: `load_runs` reads whatever result tables exist (last layer on real
  features, full fine-tuning, synthetic), `build_ledger` tests each claim per regime and
  setting with the rules `ROW_RULE` / `CLAIM_RULE`, and puts the paper's reported
  pattern beside ours (`paper_patterns`, from ``experiments/paper_reference/``);
  `summarize` gives one verdict per claim and regime.

Conventions: accuracy effects are in percentage points (``100 x`` accuracy); seeds pair runs
(an effect for seed ``s`` compares the two arms of seed ``s``; seeds missing from an arm are
dropped, so partial tables work); forward CE has forward KL's minimiser and, in these
protocols, bit-identical runs, so it is never pooled with forward KL: each contrast names its
reference loss, and forward CE is reported as identical (``kind = "identity"`` rows).

References
----------
Yao et al., arXiv:2502.11107 (2025): the claims (as summarized in ``experiments/paper_reference``).
Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
Fieller, "Some problems in interval estimation", J. R. Statist. Soc. B 16 (1954).
Ghosh, Kumar & Sastry, "Robust loss functions under label noise for deep neural networks",
AAAI 2017 (symmetric losses are noise-tolerant under symmetric label flips).
Burns et al., arXiv:2312.09390 (PGR).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ._validation import (
    ArgumentTypeError,
    PathNotFound,
    as_float_array,
    check_int,
    check_number,
    check_path,
    check_scalar,
)

__all__ = [
    "PairedEffect",
    "PGRInterval",
    "paired_effect",
    "holm",
    "gap_filter",
    "pgr_interval",
    "symmetric_loss_defect",
    "CLAIMS",
    "ROW_RULE",
    "CLAIM_RULE",
    "REGIMES",
    "load_runs",
    "paper_patterns",
    "build_ledger",
    "summarize",
    "pgr_table",
    "write_ledger",
    "LEDGER_COLUMNS",
]

ALPHA = 0.05


# ============================================================================ statistics
@dataclass(frozen=True)
class PairedEffect:
    """Mean of paired differences ``a - b`` with its t interval and two-sided paired t-test.

    Attributes:
        n: the number of pairs.
        mean: the mean of ``a - b``.
        sd: the standard deviation (ddof 1) of ``a - b``.
        ci_low: ``mean - t_{n-1} sd / sqrt(n)`` at ``confidence``.
        ci_high: ``mean + t_{n-1} sd / sqrt(n)`` at ``confidence``.
        p_value: two-sided paired t-test of mean 0 (``nan`` when ``n < 2``; when every
            difference is equal, ``0`` if they are non-zero, ``1`` otherwise).
    """

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


def _paired_arrays(a, b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as finite 1-D float arrays of one shape (one value per seed); errors
    name the arguments as the caller calls them."""
    x = as_float_array(a, name_a, allow_bool=False)
    y = as_float_array(b, name_b, allow_bool=False)
    if x.ndim != 1:
        raise ValueError(f"{name_a}: must be 1-D (one value per seed), got shape {x.shape}")
    if x.shape != y.shape:
        raise ValueError(f"{name_b}: shape {y.shape} must equal {name_a}'s shape {x.shape} (1-D)")
    for name, v in ((name_a, x), (name_b, y)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: contains NaN or inf at index "
                             f"{int(np.flatnonzero(~np.isfinite(v))[0])}")
    return x, y


def paired_effect(a, b, confidence: float = 0.95) -> PairedEffect:
    r"""Paired effect of ``a`` over ``b``: ``d = a - b``, ``mean(d) +/- t_{n-1, 0.975} s_d/sqrt(n)``.

    ``t = mean(d) / (s_d / sqrt(n))`` with ``n - 1`` degrees of freedom, two-sided p-value
    (the same test as ``scipy.stats.ttest_rel``). Fewer than two pairs give ``nan``
    everywhere but ``n`` and ``mean``.

    Args:
        a, b: shape ``(n,)``, matched by seed.
        confidence: level of the interval, in ``(0, 1)``.

    Examples:
        >>> e = paired_effect([0.70, 0.72, 0.71], [0.60, 0.61, 0.63])
        >>> round(e.mean, 4), round(e.ci_low, 4), round(e.ci_high, 4), round(e.p_value, 4)
        (0.0967, 0.0587, 0.1346, 0.0082)
    """
    from scipy import stats

    x, y = _paired_arrays(a, b, "a", "b")
    conf = check_number(confidence, "confidence", low=0.0, low_open=True, high=1.0,
                        high_open=True)
    d = x - y
    n = int(d.size)
    if n == 0:
        return PairedEffect(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    md = float(d.mean())
    if n < 2:
        return PairedEffect(n, md, math.nan, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + conf / 2.0, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:
        p = 1.0 if md == 0.0 else 0.0
    else:
        p = float(2.0 * stats.t.sf(abs(md) / (sd / math.sqrt(n)), n - 1))
    return PairedEffect(n, md, sd, md - half, md + half, p)


def holm(pvalues) -> np.ndarray:
    r"""Holm's step-down adjusted p-values within one family.

    Sorted ``p_(1) <= ... <= p_(m)`` get ``min(1, max_{j <= i} (m - j + 1) p_(j))``;
    rejecting ``adjusted < alpha`` controls the family-wise error rate at ``alpha``.
    A ``nan`` entry is a test of the family that gave no p-value (fewer than two seeds): it
    is counted in the family size ``m`` as ``p = 1`` (conservative: leaving it out would
    shrink ``m`` and the other adjustments) and its own adjusted value is ``nan``. Values
    outside ``[0, 1]`` (also ``inf``) are errors, not dropped. Computed by
    ``statsmodels.stats.multitest.multipletests(method="holm")``.

    Args:
        pvalues: shape ``(m,)``, in ``[0, 1]`` or ``nan``.

    Returns:
        shape ``(m,)``.

    Examples:
        >>> holm([0.01, 0.04, 0.03]).round(4).tolist()
        [0.03, 0.06, 0.06]
        >>> holm([0.01, 0.04, 0.03, float("nan")]).round(4).tolist()
        [0.04, 0.09, 0.09, nan]
    """
    from statsmodels.stats.multitest import multipletests

    p = as_float_array(pvalues, "pvalues", allow_bool=False)
    if p.ndim != 1:
        raise ValueError(f"pvalues: expected a 1-D array, got shape {p.shape}")
    nan = np.isnan(p)
    bad = ~nan & ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"pvalues: must lie in [0, 1] (or be nan for a test without a "
                         f"p-value), got {float(p[i])!r} at index {i}")
    out = np.full(p.shape, np.nan)
    if (~nan).any():
        out[~nan] = multipletests(np.where(nan, 1.0, p), method="holm")[1][~nan]
    return out


def gap_filter(ceiling, weak, confidence: float = 0.95) -> tuple[bool, PairedEffect]:
    r"""Does the setting have a weak-to-strong gap? ``ceiling - weak`` paired by seed, CI > 0.

    A setting counts for weak-to-strong claims only if the strong ceiling beats the weak
    model with a t interval of ``ceiling - weak`` that lies above 0 (a gap that is zero or
    negative leaves nothing to recover, and PGR is then undefined).

    Returns:
        ``(has_gap, effect)`` with ``effect`` the `PairedEffect` of ``ceiling - weak``.

    Examples:
        >>> gap_filter([0.70, 0.71, 0.69], [0.60, 0.60, 0.61])[0]
        True
        >>> gap_filter([0.64, 0.65, 0.62], [0.6375, 0.6375, 0.6375])[0]
        False
    """
    c, w = _paired_arrays(ceiling, weak, "ceiling", "weak")
    e = paired_effect(c, w, confidence)
    return bool(np.isfinite(e.ci_low) and e.ci_low > 0.0), e


@dataclass(frozen=True)
class PGRInterval:
    """PGR ``mean(student - weak) / mean(ceiling - weak)`` with Fieller's interval.

    Attributes:
        pgr: ``mean(student - weak) / mean(ceiling - weak)`` (``nan`` when undefined).
        ci_low: the lower end of Fieller's interval (``nan`` when undefined).
        ci_high: the upper end of Fieller's interval (``nan`` when undefined).
        n: the number of seeds.
        defined: whether PGR is defined (the gap's interval lies above 0).
        reason: why it is undefined (empty when defined).
    """

    pgr: float
    ci_low: float
    ci_high: float
    n: int
    defined: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def pgr_interval(student, weak, ceiling, confidence: float = 0.95) -> PGRInterval:
    r"""PGR over seeds with Fieller's interval for a ratio of paired means.

    With per-seed ``a = student - weak`` and ``b = ceiling - weak``, ``PGR = mean(a)/mean(b)``
    and the interval is Fieller's: the set of ``theta`` whose paired t-test of
    ``mean(a - theta b) = 0`` does not reject at ``1 - confidence``, i.e. the solutions of
    ``(abar - theta bbar)^2 <= t^2 (S_aa - 2 theta S_ab + theta^2 S_bb) / n`` (sample
    (co)variances, ``t = t_{n-1, (1+confidence)/2}``). The set is a bounded interval exactly
    when ``bbar^2 / (S_bb / n) > t^2``, i.e. when the gap's t interval excludes 0; otherwise
    PGR is reported as undefined (``nan``, with the reason), and so it is when the ceiling is
    significantly *below* the weak model (nothing to recover) -- the rule of
    `gap_filter`. Fieller's interval is exact under normal per-seed differences and,
    unlike a bootstrap, needs no resampling (reproducible at 3-5 seeds).

    Args:
        student, weak, ceiling: shape ``(n,)`` accuracies, matched by seed (``n >= 2``).
        confidence: level of the interval.

    Examples:
        >>> r = pgr_interval([0.66, 0.67, 0.65, 0.66], [0.60, 0.61, 0.60, 0.60],
        ...                  [0.70, 0.70, 0.71, 0.70])
        >>> round(r.pgr, 3), round(r.ci_low, 3), round(r.ci_high, 3), r.defined
        (0.575, 0.444, 0.743, True)
        >>> pgr_interval([0.6, 0.61], [0.6375, 0.6375], [0.64, 0.6225]).reason[:23]
        "gap's 95% CI includes 0"
    """
    from scipy import stats

    s = as_float_array(student, "student", allow_bool=False)
    w = as_float_array(weak, "weak", allow_bool=False)
    c = as_float_array(ceiling, "ceiling", allow_bool=False)
    if s.ndim != 1:
        raise ValueError(f"student: must be 1-D (one value per seed), got shape {s.shape}")
    for name, v in (("weak", w), ("ceiling", c)):
        if v.shape != s.shape:
            raise ValueError(f"{name}: shape {v.shape} must equal student's shape {s.shape}")
    for name, v in (("student", s), ("weak", w), ("ceiling", c)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}: contains NaN or inf at index "
                             f"{int(np.flatnonzero(~np.isfinite(v))[0])}")
    conf = check_number(confidence, "confidence", low=0.0, low_open=True, high=1.0,
                        high_open=True)
    n = int(s.size)
    if n < 2:
        return PGRInterval(math.nan, math.nan, math.nan, n, False, "fewer than 2 seeds")
    a, b = s - w, c - w
    ab, bb = float(a.mean()), float(b.mean())
    cov = np.cov(np.stack([a, b]), ddof=1)
    saa, sab, sbb = float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])
    t2 = float(stats.t.ppf(0.5 + conf / 2.0, n - 1)) ** 2
    qa = bb * bb - t2 * sbb / n
    if not qa > 0.0:
        ratio = ab / bb if bb != 0 else math.nan
        return PGRInterval(math.nan, math.nan, math.nan, n, False,
                           f"gap's {conf:.0%} CI includes 0 (ceiling - weak = {bb:+.4g}): "
                           f"PGR undefined, Fieller set unbounded (point ratio {ratio:.3g})")
    qb = -2.0 * (ab * bb - t2 * sab / n)
    qc = ab * ab - t2 * saa / n
    if bb < 0.0:
        return PGRInterval(math.nan, math.nan, math.nan, n, False,
                           f"ceiling significantly below weak (ceiling - weak = {bb:+.4g}): no "
                           f"gap to recover, PGR undefined")
    disc = max(qb * qb - 4.0 * qa * qc, 0.0)
    r = math.sqrt(disc)
    lo, hi = (-qb - r) / (2.0 * qa), (-qb + r) / (2.0 * qa)
    return PGRInterval(ab / bb, lo, hi, n, True, "")


def symmetric_loss_defect(loss: str, y: float = 0.3, n_grid: int = 101) -> float:
    r"""``max_p - min_p`` of ``l(p, y) + l(p, 1 - y)`` for a binary W2SG loss (0: symmetric).

    Ghosh et al. (2017): a loss with ``l(p, y) + l(p, 1 - y)`` constant in ``p`` is
    noise-tolerant under symmetric label flips (its risk minimiser is unchanged). Reverse CE
    ``-[p log y + (1-p) log(1-y)]`` has the constant sum ``-log y - log(1 - y)``; reverse KL
    adds ``-2 H(p)``, forward KL/CE are not symmetric either. Evaluated with
    `w2s_theory.losses.get_loss` on ``n_grid`` evenly spaced student logits in ``[-4, 4]``.
    The sum of each of these losses is even in the logit and monotone on each side of 0, so
    its extremes lie at 0 and at the ends: ``n_grid`` must be odd (the grid then holds 0)
    and at least 3, and the grid's answer is then exact on ``[-4, 4]``.

    Args:
        loss: a binary loss name of `w2s_theory.losses.get_loss`.
        y: the weak label, in ``(0, 1)``.
        n_grid: odd, ``>= 3``.

    Examples:
        >>> symmetric_loss_defect("reverse_ce") < 1e-12, symmetric_loss_defect("reverse_kl") > 0.1
        (True, True)
    """
    import torch

    from .losses import get_loss

    if not isinstance(loss, str):
        raise ArgumentTypeError(f"loss: must be a loss name (str), got {type(loss).__name__}")
    y = check_scalar(y, "y", low=0.0, low_open=True, high=1.0)
    if y == 1.0:
        raise ValueError("y: must lie in (0, 1) (the losses are infinite at y = 1), got 1.0")
    n_grid = check_int(n_grid, "n_grid", low=3)
    if n_grid % 2 == 0:
        raise ValueError(f"n_grid: must be odd (the grid must hold the logit 0, where the "
                         f"sums are extreme), got {n_grid}")
    from .losses import check_loss_name

    f = get_loss(check_loss_name(loss, "loss"))
    z = torch.linspace(-4.0, 4.0, n_grid, dtype=torch.float64)
    yv = torch.full_like(z, float(y))
    tot = f(z, yv, reduction="none") + f(z, 1.0 - yv, reduction="none")
    return float(tot.max() - tot.min())


# ============================================================================ claims
CLAIMS = {
    1: "Reverse KL/CE beats forward KL/CE (no label noise)",
    2: "Noise robustness: from 0 to 30-40 % flipped weak labels reverse drops less than forward",
    3: "Reverse CE + confidence regularization beats forward CE + confidence regularization",
    4: "A stronger weak model gives a better student",
    5: "Reverse KL may fail under extreme noise (50 % flips)",
    6: "Theorem 2: the reverse-KL student beats the teacher by at least the disagreement",
}

#: Regimes, in the order of the ledger. Full fine-tuning tables add ``finetune_<regime>``
#: names of their own (``full`` -> ``full_finetune``), without code changes here.
REGIMES = ("last_layer_minibatch", "last_layer_converged", "partial_top0", "partial_top1",
           "partial_top2", "full_finetune", "finetune_head_only")

ROW_RULE = ("holds: effect in the claimed direction with Holm-adjusted p < 0.05 within the "
            "claim's family (claim x regime); does not hold: effect against the claimed "
            "direction with Holm-adjusted p < 0.05; inconclusive: otherwise (also fewer than 2 "
            "paired seeds). Settings whose ceiling - weak CI includes 0 (or lies below 0) are "
            "excluded from weak-to-strong claims 1-5.")
CLAIM_RULE = ("per claim and regime: holds if at least half of the tested rows hold and none "
              "does not hold; does not hold if any tested row does not hold (the paper claims "
              "every setting); inconclusive otherwise; 'no eligible setting' when no row was "
              "tested.")

SYMMETRIC_NOTE = ("reverse CE is a symmetric loss (l(p,y) + l(p,1-y) constant in p; Ghosh et "
                  "al. 2017): its risk minimiser is unchanged by symmetric flips, which explains "
                  "its robustness; reverse KL (the loss of Theorem 2) is not symmetric")

#: Real-sweep tables that share runs (same protocol, same data): pooled as source "real".
SHARED_REAL_TABLES = ("main", "confidence", "noise", "vader")
_FINETUNE_REGIME = {"full": "full_finetune", "head_only": "finetune_head_only",
                    "lastlayer": "last_layer_minibatch", "top0": "partial_top0",
                    "top1": "partial_top1", "top2": "partial_top2"}
#: Tables that are pipeline checks or unsound protocols, not evidence: listed as excluded,
#: never tested.
EXCLUDED_SOURCES = {
    "cpu_reduced": "reduced pipeline check (96 training pairs, 160 test pairs)",
    "cpu_medium": "its lr (5e-5) was chosen on its own test pairs (test leakage); superseded by "
                  "cpu_4k (lr chosen on held-out train_gt pairs)",
}

_RUN_COLS = ["regime", "head", "source", "dataset", "weak", "strong", "loss", "confidence",
             "noise", "seed", "acc", "weak_acc", "ceiling_acc"]


def _root(root, name: str = "root") -> Path:
    if root is None:
        return Path(__file__).resolve().parents[1]
    p = check_path(root, name, must="dir")
    if name == "root" and not (p / "experiments").is_dir():
        raise PathNotFound(f"{name}: {p} has no experiments/ folder (give the repository root, "
                           f"the folder holding experiments/results/)")
    return p


def _read(path: Path, missing: list | None = None):
    """The table at ``path`` as a DataFrame; ``None`` when it is missing (recorded in
    ``missing``) or has no rows. A table that exists but cannot be read, or a result table
    (one with a ``run_key`` column) with an invalid row, raises `ResultTableError` naming
    the file: the ledger never reads around a broken table."""
    import pandas as pd

    from .results_table import ResultTableError, read_table

    if not path.exists():
        if missing is not None:
            missing.append(str(path))
        return None
    if path.is_file() and path.stat().st_size == 0:
        raise ResultTableError(f"{path}: empty file (0 bytes); the ledger does not read around "
                               f"a broken table: restore it, or move it aside")
    try:
        with open(path, encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultTableError(f"{path}: cannot be read ({exc}); the ledger does not read "
                               f"around a broken table: restore it, or move it aside") from None
    if "run_key" in next(csv.reader([first]), []):
        df = read_table(path, strict=True)
    else:
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
                UnicodeDecodeError) as exc:
            raise ResultTableError(f"{path}: cannot be read as CSV "
                                   f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                                   f"the ledger does not read around a broken table: restore it, "
                                   f"or move it aside") from None
    return df if len(df) else None


def load_runs(root=None):
    """One tidy row per trained student from every result table found under ``root``.

    Reads ``experiments/results/real/*.csv`` (tables with the real-sweep schema; a table
    with several learning rates, the lr band, becomes one source per lr, ``band lr=0.001``;
    two regimes:
    the trained softmax head, ``last_layer_minibatch``, and the exact convex fits of the same
    rows, ``last_layer_converged``, deduplicated by fit), ``experiments/results/finetune/*.csv``
    (student rows; ``regime`` column mapped to ``full_finetune`` / ``finetune_<name>``; a new
    table such as ``cpu_4k.csv`` is picked up as it appears, partial or not) and
    ``experiments/synthetic/results/{noise,strength}.csv`` (``dataset = "synthetic"``, ceiling =
    the Bayes accuracy of ``F*``; rows with ``fit_status = "no_minimizer"``, the reverse-CE
    "exact fit" that has no finite minimiser, have no student and are left out). Missing
    tables are skipped.

    Returns:
        ``pandas.DataFrame`` with columns ``regime, head, source, dataset, weak, strong, loss,
        confidence, noise, seed, acc, weak_acc, ceiling_acc`` (accuracies in ``[0, 1]``).
    """
    import pandas as pd

    root = _root(root)
    missing: list[str] = []
    parts = []
    real = []
    for path in sorted((root / "experiments" / "results" / "real").glob("*.csv")):
        df = _read(path)
        need = {"run_key", "student_acc", "weak_acc", "ceiling_acc", "loss", "seed", "noise"}
        if df is None or not need <= set(df.columns):
            continue
        if "lr" in df.columns and df["lr"].nunique() > 1:
            # an lr sensitivity band (e.g. band.csv): one setting per lr, never pooled
            df = df.assign(source=[f"{path.stem} lr={v:g}" for v in df["lr"]])
        elif path.stem in SHARED_REAL_TABLES:
            df = df.assign(source="real")
        else:
            # any other table (e.g. fdiv.csv, on 1000 rows per split) keeps its own settings
            df = df.assign(source=path.stem)
        real.append(df)
    if real:
        # main/confidence/noise share runs (same run_key, same numbers): keep each run once.
        df = pd.concat(real, ignore_index=True).drop_duplicates("run_key")
        mb = df.assign(regime="last_layer_minibatch", head="softmax, 1 epoch batch 16 (Adam)",
                       acc=df["student_acc"])
        parts.append(mb[_RUN_COLS])
        if {"cvx_rkl_acc", "cvx_fkl_acc", "cvx_ceiling_acc"} <= set(df.columns):
            cv = df[~df["confidence"].astype(bool)].drop_duplicates(
                ["dataset", "weak", "strong", "noise", "seed"])
            for loss, col in (("reverse_kl", "cvx_rkl_acc"), ("forward_kl", "cvx_fkl_acc")):
                p = cv.assign(regime="last_layer_converged",
                              head="affine-probability (convex) head, exact fit", loss=loss,
                              acc=cv[col], ceiling_acc=cv["cvx_ceiling_acc"], source="real")
                parts.append(p[_RUN_COLS].dropna(subset=["acc"]))
    for path in sorted((root / "experiments" / "results" / "finetune").glob("*.csv")):
        df = _read(path)
        if df is None or not {"regime", "role", "student_acc", "loss", "seed"} <= set(df.columns):
            continue
        st = df[df["role"] == "student"]
        if not len(st):
            continue
        reg = st["regime"].map(lambda r: _FINETUNE_REGIME.get(r, f"finetune_{r}"))
        p = st.assign(regime=reg, head=st["regime"].map(lambda r: f"fine-tuning trainer ({r})"),
                      source=path.stem, dataset=st["subset"], acc=st["student_acc"])
        parts.append(p[_RUN_COLS])
    syn = root / "experiments" / "synthetic" / "results"
    for name in ("noise", "strength"):
        df = _read(syn / f"{name}.csv", missing)
        if df is None:
            continue
        if "fit_status" in df.columns:   # an exact fit with no finite minimiser: no student
            df = df[df["fit_status"].astype(str) != "no_minimizer"]
        reg = df["head"].map({"minibatch": "last_layer_minibatch",
                              "softmax": "last_layer_converged"})
        p = df.assign(regime=reg, head=df["method"].map(
            lambda m: "softmax, exact fit (L-BFGS+Newton)" if m.startswith("softmax")
            else "softmax, 1 epoch batch 16"),
            source=f"synthetic_{name}", dataset="synthetic",
            weak=df["weak_noise"].map(lambda v: f"weak view (noise {v:g})"),
            strong=df["d_strong"].map(lambda v: f"strong view (d={v})"),
            confidence=False, noise=df["noise_frac"], acc=df["test_acc_strong"],
            weak_acc=df["test_acc_weak"], ceiling_acc=df["test_acc_bayes"])
        parts.append(p[_RUN_COLS].dropna(subset=["regime"]))
    if not parts:
        out = pd.DataFrame(columns=_RUN_COLS)
        out.attrs["missing_tables"] = missing
        return out
    out = pd.concat(parts, ignore_index=True)
    out["confidence"] = out["confidence"].astype(bool)
    out["noise"] = out["noise"].astype(float).round(6)
    out["seed"] = out["seed"].astype(int)
    out.attrs["missing_tables"] = missing
    return out


# ---------------------------------------------------------------------------- paper patterns
def paper_patterns(ref_dir=None) -> dict:
    """The paper's reported patterns, computed from the reference CSVs (percentage points).

    Keys ``(claim, contrast)`` -> ``(value, note)`` where value is the mean over the paper's
    settings (``nan`` when the summary has no number) and note lists every setting, cited
    "as reported (summary of arXiv 2502.11107)". A reference CSV that is missing leaves its
    patterns out; one that cannot be read is an error naming it.
    """
    return _paper_patterns(ref_dir, None)


def _paper_patterns(ref_dir, missing: list | None) -> dict:
    import pandas as pd

    ref = (_root(ref_dir, "ref_dir") if ref_dir is not None
           else _root(None) / "experiments" / "paper_reference")
    cite = "as reported (summary of arXiv 2502.11107)"
    out = {}
    names = ("main_gpt2_cai_harmless.csv", "qwen25.csv", "noise_gpt2_base_medium_cai_harmless.csv")
    if ref_dir is not None and not any((ref / n).is_file() for n in names):
        raise ValueError(f"ref_dir: {ref} holds none of the paper's reference tables {list(names)}")
    main = _read(ref / "main_gpt2_cai_harmless.csv", missing)
    qwen = _read(ref / "qwen25.csv", missing)
    noise = _read(ref / "noise_gpt2_base_medium_cai_harmless.csv", missing)
    if main is not None:
        piv = main.pivot_table(index=["weak", "strong"], columns="loss",
                               values="test_accuracy_pct", sort=False)
        for rev, fwd in (("reverse_kl", "forward_kl"), ("reverse_ce", "forward_ce")):
            d = piv[rev] - piv[fwd]
            extra = ""
            if qwen is not None and rev == "reverse_kl":
                q = qwen.pivot_table(index=["weak", "strong"], columns="loss",
                                     values="test_accuracy_pct", sort=False)
                dq = q["reverse_kl"] - q["forward_kl"]
                extra = "; Qwen2.5: " + ", ".join(f"{a}->{b} {v:+.1f}" for (a, b), v in dq.items())
                d = pd.concat([d, dq])
            out[(1, f"{rev} - {fwd}")] = (
                float(d.mean()), f"{cite}: GPT-2 CAI-Harmless "
                + ", ".join(f"{a}->{b} {v:+.1f}" for (a, b), v in
                            (piv[rev] - piv[fwd]).items()) + extra
                + f"; reverse > forward in {int((d > 0).sum())} of {len(d)}")
        # claim 4: the same strong model with a stronger weak model
        for loss in piv.columns:
            big = piv[loss].xs("gpt2-large", level="strong")
            if {"gpt2", "gpt2-medium"} <= set(big.index):
                v = float(big["gpt2-medium"] - big["gpt2"])
                note = f"{cite}: gpt2-large student, weak gpt2-medium vs gpt2: {v:+.1f}"
                if qwen is not None and loss in set(qwen["loss"]):
                    q = qwen[(qwen.strong == "Qwen2.5-14B") & (qwen.loss == loss)].set_index(
                        "weak")["test_accuracy_pct"]
                    if {"Qwen2.5-3B", "Qwen2.5-7B"} <= set(q.index):
                        vq = float(q["Qwen2.5-7B"] - q["Qwen2.5-3B"])
                        note += f"; Qwen2.5-14B student, weak 7B vs 3B: {vq:+.1f}"
                        v = (v + vq) / 2.0
                out[(4, loss)] = (v, note)
    if main is not None and noise is not None:
        base = main[(main.weak == "gpt2") & (main.strong == "gpt2-medium")].set_index(
            "loss")["test_accuracy_pct"]
        nz = noise.set_index(["noise", "loss"])["test_accuracy_pct"]
        for q in sorted(set(noise["noise"])):
            for rev, fwd in (("reverse_kl", "forward_kl"), ("reverse_ce", "forward_ce")):
                dr = base[rev] - nz[(q, rev)]
                df_ = base[fwd] - nz[(q, fwd)]
                out[(2, f"drop({fwd}) - drop({rev}) @ {q:g}")] = (
                    float(df_ - dr), f"{cite}: gpt2->gpt2-medium, 0 -> {q:.0%} flips: "
                    f"{fwd} drops {df_:.1f}, {rev} drops {dr:.1f} points")
    out[(3, "confidence")] = (math.nan, f"{cite}: claimed; the summary's tables give no "
                                        f"numbers with confidence regularization")
    out[(5, "50%")] = (math.nan, f"{cite}: claimed; the summary's noise table stops at 40 %")
    out[(6, "theorem2")] = (math.nan, f"{cite}: 'consistently validated in experiments' "
                                      f"(no numbers)")
    return out


# ---------------------------------------------------------------------------- ledger rows
def _arm(runs, **sel):
    m = np.ones(len(runs), dtype=bool)
    for k, v in sel.items():
        m &= (runs[k] == v).to_numpy()
    return runs[m].drop_duplicates("seed").set_index("seed")["acc"]


def _pair(a, b):
    common = sorted(set(a.index) & set(b.index))
    return a.loc[common].to_numpy(), b.loc[common].to_numpy(), common


def _gap(runs):
    """ceiling - weak per seed for one setting (noise 0 rows; ceiling and weak are per seed)."""
    r = runs[runs["noise"] == 0.0] if (runs["noise"] == 0.0).any() else runs
    r = r.drop_duplicates("seed").dropna(subset=["ceiling_acc", "weak_acc"])
    if len(r) < 2:
        return False, None
    return gap_filter(r["ceiling_acc"].to_numpy(), r["weak_acc"].to_numpy())


def _setting_name(key) -> str:
    regime, head, source, dataset, weak, strong = key
    return f"{source}/{dataset}: {weak} -> {strong}"


def _row(claim, regime, key, contrast, eff, direction, group="", **extra):
    _, head, source, dataset, weak, strong = key
    base = {"claim": claim, "group": group or contrast, "claim_text": CLAIMS[claim],
            "regime": regime, "head": head,
            "source": source, "dataset": dataset, "weak": weak, "strong": strong,
            "setting": _setting_name(key), "contrast": contrast, "kind": "test",
            "direction": direction}
    if eff is not None:
        base.update({"n_seeds": eff.n, "effect_pts": 100 * eff.mean,
                     "ci_low_pts": 100 * eff.ci_low, "ci_high_pts": 100 * eff.ci_high,
                     "p_value": eff.p_value})
    base.update(extra)
    return base


def _identity_row(claim, regime, key, runs, conf, noise, contrast="forward_ce - forward_kl"):
    a, b = _arm(runs, loss="forward_ce", confidence=conf, noise=noise), \
        _arm(runs, loss="forward_kl", confidence=conf, noise=noise)
    x, y, common = _pair(a, b)
    if not common:
        return None
    mx = float(np.max(np.abs(x - y)))
    return _row(claim, regime, key, contrast, None, 0, kind="identity", n_seeds=len(common),
                effect_pts=100 * mx, verdict="identical" if mx == 0.0 else "differs",
                note="max |acc(forward_ce) - acc(forward_kl)| over seeds: the two have the same "
                     "minimiser; forward CE is not an independent result and is never pooled")


def _ref(fwd_present: bool, rev: str) -> tuple[str, str]:
    fwd = "forward_ce" if rev == "reverse_ce" else "forward_kl"
    if fwd == "forward_ce" and not fwd_present:
        return "forward_kl", " (forward CE not run: identical to forward KL)"
    return fwd, ""


def _claims_1_3_5(runs, regime, key, gap_ok, gap_eff, pp, rows):
    losses = set(runs["loss"])
    excl = {} if gap_ok else {"kind": "excluded", "verdict": "excluded: no weak-to-strong gap"}
    gap_cols = _gap_cols(gap_eff)
    # claim 1: noise 0, no confidence
    for rev in ("reverse_kl", "reverse_ce"):
        if rev not in losses:
            continue
        fwd, how = _ref("forward_ce" in losses, rev)
        a = _arm(runs, loss=rev, confidence=False, noise=0.0)
        b = _arm(runs, loss=fwd, confidence=False, noise=0.0)
        x, y, common = _pair(a, b)
        if not common:
            continue
        pv = pp.get((1, f"{rev} - {'forward_ce' if rev == 'reverse_ce' else 'forward_kl'}"),
                    (math.nan, ""))
        rows.append(_row(1, regime, key, f"{rev} - {fwd}{how}", paired_effect(x, y), +1,
                         group=f"{rev} vs forward", loss=rev, paper_value_pts=pv[0], paper_note=pv[1], **gap_cols, **excl))
    if {"forward_ce", "forward_kl"} <= losses:
        r = _identity_row(1, regime, key, runs, False, 0.0)
        if r:
            r["group"] = "forward_ce = forward_kl"
        if r:
            rows.append({**r, **gap_cols})
    # claim 3: with confidence regularization
    if runs["confidence"].any() and {"reverse_ce", "forward_ce"} <= losses:
        a = _arm(runs, loss="reverse_ce", confidence=True, noise=0.0)
        b = _arm(runs, loss="forward_ce", confidence=True, noise=0.0)
        x, y, common = _pair(a, b)
        if common:
            pv = pp.get((3, "confidence"), (math.nan, ""))
            rows.append(_row(3, regime, key, "reverse_ce+conf - forward_ce+conf",
                             paired_effect(x, y), +1, group="reverse_ce+conf vs forward_ce+conf", paper_value_pts=pv[0], paper_note=pv[1],
                             **gap_cols, **excl))
        r = _identity_row(3, regime, key, runs, True, 0.0,
                          contrast="forward_ce+conf - forward_kl+conf")
        if r:
            r["group"] = "forward_ce = forward_kl"
        if r:
            rows.append({**r, **gap_cols})
    # claim 2: drop from 0 to 30-40 % flips
    noises = set(runs["noise"])
    for q in (0.3, 0.4):
        if q not in noises:
            continue
        for rev in ("reverse_kl", "reverse_ce"):
            if rev not in losses:
                continue
            fwd, how = _ref("forward_ce" in losses, rev)
            a0, aq = _arm(runs, loss=fwd, confidence=False, noise=0.0), \
                _arm(runs, loss=fwd, confidence=False, noise=q)
            r0, rq = _arm(runs, loss=rev, confidence=False, noise=0.0), \
                _arm(runs, loss=rev, confidence=False, noise=q)
            common = sorted(set(a0.index) & set(aq.index) & set(r0.index) & set(rq.index))
            if not common:
                continue
            dfwd = (a0.loc[common] - aq.loc[common]).to_numpy()
            drev = (r0.loc[common] - rq.loc[common]).to_numpy()
            ref_fwd = "forward_ce" if rev == "reverse_ce" else "forward_kl"
            pv = pp.get((2, f"drop({ref_fwd}) - drop({rev}) @ {q:g}"), (math.nan, ""))
            note = SYMMETRIC_NOTE if rev == "reverse_ce" else ""
            rows.append(_row(2, regime, key, f"drop({fwd}) - drop({rev}) @ {q:g}{how}",
                             paired_effect(dfwd, drev), +1, group=f"{rev} vs forward", loss=rev,
                             noise=q,
                             arm_a_pts=100 * float(dfwd.mean()), arm_b_pts=100 * float(drev.mean()),
                             arms=f"drop({fwd}), drop({rev}) in points",
                             paper_value_pts=pv[0], paper_note=pv[1], note=note,
                             **gap_cols, **excl))
    # claim 5: 50 % flips
    if 0.5 in noises and "reverse_kl" in losses:
        pv = pp.get((5, "50%"), (math.nan, ""))
        r0, r5 = _arm(runs, loss="reverse_kl", confidence=False, noise=0.0), \
            _arm(runs, loss="reverse_kl", confidence=False, noise=0.5)
        x, y, common = _pair(r5, r0)
        if common:
            rows.append(_row(5, regime, key, "acc(reverse_kl @ 50%) - acc(reverse_kl @ 0%)",
                             paired_effect(x, y), -1, group="reverse KL collapses at 50 %",
                             noise=0.5, paper_value_pts=pv[0],
                             paper_note=pv[1], **gap_cols, **excl))
        f5 = _arm(runs, loss="forward_kl", confidence=False, noise=0.5)
        x, y, common = _pair(r5, f5)
        if common:
            rows.append(_row(5, regime, key,
                             "acc(reverse_kl @ 50%) - acc(forward_kl @ 50%)",
                             paired_effect(x, y), -1, group="reverse KL worse than forward at 50 %",
                             noise=0.5, paper_value_pts=pv[0],
                             paper_note=pv[1], **gap_cols, **excl))
        for loss in sorted(losses):
            a5 = _arm(runs, loss=loss, confidence=False, noise=0.5)
            if len(a5):
                e = paired_effect(a5.to_numpy(), np.full(len(a5), 0.5))
                rows.append(_row(5, regime, key, f"acc({loss} @ 50%) - chance", e, 0,
                                 group="every loss at 50 %", loss=loss, noise=0.5,
                                 kind="descriptive",
                                 verdict="at chance" if e.ci_low <= 0 <= e.ci_high
                                 else ("above chance" if e.ci_low > 0 else "below chance"),
                                 note="50 % symmetric flips make every weak label's expectation "
                                      "1/2: the labels carry no signal for any loss",
                                 **gap_cols))


def _gap_cols(gap_eff) -> dict:
    if gap_eff is None:
        return {"gap_pts": math.nan, "gap_ci_low_pts": math.nan, "gap_ci_high_pts": math.nan}
    return {"gap_pts": 100 * gap_eff.mean, "gap_ci_low_pts": 100 * gap_eff.ci_low,
            "gap_ci_high_pts": 100 * gap_eff.ci_high}


def _claim4(runs_regime, regime, pp, gaps, rows):
    """Stronger weak model -> better student: adjacent weak models of one strong model."""
    cols = ["head", "source", "dataset", "strong"]
    for (head, source, dataset, strong), grp in runs_regime.groupby(cols, sort=False):
        weaks = list(dict.fromkeys(grp["weak"]))
        if len(weaks) < 2:
            continue
        base = grp[(grp["noise"] == 0.0) & ~grp["confidence"]]
        wacc = {w: base[base.weak == w].drop_duplicates("seed").set_index("seed")["weak_acc"]
                for w in weaks}
        order = sorted(weaks, key=lambda w: float(wacc[w].mean()) if len(wacc[w]) else -1)
        for w1, w2 in zip(order[:-1], order[1:]):
            x, y, common = _pair(wacc[w2], wacc[w1])
            if len(common) < 2:
                continue
            weff = paired_effect(x, y)
            k1 = (regime, head, source, dataset, w1, strong)
            k2 = (regime, head, source, dataset, w2, strong)
            key = (regime, head, source, dataset, f"{w1} vs {w2}", strong)
            ok = gaps.get(k1, (False,))[0] and gaps.get(k2, (False,))[0]
            excl = {}
            if not (np.isfinite(weff.ci_low) and weff.ci_low > 0):
                excl = {"kind": "excluded", "verdict": "excluded: weak models not distinguishable "
                        f"(weak acc diff {100 * weff.mean:+.2f} pts, CI includes 0)"}
            elif not ok:
                excl = {"kind": "excluded", "verdict": "excluded: no weak-to-strong gap"}
            present = list(dict.fromkeys(base["loss"]))
            for loss in present:
                if loss == "forward_ce" and "forward_kl" in present:
                    continue      # identical to forward KL: one row, not two (never pooled)
                a = _arm(base, weak=w2, loss=loss)
                b = _arm(base, weak=w1, loss=loss)
                xs, ys, cm = _pair(a, b)
                if not cm:
                    continue
                pv = pp.get((4, loss), (math.nan, ""))
                rows.append(_row(4, regime, key, f"student({w2}) - student({w1}), {loss}",
                                 paired_effect(xs, ys), +1, group="stronger weak model",
                                 loss=loss,
                                 arm_a_pts=100 * weff.mean, arms="weak acc gain (points)",
                                 paper_value_pts=pv[0], paper_note=pv[1], **excl))


def _claim6(root, rows, missing=None):
    """Theorem 2 checks: against the truth, against the ceiling (an identity), misspecified."""
    import pandas as pd

    root = _root(root)
    real = []
    for path in sorted((root / "experiments" / "results" / "real").glob("*.csv")):
        df = _read(path)
        if df is not None and "cvx_rkl_t2fit_truth_slack" in df.columns:
            real.append(df)
    if real:
        df = pd.concat(real, ignore_index=True)
        df = df[~df["confidence"].astype(bool)].drop_duplicates(
            ["dataset", "weak", "strong", "noise", "seed"])
        key = ("last_layer_converged", "affine-probability (convex) head, exact fit", "real",
               "all", "all", "all")
        for tag, what in (("cvx_rkl", "reverse-KL convex fits"),
                          ("cvx_fkl", "forward-KL convex fits (not covered by the theorem)")):
            if f"{tag}_t2fit_truth_slack" not in df.columns:
                continue
            d = df.dropna(subset=[f"{tag}_t2fit_truth_slack"])
            tol = d[f"{tag}_duality_gap"].fillna(0.0).to_numpy()
            for pop, col in (("fit population", f"{tag}_t2fit_truth_slack"),
                             ("test split", f"{tag}_t2test_truth_slack")):
                if col not in d.columns:
                    continue
                ht = int((d[col].to_numpy() >= -tol).sum())
                rows.append(_row(6, "last_layer_converged", key,
                                 f"{what}: Theorem 2 vs the truth ({pop}; one-hot labels, not "
                                 f"in C)", None, 0, kind="bound_check", n_runs=len(d),
                                 n_holds=ht, verdict=_check_verdict(ht, len(d), tag == "cvx_rkl"),
                                 note="F* = the real labels: realizability fails, the theorem "
                                      "does not apply; the check can and does fail (it holds "
                                      "only where 30-50 % flips make the teacher much worse)"))
            if f"{tag}_t2fit_ceil_holds" in d.columns:
                hc = int(d[f"{tag}_t2fit_ceil_holds"].astype(bool).sum())
                ident = tag == "cvx_rkl"
                rows.append(_row(
                    6, "last_layer_converged", key,
                    f"{what}: Theorem 2 vs the convex ceiling", None, 0,
                    kind="identity" if ident else "bound_check", n_runs=len(d), n_holds=hc,
                    verdict=("holds by construction (identity)" if ident
                             else _check_verdict(hc, len(d), False)),
                    note=("the ceiling is a member of C by construction, so the check is "
                          "Csiszar's Pythagorean inequality at R = ceiling: it certifies the "
                          "solver, not a weak-to-strong gain on the truth" if ident else
                          "the M-projection has no Pythagorean inequality: fails often")))
        mis = [c for c in ("cvx_rkl_t2mis_holds", "cvx_rkl_t2mis_gain_positive") if c in df]
        if len(mis) == 2:
            d = df.dropna(subset=mis)
            rows.append(_row(6, "last_layer_converged", key,
                             "reverse-KL convex fits: misspecified form gain >= d_rev - 2 eps",
                             None, 0, kind="bound_check", n_runs=len(d),
                             n_holds=int(d[mis[0]].astype(bool).sum()),
                             n_gain_positive=int(d[mis[1]].astype(bool).sum()),
                             verdict=_check_verdict(int(d[mis[0]].astype(bool).sum()), len(d),
                                                    True)))
        else:
            rows.append(_row(6, "last_layer_converged", key,
                             "reverse-KL convex fits: misspecified form gain >= d_rev - 2 eps",
                             None, 0, kind="bound_check", verdict="not computed yet",
                             note="needs the per-row eps of w2s_theory.misspecification on the "
                                  "fit population (phase 2: the sweep's convex_results)"))
        for col, regime_what in (("t2fit_truth_slack", "trained softmax students vs the truth "
                                  "(outside the theorem: softmax heads are not mixture-convex)"),):
            if col in df.columns:
                all_rows = pd.concat(real, ignore_index=True).drop_duplicates("run_key")
                d = all_rows.dropna(subset=[col])
                h = int((d[col] >= 0).sum())
                rows.append(_row(6, "last_layer_minibatch",
                                 ("last_layer_minibatch", "softmax, 1 epoch batch 16 (Adam)",
                                  "real", "all", "all", "all"), regime_what, None, 0,
                                 kind="descriptive", n_runs=len(d), n_holds=h,
                                 verdict=f"holds on {h}/{len(d)}"))
    for path in sorted((root / "experiments" / "results" / "finetune").glob("*.csv")):
        df = _read(path)
        if df is None or "t2test_truth_slack" not in df.columns or "role" not in df.columns:
            continue
        if path.stem in EXCLUDED_SOURCES:
            continue
        st = df[df["role"] == "student"]
        for reg, d in st.groupby("regime"):
            regime = _FINETUNE_REGIME.get(reg, f"finetune_{reg}")
            key = (regime, f"fine-tuning trainer ({reg})", path.stem, "all", "all", "all")
            for col, what in (("t2test_truth_slack", "vs the truth"),
                              ("t2test_ceil_slack", "vs the trained ceiling")):
                dd = d.dropna(subset=[col])
                h = int((dd[col] >= 0).sum())
                rows.append(_row(6, regime, key, f"fine-tuned students, Theorem 2 {what} (test; "
                                 "outside the theorem's class)", None, 0, kind="descriptive",
                                 n_runs=len(dd), n_holds=h, verdict=f"holds on {h}/{len(dd)}"))
    syn = root / "experiments" / "synthetic" / "results"
    t2 = _read(syn / "theorem2.csv", missing)
    if t2 is not None:
        for (variant, method), d in t2.groupby(["variant", "method"], sort=False):
            covered = method == "convex/reverse_kl" and variant in ("realizable",
                                                                    "confident_weak")
            h = int(d["holds_rev"].astype(bool).sum())
            key = ("last_layer_converged", method, "synthetic_theorem2", "synthetic", variant,
                   "all")
            rows.append(_row(6, "last_layer_converged", key,
                             f"Theorem 2 ({variant}, {method})", None, 0,
                             kind="bound_check" if covered else "descriptive", n_runs=len(d),
                             n_holds=h, verdict=(_check_verdict(h, len(d), True) if covered
                                                 else f"holds on {h}/{len(d)} (not covered)"),
                             note=("realizable soft truth in C: the theorem's own hypotheses"
                                   if covered else "an assumption broken on purpose")))
    tm = _read(syn / "theorem2_misspecified.csv", missing)
    if tm is not None:
        for variant, d in tm.groupby("variant", sort=False):
            key = ("last_layer_converged", "convex/reverse_kl", "synthetic_theorem2_misspecified",
                   "synthetic", variant, "all")
            h = int(d["holds"].astype(bool).sum())
            rows.append(_row(6, "last_layer_converged", key,
                             f"misspecified form gain >= d_rev - 2 eps ({variant})", None, 0,
                             kind="bound_check", n_runs=len(d), n_holds=h,
                             n_gain_positive=int(d["gain_positive"].astype(bool).sum()),
                             n_realizable_form_holds=int(d["realizable_holds"].astype(bool).sum()),
                             verdict=_check_verdict(h, len(d), True),
                             note=f"median eps {d['epsilon'].median():.3g}, median d_rev "
                                  f"{d['d_reverse'].median():.3g}"))


def _check_verdict(n_holds: int, n: int, covered: bool) -> str:
    if n == 0:
        return "no runs"
    if covered:
        return f"holds ({n_holds}/{n})" if n_holds == n else f"does not hold ({n_holds}/{n})"
    return f"holds on {n_holds}/{n}"


def build_ledger(root=None, ref_dir=None):
    """The claims ledger: one row per (claim, regime, setting, contrast), verdicts by the rules.

    Columns (among others): ``claim, regime, setting, contrast, kind`` (``test`` -- in the
    claim's Holm family; ``identity``, ``descriptive``, ``bound_check``, ``excluded``),
    ``n_seeds, effect_pts, ci_low_pts, ci_high_pts, p_value, p_holm, family_size, verdict,
    gap_pts`` (+ CI), ``paper_value_pts, paper_note, note``. Verdicts follow `ROW_RULE`.

    Every table found is read in full or the build stops: a table that cannot be read, or a
    result table with an invalid row (`w2s_theory.results_table.read_table`), raises
    `w2s_theory.results_table.ResultTableError` naming the file; a ``root`` that is not a
    folder with ``experiments/`` in it raises ``FileNotFoundError``. Optional tables of fixed
    name that are absent (the synthetic tables, the paper's reference CSVs) are listed in
    ``ledger.attrs["missing_tables"]`` (``python -m w2s_theory.ledger`` prints them).

    Returns:
        ``pandas.DataFrame`` sorted by claim, regime, setting.
    """
    import pandas as pd

    if ref_dir is not None:
        _root(ref_dir, "ref_dir")
    runs = load_runs(root)
    missing = list(runs.attrs.get("missing_tables", []))
    pp = _paper_patterns(ref_dir, missing)
    rows: list = []
    keys = ["regime", "head", "source", "dataset", "weak", "strong"]
    gaps = {}
    for key, grp in runs.groupby(keys, sort=False):
        if key[2] in EXCLUDED_SOURCES:
            continue
        gaps[key] = _gap(grp)
    for key, grp in runs.groupby(keys, sort=False):
        if key[2] in EXCLUDED_SOURCES:
            rows.append(_row(1, key[0], key, "all claims", None, 0, kind="excluded",
                             verdict=f"excluded: {EXCLUDED_SOURCES[key[2]]}"))
            continue
        ok, eff = gaps[key]
        _claims_1_3_5(grp, key[0], key, ok, eff, pp, rows)
    for regime, grp in runs.groupby("regime", sort=False):
        grp = grp[~grp["source"].isin(list(EXCLUDED_SOURCES))]
        _claim4(grp, regime, pp, gaps, rows)
    _claim6(root, rows, missing)
    missing = list(dict.fromkeys(missing))
    if not rows:
        empty = pd.DataFrame(columns=LEDGER_COLUMNS)
        empty.attrs["missing_tables"] = missing
        return empty
    led = pd.DataFrame(rows)
    for c in LEDGER_COLUMNS:
        if c not in led.columns:
            led[c] = np.nan
    for c in ("p_holm", "family_size"):
        led[c] = np.nan
    test = led["kind"] == "test"
    for _family, idx in led[test].groupby(["claim", "regime"]).groups.items():
        p = led.loc[idx, "p_value"].to_numpy(dtype=float)
        led.loc[idx, "p_holm"] = holm(p)
        led.loc[idx, "family_size"] = len(p)          # nan p-values count (as p = 1, see holm)
    led["verdict"] = led["verdict"].astype(object)
    led.loc[test, "verdict"] = [
        _row_verdict(e, ph, d) for e, ph, d in
        zip(led.loc[test, "effect_pts"], led.loc[test, "p_holm"], led.loc[test, "direction"])]
    led["rule"] = np.where(test, ROW_RULE, "")
    order = {r: i for i, r in enumerate(REGIMES)}
    led["_r"] = led["regime"].map(lambda r: order.get(r, len(order)))
    led = led.sort_values(["claim", "_r", "source", "setting", "contrast"],
                          kind="stable").drop(columns="_r").reset_index(drop=True)
    led = led[LEDGER_COLUMNS]
    led.attrs["missing_tables"] = missing
    return led


#: Columns of `build_ledger`, in order.
LEDGER_COLUMNS = [
    "claim", "group", "regime", "setting", "contrast", "kind", "verdict", "n_seeds",
    "effect_pts", "ci_low_pts", "ci_high_pts", "p_value", "p_holm", "family_size", "direction",
    "gap_pts", "gap_ci_low_pts", "gap_ci_high_pts", "paper_value_pts", "paper_note",
    "arm_a_pts", "arm_b_pts", "arms", "n_runs", "n_holds", "n_gain_positive",
    "n_realizable_form_holds", "note", "claim_text", "head", "source", "dataset", "weak",
    "strong", "loss", "noise", "rule",
]


def write_ledger(root=None, out=None, *, ledger=None) -> Path:
    """Build the ledger from the tables under ``root`` (or take ``ledger``, a `build_ledger`
    result) and write it (default ``experiments/results/ledger.csv``) with its summary beside
    it (``ledger_summary.csv``)."""
    root = _root(root)
    if out is not None:
        out = check_path(out, "out", must="out")
    out = out if out is not None else root / "experiments" / "results" / "ledger.csv"
    led = build_ledger(root) if ledger is None else ledger
    out.parent.mkdir(parents=True, exist_ok=True)
    led.to_csv(out, index=False, float_format="%.10g")
    summarize(led).to_csv(out.with_name(out.stem + "_summary.csv"), index=False)
    return out



def _row_verdict(effect, p_holm, direction) -> str:
    if not (np.isfinite(effect) and np.isfinite(p_holm)):
        return "inconclusive"
    if p_holm < ALPHA and np.sign(effect) == direction:
        return "holds"
    if p_holm < ALPHA and np.sign(effect) == -direction:
        return "does not hold"
    return "inconclusive"


def _check_frame(df, name: str, columns) -> None:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ArgumentTypeError(f"{name}: must be a pandas DataFrame, got {type(df).__name__}")
    miss = [c for c in columns if c not in df.columns]
    if miss:
        raise ValueError(f"{name}: missing column(s) {miss}")


def summarize(ledger):
    """One verdict per (claim, regime) by `CLAIM_RULE`, with the row counts behind it.

    Claim 6 rows (bound checks) are summarized by their own verdict strings.
    """
    import pandas as pd

    _check_frame(ledger, "ledger", ("claim", "regime", "group", "kind", "verdict"))
    out = []
    for (claim, regime, group), g in ledger.groupby(["claim", "regime", "group"], sort=False):
        t = g[g["kind"] == "test"]
        n_h = int((t["verdict"] == "holds").sum())
        n_n = int((t["verdict"] == "does not hold").sum())
        n_i = int((t["verdict"] == "inconclusive").sum())
        n_x = int((g["kind"] == "excluded").sum())
        if claim == 6 or (len(t) == 0 and (g["kind"].isin(["identity", "descriptive"])).all()):
            verdict = "; ".join(dict.fromkeys(g["verdict"].astype(str)))
        elif len(t) == 0:
            verdict = "no eligible setting"
        elif n_n > 0:
            verdict = "does not hold"
        elif n_h >= len(t) / 2.0:
            verdict = "holds"
        else:
            verdict = "inconclusive"
        paper = g["paper_note"].dropna() if "paper_note" in g else pd.Series(dtype=str)
        out.append({"claim": claim, "claim_text": CLAIMS[claim], "regime": regime,
                    "group": group,
                    "tested": len(t), "holds": n_h, "does_not_hold": n_n, "inconclusive": n_i,
                    "excluded": n_x, "verdict": verdict,
                    "paper": paper.iloc[0] if len(paper) else ""})
    return pd.DataFrame(out)


def pgr_table(root=None):
    """PGR per setting and loss (noise 0, no confidence) with Fieller's 95 % interval.

    Forward CE rows are left out (identical to forward KL in these protocols)."""
    import pandas as pd

    runs = load_runs(root)
    runs = runs[(runs["noise"] == 0.0) & ~runs["confidence"]
                & ~runs["source"].isin(list(EXCLUDED_SOURCES))]
    out = []
    keys = ["regime", "head", "source", "dataset", "weak", "strong", "loss"]
    for key, g in runs.groupby(keys, sort=False):
        if key[-1] == "forward_ce":
            continue          # identical to forward KL in these protocols: not a second result
        g = g.drop_duplicates("seed").dropna(subset=["acc", "weak_acc", "ceiling_acc"])
        r = pgr_interval(g["acc"].to_numpy(), g["weak_acc"].to_numpy(),
                         g["ceiling_acc"].to_numpy())
        out.append({**dict(zip(keys, key)), **r.to_dict()})
    return pd.DataFrame(out)


#: Markers of the README block that `results_markdown` writes (``tests/test_readme_results.py``
#: checks that the committed README holds exactly the block generated from the committed ledger).
README_MARKERS = ("<!-- results:start (generated by python -m w2s_theory.ledger --readme) -->",
                  "<!-- results:end -->")

_REGIME_NAMES = {"last_layer_minibatch": "last layer, 1 epoch (Adam, batch 16)",
                 "last_layer_converged": "last layer, converged / exact convex fit",
                 "full_finetune": "full fine-tuning", "finetune_head_only": "fine-tuning trainer, head only",
                 "partial_top0": "top-0 blocks", "partial_top1": "top-1 block",
                 "partial_top2": "top-2 blocks"}


def results_markdown(summary) -> str:
    """The README's "results in brief": one line per (claim, regime, contrast) of a ledger
    summary (`summarize`), verdicts and counts as they are in the table.

    Example:
        >>> import pandas as pd
        >>> s = pd.DataFrame([{"claim": 1, "claim_text": "Reverse beats forward", "regime":
        ...     "full_finetune", "group": "reverse_kl vs forward", "tested": 2, "holds": 0,
        ...     "does_not_hold": 0, "inconclusive": 2, "excluded": 0, "verdict": "inconclusive",
        ...     "paper": ""}])
        >>> print(results_markdown(s).splitlines()[2])
        | 1 | full fine-tuning | reverse_kl vs forward | **inconclusive** | 0 / 0 / 2 of 2 (0 excluded: no gap) |
    """
    _check_frame(summary, "summary", ("claim", "claim_text", "regime", "group", "tested", "holds",
                                      "does_not_hold", "inconclusive", "excluded", "verdict"))
    lines = ["| claim | regime | contrast | verdict here | holds / does not / inconclusive "
             "(excluded) |", "|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        if r["group"] == "forward_ce = forward_kl":
            continue
        if int(r["claim"]) == 6:
            counts = "bound checks (see the ledger)"
        else:
            counts = (f"{int(r['holds'])} / {int(r['does_not_hold'])} / {int(r['inconclusive'])} "
                      f"of {int(r['tested'])} ({int(r['excluded'])} excluded: no gap)")
        verdict = str(r["verdict"]).replace("|", "/")
        if len(verdict) > 160:
            verdict = verdict[:157] + "..."
        lines.append(f"| {int(r['claim'])} | {_REGIME_NAMES.get(r['regime'], r['regime'])} | "
                     f"{r['group']} | **{verdict}** | {counts} |")
    claims = summary.drop_duplicates("claim")[["claim", "claim_text"]]
    lines += ["", "Claims (of arXiv 2502.11107, as summarized in `experiments/paper_reference/`): "
              + "; ".join(f"{int(c)}. {t}" for c, t in zip(claims["claim"], claims["claim_text"]))
              + ". Rule: a row holds when its Holm-corrected p < 0.05 in the claim's direction; "
              "settings whose ceiling does not beat the weak model (95 % CI) are excluded."]
    return "\n".join(lines)


def update_readme(readme=None, root=None) -> Path:
    """Rewrite the README's results block from the committed ledger summary."""

    root = _root(root)
    if readme is not None and (not isinstance(readme, (str, os.PathLike))
                               or isinstance(readme, bytes)):
        raise ArgumentTypeError(f"readme: must be a file path, got {type(readme).__name__}")
    readme = Path(readme) if readme else root / "README.md"
    if not readme.is_file():
        raise FileNotFoundError(f"readme: {readme} is not a file")
    text = readme.read_text(encoding="utf-8")
    a, b = README_MARKERS
    if a not in text or b not in text:
        raise ValueError(f"{readme}: no results block (the lines {a!r} ... {b!r})")
    summ = _read(root / "experiments" / "results" / "ledger_summary.csv")
    if summ is None:
        raise FileNotFoundError(f"{root / 'experiments' / 'results' / 'ledger_summary.csv'}: "
                                f"missing or empty; run python -m w2s_theory.ledger first")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    readme.write_text(f"{head}{a}\n{results_markdown(summ)}\n{b}{tail}")
    return readme


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.ledger [--readme] [--out PATH]``: rebuild the claims ledger."""
    import sys

    from .config import UserError

    ap = argparse.ArgumentParser(
        prog="python -m w2s_theory.ledger",
        description="Rebuild the claims ledger (experiments/results/ledger.csv and "
                    "ledger_summary.csv) from the committed result tables.")
    ap.add_argument("--readme", action="store_true",
                    help="also rewrite the README's results block from the new summary")
    ap.add_argument("--out", type=Path, default=None,
                    help="where to write the ledger (default experiments/results/ledger.csv)")
    args = ap.parse_args(argv)
    try:
        led = build_ledger()
        for m in led.attrs.get("missing_tables", []):
            print(f"missing (skipped): {m}", file=sys.stderr)
        print(write_ledger(out=args.out, ledger=led))
        if args.readme:
            print(update_readme())
    except (UserError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
