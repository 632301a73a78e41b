r"""Split-aware effects, equivalence tests and the four verdict words (issue 18).

The statistical core of the declared analysis plan (``experiments/analysis.toml``,
``[statistics]`` and ``[verdicts]``), used by the claims ledger. The t intervals and tests
come from `w2s_theory.stats` (``scipy.stats``), the mixed model from statsmodels; no torch,
and no table is read here (a caller passes a pandas ``DataFrame`` of per-run paired
differences).

* `paired_effect_by_split`: the effect of a contrast from per-run paired differences
  ``d`` (reverse minus forward, in accuracy points) with a ``split`` and a ``seed`` column.
  The unit of replication is the data split: a seed changes minibatch order, label flips and
  the weak teacher, but not the train/test split. The split-aware interval is a t interval
  on the split-level means (``df = n_splits - 1``), or a linear mixed model with a random
  intercept per split; the seed-only interval (every run as if from one split, what the
  ledger does today) is returned beside it, never instead.
* `tost` (`w2s_theory.stats.tost`, importable here too): two one-sided t-tests of
  ``|effect| < margin``; ``p = max`` of the two, and ``p < alpha`` exactly when the
  ``1 - 2 alpha`` interval lies inside ``(-margin, margin)``.
* `verdict`: one of `VERDICT_WORDS` ("better", "worse", "equivalent within margin",
  "inconclusive"), in the plan's order (equivalence first).

References
----------
Schuirmann, "A comparison of the two one-sided tests procedure and the power approach for
assessing the equivalence of average bioavailability", J. Pharmacokinet. Biopharm. 15 (1987).
Lakens, "Equivalence tests", Soc. Psychol. Personal. Sci. 8 (2017).
Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Stat. 6 (1979).
Bouthillier et al., "Accounting for variance in machine learning benchmarks", MLSys (2021):
data-split variance as a source of benchmark variance.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ._validation import ArgumentTypeError, check_choice, check_number, check_series, check_str
from .stats import TOSTResult, one_sample_t, t_interval, tost

__all__ = [
    "VERDICT_WORDS",
    "METHODS",
    "SplitEffect",
    "TOSTResult",
    "paired_effect_by_split",
    "tost",
    "verdict",
]

#: The four verdict words, in the order `verdict` applies them (``analysis.toml`` ``[verdicts]``).
VERDICT_WORDS = ("equivalent within margin", "better", "worse", "inconclusive")

#: The split-aware methods of `paired_effect_by_split`.
METHODS = ("split_means", "mixed")


# ============================================================================ split-aware effect
@dataclass(frozen=True)
class SplitEffect:
    """A paired effect with its split-aware and seed-only t intervals (accuracy points).

    Attributes:
        effect: the split-aware effect: the mean of the split-level means (``split_means``)
            or the mixed model's intercept (``mixed``); with one split, the mean of all runs.
        se: standard error of ``effect`` (``nan`` when it cannot be estimated).
        df: degrees of freedom of its t interval: ``n_splits - 1``, or ``n_runs - 1`` with
            one split.
        ci_low: ``effect - t_{df} se`` at ``confidence``.
        ci_high: ``effect + t_{df} se`` at ``confidence``.
        p_value: two-sided t-test of ``effect = 0`` (``nan`` when ``se`` is).
        seed_only_effect: the mean over all runs.
        seed_only_se: ``sd(d) / sqrt(n_runs)``, every run treated as independent.
        seed_only_df: ``n_runs - 1``.
        seed_only_ci_low: ``seed_only_effect - t_{n_runs - 1} seed_only_se``.
        seed_only_ci_high: ``seed_only_effect + t_{n_runs - 1} seed_only_se``.
        seed_only_p_value: two-sided one-sample t-test of mean 0 over all runs.
        n_splits: distinct values of the split column.
        n_seeds: distinct values of the seed column.
        n_runs: rows (one paired difference per split and seed).
        single_split: True when there is one split: the split-aware interval is then the
            seed-only one (the between-split component cannot be estimated).
        method: ``"split_means"`` or ``"mixed"``.
        confidence: the level of both intervals.
        note: empty, or why the split-aware interval is what it is (one split, a mixed
            model that did not converge or put the split variance on its boundary).
    """

    effect: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    seed_only_effect: float
    seed_only_se: float
    seed_only_df: float
    seed_only_ci_low: float
    seed_only_ci_high: float
    seed_only_p_value: float
    n_splits: int
    n_seeds: int
    n_runs: int
    single_split: bool
    method: str
    confidence: float
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _column(frame, name: str, arg: str):
    if name not in frame.columns:
        raise ValueError(f"{arg}: column {name!r} is not in frame (columns: "
                         f"{[str(c) for c in frame.columns]})")
    return frame[name]


def _mixed(d: np.ndarray, groups: np.ndarray):
    """REML fit of ``d ~ 1`` with a random intercept per group: ``(effect, se, note)``."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = MixedLM(d, np.ones((d.size, 1)), groups=groups)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(reml=True)
    notes = []
    if not fit.converged:
        notes.append("mixed model did not converge")
    if (any("boundary" in str(w.message).lower() for w in caught)
            or float(np.asarray(fit.cov_re)[0, 0]) <= 1e-12):
        notes.append("split variance estimated at 0 (boundary)")
    return float(np.asarray(fit.fe_params)[0]), float(np.asarray(fit.bse_fe)[0]), "; ".join(notes)


def paired_effect_by_split(frame, *, value: str = "diff", split: str = "split", seed: str = "seed",
                           confidence: float = 0.95, method: str = "split_means") -> SplitEffect:
    r"""Effect of a contrast with a split-aware t interval and the seed-only one beside it.

    ``frame`` holds one paired difference ``d_{s,r}`` per run (split ``s``, seed ``r``), e.g.
    ``acc(reverse) - acc(forward)`` in points for the same split and seed.

    * Seed-only (every run as if from one split): ``mean(d) +/- t_{N-1} sd(d) / sqrt(N)``
      over the ``N`` runs: `w2s_theory.stats.one_sample_t` (``scipy.stats.ttest_1samp``).
    * ``method="split_means"`` (the plan's primary): ``dbar_s`` = mean of split ``s``'s runs,
      ``effect = mean_s dbar_s``, ``se = sd_s(dbar_s) / sqrt(S)``, ``df = S - 1``; the
      interval and test are `w2s_theory.stats.t_interval`.
    * ``method="mixed"``: ``d_{s,r} = mu + u_s + e_{s,r}`` with ``u_s ~ N(0, tau^2)``, fit by
      REML (statsmodels ``MixedLM``); ``effect = mu``, ``se`` its standard error, and the
      interval uses ``t`` with ``df = S - 1`` (conservative; statsmodels' own interval is
      normal). For a balanced table whose between-split variance is estimated above 0 this
      equals ``split_means``.

    With one split (``S = 1``) the split-aware interval is the seed-only one and
    ``single_split`` is True. Fewer than two runs give ``nan`` intervals.

    Args:
        frame: a pandas ``DataFrame`` with the columns ``value``, ``split`` and ``seed``;
            one row per (split, seed) pair; ``N >= 1`` rows.
        value: the column of paired differences (finite numbers).
        split: the column naming the data split of each run (no missing values).
        seed: the column naming the seed of each run (no missing values).
        confidence: the level of both intervals, in ``(0, 1)``.
        method: ``"split_means"`` or ``"mixed"``.

    Returns:
        a `SplitEffect`.

    Examples:
        >>> import pandas as pd
        >>> from w2s_theory.verdicts import paired_effect_by_split
        >>> t = pd.DataFrame({"split": [0, 0, 0, 1, 1, 1, 2, 2, 2],
        ...                   "seed": [0, 1, 2] * 3,
        ...                   "diff": [0.5, 0.6, 0.7, -0.4, -0.3, -0.2, 0.9, 1.0, 1.1]})
        >>> e = paired_effect_by_split(t)
        >>> round(e.effect, 3), round(e.ci_low, 3), round(e.ci_high, 3), e.df
        (0.433, -1.221, 2.087, 2.0)
        >>> round(e.seed_only_ci_low, 3), round(e.seed_only_ci_high, 3), e.seed_only_df
        (-0.015, 0.882, 8.0)
        >>> m = paired_effect_by_split(t, method="mixed")   # balanced: the same interval
        >>> round(m.effect, 3), round(m.ci_low, 3), round(m.ci_high, 3)
        (0.433, -1.221, 2.087)

    References:
        Bouthillier et al., "Accounting for variance in machine learning benchmarks",
        MLSys 2021. Analysis plan: ``experiments/analysis.toml``, ``[statistics]``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentTypeError(f"frame: must be a pandas DataFrame, got {type(frame).__name__}")
    value = check_str(value, "value")
    split = check_str(split, "split")
    seed = check_str(seed, "seed")
    conf = check_number(confidence, "confidence", low=0.0, low_open=True, high=1.0, high_open=True)
    method = check_choice(method, "method", METHODS)
    if len({value, split, seed}) < 3:
        raise ValueError(f"split: value, split and seed must name three different columns, got "
                         f"{value!r}, {split!r}, {seed!r}")
    if len(frame) == 0:
        raise ValueError("frame: has no rows (one paired difference per run is needed)")
    col = _column(frame, value, "value")
    if col.dtype == object or pd.api.types.is_bool_dtype(col):
        raise ArgumentTypeError(f"value: column {value!r} must hold numbers, got dtype {col.dtype}")
    d = check_series(col.to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(col) else col,
                     "value")
    keys = {}
    for arg, name in (("split", split), ("seed", seed)):
        c = _column(frame, name, arg)
        if c.isna().any():
            i = int(np.flatnonzero(c.isna().to_numpy())[0])
            raise ValueError(f"{arg}: column {name!r} has a missing value at row {i}")
        keys[arg] = c.to_numpy()
    dup = pd.DataFrame(keys).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"frame: ({split}, {seed}) = ({keys['split'][i]!r}, {keys['seed'][i]!r}) "
                         f"appears more than once (row {i}); one paired difference per run")

    n_runs = int(d.size)
    codes, uniques = pd.factorize(keys["split"], sort=True)
    n_splits = int(len(uniques))
    n_seeds = int(pd.Series(keys["seed"]).nunique())

    so = one_sample_t(d, conf)          # seed-only: every run as if from one split
    note = ""
    if n_splits == 1:
        eff, se, df, lo, hi, p = so.mean, so.se, so.df, so.ci_low, so.ci_high, so.p_value
        note = "one split: the split-aware interval is the seed-only one"
    else:
        means = np.bincount(codes, weights=d) / np.bincount(codes)
        if method == "split_means":
            eff, se = float(means.mean()), float(means.std(ddof=1)) / math.sqrt(n_splits)
        else:
            eff, se, note = _mixed(d, codes)
        df = float(n_splits - 1)
        lo, hi, p = t_interval(eff, se, df, conf)
    return SplitEffect(effect=eff, se=se, df=df, ci_low=lo, ci_high=hi, p_value=p,
                       seed_only_effect=so.mean, seed_only_se=so.se, seed_only_df=so.df,
                       seed_only_ci_low=so.ci_low, seed_only_ci_high=so.ci_high,
                       seed_only_p_value=so.p_value, n_splits=n_splits, n_seeds=n_seeds,
                       n_runs=n_runs, single_split=n_splits == 1, method=method,
                       confidence=conf, note=note)


# ============================================================================ verdict words
def _number_or_nan(x, name: str, **kw) -> float:
    """`check_number`, except that a float ``nan`` (a statistic that could not be computed)
    is returned as is."""
    if isinstance(x, (float, np.floating)) and math.isnan(x):
        return math.nan
    return check_number(x, name, **kw)


def _maybe_p(x, name: str) -> float | None:
    return None if x is None else _number_or_nan(x, name, low=0.0, high=1.0)


def _maybe_bound(x, name: str) -> float:
    return _number_or_nan(x, name, allow_inf=True)


def verdict(ci_low, ci_high, margin, *, tost_low=None, tost_high=None, p_adjusted=None,
            p_tost_adjusted=None, alpha: float = 0.05) -> str:
    r"""The verdict word of one row: one of `VERDICT_WORDS`, applied in this order.

    1. ``"equivalent within margin"``: ``p_tost_adjusted < alpha`` when given (Holm within
       the family); otherwise the TOST interval ``(tost_low, tost_high)`` (the ``1 - 2 alpha``
       interval, e.g. from `tost`) lies inside ``(-margin, margin)``; without it, the
       ``(ci_low, ci_high)`` interval must (a stricter test, at ``alpha / 2``).
    2. ``"better"``: not 1, and ``p_adjusted < alpha`` with ``ci_low + ci_high > 0`` when
       ``p_adjusted`` is given; otherwise ``ci_low > 0``.
    3. ``"worse"``: not 1, and ``p_adjusted < alpha`` with ``ci_low + ci_high < 0``; otherwise
       ``ci_high < 0``.
    4. ``"inconclusive"``: otherwise, also whenever an interval end is ``nan`` (fewer than
       two splits or seeds).

    Equivalence comes first, as declared in ``experiments/analysis.toml`` ``[verdicts]``: the
    margin is the smallest effect the plan counts as a difference, so an effect shown to lie
    inside it answers "no difference that matters" even when it is shown to be non-zero (the
    caller can report that separately: ``ci_low > 0`` or ``ci_high < 0``). Every inequality is
    strict: an interval end exactly at 0 or at ``+/- margin`` decides nothing (it corresponds
    to ``p = alpha``, which does not reject). ``ci_low, ci_high`` are the ``1 - alpha``
    interval (symmetric, so its midpoint is the effect).

    Args:
        ci_low: lower end of the ``1 - alpha`` interval of the effect (``nan`` allowed).
        ci_high: upper end, ``>= ci_low`` (``nan`` allowed).
        margin: the equivalence margin, ``> 0``.
        tost_low: lower end of the ``1 - 2 alpha`` interval; given together with ``tost_high``.
        tost_high: upper end of the ``1 - 2 alpha`` interval.
        p_adjusted: the Holm-adjusted two-sided p-value of the effect, in ``[0, 1]`` or ``nan``.
        p_tost_adjusted: the Holm-adjusted TOST p-value, in ``[0, 1]`` or ``nan``.
        alpha: the level, in ``(0, 0.5)``.

    Returns:
        one of `VERDICT_WORDS`.

    Examples:
        >>> from w2s_theory.verdicts import verdict
        >>> verdict(0.8, 1.6, 0.5), verdict(-1.6, -0.8, 0.5)
        ('better', 'worse')
        >>> verdict(-0.3, 0.2, 0.5), verdict(-0.3, 0.9, 0.5)
        ('equivalent within margin', 'inconclusive')
        >>> verdict(0.1, 0.3, 0.5)                     # non-zero, but within the margin
        'equivalent within margin'
        >>> verdict(0.2, 1.0, 0.5, p_adjusted=0.08)    # Holm: not significant in its family
        'inconclusive'

    References:
        Lakens, Scheel and Isager, "Equivalence testing for psychological research",
        Adv. Methods Pract. Psychol. Sci. 1 (2018). Plan: ``experiments/analysis.toml``.
    """
    lo = _maybe_bound(ci_low, "ci_low")
    hi = _maybe_bound(ci_high, "ci_high")
    if lo > hi:
        raise ValueError(f"ci_high: must be >= ci_low, got {hi!r} < {lo!r}")
    m = check_number(margin, "margin", low=0.0, low_open=True)
    a = check_number(alpha, "alpha", low=0.0, low_open=True, high=0.5, high_open=True)
    if (tost_low is None) != (tost_high is None):
        raise ValueError("tost_high: give tost_low and tost_high together (the 1 - 2 alpha "
                         "interval), or neither")
    p_adj = _maybe_p(p_adjusted, "p_adjusted")
    p_tost = _maybe_p(p_tost_adjusted, "p_tost_adjusted")
    if tost_low is not None:
        t_lo = _maybe_bound(tost_low, "tost_low")
        t_hi = _maybe_bound(tost_high, "tost_high")
        if t_lo > t_hi:
            raise ValueError(f"tost_high: must be >= tost_low, got {t_hi!r} < {t_lo!r}")
    else:
        t_lo, t_hi = lo, hi

    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if p_tost is not None:
        equivalent = p_tost < a
    else:
        equivalent = -m < t_lo and t_hi < m
    if equivalent:
        return "equivalent within margin"
    mid = lo + hi
    if p_adj is not None:
        if p_adj < a and mid > 0:
            return "better"
        if p_adj < a and mid < 0:
            return "worse"
        return "inconclusive"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "inconclusive"
