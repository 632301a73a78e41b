r"""Claims ledger: the paper's six claims tested per regime and setting on the committed tables.

The ledger is computed from the declared analysis plan (``experiments/analysis.toml``,
`w2s_theory.plan`): `build` (families and settings from the plan, the data split as the unit
of replication, split-aware intervals, TOST with the declared margin, Holm within each family,
four verdict words, every excluded setting / seed / fit listed with its reason, claim 6's
checks with Clopper-Pearson intervals, sensitivity families never pooled), `Ledger`, `write`
(``ledger.csv``, ``ledger_summary.csv``, ``ledger_excluded.csv``, ``ledger_checks.csv``) and
``python -m w2s_theory.ledger``.

The issue-17 ledger (`build_ledger`, `load_runs`, `summarize`, `write_ledger`: its own rules
`ROW_RULE` / `CLAIM_RULE`, no plan) is kept for its callers; the committed ledger no longer
comes from it. Its layers:

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
    "Ledger",
    "build",
    "write",
    "summary_text",
    "ROW_COLUMNS",
    "SUMMARY_COLUMNS",
    "EXCLUDED_COLUMNS",
    "CHECK_COLUMNS",
    "PLAN_PATH",
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


# ============================================================================ plan-driven ledger
# Issue 18: the ledger computed from the declared analysis plan (`w2s_theory.plan`): families
# and their settings from the plan, the split as the unit of replication, four verdict words,
# claim definitions as declared, and every named setting / seed / fit either in the ledger or in
# `Ledger.excluded` with its reason.

#: Columns of `Ledger.rows` (``ledger.csv``), in order.
ROW_COLUMNS = ["family", "claim", "regime", "contrast", "kind", "arms", "noise_level", "setting",
               "dataset", "weak", "strong", "n_splits", "n_pairs", "effect_pts", "ci_low",
               "ci_high", "seed_ci_low", "seed_ci_high", "mixed_ci_low", "mixed_ci_high", "p",
               "p_holm", "p_tost", "p_tost_holm", "margin", "direction", "word", "holds",
               "paper_pts", "context", "note"]
#: Columns of `Ledger.summary` (``ledger_summary.csv``).
SUMMARY_COLUMNS = ["family", "claim", "regime", "contrast", "kind", "arms", "noise_level",
                   "n_settings", "effect_pts", "ci_low", "ci_high", "word", "n_better", "n_worse",
                   "n_equivalent", "n_inconclusive", "margin", "paper_pts", "note"]
#: Columns of `Ledger.excluded` (``ledger_excluded.csv``).
EXCLUDED_COLUMNS = ["family", "setting", "table", "split", "seed", "run_key", "reason"]
#: Columns of `Ledger.checks` (``ledger_checks.csv``, claim 6).
CHECK_COLUMNS = ["table", "column", "scope", "n", "n_holds", "frac", "ci_low", "ci_high",
                 "covered", "word"]
#: The committed analysis plan, relative to the repository root.
PLAN_PATH = Path("experiments") / "analysis.toml"
#: File names `write` uses, in ``Ledger`` attribute order (rows, summary, excluded, checks).
LEDGER_FILES = ("ledger.csv", "ledger_summary.csv", "ledger_excluded.csv", "ledger_checks.csv")


@dataclass(frozen=True)
class Ledger:
    """The claims ledger built from a plan (`build`).

    Attributes:
        rows: one row per (family, setting), columns `ROW_COLUMNS`.
        summary: one row per family, columns `SUMMARY_COLUMNS`.
        excluded: every named setting / seed / fit not in ``rows``, with its reason
            (`EXCLUDED_COLUMNS`).
        checks: claim 6's bound checks, counts with Clopper-Pearson intervals
            (`CHECK_COLUMNS`).
        statements: plain statements reported, not tested (claim 5's chance statement, the
            sensitivity notes).
    """

    rows: object
    summary: object
    excluded: object
    checks: object
    statements: tuple = ()


def _fmt_pts(x) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:+.2f}"


def _read_csv_table(path: Path):
    import pandas as pd

    try:
        df = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        return None
    return df


def _resplit_name(plan, table: str) -> str | None:
    """The re-split table of ``table`` by ``[replication] resplit_table_pattern``, when it
    lives under the committed table's folder (``.../real/splits/main.csv`` for
    ``.../real/main.csv``); ``None`` otherwise."""
    if not plan.resplit_table_pattern:
        return None
    rp = plan.resplit_table_pattern.format(stem=Path(table).stem)
    if rp == table or Path(table).parent not in Path(rp).parents:
        return None
    return rp


def _load_table(plan, table: str, tables, root: Path):
    """``(frame or None, reason)``: the committed table (split 0) plus its re-split rows."""
    import pandas as pd

    split = plan.split_column
    if tables is not None:
        df = tables.get(table)
        df = None if df is None else df.copy()
    else:
        p = root / table
        df = _read_csv_table(p) if p.is_file() else None
    if df is None:
        return None, "missing table"
    if split not in df.columns:
        df[split] = plan.committed_split
    df["_source_tmp"] = table
    rp = _resplit_name(plan, table)
    if rp is not None:
        if tables is not None:
            r = tables.get(rp)
            r = None if r is None else r.copy()
        else:
            r = _read_csv_table(root / rp) if (root / rp).is_file() else None
        if r is not None and len(r):
            if split not in r.columns:
                raise ValueError(f"tables: {rp} has no {split!r} column (a re-split table)")
            r["_source_tmp"] = rp
            df = pd.concat([df, r], ignore_index=True, sort=False)
    return _normalise(df, split), ""


def _normalise(df, split: str):
    """Add the columns the ledger works on: ``x_split``, ``x_acc``, ``x_noise``, ``x_dataset``,
    ``x_weak``, ``x_strong``, ``x_setting`` (synthetic tables: weak = ``weak_noise=...``,
    strong = the head; fine-tuning tables: the setting names its ``regime``)."""
    import pandas as pd

    if "seed" not in df.columns:
        raise ValueError("tables: a result table needs a 'seed' column")
    n = len(df)

    def text(col, default=""):
        return (df[col].astype(str).to_numpy(dtype=object) if col in df.columns
                else np.full(n, default, dtype=object))

    x = {"x_split": pd.to_numeric(df[split], errors="raise").astype(int).to_numpy()}
    acc = next((c for c in ("student_acc", "test_acc_strong") if c in df.columns), None)
    x["x_acc"] = (pd.to_numeric(df[acc], errors="coerce").to_numpy(float) if acc
                  else np.full(n, np.nan))
    noise = next((c for c in ("noise", "noise_frac") if c in df.columns), None)
    x["x_noise"] = df[noise].astype(float).round(10).to_numpy() if noise else np.zeros(n)
    ds = next((c for c in ("dataset", "subset") if c in df.columns), None)
    x["x_dataset"] = text(ds) if ds else np.full(
        n, "synthetic" if "weak_noise" in df.columns else "", dtype=object)
    if "weak" in df.columns:
        x["x_weak"] = text("weak")
    elif "weak_noise" in df.columns:
        x["x_weak"] = np.array(["weak_noise=" + v for v in text("weak_noise")], dtype=object)
    else:
        x["x_weak"] = text("")
    x["x_strong"] = text("strong") if "strong" in df.columns else text("head")
    regime = text("regime") if ("regime" in df.columns and "role" in df.columns) else None
    setting = []
    for i in range(n):
        d, w, s = x["x_dataset"][i], x["x_weak"][i], x["x_strong"][i]
        name = f"{d}:{w}->{s}" if (w or s) else (d or "all")  # no models named: one setting
        setting.append(name if regime is None else f"{name} [{regime[i]}]")
    x["x_setting"] = np.array(setting, dtype=object)
    x["x_source"] = text("_source_tmp")
    keep = df.drop(columns=[c for c in df.columns if c.startswith("x_") or c == "_source_tmp"])
    if "run_key" in keep.columns:
        keep = keep.assign(run_key=keep["run_key"].astype(str).to_numpy(dtype=object))
    else:
        keep = keep.assign(run_key=np.full(n, "", dtype=object))
    if "loss" in keep.columns:
        keep = keep.assign(loss=keep["loss"].astype(str).to_numpy(dtype=object))
    return pd.concat([keep, pd.DataFrame(x, index=df.index)], axis=1)


def _mask(df, filters: dict, pairs, where: str):
    import pandas as pd

    mask = pd.Series(True, index=df.index)
    for col, vals in filters.items():
        if col not in df.columns:
            raise ValueError(f"plan: {where}: filter column {col!r} is not a column of the table")
        c = df[col]
        if pd.api.types.is_float_dtype(c):
            mask &= c.round(10).isin([round(float(v), 10) for v in vals])
        else:
            mask &= c.isin(list(vals))
    if pairs is not None:
        ps = set(pairs)
        mask &= pd.Series([(w, s) in ps for w, s in zip(df["x_weak"], df["x_strong"])],
                          index=df.index)
    return mask


class _Excl:
    """Collects `Ledger.excluded` rows."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, family, setting, table, split, seed, run_key, reason):
        self.rows.append({"family": family, "setting": setting, "table": table,
                          "split": split, "seed": seed, "run_key": run_key, "reason": reason})

    def frame(self, df, family, reason):
        for r in df.itertuples(index=False):
            self.add(family, r.x_setting, r.x_source, int(r.x_split), int(r.seed), r.run_key,
                     reason)


def _value_cols(fam) -> list[str]:
    return list(fam.columns) if fam.columns else ["x_acc"]


def _dedupe(fam, sel, plan, excl: _Excl):
    """Remove duplicate runs within a family (run key, then the plan's identity columns plus
    split / setting / noise); each removed one is listed. The same run key (or coordinates)
    with a different result is not a duplicate: `build` stops."""
    vals = _value_cols(fam)
    if len(sel) == 0:
        return sel

    def check_and_drop(key_cols, how):
        nonlocal sel
        dup = sel.duplicated(key_cols, keep="first")
        if not dup.any():
            return
        first = sel[~dup].set_index(key_cols)
        for _, r in sel[dup].iterrows():
            k = tuple(r[c] for c in key_cols)
            k = k[0] if len(k) == 1 else k
            kept = first.loc[k]
            if isinstance(kept, type(sel)):
                kept = kept.iloc[0]
            a = np.array([r[v] for v in vals], dtype=float)
            b = np.array([kept[v] for v in vals], dtype=float)
            if not np.allclose(a, b, rtol=0, atol=1e-12, equal_nan=True):
                raise ValueError(
                    f"family {fam.id}: run {k!r} ({how}) appears twice with different results "
                    f"({kept['x_source']}: {b.tolist()}, {r['x_source']}: {a.tolist()}); a run "
                    f"enters a family at most once")
            excl.add(fam.id, r["x_setting"], r["x_source"], int(r["x_split"]), int(r["seed"]),
                     r["run_key"], f"duplicate of {kept['x_source']} ({how})")
        sel = sel[~dup]

    if (sel["run_key"].astype(str) != "").all():
        check_and_drop(["run_key", "x_split"], "same run_key")
    ident = [c for c in plan.identity_columns
             if c in sel.columns and c not in ("dataset", "weak", "strong", "noise")]
    ident += ["x_split", "x_setting", "x_noise", "seed"]
    if "loss" in sel.columns and not fam.columns:
        ident.append("loss")
    if fam.columns:   # one convex fit per unit: its loss rows repeat it (by design, not listed)
        sel = sel.drop_duplicates(["x_split", "x_setting", "x_noise", "seed"], keep="first")
        return sel
    check_and_drop(list(dict.fromkeys(ident)), "same coordinates")
    return sel


def _fit_status(fam, sel, plan, excl: _Excl):
    """Converged families: drop (and list) fits that failed (``cvx_*_status`` starting with
    "error") or are not there (NaN or a table without the column: "convex fit pending")."""
    import pandas as pd

    if not fam.columns:
        bad = sel["x_acc"].isna()
        excl.frame(sel[bad], fam.id, "no accuracy (NaN)")
        return sel[~bad]
    reason = np.full(len(sel), "", dtype=object)
    split = sel["x_split"].to_numpy()
    seed = sel["seed"].to_numpy()
    planned = np.ones(len(sel), dtype=bool)
    if plan.converged_seeds_per_split:
        planned = np.isin(seed, list(plan.converged_seeds_per_split)) | (
            split == plan.committed_split)
    for col in fam.columns:
        st = col[: -len("_acc")] + "_status"
        status = (sel[st].fillna("").astype(str).to_numpy() if st in sel.columns
                  else np.full(len(sel), "", dtype=object))
        v = (pd.to_numeric(sel[col], errors="coerce").to_numpy(float) if col in sel.columns
             else np.full(len(sel), np.nan))
        free = reason == ""
        err = free & np.char.startswith(status.astype(str), "error")
        reason[err] = [f"failed fit ({col}): {x}" for x in status[err]]
        free = reason == ""
        pend = free & ~np.isfinite(v)
        reason[pend & planned] = "convex fit pending"
        reason[pend & ~planned] = (f"no convex fit planned for this seed (converged seeds per "
                                   f"split: {list(plan.converged_seeds_per_split)})")
    bad = reason != ""
    for r, why in zip(sel[bad].itertuples(index=False), reason[bad]):
        excl.add(fam.id, r.x_setting, r.x_source, int(r.x_split), int(r.seed), r.run_key, why)
    return sel[~bad]


def _capacity_order(plan, weaks):
    """Weak model names sorted by `w2s_theory.models.REGISTRY` parameter count (read at call
    time, through the plan's aliases); never by a measured accuracy."""
    from . import models

    caps = {}
    for w in weaks:
        name = plan.model_aliases.get(w, w)
        if name not in models.REGISTRY:
            raise ValueError(f"plan: claim4: weak model {w!r} is not in the model registry "
                             f"(w2s_theory.models.REGISTRY)")
        caps[w] = int(models.REGISTRY[name].params)
    if len(set(caps.values())) < len(caps):
        raise ValueError(f"plan: claim4: weak models {sorted(caps)} have equal registry capacity")
    return sorted(weaks, key=lambda w: caps[w])


def _paired(fam, sel, plan, excl: _Excl):
    """Per (setting, split, seed): the paired difference ``d`` in points. Returns a frame
    with ``setting, dataset, weak, strong, split, seed, d`` (and ``keys``: the run keys used)."""
    import pandas as pd

    q = round(fam.noise_level, 10)
    out = []
    idx = ["x_setting", "x_dataset", "x_weak", "x_strong", "x_split", "seed"]

    def unpaired(frame, reason):
        excl.frame(frame, fam.id, reason)

    if fam.kind in ("acc", "drop") and not fam.columns:
        a, b = fam.arms
        levels = [q] if fam.kind == "acc" else [0.0, q]
        sub = sel[sel["loss"].isin([a, b]) & sel["x_noise"].isin(levels)]
        cells = [(arm, lv) for lv in levels for arm in (a, b)]
        wide = sub.pivot_table(index=idx, columns=["loss", "x_noise"], values="x_acc",
                               aggfunc="first")
        keys = sub.pivot_table(index=idx, columns=["loss", "x_noise"], values="run_key",
                               aggfunc="first")
        ok = pd.Series(True, index=wide.index)
        for c in cells:
            if c not in wide.columns:
                ok &= False
            else:
                ok &= wide[c].notna()
        if (~ok).any():
            bad = set(wide.index[~ok])
            rows = sub[[tuple(r) in bad for r in sub[idx].itertuples(index=False)]]
            have_by: dict = {}
            for r in rows.itertuples(index=False):
                have_by.setdefault((r.x_setting, r.x_split, r.seed), set()).add((r.loss, r.x_noise))
            for r in rows.itertuples(index=False):
                have = have_by[(r.x_setting, r.x_split, r.seed)]
                miss = [f"{arm} @ {lv:g}" for arm, lv in cells if (arm, lv) not in have]
                excl.add(fam.id, r.x_setting, r.x_source, int(r.x_split), int(r.seed), r.run_key,
                         "unpaired seed (no " + ", ".join(miss) + ")")
        w = wide[ok]
        if fam.kind == "acc":
            d = w[(a, q)] - w[(b, q)]
        else:
            d = (w[(a, q)] - w[(b, q)]) - (w[(a, 0.0)] - w[(b, 0.0)])
        res = d.rename("d").reset_index()
        kw = keys.reindex(index=w.index, columns=pd.MultiIndex.from_tuples(cells))
        res["keys"] = [tuple(map(str, k)) for k in kw.to_numpy()]
        out.append(res)
    elif fam.kind in ("column", "drop"):
        c0, c1 = fam.columns
        levels = [q] if fam.kind == "column" else [0.0, q]
        sub = sel[sel["x_noise"].isin(levels)]
        sub = sub.assign(x_d=sub[c0].astype(float) - sub[c1].astype(float))
        wide = sub.pivot_table(index=idx, columns="x_noise", values="x_d", aggfunc="first")
        ok = pd.Series(True, index=wide.index)
        for lv in levels:
            ok &= wide[lv].notna() if lv in wide.columns else False
        if (~ok).any():
            bad = set(wide.index[~ok])
            rows = sub[[tuple(r) in bad for r in sub[idx].itertuples(index=False)]]
            for r in rows.itertuples(index=False):
                other = [lv for lv in levels if lv != r.x_noise]
                excl.add(fam.id, r.x_setting, r.x_source, int(r.x_split), int(r.seed),
                         r.run_key, "unpaired fit (no usable fit at noise "
                         + ", ".join(f"{lv:g}" for lv in other) + " for this split and seed)")
        w = wide[ok]
        d = w[q] if fam.kind == "column" else w[q] - w[0.0]
        res = d.rename("d").reset_index()
        res["keys"] = [()] * len(res)
        out.append(res)
    elif fam.kind == "capacity":
        vcol = fam.columns[0] if fam.columns else "x_acc"
        sub = sel[sel["x_noise"] == q]
        if fam.loss:
            sub = sub[sub["loss"] == fam.loss]
        weaks = sorted(set(sub["x_weak"]))
        if len(weaks) != 2:
            if len(sub):
                unpaired(sub, f"capacity contrast needs two weak models, found {weaks}")
            return pd.DataFrame(columns=idx[:4] + ["x_split", "seed", "d", "keys"])
        lo, hi = _capacity_order(plan, weaks)
        cidx = ["x_dataset", "x_strong", "x_split", "seed"]
        wide = sub.pivot_table(index=cidx, columns="x_weak", values=vcol, aggfunc="first")
        ok = wide[lo].notna() & wide[hi].notna() if {lo, hi} <= set(wide.columns) else \
            pd.Series(False, index=wide.index)
        if (~ok).any():
            bad = set(wide.index[~ok])
            rows = sub[[tuple(r) in bad for r in sub[cidx].itertuples(index=False)]]
            unpaired(rows, "unpaired seed (the other weak model's run is missing)")
        w = wide[ok]
        res = (w[hi] - w[lo]).rename("d").reset_index()
        res["x_weak"] = f"{hi} - {lo}"
        res["x_setting"] = res["x_dataset"] + ":(" + res["x_weak"] + ")->" + res["x_strong"]
        res["keys"] = [()] * len(res)
        out.append(res)
    res = pd.concat(out, ignore_index=True) if out else pd.DataFrame()
    if len(res):
        res["d"] = 100.0 * res["d"].astype(float)
    return res


def _boot_ubar(plan, table: str, root: Path | None, keys_by_seed, kind: str):
    """What the test-set bootstrap variance (points^2) of the n-seed mean paired difference needs, from
    the stored test logits (``<table stem>.preds.npz``, `PredStore`'s ``keys`` / ``logits``).

    Per test pair ``i`` and seed ``s`` the paired difference of correctness indicators is
    ``(2 y_i - 1) u_{s,i}`` with ``u = 1[z_rev > 0] - 1[z_fwd > 0]`` (``acc``), or that at
    noise ``q`` minus that at 0 (``drop``): its square needs no label. The ideal bootstrap
    (resampling the test pairs jointly for every seed, ``B -> infinity``) gives
    ``var_boot = (mean_i ubar_i^2 - D^2) / N`` with ``ubar_i`` the mean over seeds and ``D``
    the mean paired difference. Returns ``(ubar, "")`` or ``(nan, reason)``."""
    if root is None:
        return math.nan, "no prediction store (tables given in memory)"
    p = root / (str(Path(table).with_suffix("")) + ".preds.npz")
    if not p.is_file():
        return math.nan, f"{p.name} missing"
    with np.load(p, allow_pickle=False) as z:
        if "keys" not in z or "logits" not in z:
            return math.nan, f"{p.name} has no keys / logits"
        pos = {str(k): i for i, k in enumerate(z["keys"])}
        logits = z["logits"]
    us = []
    for keys in keys_by_seed:
        if not all(k in pos for k in keys):
            return math.nan, f"{p.name} lacks the predictions of run(s) " + ", ".join(
                k for k in keys if k not in pos)
        pos_ = [(logits[pos[k]] > 0).astype(float) for k in keys]
        # cells: (rev@q, fwd@q) for acc; (rev@0, fwd@0, rev@q, fwd@q) for drop
        u = pos_[0] - pos_[1]
        if kind == "drop":
            u = (pos_[2] - pos_[3]) - u
        us.append(u)
    ubar = np.mean(us, axis=0)
    return ubar, ""


def _ft_stats(res, conf: float, power: float, boot):
    """Fine-tuning CI (one split): ``se^2 = var_seed / n + var_boot``, t with ``n - 1`` df;
    and the minimum detectable effect at ``power``."""
    from scipy import stats

    d = res["d"].to_numpy(float)
    n = d.size
    var_seed = float(d.var(ddof=1)) if n > 1 else math.nan
    se2 = var_seed / n + (boot if np.isfinite(boot) else 0.0)
    se = math.sqrt(se2) if np.isfinite(se2) else math.nan
    dfree = n - 1
    if n < 2 or not np.isfinite(se):
        return float(d.mean()) if n else math.nan, se, dfree, math.nan
    mde = (float(stats.t.ppf(0.975, dfree)) + float(stats.t.ppf(power, dfree))) * se
    return float(d.mean()), se, dfree, mde


def _t_ci(mean, se, dfree, conf):
    from scipy import stats

    if not (np.isfinite(se) and dfree > 0):
        return math.nan, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + conf / 2, dfree)) * se
    p = 1.0 if se == 0 and mean == 0 else (0.0 if se == 0 else
                                           float(2 * stats.t.sf(abs(mean) / se, dfree)))
    return mean - half, mean + half, p


def _family_rows(fam, res, plan, root, excl):
    """One ledger row per setting of a family (before Holm)."""
    from .verdicts import paired_effect_by_split, tost

    conf, alpha = plan.confidence, plan.alpha
    finetune = bool(plan.finetune) and fam.regime == plan.finetune.get("regime")
    rows = []
    for setting, g in res.groupby("x_setting", sort=True):
        g = g.rename(columns={"x_split": "split"})
        n_splits = int(g["split"].nunique())
        n_pairs = int(len(g))
        notes = []
        e = paired_effect_by_split(g[["split", "seed", "d"]], value="d", confidence=conf)
        try:
            if n_splits >= 2:
                m = paired_effect_by_split(g[["split", "seed", "d"]], value="d",
                                           confidence=conf, method="mixed")
                mlo, mhi = m.ci_low, m.ci_high
                if m.note:
                    notes.append(f"mixed model: {m.note}")
            else:
                mlo = mhi = math.nan
        except Exception as exc:  # noqa: BLE001 - a failed fit is reported, not fatal
            mlo = mhi = math.nan
            notes.append(f"mixed model failed: {type(exc).__name__}: {exc}")
        d0 = g.loc[g["split"] == plan.committed_split, "d"].to_numpy(float)
        if d0.size:     # the seed-only t interval of split 0 (one-sample t over its seeds)
            se0 = float(d0.std(ddof=1)) / math.sqrt(d0.size) if d0.size > 1 else math.nan
            slo, shi, _ = _t_ci(float(d0.mean()), se0, d0.size - 1, conf)
        else:
            slo = shi = math.nan
            notes.append("no split-0 runs")
        eff, se, dfree = e.effect, e.se, e.df
        lo, hi, p = e.ci_low, e.ci_high, e.p_value
        forced = ""
        if finetune:
            boot = math.nan
            cells = list(g["keys"])
            ubar, why = _boot_ubar(plan, fam.members[0].table, root, cells, fam.kind)
            if why:
                notes.append(f"test-bootstrap not computed: {why}; seed-only t interval")
            else:
                n_test = ubar.size
                dbar = float(g["d"].mean()) / 100.0
                boot = 1e4 * max(float(np.mean(ubar ** 2)) - dbar ** 2, 0.0) / n_test
                notes.append(f"CI = seed + test-bootstrap (ideal bootstrap over {n_test} test "
                             f"pairs, sd {math.sqrt(boot):.2f} pts)")
            eff, se, dfree, mde = _ft_stats(g, conf, plan.mde_power, boot)
            lo, hi, p = _t_ci(eff, se, dfree, conf)
            if np.isfinite(mde):
                notes.append(f"minimum detectable effect {mde:.2f} pts "
                             f"({plan.mde_power:.0%} power, two-sided alpha {alpha})")
            if n_pairs < 2:
                forced = "fewer than 2 paired seeds"
        else:
            if n_splits < 2:
                forced = "fewer than 2 splits"
                if n_splits == 1 and int(g["split"].iloc[0]) == plan.committed_split:
                    notes.append("split 0 only: seed-only CI")
            if int(g.groupby("split")["seed"].nunique().max()) < 2 and n_splits < 2:
                forced = "fewer than 2 paired seeds"
        pt = math.nan
        if np.isfinite(se) and dfree > 0:
            pt = tost(eff, se, dfree, fam.margin, alpha).p
        first = res[res["x_setting"] == setting].iloc[0]
        rows.append({
            "family": fam.id, "claim": fam.claim, "regime": fam.regime,
            "contrast": fam.contrast, "kind": fam.kind,
            "arms": " vs ".join(fam.arms) if fam.arms else " - ".join(fam.columns) or (fam.loss or ""),
            "noise_level": fam.noise_level, "setting": setting,
            "dataset": first["x_dataset"], "weak": first["x_weak"], "strong": first["x_strong"],
            "n_splits": n_splits, "n_pairs": n_pairs, "effect_pts": eff, "ci_low": lo,
            "ci_high": hi, "seed_ci_low": slo, "seed_ci_high": shi, "mixed_ci_low": mlo,
            "mixed_ci_high": mhi, "p": p, "p_tost": pt, "margin": fam.margin,
            "direction": fam.direction, "paper_pts": ", ".join(f"{x:+.1f}" for x in fam.paper_pts),
            "_forced": forced, "_notes": notes, "_se": se,
        })
    return rows


def _context(fam, sel, setting_rows):
    """``ceiling - weak`` on test beside each row (context, never a filter); claim 4: the
    weak models' measured accuracies."""
    out = {}
    for setting, g in sel.groupby("x_setting"):
        if fam.kind == "capacity":
            continue
        if {"ceiling_acc", "weak_acc"} <= set(g.columns):
            gap = 100 * (g["ceiling_acc"].astype(float) - g["weak_acc"].astype(float))
            per = gap.groupby(g["x_split"]).mean()
            m = float(per.mean())
            if len(per) >= 2:
                lo = m - 1.96 * float(per.std(ddof=1)) / math.sqrt(len(per))
            else:
                v = gap.dropna()
                lo = m - 1.96 * float(v.std(ddof=1)) / math.sqrt(len(v)) if len(v) > 1 else -1
            txt = f"ceiling - weak {m:+.2f} pts"
            if not lo > 0:
                txt += " (no demonstrated gap)"
            out[setting] = txt
    if fam.kind == "capacity":
        for r in setting_rows:
            g = sel[(sel["x_dataset"] == r["dataset"]) & (sel["x_strong"] == r["strong"])]
            if "weak_acc" in g.columns:
                accs = g.groupby("x_weak")["weak_acc"].mean()
                out[r["setting"]] = "weak acc (test, not used to order): " + ", ".join(
                    f"{w} {100 * a:.2f}" for w, a in accs.items())
    return out


def _finish_family(fam, rows, plan):
    """Holm within the family (p and TOST p separately), then the verdict words."""
    from .verdicts import verdict

    p = [r["p"] if not r["_forced"] else math.nan for r in rows]
    pt = [r["p_tost"] if not r["_forced"] else math.nan for r in rows]
    ph = _holm(np.nan_to_num(p, nan=1.0))
    pth = _holm(np.nan_to_num(pt, nan=1.0))
    for r, a, b, p0, pt0 in zip(rows, ph, pth, p, pt):
        r["p_holm"] = float(a) if np.isfinite(p0) else math.nan
        r["p_tost_holm"] = float(b) if np.isfinite(pt0) else math.nan
        if r["_forced"]:
            word = "inconclusive"
            r["_notes"].append(f"inconclusive by the plan's rule ({r['_forced']}); "
                               f"enters Holm as p = 1")
        else:
            lo, hi = r["ci_low"], r["ci_high"]
            if not (np.isfinite(lo) and np.isfinite(hi)):
                word = "inconclusive"
            else:
                word = verdict(lo, hi, fam.margin, p_adjusted=r["p_holm"],
                               p_tost_adjusted=r["p_tost_holm"], alpha=plan.alpha)
            if (word == "equivalent within margin" and np.isfinite(r["p_holm"])
                    and r["p_holm"] < plan.alpha):
                r["_notes"].append("nonzero, within margin")
        r["word"] = word
        r["holds"] = word == ("better" if fam.direction == "+" else "worse")
    return rows


def _holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (``min(1, max_{j <= i} (m - j + 1) p_(j))``)."""
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def _summary_word(words) -> str:
    n = len(words)
    c = {w: words.count(w) for w in ("better", "worse", "equivalent within margin")}
    if n and c["better"] * 2 >= n and c["worse"] == 0:
        return "better"
    if n and c["worse"] * 2 >= n and c["better"] == 0:
        return "worse"
    if n and c["equivalent within margin"] * 2 >= n and c["better"] == 0 and c["worse"] == 0:
        return "equivalent within margin"
    return "inconclusive"


def _summary_row(fam, rows, res, plan):
    """One summary line: effect = mean of setting effects; CI over split indices of the
    per-split means over settings (seed-only over seeds when only split 0 exists)."""
    words = [r["word"] for r in rows]
    base = {"family": fam.id, "claim": fam.claim, "regime": fam.regime,
            "contrast": fam.contrast, "kind": fam.kind,
            "arms": " vs ".join(fam.arms) if fam.arms else " - ".join(fam.columns) or (fam.loss or ""),
            "noise_level": fam.noise_level, "n_settings": len(rows),
            "margin": fam.margin, "paper_pts": ", ".join(f"{x:+.1f}" for x in fam.paper_pts),
            "n_better": words.count("better"), "n_worse": words.count("worse"),
            "n_equivalent": words.count("equivalent within margin"),
            "n_inconclusive": words.count("inconclusive"), "word": _summary_word(words)}
    if not rows:
        return {**base, "effect_pts": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "note": "no settings with paired runs (see ledger_excluded.csv)"}
    eff = float(np.mean([r["effect_pts"] for r in rows]))
    finetune = bool(plan.finetune) and fam.regime == plan.finetune.get("regime")
    if finetune and len(rows) == 1:
        return {**base, "effect_pts": eff, "ci_low": rows[0]["ci_low"],
                "ci_high": rows[0]["ci_high"], "note": rows[0]["note"]}
    per_split = res.groupby(["x_split", "x_setting"])["d"].mean().groupby(level=0).mean()
    if len(per_split) >= 2:
        m, se, dfree = float(per_split.mean()), float(per_split.std(ddof=1)) / math.sqrt(
            len(per_split)), len(per_split) - 1
        lo, hi, _ = _t_ci(eff, se, dfree, plan.confidence)
        note = (f"effect = mean of the {len(rows)} setting effects; CI = effect +- t se, se from "
                f"the {len(per_split)} per-split means over the settings that have the split "
                f"(their mean {m:+.2f})")
    else:
        per_seed = res.groupby(["seed", "x_setting"])["d"].mean().groupby(level=0).mean()
        se, dfree = (float(per_seed.std(ddof=1)) / math.sqrt(len(per_seed))
                     if len(per_seed) > 1 else math.nan), len(per_seed) - 1
        lo, hi, _ = _t_ci(eff, se, dfree, plan.confidence)
        note = ("split 0 only: seed-only CI (se from the per-seed means over settings); "
                "every row is inconclusive by the plan's rule")
    return {**base, "effect_pts": eff, "ci_low": lo, "ci_high": hi, "note": note}


def _expected_settings(member, excl, fam, df):
    """List the settings a member names (dataset x pairs) that have no rows."""
    ds = member.filters.get("dataset") or member.filters.get("subset")
    if member.pairs is None or not ds:
        return
    have = set(df["x_setting"]) if df is not None else set()
    for d in ds:
        for w, s in member.pairs:
            name = f"{d}:{w}->{s}"
            if name not in have:
                excl.add(fam.id, name, member.table, "", "", "",
                         "setting absent from table" + (f" (awaiting: {member.awaiting})"
                                                        if member.awaiting else ""))


def _expected_replication(fam, sel, plan, excl):
    """List the replication the plan names but the tables lack: a setting of a re-split
    table with split 0 only, a split not run yet (1 .. ``min_random_splits``), a seed of
    ``seeds_per_split`` (converged families: ``converged_seeds_per_split``) absent from a
    split that has rows."""
    if fam.sensitivity or not len(sel) or not any(_resplit_name(plan, m.table)
                                                  for m in fam.members):
        return      # sensitivity tables are split-0 tables by design
    seeds = plan.converged_seeds_per_split if fam.columns else plan.seeds_per_split
    have = sel.groupby(["x_setting", "x_split"])["seed"].agg(lambda v: set(int(x) for x in v))
    for setting in sorted(set(sel["x_setting"])):
        src = sel.loc[sel["x_setting"] == setting, "x_source"].iloc[0]
        splits = {int(k) for k in have.loc[setting].index}
        if splits == {plan.committed_split}:
            excl.add(fam.id, setting, src, "", "", "", "no re-split rows (split 0 only): the "
                     "split-aware interval cannot be formed")
            continue
        top = max(max(splits), plan.min_random_splits)
        for sp in range(1, top + 1):
            if sp not in splits:
                excl.add(fam.id, setting, src, sp, "", "", "split absent (not run yet)")
                continue
            for sd in seeds:
                if int(sd) not in have.loc[(setting, sp)]:
                    excl.add(fam.id, setting, src, sp, int(sd), "",
                             "seed absent from the split (not run yet)")


def _select_family(fam, plan, loaded, excl):
    import pandas as pd

    parts = []
    for j, m in enumerate(fam.members):
        df, why = loaded[m.table]
        if df is None:
            excl.add(fam.id, "", m.table, "", "", "",
                     why + (f" (awaiting: {m.awaiting})" if m.awaiting else ""))
            continue
        mask = _mask(df, m.filters, m.pairs, f"family {fam.id!r}.member[{j}]")
        sel = df[mask]
        if fam.arms and "loss" in sel.columns:
            sel = sel[sel["loss"].isin(fam.arms)]
        if fam.loss and "loss" in sel.columns:
            sel = sel[sel["loss"] == fam.loss]
        _expected_settings(m, excl, fam, sel)
        if len(sel) == 0 and m.pairs is None:
            excl.add(fam.id, "", m.table, "", "", "",
                     "no rows match the member" + (f" (awaiting: {m.awaiting})"
                                                   if m.awaiting else ""))
        parts.append(sel)
    if not parts:
        return pd.DataFrame()
    sel = pd.concat(parts, ignore_index=True, sort=False)
    return sel


def _sensitivity_families(plan, loaded):
    """Families of the sensitivity analyses: each primary loss-based contrast applied to the
    sensitivity table (one family per lr when it names several), ids ``sens.<id>...``."""
    from dataclasses import replace

    from .plan import Member

    out = []
    for s in plan.sensitivity:
        df, _ = loaded.get(s.table, (None, ""))
        lrs = s.filters.get("lr")
        variants = [(f"lr{lr:g}.", {**s.filters, "lr": (lr,)}) for lr in lrs] \
            if lrs and len(lrs) > 1 else [("", dict(s.filters))]
        for tag, filt in variants:
            for f in plan.families:
                if f.kind not in ("acc", "drop") or f.columns or f.regime != \
                        "last_layer_minibatch":
                    continue
                mf = dict(filt)
                conf = f.members[0].filters.get("confidence")
                if df is not None and conf is not None:
                    if "confidence" not in df.columns:
                        continue        # claim 3's "+ confidence" does not exist there
                    mf.setdefault("confidence", conf)
                if df is not None:
                    if "loss" not in df.columns or not set(f.arms) <= set(df["loss"]):
                        continue
                    m = _mask(df, mf, s.pairs, f"sensitivity {s.id!r}")
                    levels = {round(f.noise_level, 10)} | ({0.0} if f.kind == "drop" else set())
                    if not levels <= set(df.loc[m, "x_noise"]):
                        continue
                out.append(replace(f, id=f"sens.{s.id}.{tag}{f.id}", sensitivity=s.id,
                                   members=(Member(table=s.table, filters=mf, pairs=s.pairs),)))
    return out


def _plan_checks(plan, loaded, excl):
    """Claim 6's checks: n holds of n with a Clopper-Pearson interval, per table, column and
    scope (split 0 / the re-splits; synthetic: per variant and method)."""
    import re

    import pandas as pd
    from scipy.stats import binomtest

    rows = []
    seen: dict[str, set] = {}
    prev_cov: set = set()
    for c in plan.claim6:
        df, why = loaded.get(c.table, (None, "missing table"))
        if df is None:
            excl.add("claim6", "", c.table, "", "", "", why)
            continue
        d = df[_mask(df, c.filters, None, f"claim6 {c.table!r}")]
        text = c.covered
        named = {col for col in c.columns if re.search(rf"\b{re.escape(col)}\b", text)}
        if text.startswith("none"):
            cov_cols = set()
        elif named:
            cov_cols = named
        elif text.startswith("as "):
            cov_cols = prev_cov & set(c.columns)
        else:
            cov_cols = {c.columns[0]}
        prev_cov = cov_cols
        if c.unit_key:
            uk = [k if k in d.columns else "x_" + k for k in c.unit_key]
            uk = [("x_noise" if k == "noise" else k) for k in uk] + ["x_split"]
            d = d.drop_duplicates(uk)
        if "variant" in d.columns:
            groups = ["variant"] + (["method"] if "method" in d.columns else [])
            scopes = [(" / ".join(map(str, k if isinstance(k, tuple) else (k,))), g)
                      for k, g in d.groupby(groups, sort=False)]
        else:
            scopes = [("split 0", d[d["x_split"] == plan.committed_split]),
                      ("re-splits", d[d["x_split"] != plan.committed_split])]
        for col in c.columns:
            if col not in d.columns:
                excl.add("claim6", col, c.table, "", "", "", "column not in table")
                continue
            for scope, g in scopes:
                if c.unit_key:
                    key = f"{col}|{scope}"
                    ids = set(map(tuple, g[uk].astype(str).to_numpy()))
                    dup = ids & seen.setdefault(key, set())
                    seen[key] |= ids
                    if dup:
                        mask = [tuple(r) not in dup for r in g[uk].astype(str).to_numpy()]
                        g = g[mask]
                v = g[col]
                ok = v.notna()
                v, gg = v[ok], g[ok]
                if len(v) == 0:
                    continue
                if "slack" in col and pd.api.types.is_float_dtype(v):
                    pre = col.split("_t2")[0]
                    tol = (gg[f"{pre}_duality_gap"].fillna(0.0).astype(float)
                           if f"{pre}_duality_gap" in gg.columns else
                           gg["tol"].astype(float) if "tol" in gg.columns else 0.0)
                    holds = v.astype(float) >= -tol
                else:
                    holds = v.astype(str).str.lower().isin(["true", "1", "1.0"])
                n, k = int(len(v)), int(holds.sum())
                ci = binomtest(k, n).proportion_ci(confidence_level=plan.confidence,
                                                   method="exact")
                covered = col in cov_cols
                if covered and "variant" in d.columns and not text.startswith("every row"):
                    covered = all(re.search(rf"\b{re.escape(t)}\b", text)
                                  for t in scope.split(" / "))
                word = ("holds" if k == n else "fails") if covered else "descriptive"
                rows.append({"table": c.table, "column": col, "scope": scope, "n": n,
                             "n_holds": k, "frac": k / n, "ci_low": float(ci.low),
                             "ci_high": float(ci.high), "covered": covered, "word": word})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _claim5_statement(plan, loaded):
    """Claim 5's plain statement: every loss's accuracy - 50 points at 50 % flips, with its
    (split-aware where possible) 95 % interval; not tested."""
    import pandas as pd

    from .verdicts import paired_effect_by_split

    fam = next((f for f in plan.families if f.claim == 5 and not f.columns), None)
    if fam is None or not plan.claim5_statement:
        return None
    parts = []
    for m in fam.members:
        df, _ = loaded.get(m.table, (None, ""))
        if df is not None:
            parts.append(df[_mask(df, m.filters, m.pairs, f"family {fam.id!r}")])
    if not parts:
        return f"claim 5 (stated, not tested): {plan.claim5_statement} (no rows)"
    sel = pd.concat(parts, ignore_index=True)
    sel = sel[sel["x_noise"] == round(fam.noise_level, 10)].drop_duplicates(["run_key", "x_split"])
    bits = []
    for loss, g in sel.groupby("loss", sort=True):
        per = (g.assign(v=100 * (g["x_acc"] - 0.5)).groupby(["x_split", "seed"])["v"].mean()
               .reset_index().rename(columns={"x_split": "split"}))
        e = paired_effect_by_split(per, value="v", confidence=plan.confidence)
        kind = "split-aware" if e.n_splits > 1 else "seed-only"
        bits.append(f"{loss} {e.effect:+.2f} [{e.ci_low:+.2f}, {e.ci_high:+.2f}] ({kind}, "
                    f"{e.n_splits} split(s))")
    return (f"claim 5 (stated, not tested): {plan.claim5_statement}. Accuracy - 50 points at "
            f"{fam.noise_level:.0%} flips, mean over settings, 95 % CI: " + "; ".join(bits))


def _lr_statements(plan, loaded):
    """Claim 2's lr dependence beside its verdicts: for a sensitivity table that names several
    lrs, per lr (and the primary lr, when the table holds it) and noise level of the claim-2
    families, the mean over its settings and seeds of ``student - weak`` (points) per loss.
    Descriptive (no test): it shows which arm moves with the lr."""
    out = []
    c2 = sorted({f.noise_level for f in plan.families if f.claim == 2})
    arms = sorted({a for f in plan.families if f.claim == 2 for a in f.arms})
    for s in plan.sensitivity:
        lrs = s.filters.get("lr")
        df, _ = loaded.get(s.table, (None, ""))
        if not lrs or len(lrs) < 2 or df is None or not {"lr", "weak_acc", "loss"} <= set(df):
            continue
        d = df[df["loss"].isin(arms) & df["x_noise"].isin(c2)]
        if not len(d):
            continue
        gain = 100 * (d["x_acc"] - d["weak_acc"].astype(float))
        tab = gain.groupby([d["x_noise"], d["lr"].astype(float), d["loss"]]).mean()
        for q in sorted(set(tab.index.get_level_values(0))):
            parts = []
            for lr in sorted(set(tab.loc[q].index.get_level_values(0))):
                t = tab.loc[(q, lr)]
                parts.append(f"lr {lr:g}: " + ", ".join(f"{k} {v:+.2f}" for k, v in t.items()))
            out.append(f"claim 2, lr dependence ({s.table}, {q:.0%} flips; student - weak in "
                       f"points, mean over settings and seeds; descriptive): " + "; ".join(parts))
    return out


def build(plan, tables=None, root=None) -> Ledger:
    """The claims ledger computed from an analysis plan.

    For each family (and each sensitivity family, ids ``sens.<id>....``, Holm-adjusted on
    their own): select the members' rows (the committed table as split 0 plus its re-split
    table by ``[replication] resplit_table_pattern``), remove duplicate runs (run key, then
    coordinates; each listed), drop failed or pending convex fits (listed), pair the arms per
    (split, seed) (unpaired ones listed), and per setting compute the effect in points with
    `w2s_theory.verdicts.paired_effect_by_split` (split-aware t interval on split means; the
    mixed model and the seed-only interval of split 0 beside), `w2s_theory.verdicts.tost`
    with the family's margin, Holm within the family for p and TOST p separately, and the
    verdict word (fewer than 2 splits or 2 paired seeds: "inconclusive"; full fine-tuning:
    one split, CI = seed + test-bootstrap, with its minimum detectable effect). Claim 6's
    checks come from exactly the tables ``[[claim6]]`` names.

    Args:
        plan: a `w2s_theory.plan.Plan` (`w2s_theory.plan.load_plan`, `default_plan`).
        tables: optional ``{path: DataFrame}``: use these instead of reading files (a
            re-split table under its pattern path). Tables the plan names that are not in it
            are "missing table".
        root: the repository root the plan's paths are relative to (default: this
            checkout); also where fine-tuning prediction stores are read.

    Returns:
        a `Ledger`.

    Raises:
        ValueError: a run (same run key or coordinates) twice in one family with different
            results; a filter column a table lacks; a claim-4 weak model not in the registry.

    Examples:
        >>> import pandas as pd
        >>> from w2s_theory.plan import default_plan
        >>> from w2s_theory.ledger import build
        >>> t = pd.DataFrame({"loss": ["forward_kl", "reverse_kl"] * 6,
        ...                   "split": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
        ...                   "seed": [0, 0, 1, 1] * 3,
        ...                   "student_acc": [.60, .61, .60, .62, .61, .62, .60, .61,
        ...                                   .62, .63, .61, .63]})
        >>> led = build(default_plan(t), {"results.csv": t})
        >>> r = led.rows.iloc[0]
        >>> r["setting"], round(float(r["effect_pts"]), 2), int(r["n_splits"]), r["word"]
        ('all', 1.33, 3, 'better')
    """
    import pandas as pd

    from .plan import Plan

    if not isinstance(plan, Plan):
        raise ArgumentTypeError(f"plan: must be a w2s_theory.plan.Plan (load_plan / "
                                f"default_plan), got {type(plan).__name__}")
    if tables is not None and not isinstance(tables, dict):
        raise ArgumentTypeError(f"tables: must be a dict {{path: DataFrame}} or None, got "
                                f"{type(tables).__name__}")
    if tables is not None:
        for k, v in tables.items():
            if not isinstance(v, pd.DataFrame):
                raise ArgumentTypeError(f"tables: {k!r} must map to a DataFrame, got "
                                        f"{type(v).__name__}")
    rootp = _root(root) if (root is not None or tables is None) else None
    if tables is not None and root is not None:
        rootp = _root(root)
    excl = _Excl()
    loaded = {t: _load_table(plan, t, tables, rootp) for t in plan.tables()}
    families = list(plan.families) + _sensitivity_families(plan, loaded)
    all_rows, summaries = [], []
    for fam in families:
        sel = _select_family(fam, plan, loaded, excl)
        if len(sel):
            sel = _dedupe(fam, sel, plan, excl)
            _expected_replication(fam, sel, plan, excl)
            sel = _fit_status(fam, sel, plan, excl)
        res = _paired(fam, sel, plan, excl) if len(sel) else pd.DataFrame()
        rows = _family_rows(fam, res, plan, rootp, excl) if len(res) else []
        ctx = _context(fam, sel, rows) if len(sel) else {}
        rows = _finish_family(fam, rows, plan)
        for r in rows:
            r["context"] = ctx.get(r["setting"], "")
            r["note"] = "; ".join(r.pop("_notes"))
            r.pop("_forced"), r.pop("_se")
        summaries.append(_summary_row(fam, rows, res, plan))
        all_rows += rows
    for t, why in plan.excluded.items():
        excl.add("", "", t, "", "", "", f"not read by the plan: {why}")
    rows_df = pd.DataFrame(all_rows, columns=ROW_COLUMNS)
    summ_df = pd.DataFrame(summaries, columns=SUMMARY_COLUMNS)
    ex_df = pd.DataFrame(excl.rows, columns=EXCLUDED_COLUMNS)
    checks = _plan_checks(plan, loaded, excl) if plan.claim6 else pd.DataFrame(columns=CHECK_COLUMNS)
    ex_df = pd.DataFrame(excl.rows, columns=EXCLUDED_COLUMNS)
    statements = []
    s5 = _claim5_statement(plan, loaded)
    if s5:
        statements.append(s5)
    statements += _lr_statements(plan, loaded)
    for s in plan.sensitivity:
        if s.note:
            statements.append(f"sensitivity {s.id}: {s.note}")
    return Ledger(rows=rows_df, summary=summ_df, excluded=ex_df, checks=checks,
                  statements=tuple(statements))


def write(ledger, out_dir) -> list[Path]:
    """Write a `Ledger`'s four tables as CSV into ``out_dir`` (created if needed):
    ``ledger.csv``, ``ledger_summary.csv``, ``ledger_excluded.csv``, ``ledger_checks.csv``.

    Args:
        ledger: a `Ledger`.
        out_dir: a folder.

    Returns:
        the four paths, in that order.
    """
    if not isinstance(ledger, Ledger):
        raise ArgumentTypeError(f"ledger: must be a Ledger (build), got {type(ledger).__name__}")
    out = Path(check_path(out_dir, "out_dir"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in zip(LEDGER_FILES, (ledger.rows, ledger.summary, ledger.excluded,
                                          ledger.checks)):
        p = out / name
        frame.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
        paths.append(p)
    return paths


def summary_text(ledger) -> str:
    """Plain-text lines: one per primary family (word, effect, CI, counts, paper)."""
    lines = []
    for r in ledger.summary.itertuples(index=False):
        if r.family.startswith("sens."):
            continue
        lines.append(f"{r.family}: {r.word} {_fmt_pts(r.effect_pts)} "
                     f"[{_fmt_pts(r.ci_low)}, {_fmt_pts(r.ci_high)}] pts; "
                     f"{r.n_better}/{r.n_worse}/{r.n_equivalent}/{r.n_inconclusive} "
                     f"(better/worse/equiv/inconcl); paper {r.paper_pts or '-'}")
    n_s = int(ledger.summary["family"].str.startswith("sens.").sum())
    lines.append(f"+ {n_s} sensitivity families; {len(ledger.excluded)} excluded entries; "
                 f"{len(ledger.checks)} claim-6 checks")
    return "\n".join(lines)


def _replace_readme_block(readme: Path, block: str) -> Path:
    a, b = README_MARKERS
    text = readme.read_text()
    if a not in text or b not in text:
        raise ValueError(f"{readme}: no results block (the lines {a!r} ... {b!r})")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    readme.write_text(f"{head}{a}\n{block.strip()}\n{b}{tail}")
    return readme


def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.ledger [--plan PLAN] [--out DIR] [--readme]``: rebuild the
    claims ledger from the declared plan and the committed tables (plus their re-split
    tables), write its four CSVs and print the per-family summary."""
    import sys

    from .config import UserError
    from .plan import load_plan

    ap = argparse.ArgumentParser(
        prog="python -m w2s_theory.ledger",
        description="Rebuild the claims ledger from the declared analysis plan "
                    "(experiments/analysis.toml) and the committed result tables: writes "
                    "ledger.csv, ledger_summary.csv, ledger_excluded.csv and ledger_checks.csv.")
    ap.add_argument("--plan", type=Path, default=None,
                    help="the analysis plan (default experiments/analysis.toml)")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the four CSVs (default experiments/results)")
    ap.add_argument("--readme", action="store_true",
                    help="also rewrite the README's results block (w2s_theory.answer)")
    args = ap.parse_args(argv)
    root = _root(None)
    try:
        plan = load_plan(args.plan if args.plan is not None else root / PLAN_PATH)
        led = build(plan, root=root)
        out = args.out if args.out is not None else root / "experiments" / "results"
        paths = write(led, out)
        print(summary_text(led))
        for st in led.statements:
            print(st)
        for p in paths:
            print(p)
        if args.readme:
            try:
                from .answer import readme_block
            except ImportError as exc:
                raise UserError(f"--readme: w2s_theory.answer.readme_block is not available "
                                f"({exc})") from exc
            print(_replace_readme_block(root / "README.md", readme_block(led)))
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
