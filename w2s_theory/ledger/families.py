"""Forming a family's runs: selection by the plan's members, duplicates removed, failed or pending
convex fits dropped, missing settings and replication listed, and the paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import models
from .tables import member_mask, resplit_name


class Exclusions:
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


def dedupe(fam, sel, plan, excl: Exclusions):
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


def fit_status(fam, sel, plan, excl: Exclusions):
    """Converged families: drop (and list) fits that failed (``cvx_*_status`` starting with
    "error") or are not there (NaN or a table without the column: "convex fit pending")."""
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


def paired_differences(fam, sel, plan, excl: Exclusions):
    """Per (setting, split, seed): the paired difference ``d`` in points. Returns a frame
    with ``setting, dataset, weak, strong, split, seed, d`` (and ``keys``: the run keys used)."""
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


def expected_replication(fam, sel, plan, excl):
    """List the replication the plan names but the tables lack: a setting of a re-split
    table with split 0 only, a split not run yet (1 .. ``min_random_splits``), a seed of
    ``seeds_per_split`` (converged families: ``converged_seeds_per_split``) absent from a
    split that has rows."""
    if fam.sensitivity or not len(sel) or not any(resplit_name(plan, m.table)
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


def select_family(fam, plan, loaded, excl):
    parts = []
    for j, m in enumerate(fam.members):
        df, why = loaded[m.table]
        if df is None:
            excl.add(fam.id, "", m.table, "", "", "",
                     why + (f" (awaiting: {m.awaiting})" if m.awaiting else ""))
            continue
        mask = member_mask(df, m.filters, m.pairs, f"family {fam.id!r}.member[{j}]")
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
