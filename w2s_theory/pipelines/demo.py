"""The demo pipeline: a small synthetic check of Lemma 1 and Theorem 2 (seconds, no solver).

Command line: ``w2s-theory demo`` (`w2s_theory.cli.demo`); library: `run`.

What it does, on embedded defaults (`DemoConfig`; ``--config FILE.toml`` overrides):

* **Lemma 1.** Random populations (truth one-hot or soft; weak and strong predictions
  drawn peaked or flat, near or far from each other, then smoothed with ``gamma``), for
  several ``gamma`` and class counts (2 = the binary shorthand). For each: the exact gap
  and every stage of the chain from `w2s_theory.bounds.lemma1`, and the tightness
  ratio ``stage / |gap|`` (``>= 1`` when the lemma holds).
* **Theorem 2.** Two exactly solvable classes:

  - a convex hull ``conv(G_1..G_m)`` whose reverse-KL projection ``Q`` of ``F_w`` is
    known by construction (`hull_instance`); truths: every vertex, a random member
    (realizable) and a one-hot truth outside the class (not realizable);
  - a segment ``[G_1, G_2]``, both projections (reverse and forward KL) solved by
    bisection to machine precision (`segment_projections`); truths: the endpoints
    and the reverse projection (all in the class).

  The slack ``R(F_w) - d_reverse - R(F_sw)`` is ``>= -tol`` for every reverse projection
  with a realizable truth; the forward projection and the unrealizable truth show
  negative slack, which the check reports.

Outputs in ``--out`` (default ``results_local/demo/`` under the current directory):
``lemma1_trials.csv`` (one row per population), ``theorem2_cases.csv`` (one row per
instance x projection x truth), ``summary.csv`` (the printed table), ``config.json`` and
``demo.png`` / ``demo.pdf``. Same seed, same files.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic_io import atomic_write_bytes, atomic_write_text
from ..bounds import lemma1, theorem2
from ..config import from_mapping, load_config
from ..divergences import smooth
from ..plotting import plot_demo

__all__ = ["DemoConfig", "run", "run_demo", "violations", "format_table", "hull_instance", "segment_projections",
           "random_population"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo (TOML keys = field names, top level or a ``[demo]`` table)."""

    seed: int = 0
    lemma1_trials: int = 600              # populations for Lemma 1
    rows: int = 40                        # rows per population
    gammas: tuple[float, ...] = (1e-3, 1e-2, 0.1)
    classes: tuple[int, ...] = (2, 3, 5)  # 2 = the binary shorthand (n,)
    hull_instances: int = 10              # convex-hull instances for Theorem 2
    segment_instances: int = 30           # segment instances for Theorem 2
    theorem2_rows: int = 8                # rows per Theorem-2 instance
    theorem2_classes: int = 3

    def __post_init__(self):
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed: must be an integer >= 0, got {self.seed!r}")
        for name in ("lemma1_trials", "rows", "hull_instances", "segment_instances", "theorem2_rows"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        if not all(isinstance(k, int) and k >= 2 for k in self.classes) or not self.classes:
            raise ValueError(f"classes: must be integers >= 2, got {self.classes!r}")
        if not (isinstance(self.theorem2_classes, int) and self.theorem2_classes >= 2):
            raise ValueError(f"theorem2_classes: must be an integer >= 2, got {self.theorem2_classes!r}")
        if not self.gammas or not all(0 < g <= 1 / max(self.classes) for g in self.gammas):
            raise ValueError(f"gammas: each must lie in (0, 1/max(classes)], got {self.gammas!r}")

    @classmethod
    def from_dict(cls, raw: dict) -> DemoConfig:
        """From a TOML-like dict (top level or a ``[demo]`` table); unknown keys are an error."""
        nested = "demo" in raw
        return from_mapping(cls, dict(raw.get("demo", raw)), where="[demo]" if nested else "",
                            path="demo" if nested else "")

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> DemoConfig:
        """Load from a TOML file; unknown keys and bad values name the file."""
        return load_config(path, cls.from_dict)


# ----------------------------------------------------------------------------- Lemma 1
def random_population(rng: np.random.Generator, n: int, k: int, gamma: float):
    """(F*, F_w, F_sw) with smoothed predictions; ``k = 2`` gives the binary shorthand.

    Examples:
        >>> import numpy as np
        >>> fs, fw, fsw = random_population(np.random.default_rng(0), 5, 2, 0.01)
        >>> fs.shape, bool(min(fw.min(), 1 - fw.max()) >= 0.01)
        ((5,), True)
    """
    conc = float(rng.choice([0.1, 0.5, 2.0]))
    f_star = np.eye(k)[rng.integers(0, k, n)] if rng.uniform() < 0.5 else rng.dirichlet([conc] * k, n)
    fw = rng.dirichlet([conc] * k, n)
    t = float(rng.choice([0.01, 0.1, 0.5]))          # how far the strong model moves
    fsw = (1 - t) * fw + t * rng.dirichlet([conc] * k, n)
    fsw /= fsw.sum(1, keepdims=True)
    if k == 2:
        f_star, fw, fsw = f_star[:, 1], fw[:, 1], fsw[:, 1]
    return f_star, smooth(fw, gamma), smooth(fsw, gamma)


def lemma1_trials(cfg: DemoConfig, progress: bool = True) -> list[dict]:
    from tqdm.auto import tqdm

    rng = np.random.default_rng([cfg.seed, 1])
    combos = [(g, k) for g in cfg.gammas for k in cfg.classes]
    rows = []
    for i in tqdm(range(cfg.lemma1_trials), desc="lemma 1", disable=not progress, leave=False):
        gamma, k = combos[i % len(combos)]
        r = lemma1(*random_population(rng, cfg.rows, k, gamma), gamma)
        row = {"trial": i, "classes": k, "binary_shorthand": k == 2, "gamma": gamma, **r.to_dict()}
        row.update({f"ratio_{s}": v for s, v in r.tightness().items()})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- Theorem 2
def hull_instance(rng: np.random.Generator, n: int, k: int, m: int = 4, delta: float = 0.05):
    """A convex-hull class and a weak model whose reverse-KL projection is known exactly.

    Class ``C = conv(G_1..G_m)`` (``G`` has shape ``(m, n, k)``). With ``Q = sum_j lam_j G_j``
    (``lam > 0`` on the first ``m - 1`` vertices, ``lam_m = 0``) and ``phi`` of shape
    ``(n, k)`` satisfying ``<G_j, phi> = 0`` for ``j < m`` and ``<G_m, phi> = delta n``,
    set ``F_w = Q exp(-phi) / Z(x)``. Then ``log(Q/F_w) = phi + log Z(x)``, the gradient of
    ``lam -> E KL(Q_lam || F_w)`` is ``const + <G_j, phi>/n``: equal on the support, larger
    off it. These are the KKT conditions of a convex problem, so ``Q`` is the projection,
    and for a truth ``F* = sum_j mu_j G_j`` the Theorem-2 slack is exactly ``mu_m delta``.

    Returns:
        ``(G, lam, Q, phi, f_weak)``.

    Examples:
        >>> import numpy as np
        >>> from w2s_theory.bounds import theorem2
        >>> G, lam, Q, phi, fw = hull_instance(np.random.default_rng(0), n=6, k=3)
        >>> round(theorem2(G[-1], fw, Q).slack, 12)   # the vertex off the support: delta
        0.05
    """
    G = rng.dirichlet(np.ones(k), size=(m, n))
    lam = rng.dirichlet(np.ones(m - 1))
    Q = np.einsum("j,jnk->nk", lam, G[:-1])
    M = G.reshape(m, n * k)
    phi0 = rng.normal(size=n * k)
    target = np.zeros(m)
    target[-1] = delta * n
    phi = (phi0 - M.T @ np.linalg.solve(M @ M.T, M @ phi0 - target)).reshape(n, k)
    fw = Q * np.exp(-phi)
    fw /= fw.sum(1, keepdims=True)
    return G, lam, Q, phi, fw


def _bisect(grad) -> tuple[float, float]:
    """Minimiser on [0, 1] of a convex function given its increasing derivative; |derivative|."""
    if grad(0.0) >= 0:
        return 0.0, 0.0
    if grad(1.0) <= 0:
        return 1.0, 0.0
    lo, hi = 0.0, 1.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if grad(mid) < 0 else (lo, mid)
    lam = min((lo, hi), key=lambda t: abs(grad(t)))
    return lam, abs(grad(lam))


def segment_projections(g1: np.ndarray, g2: np.ndarray, fw: np.ndarray) -> dict:
    """Reverse- and forward-KL projections of ``fw`` onto the segment ``lam g1 + (1 - lam) g2``.

    Both objectives are convex in ``lam``; bisection on the derivative runs to adjacent
    floats. Returns ``{"reverse": (lam, |grad|), "forward": (lam, |grad|)}``; the reverse
    derivative is ``E sum_i (g1 - g2)_i log(Q_i / F_w,i)``, the forward one
    ``-E sum_i F_w,i (g1 - g2)_i / Q_i``.

    Examples:
        >>> import numpy as np
        >>> g1, g2 = np.array([[0.9, 0.1]]), np.array([[0.1, 0.9]])
        >>> pr = segment_projections(g1, g2, np.array([[0.5, 0.5]]))  # F_w is the midpoint
        >>> pr["reverse"][0], pr["forward"][0]
        (0.5, 0.5)
    """
    n = len(fw)

    def rev(t):
        return float(np.sum((g1 - g2) * np.log((t * g1 + (1 - t) * g2) / fw))) / n

    def fwd(t):
        return -float(np.sum(fw * (g1 - g2) / (t * g1 + (1 - t) * g2))) / n

    return {"reverse": _bisect(rev), "forward": _bisect(fwd), "reverse_grad": rev}


def _tol(residual: float, *arrays) -> float:
    """Solver residual plus float64 round-off of the slack (64 ulps of the terms' size)."""
    return residual + 64 * np.finfo(float).eps * sum(float(np.abs(a).sum()) / len(a) for a in arrays)


def theorem2_cases(cfg: DemoConfig) -> list[dict]:
    rng = np.random.default_rng([cfg.seed, 2])
    n, k = cfg.theorem2_rows, cfg.theorem2_classes
    rows = []

    def add(cls, inst, projection, truth, fs, fw, q, tol, expected):
        r = theorem2(fs, fw, q, tol=tol)
        rows.append({"class": cls, "instance": inst, "projection": projection, "truth": truth,
                     "realizable": truth != "one-hot outside", **r.to_dict(), "expected": expected})

    for i in range(cfg.hull_instances):
        G, lam, Q, phi, fw = hull_instance(rng, n, k)
        tol = _tol(0.0, phi, np.log(Q), np.log(fw))
        for j in range(len(G)):
            add("hull", i, "reverse", f"vertex {j + 1}", G[j], fw, Q, tol,
                0.05 if j == len(G) - 1 else 0.0)
        mu = rng.dirichlet(np.ones(len(G)))
        add("hull", i, "reverse", "random member", np.einsum("j,jnk->nk", mu, G), fw, Q, tol, mu[-1] * 0.05)
        add("hull", i, "reverse", "one-hot outside", np.eye(k)[phi.argmin(1)], fw, Q, tol,
            float(phi.min(1).mean()))
    for i in range(cfg.segment_instances):
        g1, g2, fw = (rng.dirichlet(np.ones(k) * 0.7, n) for _ in range(3))
        pr = segment_projections(g1, g2, fw)
        lam_r = pr["reverse"][0]
        for projection in ("reverse", "forward"):
            lam, res = pr[projection]
            q = lam * g1 + (1 - lam) * g2
            tol = _tol(res, np.log(q), np.log(fw))
            for truth, mu in (("endpoint 1", 1.0), ("endpoint 2", 0.0), ("reverse projection", lam_r)):
                fs = mu * g1 + (1 - mu) * g2
                add("segment", i, projection, truth, fs, fw, q, tol, (mu - lam) * pr["reverse_grad"](lam))
    return rows


# ----------------------------------------------------------------------------- report
def summarize(lem: list[dict], thm: list[dict]):
    L = pd.DataFrame(lem)
    T = pd.DataFrame(thm)
    out = []
    stages = ("data_dependent", "tv", "sqrt_forward", "sqrt_reverse")
    for gamma, grp in L.groupby("gamma"):
        row = {"check": "lemma1", "group": f"gamma={gamma:g}", "cases": len(grp),
               "violations": int((~grp["holds"]).sum())}
        for s in stages:
            ratio = grp[f"ratio_{s}"].replace(np.inf, np.nan).dropna()
            row[f"median ratio {s}"] = float(ratio.median())
            row[f"min ratio {s}"] = float(ratio.min())
        out.append(row)
    for (cls, proj, real), grp in T.groupby(["class", "projection", "realizable"], sort=True):
        out.append({"check": "theorem2", "group": f"{cls}/{proj}/{'realizable' if real else 'not realizable'}",
                    "cases": len(grp), "violations": int((~grp["holds"]).sum()),
                    "min slack": float(grp["slack"].min()), "max |slack - expected|":
                    float((grp["slack"] - grp["expected"]).abs().max())})
    return L, T, pd.DataFrame(out)


def format_table(S) -> str:
    lines = []
    lem = S[S["check"] == "lemma1"]
    lines.append("Lemma 1: |R(F_sw) - R(F_w)| <= E[TV/m] <= E TV/gamma <= sqrt(d/2)/gamma  "
                 "(ratio = bound / |gap|, >= 1 when it holds)")
    lines.append(f"{'group':<14}{'cases':>6}{'viol.':>6}  {'median ratio: data-dep':>22}{'TV':>9}"
                 f"{'sqrt fwd':>10}{'sqrt rev':>10}{'min TV ratio':>14}")
    for _, r in lem.iterrows():
        lines.append(f"{r['group']:<14}{r['cases']:>6d}{r['violations']:>6d}  "
                     f"{r['median ratio data_dependent']:>22.3g}{r['median ratio tv']:>9.3g}"
                     f"{r['median ratio sqrt_forward']:>10.3g}{r['median ratio sqrt_reverse']:>10.3g}"
                     f"{r['min ratio tv']:>14.4f}")
    thm = S[S["check"] == "theorem2"]
    lines.append("")
    lines.append("Theorem 2: slack = R(F_w) - d_reverse - R(F_sw) >= -tol  (violation: slack < -tol)")
    lines.append(f"{'class/projection/truth':<38}{'cases':>6}{'viol.':>6}{'min slack':>12}"
                 f"{'max |slack - exact|':>21}")
    for _, r in thm.iterrows():
        lines.append(f"{r['group']:<38}{r['cases']:>6d}{r['violations']:>6d}{r['min slack']:>12.4g}"
                     f"{r['max |slack - expected|']:>21.2e}")
    return "\n".join(lines)


def run_demo(cfg: DemoConfig, out: Path, *, progress: bool = True) -> dict:
    """Run both checks, write the CSVs, the figure and the config; return the tables."""
    t0 = time.perf_counter()
    lem = lemma1_trials(cfg, progress=progress)
    thm = theorem2_cases(cfg)
    L, T, S = summarize(lem, thm)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "lemma1_trials.csv", L.to_csv(index=False))
    atomic_write_text(out / "theorem2_cases.csv", T.to_csv(index=False))
    atomic_write_text(out / "summary.csv", S.to_csv(index=False))
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
    fig = plot_demo(L, T, cfg)
    # fixed metadata: the same seed gives the same bytes; PNG to look at, PDF for papers
    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=meta)
        atomic_write_bytes(out / f"demo.{fmt}", buf.getvalue())
    import matplotlib.pyplot as plt

    plt.close(fig)
    return {"lemma1": L, "theorem2": T, "summary": S, "seconds": time.perf_counter() - t0}


def run(cfg: DemoConfig, out: str | os.PathLike, *, progress: bool = True) -> dict:
    """The demo's entry point: `run_demo` into the folder ``out``."""
    return run_demo(cfg, Path(out), progress=progress)


def violations(summary) -> tuple[int, int]:
    """(Lemma 1 violations, Theorem 2 violations of reverse projections with a realizable truth)
    in the summary table; both must be 0."""
    lem = int(summary.loc[summary["check"] == "lemma1", "violations"].sum())
    thm = summary[(summary["check"] == "theorem2") & summary["group"].str.contains("reverse/realizable")]
    return lem, int(thm["violations"].sum())
