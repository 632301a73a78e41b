r"""The toolkit's statistics in one module, built on ``scipy.stats`` and statsmodels.

Every interval and test of the toolkit is computed here. `w2s_theory.metrics`,
`w2s_theory.verdicts` (the split-aware effect and the verdict words), `w2s_theory.ledger` and
the sweep summaries (`w2s_theory.summaries`) call these functions; the older names stay
importable where they were.

* `t_interval`: a t interval and two-sided t-test from a mean, its standard error and the
  degrees of freedom (``scipy.stats.t.interval``).
* `one_sample_t`: the same from data (``scipy.stats.ttest_1samp``); `paired_effect` applies it to
  paired differences ``a - b`` (what ``scipy.stats.ttest_rel`` computes).
* `sign_test`: the exact two-sided sign test (``scipy.stats.binomtest``).
* `tost`: two one-sided t-tests of equivalence within a margin.
* `holm`: Holm's step-down adjustment (equal to statsmodels' ``multipletests``).
* `clopper_pearson`: the exact binomial interval (``scipy.stats.binomtest``).
* `min_detectable_effect`: the effect a two-sided t-test detects with a given power.
* `gap_filter` and `pgr_interval`: whether a setting has a weak-to-strong gap, and PGR with
  Fieller's interval.

Edge cases are handled the same way everywhere: fewer than two values give ``nan`` for every
spread-based quantity; a standard error of exactly 0 gives the degenerate interval
``[mean, mean]`` and the exact test (``p = 1`` when the mean is 0, else ``p = 0``). Input must
be finite: ``NaN`` is an error here (callers that drop missing values say so).

References
----------
Student, "The probable error of a mean", Biometrika 6 (1908).
Schuirmann, J. Pharmacokinet. Biopharm. 15 (1987) (TOST); Lakens, Soc. Psychol. Personal.
Sci. 8 (2017).
Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
Clopper & Pearson, "The use of confidence or fiducial limits illustrated in the case of the
binomial", Biometrika 26 (1934).
Fieller, "Some problems in interval estimation", J. R. Statist. Soc. B 16 (1954).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from ._validation import (
    as_float_array,
    check_int,
    check_number,
    check_series,
)

__all__ = [
    "t_interval",
    "OneSampleT",
    "one_sample_t",
    "PairedEffect",
    "paired_effect",
    "sign_test",
    "TOSTResult",
    "tost",
    "holm",
    "clopper_pearson",
    "min_detectable_effect",
    "gap_filter",
    "PGRInterval",
    "pgr_interval",
]

def _confidence(confidence, *, one: bool = False) -> float:
    """A level in ``(0, 1)``; ``one=True`` also accepts 1 (the interval is then the real line)."""
    return check_number(confidence, "confidence", low=0.0, low_open=True, high=1.0,
                        high_open=not one)


def _t_quantile(confidence: float, df: float) -> float:
    """``t_{df, (1 + confidence) / 2}``, the two-sided critical value."""
    return float(sps.t.ppf(0.5 + confidence / 2.0, df))


class _Record:
    """A frozen result record; ``to_dict()`` gives its fields in declaration order."""

    def to_dict(self) -> dict:
        """The fields as a plain ``dict``, in declaration order."""
        return asdict(self)


# ============================================================================ t intervals
def t_interval(mean, se, df, confidence: float = 0.95) -> tuple[float, float, float]:
    r"""t interval ``mean +/- t_{df, (1+confidence)/2} se`` and the two-sided test of 0.

    ``p = 2 P(T_df > |mean| / se)``. Undefined (``nan`` everywhere) when ``se`` is not finite
    or ``df <= 0``. With ``se = 0`` the interval is ``[mean, mean]`` and the test is exact:
    ``p = 1`` when ``mean = 0``, else ``0``.

    Args:
        mean: the estimate.
        se: its standard error (``>= 0``, or ``nan``).
        df: degrees of freedom (may be fractional).
        confidence: level of the interval, in ``(0, 1]`` (1: the whole line).

    Returns:
        ``(low, high, p)``.

    Examples:
        >>> [round(v, 4) for v in t_interval(2.0, 1 / 3 ** 0.5, 2)]
        [-0.4841, 4.4841, 0.0742]
        >>> t_interval(0.5, 0.0, 4)
        (0.5, 0.5, 0.0)
    """
    mean, se, df = float(mean), float(se), float(df)
    conf = _confidence(confidence, one=True)
    if not (math.isfinite(se) and df > 0):
        return math.nan, math.nan, math.nan
    if se == 0.0:
        return mean, mean, (1.0 if mean == 0.0 else 0.0)
    lo, hi = sps.t.interval(conf, df, loc=mean, scale=se)
    return float(lo), float(hi), float(2.0 * sps.t.sf(abs(mean) / se, df))


@dataclass(frozen=True)
class OneSampleT(_Record):
    """One-sample t interval of a mean and the two-sided t-test of mean 0.

    Attributes:
        n: number of values.
        mean: their mean (``nan`` when ``n = 0``).
        sd: standard deviation, ddof 1 (``nan`` when ``n < 2``).
        se: ``sd / sqrt(n)``.
        df: ``n - 1``.
        ci_low: ``mean - t_{n-1} se`` at ``confidence``.
        ci_high: ``mean + t_{n-1} se``.
        p_value: two-sided test of mean 0 (``nan`` when ``n < 2``).
    """

    n: int
    mean: float
    sd: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float


def one_sample_t(x, confidence: float = 0.95) -> OneSampleT:
    r"""Mean of ``x`` with its t interval ``mean +/- t_{n-1} sd / sqrt(n)`` and test of 0.

    ``scipy.stats.ttest_1samp(x, 0)`` and its ``confidence_interval``. ``n = 0`` gives
    ``nan`` everywhere, ``n = 1`` the mean and ``nan`` otherwise; every value equal gives
    ``sd = 0`` and the exact degenerate test of `t_interval`.

    Args:
        x: shape ``(n,)``, finite.
        confidence: level of the interval, in ``(0, 1]`` (1: the whole line, when ``sd > 0``).

    Returns:
        a `OneSampleT`.

    Examples:
        >>> r = one_sample_t([1.0, 2.0, 3.0])
        >>> round(r.ci_low, 4), round(r.ci_high, 4), round(r.p_value, 4)
        (-0.4841, 4.4841, 0.0742)
    """
    v = check_series(x, "x")
    conf = _confidence(confidence, one=True)
    n = int(v.size)
    if n == 0:
        return OneSampleT(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n < 2:
        return OneSampleT(n, mean, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    se = sd / math.sqrt(n)
    if sd == 0.0:
        lo, hi, p = t_interval(mean, 0.0, n - 1, conf)
    else:
        r = sps.ttest_1samp(v, 0.0)
        ci = r.confidence_interval(conf)
        lo, hi, p = float(ci.low), float(ci.high), float(r.pvalue)
        if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(p)):
            lo, hi, p = t_interval(mean, se, n - 1, conf)     # scipy's own variance was 0
    return OneSampleT(n, mean, sd, se, float(n - 1), lo, hi, p)


@dataclass(frozen=True)
class PairedEffect(_Record):
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

    ``t = mean(d) / (s_d / sqrt(n))`` with ``n - 1`` degrees of freedom, two-sided p-value:
    ``scipy.stats.ttest_rel(a, b)`` (through `one_sample_t` on ``d``). Fewer than two pairs
    give ``nan`` everywhere but ``n`` and ``mean``.

    Args:
        a, b: shape ``(n,)``, matched by seed.
        confidence: level of the interval, in ``(0, 1)``.

    Examples:
        >>> e = paired_effect([0.70, 0.72, 0.71], [0.60, 0.61, 0.63])
        >>> round(e.mean, 4), round(e.ci_low, 4), round(e.ci_high, 4), round(e.p_value, 4)
        (0.0967, 0.0587, 0.1346, 0.0082)
    """
    x, y = _paired_arrays(a, b, "a", "b")
    r = one_sample_t(x - y, _confidence(confidence))
    return PairedEffect(r.n, r.mean, r.sd, r.ci_low, r.ci_high, r.p_value)


def sign_test(d) -> tuple[int, int, int, float]:
    r"""Exact two-sided sign test of differences ``d``: ties dropped, ``#(d > 0)`` against 1/2.

    ``scipy.stats.binomtest(wins, wins + losses, 0.5)``; ``p = 1`` when every difference is 0.

    Args:
        d: shape ``(n,)``, finite.

    Returns:
        ``(wins, losses, ties, p)``: counts of ``d > 0``, ``d < 0``, ``d = 0`` and the p-value.

    Examples:
        >>> sign_test([0.1, 0.2, 0.1, 0.3, 0.0])
        (4, 0, 1, 0.125)
    """
    v = check_series(d, "d")
    wins, losses = int((v > 0).sum()), int((v < 0).sum())
    m = wins + losses
    p = float(sps.binomtest(wins, m, 0.5).pvalue) if m > 0 else 1.0
    return wins, losses, int(v.size) - m, p


# ============================================================================ equivalence
@dataclass(frozen=True)
class TOSTResult(_Record):
    """Two one-sided t-tests of ``-margin < effect < margin``.

    Attributes:
        p_lower: p-value of ``H0: effect <= -margin`` against ``effect > -margin``.
        p_upper: p-value of ``H0: effect >= margin`` against ``effect < margin``.
        p: ``max(p_lower, p_upper)``, the TOST p-value.
        ci_low: ``effect - t_{1 - alpha, df} se``, the lower end of the ``1 - 2 alpha`` interval.
        ci_high: ``effect + t_{1 - alpha, df} se``.
        equivalent: ``p < alpha``, i.e. ``-margin < ci_low`` and ``ci_high < margin``.
    """

    p_lower: float
    p_upper: float
    p: float
    ci_low: float
    ci_high: float
    equivalent: bool


def tost(effect, se, df, margin, alpha: float = 0.05) -> TOSTResult:
    r"""Two one-sided t-tests (TOST) of equivalence within ``+/- margin``.

    ``t_lower = (effect + margin) / se``, ``p_lower = P(T_df > t_lower)``;
    ``t_upper = (effect - margin) / se``, ``p_upper = P(T_df < t_upper)``;
    ``p = max(p_lower, p_upper)``. Rejecting both at ``alpha`` (``p < alpha``) is the same
    decision as the ``1 - 2 alpha`` interval ``effect +/- t_{1 - alpha, df} se`` lying inside
    the open interval ``(-margin, margin)``. With ``se = 0`` the tests are exact:
    ``p_lower = 0`` if ``effect > -margin`` else 1, ``p_upper = 0`` if ``effect < margin`` else 1.

    Args:
        effect: the estimated effect (a finite scalar, e.g. points of accuracy).
        se: its standard error, ``>= 0``.
        df: degrees of freedom of the t distribution, ``> 0`` (may be fractional).
        margin: the equivalence margin, ``> 0``, in the unit of ``effect``.
        alpha: the level of each one-sided test, in ``(0, 0.5)``.

    Returns:
        a `TOSTResult`.

    Examples:
        >>> r = tost(0.1, 0.1, 9, 0.5)
        >>> round(r.p_lower, 4), round(r.p_upper, 4), r.p == r.p_upper, r.equivalent
        (0.0001, 0.0016, True, True)
        >>> round(r.ci_low, 3), round(r.ci_high, 3)  # the 90 % interval, inside (-0.5, 0.5)
        (-0.083, 0.283)
        >>> tost(0.4, 0.1, 9, 0.5).equivalent       # 90 % interval reaches 0.58 > 0.5
        False

    References:
        Schuirmann, J. Pharmacokinet. Biopharm. 15 (1987) 657-680; Lakens, Soc. Psychol.
        Personal. Sci. 8 (2017) 355-362.
    """
    eff = check_number(effect, "effect")
    s = check_number(se, "se", low=0.0)
    dof = check_number(df, "df", low=0.0, low_open=True)
    m = check_number(margin, "margin", low=0.0, low_open=True)
    a = check_number(alpha, "alpha", low=0.0, low_open=True, high=0.5, high_open=True)
    if s == 0.0:
        p_lo = 0.0 if eff > -m else 1.0
        p_hi = 0.0 if eff < m else 1.0
        lo = hi = eff
    else:
        p_lo = float(sps.t.sf((eff + m) / s, dof))
        p_hi = float(sps.t.cdf((eff - m) / s, dof))
        half = float(sps.t.ppf(1.0 - a, dof)) * s
        lo, hi = eff - half, eff + half
    p = max(p_lo, p_hi)
    return TOSTResult(p_lower=p_lo, p_upper=p_hi, p=p, ci_low=lo, ci_high=hi,
                      equivalent=bool(p < a))


# ============================================================================ families, counts
def holm(pvalues) -> np.ndarray:
    r"""Holm's step-down adjusted p-values within one family.

    Sorted ``p_(1) <= ... <= p_(m)`` get ``min(1, max_{j <= i} (m - j + 1) p_(j))``;
    rejecting ``adjusted < alpha`` controls the family-wise error rate at ``alpha``.
    A ``nan`` entry is a test of the family that gave no p-value (fewer than two seeds): it
    is counted in the family size ``m`` as ``p = 1`` (conservative: leaving it out would
    shrink ``m`` and the other adjustments) and its own adjusted value is ``nan``. Values
    outside ``[0, 1]`` (also ``inf``) are errors, not dropped. Equal to
    ``statsmodels.stats.multitest.multipletests(method="holm")`` (tested), in plain numpy
    (``multipletests`` runs ``gc.collect()`` on every call: ~70 ms, hundreds of families).

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
        q = np.where(nan, 1.0, p)
        m = q.size
        order = np.argsort(q, kind="stable")
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
        out[~nan] = adj[~nan]
    return out


def clopper_pearson(k, n, confidence: float = 0.95) -> tuple[float, float]:
    r"""Clopper-Pearson (exact) interval of a binomial proportion ``k / n``.

    ``[B(alpha/2; k, n - k + 1), B(1 - alpha/2; k + 1, n - k)]`` with ``B`` the beta
    quantile, ``alpha = 1 - confidence``, and the ends ``0`` at ``k = 0`` and ``1`` at
    ``k = n``: ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.

    Args:
        k: successes, ``0 <= k <= n``.
        n: trials, ``>= 1``.
        confidence: level, in ``(0, 1)``.

    Returns:
        ``(low, high)``.

    Examples:
        >>> [round(v, 4) for v in clopper_pearson(10, 10)]
        [0.6915, 1.0]
    """
    n = check_int(n, "n", low=1)
    k = check_int(k, "k", low=0, high=n)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=_confidence(confidence),
                                           method="exact")
    return float(ci.low), float(ci.high)


def min_detectable_effect(se, df, power: float = 0.8, alpha: float = 0.05) -> float:
    r"""Minimum detectable effect ``(t_{df, 1 - alpha/2} + t_{df, power}) se`` of a two-sided
    t-test at level ``alpha`` (the usual normal-theory approximation with t quantiles).

    Args:
        se: the standard error of the effect, ``>= 0``.
        df: degrees of freedom, ``> 0``.
        power: the power, in ``(0, 1)``.
        alpha: the two-sided level, in ``(0, 1)``.

    Examples:
        >>> round(min_detectable_effect(1.0, 9), 3)
        3.146
    """
    s = check_number(se, "se", low=0.0)
    dof = check_number(df, "df", low=0.0, low_open=True)
    pw = check_number(power, "power", low=0.0, low_open=True, high=1.0, high_open=True)
    a = check_number(alpha, "alpha", low=0.0, low_open=True, high=1.0, high_open=True)
    return (float(sps.t.ppf(1.0 - a / 2.0, dof)) + float(sps.t.ppf(pw, dof))) * s


# ============================================================================ gap and PGR
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
class PGRInterval(_Record):
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
    conf = _confidence(confidence)
    n = int(s.size)
    if n < 2:
        return PGRInterval(math.nan, math.nan, math.nan, n, False, "fewer than 2 seeds")
    a, b = s - w, c - w
    ab, bb = float(a.mean()), float(b.mean())
    cov = np.cov(np.stack([a, b]), ddof=1)
    saa, sab, sbb = float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])
    t2 = _t_quantile(conf, n - 1) ** 2
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
