"""A synthetic Gaussian weak-to-strong instance where every assumption is a switch (numpy).

One instance (`make_instance`) is drawn from a `SyntheticConfig` and a seed:

* **Strong representation** ``h_s(x) ~ N(0, Sigma)`` in ``R^d``, ``Sigma = Q diag(lambda) Q^T``
  with a random rotation ``Q`` and eigenvalues ``lambda_j ∝ (j + 1)^(-cov_decay)``
  normalised to mean 1 (``cov_decay = 0``: isotropic).
* **Weak representation** ``h_w(x) = M^T h_s(x) + weak_noise * eps``: a lossy view, a random
  ``d_weak``-dimensional orthonormal projection ``M`` of ``h_s`` plus isotropic Gaussian noise.
* **Truth** ``F*`` on ``h_s``, in a chosen head class:

  - ``truth = "affine"`` (the mixture-convex class of Theorem 2):
    ``F*(x) = 1/k + s U(x)``, ``U(x) = W^T h_s(x)`` with rows of ``W`` summing to zero, and
    ``s`` set so that ``min F* = 1/k - truth_scale (1/k - truth_floor)`` over *all* the
    instance's samples (so ``F* >= truth_floor`` on every sample: realizable with floor
    ``gamma <= truth_floor``);
  - ``truth = "softmax"`` (the exponential-family class of the dual statement):
    ``F*(x) = softmax(truth_scale * U(x) + b)``.

  ``misspec = m > 0`` replaces ``U = W^T h_s / sqrt(d)`` by
  ``(1 - m) W^T h_s / sqrt(d) + m |V^T h_s| / sqrt(d)`` (each part centred across classes and
  scaled to equal standard deviation): ``F*`` leaves the class (an unrealizable truth).
* **Labels**: ``labels = "soft"`` -- the weak model is fitted to ``F*`` itself and accuracy is
  measured against ``argmax F*``; ``labels = "sampled"`` -- one label per sample is drawn from
  ``F*`` (the weak model fits the one-hot labels, accuracy uses the drawn labels).
  Risks are always ``E KL(F* || F)`` with the soft ``F*``.
* **Weak model**: a softmax head on ``h_w`` fitted by forward cross-entropy (exact, float64,
  `w2s_theory.heads.fit_softmax_head` with ``weak_l2``; ``weak_l2 = 0`` on one-hot labels the
  weak view separates has no minimiser and raises) on the ``gt`` split; its logits
  are divided by ``weak_temperature`` (``< 1``: over-confident) and its predictions smoothed,
  ``(1 - k gamma) F + gamma``, so every coordinate is ``>= gamma``.
* **Weak-label noise** on a random fraction ``noise_frac`` of the ``w2s`` split:
  ``noise_kind = "affine"``: ``y -> 1/k + a (y - 1/k)`` (binary: ``1/2 + a(y - 1/2)``;
  ``a = -1`` flips, ``a = 0`` erases); ``noise_kind = "flip"``: a symmetric k-class flip, the
  classes cyclically shifted by a uniform random ``s in {1..k-1}`` (binary: ``y -> 1 - y``).
* **Splits** ``gt`` (fits the weak model), ``w2s`` (weak labels; the strong head is fitted
  here and Theorems are checked here: the empirical measure), ``test``.

Binary instances (``k = 2``) use the ``(n,)`` shorthand ``P(class 1)`` everywhere.

Every random draw comes from its own child of ``numpy.random.SeedSequence(seed)``, so the same
``(config, seed)`` gives the same instance, and changing e.g. the noise leaves the features,
truth and weak model unchanged.

References
----------
Burns et al., arXiv:2312.09390 (the gt / w2s / test protocol);
Yao et al., arXiv:2502.11107 (4K / 4K / 4K splits, label-noise experiments).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.special import expit, softmax

from ._validation import check_gamma, check_probs, check_scalar
from .config import from_mapping
from .divergences import smooth
from .heads import NO_MINIMIZER, fit_softmax_head

__all__ = [
    "SyntheticConfig",
    "Split",
    "Instance",
    "make_instance",
    "apply_label_noise",
    "config_from_dict",
]

_TRUTHS = ("affine", "softmax")
_LABELS = ("soft", "sampled")
_NOISE = ("affine", "flip")
# Children of SeedSequence(seed), by purpose (order fixed forever).
_STREAMS = ("cov", "features", "truth", "labels", "weak_view", "noise")


@dataclass(frozen=True)
class SyntheticConfig:
    """One W2SG instance family (see the module docstring for the generative model).

    Attributes:
        k: number of classes (>= 2).
        d_strong: dimension of ``h_s``. d_weak: dimension of the weak view (``1..d_strong``).
        weak_noise: std of the noise added to the weak view (>= 0).
        cov_decay: eigenvalue decay exponent of ``Cov(h_s)`` (>= 0; 0 = isotropic).
        truth: ``"affine"`` (convex class) or ``"softmax"``.
        truth_scale: affine: fraction in ``(0, 1]`` of the room ``1/k - truth_floor`` used;
            softmax: logit scale (> 0).
        truth_floor: affine only: smallest truth probability, in ``[0, 1/k)``.
        misspec: weight in ``[0, 1]`` of the non-linear (unrealizable) part of ``F*``.
        labels: ``"soft"`` or ``"sampled"``.
        n_gt, n_w2s, n_test: split sizes (>= 1; paper: 4000 each).
        weak_l2: L2 weight of the weak model's (standardised) weights.
        gamma: smoothing floor of the weak predictions, in ``(0, 1/k]``.
        noise_frac: fraction of ``w2s`` weak labels corrupted, in ``[0, 1]``.
        noise_kind: ``"affine"`` or ``"flip"``.
        noise_a: slope ``a`` of the affine corruption; ``[-1, 1]`` (binary) or
            ``[-1/(k-1), 1]`` (k classes, so that corrupted rows stay in the simplex);
            unused by ``"flip"``.
        weak_temperature: the weak model's logits are divided by it before the softmax
            (``< 1``: an over-confident weak model), ``> 0``.
    """

    k: int = 2
    d_strong: int = 16
    d_weak: int = 4
    weak_noise: float = 0.5
    cov_decay: float = 0.0
    truth: str = "softmax"
    truth_scale: float = 3.0
    truth_floor: float = 0.01
    misspec: float = 0.0
    labels: str = "soft"
    n_gt: int = 4000
    n_w2s: int = 4000
    n_test: int = 4000
    weak_l2: float = 1e-4
    gamma: float = 1e-3
    noise_frac: float = 0.0
    noise_kind: str = "flip"
    noise_a: float = -1.0
    weak_temperature: float = 1.0

    def __post_init__(self):
        for name in ("k", "d_strong", "d_weak", "n_gt", "n_w2s", "n_test"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.k < 2:
            raise ValueError(f"k: need k >= 2 classes, got {self.k}")
        if self.d_weak > self.d_strong:
            raise ValueError(f"d_weak: must be <= d_strong={self.d_strong}, got {self.d_weak}")
        if self.truth not in _TRUTHS:
            raise ValueError(f"truth: must be one of {_TRUTHS}, got {self.truth!r}")
        if self.labels not in _LABELS:
            raise ValueError(f"labels: must be one of {_LABELS}, got {self.labels!r}")
        if self.noise_kind not in _NOISE:
            raise ValueError(f"noise_kind: must be one of {_NOISE}, got {self.noise_kind!r}")
        check_scalar(self.weak_noise, "weak_noise", low=0.0)
        check_scalar(self.cov_decay, "cov_decay", low=0.0)
        check_scalar(self.misspec, "misspec", low=0.0, high=1.0)
        check_scalar(self.weak_l2, "weak_l2", low=0.0)
        check_scalar(self.noise_frac, "noise_frac", low=0.0, high=1.0)
        check_scalar(self.weak_temperature, "weak_temperature", low=0.0, low_open=True)
        if self.truth == "affine":
            check_scalar(self.truth_scale, "truth_scale", low=0.0, low_open=True, high=1.0)
        else:
            check_scalar(self.truth_scale, "truth_scale", low=0.0, low_open=True)
        fl = check_scalar(self.truth_floor, "truth_floor", low=0.0)
        if fl >= 1.0 / self.k:
            raise ValueError(f"truth_floor: must lie in [0, 1/k) = [0, {1 / self.k:g}), got {fl!r}")
        check_gamma(self.gamma, self.k)
        lo = -1.0 if self.k == 2 or self.noise_kind == "flip" else -1.0 / (self.k - 1)
        check_scalar(self.noise_a, "noise_a", low=lo, high=1.0)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> SyntheticConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def config_from_dict(d: dict) -> SyntheticConfig:
    """Build a `SyntheticConfig` from a dict (e.g. a TOML table); unknown keys raise.

    Examples:
        >>> from w2s_theory.synthetic import config_from_dict
        >>> config_from_dict({"k": 3, "truth": "affine", "truth_scale": 0.9}).k
        3
    """
    return from_mapping(SyntheticConfig, d, where="[base]", path="base")


@dataclass(frozen=True)
class Split:
    """One split of an instance.

    Attributes:
        h_strong: ``(n, d_strong)``. h_weak: ``(n, d_weak)``.
        f_star: soft truth, ``(n,)`` (binary) or ``(n, k)``.
        labels: ``(n,)`` integer class labels (drawn from ``F*`` or ``argmax F*``).
    """

    h_strong: np.ndarray
    h_weak: np.ndarray
    f_star: np.ndarray
    labels: np.ndarray

    @property
    def n(self) -> int:
        return int(self.h_strong.shape[0])


@dataclass(frozen=True)
class Instance:
    """A drawn W2SG instance.

    Attributes:
        config, seed: what it was drawn from.
        gt, w2s, test: the splits.
        weak_probs: the (noisy) weak labels ``F_w`` on ``w2s``, every coordinate ``>= gamma``.
        weak_probs_clean: the same before label noise.
        weak_test_probs: the weak model on ``test`` (smoothed, no noise).
        noise_mask: ``(n_w2s,)`` bool, which ``w2s`` labels were corrupted.
        weak_report: the weak model's fit report.
    """

    config: SyntheticConfig
    seed: int
    gt: Split
    w2s: Split
    test: Split
    weak_probs: np.ndarray
    weak_probs_clean: np.ndarray
    weak_test_probs: np.ndarray
    noise_mask: np.ndarray
    weak_report: object = field(repr=False, default=None)


# ----------------------------------------------------------------------------- pieces
def _covariance_factor(cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Return L with L L^T = Sigma (random rotation, power-law spectrum with mean 1)."""
    d = cfg.d_strong
    lam = (np.arange(d) + 1.0) ** (-cfg.cov_decay)
    lam *= d / lam.sum()
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q *= np.sign(np.diag(r))
    return q * np.sqrt(lam)


def _centred_columns(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=1, keepdims=True)


def _truth_scores(cfg: SyntheticConfig, h: np.ndarray, rng: np.random.Generator):
    """Scores ``u`` of shape ``(n, k)`` with rows summing to 0, and a bias ``b`` (softmax).

    ``u = (1 - m) lin + m nl``: ``lin = W^T h / sqrt(d)`` (linear: realizable) and
    ``nl = |V^T h| / sqrt(d)`` (not linear in ``h``), both centred across classes and
    scaled to the same standard deviation before mixing.
    """
    d, k = cfg.d_strong, cfg.k
    w = rng.standard_normal((d, k))
    v = rng.standard_normal((d, k))
    b = rng.standard_normal(k) * 0.5
    lin = _centred_columns(h @ w / math.sqrt(d))
    nl = _centred_columns(np.abs(h @ v) / math.sqrt(d))
    nl *= lin.std() / max(float(nl.std()), 1e-300)
    return (1.0 - cfg.misspec) * lin + cfg.misspec * nl, b


def _truth_probs(cfg: SyntheticConfig, u: np.ndarray, b: np.ndarray) -> np.ndarray:
    k = cfg.k
    if cfg.truth == "affine":
        room = (1.0 / k - cfg.truth_floor) * cfg.truth_scale
        lo = float((-u).max())
        return 1.0 / k + (room / lo if lo > 0 else 0.0) * u
    return softmax(cfg.truth_scale * u + b, axis=1)


def apply_label_noise(probs, frac: float, *, kind: str = "flip", a: float = -1.0,
                      rng: np.random.Generator | int = 0):
    r"""Corrupt a random fraction of weak labels.

    ``kind="affine"``: ``y -> 1/k + a (y - 1/k)`` (binary shorthand: ``1/2 + a(y - 1/2)``;
    ``a = -1`` flips, ``a = 0`` erases to uniform). ``kind="flip"``: each corrupted row's
    classes are cyclically shifted by ``s`` drawn uniformly from ``{1, ..., k-1}`` -- a
    symmetric flip (a hard label moves to each other class with probability ``1/(k-1)``;
    binary: ``y -> 1 - y``). Exactly ``round(frac * n)`` rows are corrupted.

    Args:
        probs: ``(n,)`` or ``(n, k)`` probabilities.
        frac: fraction in ``[0, 1]``.
        kind: ``"affine"`` or ``"flip"``.
        a: affine slope, ``[-1, 1]`` (binary) or ``[-1/(k-1), 1]``; unused by ``"flip"``.
        rng: a Generator or an integer seed.

    Returns:
        ``(noisy, mask)``: same shape as ``probs``, and the ``(n,)`` bool mask of corrupted rows.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.synthetic import apply_label_noise
        >>> y, m = apply_label_noise(np.array([0.9, 0.8, 0.3, 0.6]), 0.5, kind="affine", a=0.0, rng=0)
        >>> y.round(2).tolist(), int(m.sum())
        ([0.5, 0.8, 0.5, 0.6], 2)
    """
    p = check_probs(probs, "probs")
    frac = check_scalar(frac, "frac", low=0.0, high=1.0)
    if kind not in _NOISE:
        raise ValueError(f"kind: must be one of {_NOISE}, got {kind!r}")
    k = 2 if p.ndim == 1 else p.shape[1]
    lo = -1.0 if k == 2 or kind == "flip" else -1.0 / (k - 1)
    a = check_scalar(a, "a", low=lo, high=1.0)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    n = p.shape[0]
    m = int(round(frac * n))
    idx = rng.permutation(n)[:m]
    shifts = rng.integers(1, k, size=m) if k > 2 else np.ones(m, dtype=int)
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    out = p.copy()
    if m == 0:
        return out, mask
    if kind == "affine":
        c = 0.5 if p.ndim == 1 else 1.0 / k
        out[idx] = c + a * (p[idx] - c)
        if p.ndim == 2:
            out[idx] /= out[idx].sum(axis=1, keepdims=True)   # exact row sums after round-off
    elif p.ndim == 1:
        out[idx] = 1.0 - p[idx]
    else:
        cols = (np.arange(k)[None, :] - shifts[:, None]) % k
        out[idx] = np.take_along_axis(p[idx], cols, axis=1)
    return out, mask


def _binary(p: np.ndarray, k: int) -> np.ndarray:
    return p[:, 1].copy() if k == 2 else p


# ----------------------------------------------------------------------------- the instance
def make_instance(config: SyntheticConfig, seed: int) -> Instance:
    """Draw one W2SG instance (features, truth, weak model, noisy weak labels).

    Args:
        config: a `SyntheticConfig`.
        seed: non-negative integer; same ``(config, seed)``, same instance.

    Returns:
        `Instance`.

    Examples:
        >>> from w2s_theory.synthetic import SyntheticConfig, make_instance
        >>> cfg = SyntheticConfig(k=3, d_strong=6, d_weak=2, n_gt=50, n_w2s=40, n_test=30,
        ...                       truth="affine", truth_scale=0.9, noise_frac=0.25)
        >>> inst = make_instance(cfg, seed=0)
        >>> inst.w2s.h_strong.shape, inst.weak_probs.shape, int(inst.noise_mask.sum())
        ((40, 6), (40, 3), 10)
        >>> bool(inst.w2s.f_star.min() >= cfg.truth_floor)
        True
    """
    if not isinstance(config, SyntheticConfig):
        raise ValueError(f"config: expected a SyntheticConfig, got {type(config).__name__}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    cfg = config
    children = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(c) for name, c in zip(_STREAMS, children, strict=True)}
    sizes = (cfg.n_gt, cfg.n_w2s, cfg.n_test)
    n = sum(sizes)
    k = cfg.k

    chol = _covariance_factor(cfg, rngs["cov"])
    h = rngs["features"].standard_normal((n, cfg.d_strong)) @ chol.T
    u, b = _truth_scores(cfg, h, rngs["truth"])
    f_star = _truth_probs(cfg, u, b)                        # (n, k)
    if cfg.labels == "sampled":
        cum = np.cumsum(f_star, axis=1)
        r = rngs["labels"].uniform(size=(n, 1))
        labels = np.minimum((r > cum).sum(axis=1), k - 1)
    else:
        labels = f_star.argmax(axis=1)

    proj, rr = np.linalg.qr(rngs["weak_view"].standard_normal((cfg.d_strong, cfg.d_weak)))
    proj *= np.sign(np.diag(rr))
    h_w = h @ proj + cfg.weak_noise * rngs["weak_view"].standard_normal((n, cfg.d_weak))

    cuts = np.cumsum(sizes)[:-1]
    parts = [np.split(a, cuts) for a in (h, h_w, f_star, labels)]
    splits = [Split(h_strong=parts[0][i], h_weak=parts[1][i], f_star=_binary(parts[2][i], k),
                    labels=parts[3][i]) for i in range(3)]
    gt, w2s, test = splits

    target = gt.f_star if cfg.labels == "soft" else np.eye(k)[gt.labels]
    target = _binary(target, k) if cfg.labels == "sampled" else target
    weak = fit_softmax_head(gt.h_weak, target, loss="forward_ce", l2=cfg.weak_l2)
    if weak.report.status.startswith(NO_MINIMIZER):
        raise ValueError("weak_l2: the weak model's exact forward-CE fit has no finite minimiser "
                         "with weak_l2 = 0 on these labels (one-hot labels the weak view "
                         "separates: the logits diverge); use weak_l2 > 0 or soft labels")

    def weak_predict(hw):
        z = weak.logits(hw) / cfg.weak_temperature
        return expit(z) if k == 2 else softmax(z, axis=1)

    fw_clean = smooth(weak_predict(w2s.h_weak), cfg.gamma)
    fw_test = smooth(weak_predict(test.h_weak), cfg.gamma)
    fw, mask = apply_label_noise(fw_clean, cfg.noise_frac, kind=cfg.noise_kind, a=cfg.noise_a,
                                 rng=rngs["noise"])
    return Instance(config=cfg, seed=int(seed), gt=gt, w2s=w2s, test=test, weak_probs=fw,
                    weak_probs_clean=fw_clean, weak_test_probs=fw_test, noise_mask=mask,
                    weak_report=weak.report)
