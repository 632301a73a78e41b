"""One ledger row per setting (effect, intervals, TOST, the one-split and fine-tuning rules), Holm
within the family and the verdict words, and the family's summary line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..stats import (
    holm,
    min_detectable_effect,
    one_sample_t,
    t_interval,
)
from ..verdicts import paired_effect_by_split, tost, verdict


def boot_ubar(plan, table: str, root: Path | None, keys_by_seed, kind: str):
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


def family_rows(fam, res, plan, root, excl):
    """One ledger row per setting of a family (before Holm)."""
    conf, alpha = plan.confidence, plan.alpha
    finetune = bool(plan.finetune) and fam.regime == plan.finetune.get("regime")
    rows = []
    for setting, g in res.groupby("x_setting", sort=True):
        g = g.rename(columns={"x_split": "split"})
        n_splits = int(g["split"].nunique())
        n_pairs = len(g)
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
            ubar, why = boot_ubar(plan, fam.members[0].table, root, cells, fam.kind)
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


def setting_context(fam, sel, setting_rows, confidence: float):
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


def finish_family(fam, rows, plan):
    """Holm within the family (p and TOST p separately), then the verdict words."""
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


def summary_row(fam, rows, res, plan):
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
