"""Golden tables: the CI-size output of every sweep, compared by ``tests/test_golden.py``.

Each family is produced through the command line only (``w2s_theory.cli.main``), whose argv is
the stable interface. Every column of every table belongs to one **tolerance class**
(`column_class`, rules in `RULES`; ``tests/golden/TOLERANCES.md`` explains each class and why
its tolerance is what the column's conditioning needs): exact keys and statuses, float64
results (``rtol 1e-7``), float32 results (``rtol 1e-5``), slacks and gaps (an absolute
tolerance scaled by the terms they cancel), solver residuals (asserted below a threshold, not
compared) and booleans (compared only where their slack is clear of its tolerance). The BLAS
and torch configuration the tables were recorded with is in ``tests/golden/environment.json``.

Regenerate (only when a change of numbers is intended and explained in the commit):

    PYTHONPATH=. python tests/golden/golden.py            # writes tests/golden/*.csv + environment
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
SYNTHETIC = ("theorem2", "dual", "lemma1", "noise", "strength")

REAL_TOML = """
name = "golden"
datasets = ["harmless"]
pairs = [["all-MiniLM-L6-v2", "SmolLM2-135M-layer15"]]
losses = ["forward_kl", "reverse_kl", "forward_ce", "reverse_ce"]
confidence = [false, true]
noise = [0.0, 0.3]
seeds = [0, 1]
n_rows = 96
gamma = 1e-3
[train]
lr = 0.003
dtype = "float64"
min_count = 32
[convex]
pca_dim = 6
"""

FINETUNE_TOML = """
name = "golden"
strong = "{mdir}"
[data]
n_train = 32
n_test = 24
[weak]
l2_grid = [0.1]
[train]
max_length = 24
precision = "fp32"
lr = 1e-4
[sweep]
losses = ["forward_kl", "reverse_kl"]
noise = [0.0, 0.5]
seeds = [0]
[run]
out = "{out}"
"""

DEMO_TOML = """
lemma1_trials = 40
hull_instances = 3
segment_instances = 5
"""


def _cli(argv: list[str]) -> None:
    from w2s_theory.cli import main

    rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"w2s-theory {' '.join(argv)} exited {rc}")


def synthetic(name: str, tmp: Path, limit: int | None = None) -> pd.DataFrame:
    """The ``--ci`` table of ``experiments/synthetic/{name}.toml`` (first ``limit`` runs)."""
    out = tmp / f"synthetic_{name}.csv"
    argv = ["synthetic", "--config", str(ROOT / "experiments/synthetic" / f"{name}.toml"), "--ci",
            "--results", str(out), "--no-figures", "--quiet"]
    _cli(argv + (["--limit", str(limit)] if limit else []))
    return pd.read_csv(out)


def real(tmp: Path) -> pd.DataFrame:
    """A 32-run last-layer sweep on the shared MiniLM / SmolLM2 features (96 rows per split)."""
    cfg = tmp / "real.toml"
    cfg.write_text(REAL_TOML)
    out = tmp / "real.csv"
    _cli(["real", "--config", str(cfg), "--out", str(out), "--cache-dir", str(tmp / "cache"),
          "--quiet"])
    return pd.read_csv(out)


def tiny_model_dir(path: Path) -> Path:
    """A seeded 2-layer BERT (hidden 32) with all-MiniLM-L6-v2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from w2s_theory.models import model_dir

    tok = AutoTokenizer.from_pretrained(str(model_dir("all-MiniLM-L6-v2")), local_files_only=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(cfg, add_pooling_layer=False).save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def finetune(tmp: Path) -> pd.DataFrame:
    """The tiny fine-tuning sweep (32 train / 24 test pairs, full and head-only, one run at a time)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mdir = tiny_model_dir(tmp / "tiny_model")
        out = tmp / "finetune.csv"
        cfg = tmp / "finetune.toml"
        cfg.write_text(FINETUNE_TOML.format(mdir=mdir, out=out))
        _cli(["finetune", "--config", str(cfg), "--no-progress"])
    finally:
        torch.set_num_threads(n)
    return pd.read_csv(out)


def demo(tmp: Path) -> pd.DataFrame:
    """The demo's Lemma 1 trials and Theorem 2 cases at a reduced size, stacked."""
    cfg = tmp / "demo.toml"
    cfg.write_text(DEMO_TOML)
    _cli(["demo", "--config", str(cfg), "--out", str(tmp / "demo"), "--quiet"])
    parts = [pd.read_csv(tmp / "demo" / f).assign(table=f.split(".")[0])
             for f in ("lemma1_trials.csv", "theorem2_cases.csv", "summary.csv")]
    pd.concat(parts, ignore_index=True).to_csv(tmp / "demo.csv", index=False)
    return pd.read_csv(tmp / "demo.csv")     # one CSV round trip, as the stored golden table


# ----------------------------------------------------------------------------- tolerance classes
#: the families (golden tables) and the float type their result columns are computed in
FAMILIES = tuple(f"synthetic_{n}" for n in SYNTHETIC) + ("real", "finetune", "demo")
FLOAT32_FAMILIES = ("finetune",)      # an fp32 model: every result carries float32 round-off
#: relative tolerance of the ``result`` class per float type
RTOL = {"float64": 1e-7, "float32": 1e-5}
#: ``slack`` class: ``atol = SLACK_RTOL * (|value| + sum |terms|)``, row by row: a slack is as
#: accurate as the terms it cancels, and a term computed from an iterative float64 fit is
#: accurate to ~1e-12 relative (~4500 eps; the Newton polish stops at a gradient ~1e-17 on
#: Hessians of condition ~1e5), one from float32 predictions to ~16 eps32
SLACK_RTOL = {"float64": 4e-12, "float32": 2e-6}
#: ``result`` class: an absolute floor ``RESULT_ATOL_C * eps`` (a KL near 0 is a difference of
#: cross-entropies of size O(1), so its absolute error is ~eps, not ~eps * KL)
RESULT_ATOL_C = 16.0
#: ``residual`` class: the threshold a solver residual / tolerance must stay below
RESIDUAL_MAX = {"tol": 1e-6, "fit_grad_norm": 1e-4, "fit_duality_gap": 1e-8,
                "fit_complementarity": 1e-8, "fit_max_violation": 1e-8, "weak_grad_norm": 1e-8,
                "duality_gap": 1e-8, "violation": 1e-8, "t2fit_ceil_tol": 1e-6, "t2mis_tol": 1e-6,
                "max |slack - expected|": 1e-8}

#: (families or None for all, full-match regex, class); the first matching rule wins. A column
#: no rule matches is *unclassified*: `column_class` raises (tests/test_golden.py checks none is).
RULES = [
    # provenance, timing, paths, solver cost: never compared
    (None, r"git_commit|machine|device|torch_version|config_file|created_utc|feature_s"
           r"|fit_iterations|solver_iterations|iterations|fit_time_s|train_wall_s|eval_wall_s"
           r"|group_wall_s|cvx_wall_s|cvx_t2mis_wall_s|tokens_per_s|group_tokens_per_s",
     "volatile"),
    (("finetune",), r"strong|run_key", "volatile"),       # a temporary model path (and its hash)
    # identity of the row: config and keys, exactly
    (None, r"run_key|sweep|seed|k|d_strong|d_weak|weak_noise|cov_decay|truth|truth_scale"
           r"|truth_floor|misspec|labels|n_gt|n_w2s|n_test|weak_l2|gamma|noise_frac|noise_kind"
           r"|noise_a|weak_temperature|variant|method|head|loss|subset|weak|strong|n_train|lr_rule"
           r"|train_split|regime|role|confidence|noise|precision|num_processes|group_size|lr"
           r"|epochs|batch_size|max_length|truncation_side|schedule|grad_accum|head_only|dataset"
           r"|strong_note|train_dtype|protocol|n_fit|cvx_dim|train_heads|l1_gamma|resumed_from"
           r"|trial|classes|binary_shorthand|table|class|instance|projection|realizable|check"
           r"|group|n|n_classes|cases", "key"),
    # integer results
    (None, r"noise_count|train_tokens|train_padded_tokens|violations", "count"),
    # a solver's status: the part before ':' (the message after it is the solver's wording)
    (None, r"fit_status|fit_converged|cvx_\w+_status", "status"),
    # solver residuals and tolerances: asserted below RESIDUAL_MAX, not compared
    (None, r"tol|fit_grad_norm|fit_duality_gap|fit_complementarity|fit_max_violation"
           r"|weak_grad_norm|cvx_\w+_duality_gap|cvx_ceiling_violation|cvx_\w+_t2fit_ceil_tol"
           r"|cvx_rkl_t2mis_tol|max \|slack - expected\|", "residual"),
    # slacks and gaps: differences of O(1) terms (see SLACK_TERMS)
    (None, r"slack_rev|slack_fwd|l1_gap|dual_rel_err|gap|slack|min slack|t2(test|fit)_\w+_slack"
           r"|cvx_\w+_slack|cvx_\w+_l1test_gap|cvx_rkl_t2mis_(gain|guaranteed_gain|csiszar_term)",
     "slack"),
    # booleans decided by a slack (see BOOL_MARGIN)
    (None, r"holds_rev|holds_fwd|l1_holds|holds|t2(test|fit)_\w+_holds|cvx_\w+_holds"
           r"|cvx_rkl_t2mis_gain_positive", "bool"),
    # results: float64 / float32 by family
    (None, r"risk_weak|risk_strong|rev_risk_weak|rev_risk_strong|d_forward|d_reverse"
           r"|l1_data_dependent|l1_tv|l1_sqrt_forward|l1_sqrt_reverse|test_acc_\w+|test_risk_\w+"
           r"|test_frac_outside|fit_objective|final_loss|\w*_acc|\w*_auroc|\w*_ece|disagree_rate"
           r"|pgr|l1_d_forward|l1_d_reverse|l1_\w+_bound(_\w+)?|t2(test|fit)_\w+_risk_\w+"
           r"|t2(test|fit)_d_reverse|cvx_\w+_d_reverse_fit|cvx_\w+_test_outside"
           r"|cvx_rkl_t2mis_(epsilon|d_reverse|tv_to_class|max_log_ratio|holder_term)|data_dependent_bound|tv_bound|sqrt_bound_forward|sqrt_bound_reverse"
           r"|ratio_\w+|(median|min) ratio \w+|expected", "result"),
]

#: slack -> the columns of the terms it cancels (``{tag}``: the regex group ``tag``); a term
#: whose own column is absent is stood in for by a present column of the same quantity and
#: size (named in TOLERANCES.md). A number is a fixed scale. ``divide``: a relative slack.
SLACK_TERMS = [
    (r"slack_rev", ("risk_weak", "d_reverse", "risk_strong")),
    (r"slack_fwd", ("risk_weak", "d_forward", "risk_strong")),
    (r"l1_gap", ("risk_weak", "risk_strong", "t2test_truth_risk_weak",
                 "t2test_truth_risk_strong")),
    (r"dual_rel_err", ("rev_risk_weak", "rev_risk_strong", "d_forward"), "rev_risk_weak"),
    (r"gap", ("d_forward", "d_reverse", 1.0)),      # demo: E F* log(F_w / F_sw), O(1) logs
    (r"slack", ("risk_weak", "d_reverse", "risk_strong")),
    (r"min slack", (1.0,)),
    (r"t2(test|fit)_(?P<tag>truth|ceil)_slack",
     ("t2test_{tag}_risk_weak", "t2test_d_reverse", "t2test_{tag}_risk_strong", "t2fit_d_reverse")),
    (r"cvx_(?P<tag>rkl|fkl)_t2(fit|test)_(?P<ref>truth|ceil)_slack",
     ("t2test_{ref}_risk_weak", "t2test_{ref}_risk_weak", "cvx_{tag}_d_reverse_fit")),
    (r"cvx_(?P<tag>rkl|fkl)_l1test_gap", ("t2test_truth_risk_weak", "t2test_truth_risk_weak")),
    (r"cvx_rkl_t2mis_\w+", ("t2test_ceil_risk_weak", "t2test_ceil_risk_weak",
                            "cvx_rkl_t2mis_d_reverse", "cvx_rkl_t2mis_csiszar_term",
                            "cvx_rkl_t2mis_holder_term", "cvx_rkl_t2mis_epsilon")),
]

#: boolean -> (its slack, the tolerance it is held to: a column or 0); "bound - |gap|" margins
#: are written as ("-|gap|", bound column)
BOOL_MARGIN = [
    (r"holds_(?P<f>rev|fwd)", ("slack_{f}", "tol")),
    (r"l1_holds", ("-|l1_gap|", "l1_data_dependent")),
    (r"holds", ("-|gap|", "data_dependent_bound")),
    (r"t2(?P<s>test|fit)_(?P<r>truth|ceil)_holds", ("t2{s}_{r}_slack", 0.0)),
    (r"cvx_(?P<t>rkl|fkl)_t2fit_ceil_holds", ("cvx_{t}_t2fit_ceil_slack", "cvx_{t}_t2fit_ceil_tol")),
    (r"cvx_(?P<t>rkl|fkl)_l1test_holds", ("-|cvx_{t}_l1test_gap|", "l1_data_dependent_bound")),
    (r"cvx_rkl_t2mis_holds", ("cvx_rkl_t2mis_slack", "cvx_rkl_t2mis_tol")),
    (r"cvx_rkl_t2mis_gain_positive", ("cvx_rkl_t2mis_gain", 0.0)),
]

#: columns downstream of an interior-point solve, with the column(s) holding its duality gap:
#: such a result is determined only to ~sqrt(gap) relative (the objective is flat to second
#: order at its minimum), so its tolerance is max(class tolerance, sqrt(gap)). Rows outside the
#: solve (a softmax head) have a NaN gap: no widening.
#: the minimiser of an objective with curvature ``mu`` stopped ``gap`` above its minimum is
#: off by ~``sqrt(2 gap / mu)``: ``SOLVER_C = 32`` is ``sqrt(2 / mu)`` for ``mu = 2e-3``
SOLVER_C = 32.0
SOLVER_GAP = [
    (r"cvx_rkl_t2mis_\w+", ("cvx_rkl_duality_gap", "cvx_rkl_t2mis_eps_duality_gap")),
    (r"cvx_(?P<t>rkl|fkl)_\w+", ("cvx_{t}_duality_gap",)),
    (r"cvx_ceiling_\w+", ("cvx_rkl_duality_gap", "cvx_fkl_duality_gap")),
    (r".*", ("fit_duality_gap", "fit_complementarity", "tol:demo")),
]


def column_class(family: str, column: str) -> str:
    """The tolerance class of ``column`` in ``family``'s table (`RULES`); unclassified raises."""
    for fams, pattern, cls in RULES:
        if (fams is None or family in fams) and re.fullmatch(pattern, column):
            return cls
    raise KeyError(f"{family}: column {column!r} has no tolerance class (add a rule to "
                   f"tests/golden/golden.py RULES and a line to TOLERANCES.md)")


def _match(table, column):
    for entry in table:
        m = re.fullmatch(entry[0], column)
        if m:
            return m, entry[1:]
    return None, None


def _col(df: pd.DataFrame, name) -> np.ndarray:
    if isinstance(name, (int, float)):
        return np.full(len(df), float(name))
    if name not in df.columns:
        return np.zeros(len(df))
    return pd.to_numeric(df[name], errors="coerce").to_numpy(float)


def _eps(family: str) -> float:
    return float(np.finfo(np.float32 if family in FLOAT32_FAMILIES else np.float64).eps)


def solver_accuracy(family: str, column: str, got: pd.DataFrame, want: pd.DataFrame) -> np.ndarray:
    """Row-wise ``SOLVER_C * sqrt(gap)`` of the solve ``column`` depends on (0 where none), with
    the larger of the two tables' gaps (`SOLVER_GAP`)."""
    m, spec = _match(SOLVER_GAP, column)
    out = np.zeros(len(want))
    for name in spec[0]:
        name, _, only = name.partition(":")
        if only and only != family:
            continue
        name = name.format(**m.groupdict())
        for df in (got, want):
            if name in df.columns:
                g = np.abs(_col(df, name))
                out = np.fmax(out, np.sqrt(np.where(np.isfinite(g), g, 0.0)))
    return SOLVER_C * out


def _dtype(family: str) -> str:
    return "float32" if family in FLOAT32_FAMILIES else "float64"


def slack_atol(family: str, column: str, got: pd.DataFrame, want: pd.DataFrame) -> np.ndarray:
    """``rtol_row * (|value| + sum |terms|) [/ |divisor|]`` row by row, with ``rtol_row`` the
    terms' accuracy `SLACK_RTOL` or the solve's ``sqrt(gap)``, whichever is larger."""
    m, spec = _match(SLACK_TERMS, column)
    if m is None:
        raise KeyError(f"{family}: slack column {column!r} has no SLACK_TERMS entry")
    terms, divisor = spec[0], (spec[1] if len(spec) > 1 else None)
    scale = np.abs(_col(want, column))
    for t in terms:
        name = t.format(**m.groupdict()) if isinstance(t, str) else t
        scale = scale + np.fmax(np.abs(_col(want, name)), np.abs(_col(got, name)))
    if divisor is not None:
        scale = scale / np.abs(_col(want, divisor))
    rtol = np.fmax(SLACK_RTOL[_dtype(family)], solver_accuracy(family, column, got, want))
    return rtol * np.where(np.isfinite(scale), scale, 0.0)


def _margin(family, column, df_got, df_want):
    """(margin, uncertainty) of a boolean's decision, row by row: the boolean is compared only
    where ``|margin| > uncertainty`` in both tables."""
    m, spec = _match(BOOL_MARGIN, column)
    if m is None:
        raise KeyError(f"{family}: boolean column {column!r} has no BOOL_MARGIN entry")
    slack, thr = (x.format(**m.groupdict()) if isinstance(x, str) else x for x in spec[0])
    neg_abs = slack.startswith("-|")
    s_name = slack.strip("-|")
    res = []
    for df in (df_got, df_want):
        s = _col(df, s_name)
        t = _col(df, thr)
        res.append(t - np.abs(s) if neg_abs else s + t)
    unc = (slack_atol(family, s_name, df_got, df_want) + np.abs(_col(df_got, thr) - _col(df_want, thr)))
    if isinstance(thr, str) and column_class(family, thr) == "result":
        unc = unc + _result_tol(family, thr, df_got, df_want)
    return res, unc


def _result_tol(family, column, got, want):
    rtol = np.fmax(RTOL[_dtype(family)],
                   solver_accuracy(family, column, got, want))
    return rtol * np.abs(_col(want, column)) + RESULT_ATOL_C * _eps(family)


def _residual_max(column: str) -> float:
    for key in sorted(RESIDUAL_MAX, key=len, reverse=True):
        if column == key or column.endswith("_" + key):
            return RESIDUAL_MAX[key]
    raise KeyError(f"residual column {column!r} has no RESIDUAL_MAX threshold")


def _status(x: pd.Series) -> np.ndarray:
    return x.astype(object).where(x.notna(), "").astype(str).str.split(":").str[0].to_numpy()


def results_only(df: pd.DataFrame, family: str) -> pd.DataFrame:
    """Drop the ``volatile`` columns; rows in a canonical order."""
    keep = [c for c in df.columns if column_class(family, c) != "volatile"]
    out = df[keep]
    by = [c for c in ("run_key", "table", "regime", "role", "loss", "noise", "seed", "trial", "case")
          if c in out.columns]
    return out.sort_values(by or list(out.columns[:8]), kind="stable").reset_index(drop=True)


def compare(got: pd.DataFrame, want: pd.DataFrame, family: str) -> list[str]:
    """Every column outside its tolerance class, one line each (empty: the tables agree)."""
    got, want = results_only(got, family), results_only(want, family)
    if list(got.columns) != list(want.columns):
        return [f"columns differ: {sorted(set(got.columns) ^ set(want.columns))}"]
    if len(got) != len(want):
        return [f"row counts differ: {len(got)} != {len(want)}"]
    bad = []
    for c in want.columns:
        cls = column_class(family, c)
        a, b = got[c], want[c]
        if cls in ("key", "count"):
            ok = (a.astype(object).where(a.notna(), "").astype(str).to_numpy()
                  == b.astype(object).where(b.notna(), "").astype(str).to_numpy())
        elif cls == "status":
            ok = _status(a) == _status(b)
        elif cls == "residual":
            thr = _residual_max(c)
            x, y = _col(got, c), _col(want, c)
            absval = c not in ("fit_max_violation", "cvx_ceiling_violation")
            xv, yv = (np.abs(x), np.abs(y)) if absval else (x, y)
            small = ~(yv > thr)                          # a residual at solver accuracy ...
            ok = np.where(small, ~(xv > thr),            # ... stays below the threshold
                          np.isclose(x, y, rtol=RTOL["float64"], atol=0.0, equal_nan=True))
        elif cls == "bool":
            (mg, mw), unc = _margin(family, c, got, want)
            clear = (np.abs(mg) > unc) & (np.abs(mw) > unc)
            same = (a.astype(object).where(a.notna(), "").astype(str).to_numpy()
                    == b.astype(object).where(b.notna(), "").astype(str).to_numpy())
            ok = same | ~clear
        else:
            x, y = _col(got, c), _col(want, c)
            tol = (slack_atol(family, c, got, want) if cls == "slack"
                   else _result_tol(family, c, got, want))
            ok = (np.abs(x - y) <= tol) | (np.isnan(x) & np.isnan(y)) | (x == y)
        if not np.all(ok):
            rows = np.flatnonzero(~np.asarray(ok, dtype=bool))
            i = rows[0]
            bad.append(f"column {c} ({cls}): rows {rows[:5].tolist()} differ, e.g. got "
                       f"{a.iloc[i]!r}, want {b.iloc[i]!r}")
    return bad


def assert_same(got: pd.DataFrame, want: pd.DataFrame, family: str) -> None:
    """Same columns and rows; every column within its tolerance class (`compare`)."""
    bad = compare(got, want, family)
    assert not bad, f"{family}: " + "; ".join(bad)


# ----------------------------------------------------------------------------- environment
def environment() -> dict:
    """The numerical configuration a table was computed with: BLAS libraries and kernels
    (threadpoolctl), torch's build and CPU capability, the CPU model, library versions."""
    import platform

    import scipy
    import threadpoolctl
    import torch

    from w2s_theory.provenance import cpu_model

    np.ones((2, 2)) @ np.ones((2, 2))                 # load numpy's BLAS
    pools = [{k: v for k, v in p.items() if k != "filepath"}
             for p in threadpoolctl.threadpool_info()]
    return {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
            "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_num_threads": torch.get_num_threads(), "threadpools": pools,
            "torch_config": torch.__config__.show().strip().splitlines()}


def rerun(out: Path, families=FAMILIES, limit: int | None = None) -> None:
    """Compute ``families`` into ``out/<family>.csv`` and ``out/environment.json`` (used by the
    perturbation test in a subprocess whose environment selects other BLAS kernels)."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for fam in families:
            if fam.startswith("synthetic_"):
                df = synthetic(fam.removeprefix("synthetic_"), tmp, limit=limit)
            else:
                df = {"real": real, "finetune": finetune, "demo": demo}[fam](tmp)
            df.to_csv(out / f"{fam}.csv", index=False)
    (out / "environment.json").write_text(json.dumps(environment(), indent=1) + "\n")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--rerun"]:          # --rerun OUT [LIMIT [FAMILY ...]]
        limit = int(argv[2]) if len(argv) > 2 and int(argv[2]) > 0 else None
        rerun(Path(argv[1]), tuple(argv[3:]) or FAMILIES, limit)
        return 0
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        tables = {f"synthetic_{n}": synthetic(n, tmp) for n in SYNTHETIC}
        tables["real"] = real(tmp)
        tables["finetune"] = finetune(tmp)
        tables["demo"] = demo(tmp)
        for name, df in tables.items():
            df.to_csv(GOLDEN / f"{name}.csv", index=False)
            print(f"{name}: {len(df)} rows")
    (GOLDEN / "environment.json").write_text(json.dumps(environment(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
