"""The declared analysis plan (``experiments/analysis.toml``, issue 18) is consistent with the
committed tables and the registries.

These tests check the declaration (tests/test_plan.py tests the ledger built from it): the
plan parses; every table it names exists; every loss is registered; claim 4's weak models are
ordered by registry capacity; margins are positive; each family's members select rows that
exist, and no run (by run key, or by coordinates where run keys differ) enters a family twice;
the declared cross-table duplicates are real; sensitivity analyses never overlap a primary
family; the learning rates the plan relies on were chosen on held-out train_gt rows.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from w2s_theory.config import toml_module
from w2s_theory.losses import loss_names
from w2s_theory.models import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
PLAN_PATH = ROOT / "experiments" / "analysis.toml"

#: member / entry keys that are not column filters
NON_FILTER = {"table", "pairs", "unit_key", "awaiting", "note", "also_in", "also_in_filter",
              "match", "count", "filter", "id", "what", "pooled", "columns", "covered"}
ALLOWED_CHOICE_SOURCES = {"train_gt_holdout", "declared_before_runs", "model_registry"}


def _plan() -> dict:
    # tomllib (Python >= 3.11; the tomli backport on 3.10)
    with open(PLAN_PATH, "rb") as fh:
        return toml_module().load(fh)


PLAN = _plan()
FAMILIES = PLAN["family"]


#: the full fine-tuning extension's table, named when its config was written (before its runs):
#: it may not exist yet; until it does, its members must say `awaiting`
AWAITED_TABLE = PLAN["finetune_extension"]["table"]


@cache
def _table(rel: str) -> pd.DataFrame:
    if rel == AWAITED_TABLE and not (ROOT / rel).exists():
        # no rows yet; the columns of the same pipeline's committed table (cpu_4k.csv)
        return pd.read_csv(ROOT / "experiments/results/finetune/cpu_4k.csv", nrows=0)
    return pd.read_csv(ROOT / rel)


def _walk(obj, key_names):
    """Every value stored under one of ``key_names`` anywhere in ``obj``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in key_names:
                yield v
            yield from _walk(v, key_names)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key_names)


def _flat(values):
    for v in values:
        if isinstance(v, list):
            yield from _flat(v)
        else:
            yield v


def _filter_mask(df: pd.DataFrame, entry: dict) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for key, val in entry.items():
        if key in NON_FILTER:
            continue
        assert key in df.columns, f"filter column {key!r} is not a column of {entry['table']}"
        vals = val if isinstance(val, list) else [val]
        col = df[key]
        if pd.api.types.is_float_dtype(col):
            mask &= col.round(10).isin([round(float(v), 10) for v in vals])
        else:
            mask &= col.isin(vals)
    if "pairs" in entry:
        pairs = {tuple(p) for p in entry["pairs"]}
        mask &= pd.Series([(w, s) in pairs for w, s in zip(df["weak"], df["strong"])],
                          index=df.index)
    return mask


def _select(family: dict, member: dict) -> pd.DataFrame:
    df = _table(member["table"])
    sel = df[_filter_mask(df, member)]
    if "arms" in family:
        sel = sel[sel["loss"].isin(family["arms"])]
    if "loss" in family:
        sel = sel[sel["loss"] == family["loss"]]
    if "columns" in family:     # converged regime: the rows that carry a fit (seeds with fits)
        sel = sel.dropna(subset=family["columns"])
    return sel


def _units(family: dict, member: dict, sel: pd.DataFrame) -> dict[str, set]:
    """The run identities a member brings into its family: run keys and, for real-sweep
    tables, the coordinates (run keys of band.csv differ from main/noise's for the same runs);
    for converged families the fit (``unit_key``)."""
    if "unit_key" in member:
        return {"fit": set(map(tuple, sel[member["unit_key"]].drop_duplicates().to_numpy()))}
    out = {"run_key": set(sel["run_key"])}
    ident = PLAN["duplicates"]["identity_columns"]
    if set(ident) <= set(sel.columns):
        out["identity"] = set(map(tuple, sel[ident].astype(str).to_numpy()))
    return out


def _family_overlaps(family: dict) -> list[str]:
    """Problems with a family: a run counted twice within a member or shared by two members."""
    problems = []
    seen: dict[str, set] = {}
    for i, m in enumerate(family["member"]):
        sel = _select(family, m)
        if "unit_key" not in m and sel["run_key"].duplicated().any():
            problems.append(f"member {i}: a run key twice in {m['table']}")
        for kind, units in _units(family, m, sel).items():
            both = seen.setdefault(kind, set()) & units
            if both:
                problems.append(f"member {i} ({m['table']}): {len(both)} {kind} already in the "
                                f"family")
            seen[kind] |= units
    return problems


def _fid(f):
    return f["id"]


# ---------------------------------------------------------------------------- declaration
def test_plan_parses_and_is_marked_as_a_declaration():
    assert PLAN["declared"] == "2026-12-07"
    assert "read by the ledger" in PLAN["status"]
    assert "before the re-split runs" in PLAN["status"]
    ids = [f["id"] for f in FAMILIES]
    assert len(ids) == len(set(ids)), "family ids must be unique"


def test_every_named_table_exists():
    names = set(_flat(_walk(PLAN, {"table", "also_in", "last_layer_lr_source",
                                   "finetune_lr_source"})))
    names |= set(PLAN["excluded"])
    assert len(names) >= 15
    for rel in sorted(names):
        assert rel.startswith("experiments/") and "/results/" in rel, rel
        if rel == AWAITED_TABLE and not (ROOT / rel).exists():
            continue    # the full fine-tuning extension's table: its runs are under way
        assert (ROOT / rel).exists(), f"{rel}: named in the plan but not committed"


def test_every_named_loss_is_registered():
    registered = set(loss_names())
    named = set(_flat(_walk(PLAN, {"arms", "loss", "losses"})))
    named |= set(PLAN["finetune_extension"]["mde_now_pts"])
    assert {"forward_kl", "reverse_kl", "reverse_ce", "forward_ce"} <= named
    assert named <= registered, named - registered


def test_regimes_are_the_ledgers():
    from w2s_theory.ledger import CLAIMS, REGIMES

    for f in FAMILIES:
        assert f["regime"] in REGIMES, f["id"]
        assert f["claim"] in CLAIMS, f["id"]
    assert {f["claim"] for f in FAMILIES} == {1, 2, 3, 4, 5}
    assert PLAN["claim6"], "claim 6 names its tables"


def test_claim4_orders_weak_models_by_registry_capacity():
    c4 = PLAN["claim4"]
    order = c4["weak_order"]
    assert c4["order_by"] == "model_registry_params"
    assert all(name in REGISTRY for name in order), order
    params = [REGISTRY[name].params for name in order]
    assert c4["capacity_params"] == params, "the plan's capacities must be the registry's"
    assert all(a < b for a, b in zip(params, params[1:])), "capacity must strictly increase"
    fams = [f for f in FAMILIES if f["claim"] == 4]
    assert fams
    for f in fams:
        assert f"student({order[-1]}) - student({order[0]})" in f["contrast"] or \
            f"({order[-1]}) -" in f["contrast"], f["id"]
        for m in f["member"]:
            assert sorted(m["weak"]) == sorted(order), f["id"]


def test_claim4_check_fails_on_an_order_by_accuracy():
    # the capacity check can fail: MiniLM before wordllama is not an increasing order
    params = [REGISTRY[n].params for n in ("all-MiniLM-L6-v2", "wordllama")]
    assert not all(a < b for a, b in zip(params, params[1:]))


def test_every_model_named_is_in_the_registry():
    aliases = PLAN["models"]["aliases"]
    named = set(_flat(_walk(PLAN, {"pairs", "weak", "strong", "weak_order"})))
    assert named
    for name in named:
        assert aliases.get(name, name) in REGISTRY, name


def test_margins_positive_and_each_family_uses_one():
    margins = PLAN["margins"]
    assert margins and all(isinstance(v, float) and v > 0 for v in margins.values())
    assert margins["hh_rlhf"] == 0.5
    for f in FAMILIES:
        assert f["margin"] in margins, f["id"]
        assert f["direction"] in ("+", "-"), f["id"]


def test_verdict_words_are_the_four():
    v = PLAN["verdicts"]
    assert v["words"] == ["better", "worse", "equivalent within margin", "inconclusive"]
    assert sorted(v["order"]) == sorted(v["words"])


# ---------------------------------------------------------------------------- families
@pytest.mark.parametrize("family", FAMILIES, ids=_fid)
def test_family_members_select_existing_rows(family):
    members = family["member"]
    keys = [json.dumps(m, sort_keys=True) for m in members]
    assert len(keys) == len(set(keys)), "a family lists the same table/filter twice"
    for m in members:
        sel = _select(family, m)
        df = _table(m["table"])
        for col in family.get("columns", []):
            assert col in df.columns, (family["id"], col)
        # complete: every arm has rows at every noise level the member names (not just some arm
        # at each level: forward KL at 40 % and reverse KL at 0 % do not make a drop contrast)
        levels = [round(q, 10) for q in m.get("noise", [])] or [None]
        complete = bool(len(sel)) and all(
            ((sel["loss"] == arm) & (True if q is None else sel["noise"].round(10) == q)).any()
            for arm in family.get("arms", []) for q in levels) and (
            "columns" not in family or all(q is None or (sel["noise"].round(10) == q).any()
                                           for q in levels))   # converged: a fit at each level
        if "awaiting" in m:
            # the awaited rows are not all there yet (a sweep still running may have written
            # some): when every arm and noise level has rows, drop `awaiting`
            assert not complete, f"{family['id']}: every awaited arm has rows; remove 'awaiting'"
            continue
        assert len(sel), f"{family['id']}: {m['table']} selects no rows"
        for arm in family.get("arms", []):
            assert (sel["loss"] == arm).any(), (family["id"], m["table"], arm)
        for q in m.get("noise", []):
            assert (sel["noise"].round(10) == round(q, 10)).any(), (family["id"], q)


@pytest.mark.parametrize("family", FAMILIES, ids=_fid)
def test_each_run_enters_its_family_at_most_once(family):
    assert _family_overlaps(family) == []


def test_overlap_check_catches_a_duplicated_run():
    # band.csv at lr 1e-3 repeats main.csv's runs under other run keys: adding it to claim 1's
    # family must be caught by the coordinates; adding main.csv twice by the run keys
    fam = copy.deepcopy(next(f for f in FAMILIES if f["id"] == "c1.minibatch.reverse_kl"))
    band = {"table": "experiments/results/real/band.csv", "lr": 1e-3, "noise": [0.0],
            "pairs": [["wordllama", "all-MiniLM-L6-v2"]], "confidence": False}
    probs = _family_overlaps({**fam, "member": fam["member"] + [band]})
    assert any("identity" in p for p in probs) and not any("run_key" in p for p in probs)
    probs = _family_overlaps({**fam, "member": fam["member"] + [fam["member"][0]]})
    assert any("run_key" in p for p in probs)


def test_declared_duplicates_are_real():
    ident = PLAN["duplicates"]["identity_columns"]
    for d in PLAN["duplicates"]["pair"]:
        a = _table(d["table"])
        a = a[_filter_mask(a, {"table": d["table"], **d.get("filter", {})})]
        others = d["also_in"] if isinstance(d["also_in"], list) else [d["also_in"]]
        b = pd.concat([_table(t) for t in others], ignore_index=True)
        b = b[_filter_mask(b, {"table": others[0], **d.get("also_in_filter", {})})]
        if d["match"] == "run_key":
            b = b.drop_duplicates("run_key")
            assert len(set(a["run_key"]) & set(b["run_key"])) == d["count"], d
        else:
            assert d["match"] == "identity_columns"
            assert not set(a["run_key"]) & set(b["run_key"]), "run keys would have caught it"
            b = b.drop_duplicates("run_key")
            j = a.merge(b, on=ident, suffixes=("_a", "_b"))
            assert len(j) == d["count"], d
            assert (j["student_acc_a"] == j["student_acc_b"]).all(), "not the same runs"


def test_sensitivity_analyses_never_enter_a_primary_family():
    primary: dict[str, set] = {}
    for f in FAMILIES:
        for m in f["member"]:
            if "unit_key" in m or "awaiting" in m:
                continue
            for kind, units in _units(f, m, _select(f, m)).items():
                primary.setdefault(kind, set()).update(units)
    assert PLAN["sensitivity"]
    for s in PLAN["sensitivity"]:
        assert s["pooled"] is False, s["id"]
        df = _table(s["table"])
        sel = df[_filter_mask(df, s)]
        assert len(sel), s["id"]
        for kind, units in _units({}, {}, sel).items():
            assert not units & primary.get(kind, set()), (s["id"], kind)


def test_claim6_reads_only_the_tables_it_names():
    tables = [c["table"] for c in PLAN["claim6"]]
    assert "experiments/results/real/fdiv.csv" not in tables
    for c in PLAN["claim6"]:
        df = _table(c["table"])
        assert set(c["columns"]) <= set(df.columns), c["table"]
        if c["table"] == AWAITED_TABLE and not (ROOT / AWAITED_TABLE).exists():
            continue    # rows awaited (the ledger lists it as a missing table)
        assert len(df[_filter_mask(df, c)]), c["table"]


# ---------------------------------------------------------------------------- no test data
def test_no_primary_choice_reads_test_data():
    nts = PLAN["no_test_selection"]
    for k, v in nts.items():
        if k.endswith("chosen_on"):
            assert v in ALLOWED_CHOICE_SOURCES, (k, v)
    chk = _table(nts["last_layer_lr_source"])
    assert (chk["dataset"] != "test").all() and "val_acc" in chk.columns
    assert chk.groupby("lr")["val_acc"].mean().idxmax() == pytest.approx(nts["last_layer_lr"])
    sel = json.loads((ROOT / nts["finetune_lr_source"]).read_text())
    best = max(sel.values(), key=lambda r: r["holdout_acc"])
    assert best["lr"] == pytest.approx(nts["finetune_lr"])
    assert PLAN["finetune_extension"]["lr"] == pytest.approx(nts["finetune_lr"])
    # every primary last-layer minibatch member runs at the selected lr
    for f in FAMILIES:
        if f["regime"] != "last_layer_minibatch":
            continue
        for m in f["member"]:
            assert m["lr"] == pytest.approx(nts["last_layer_lr"]), f["id"]
            assert set(_select(f, m)["lr"].round(10)) == {round(nts["last_layer_lr"], 10)}


def test_replication_design():
    r = PLAN["replication"]
    assert r["unit"] == "split" and r["min_random_splits"] >= 10
    assert len(r["seeds_per_split"]) >= r["min_seeds_per_split"] >= 5
    assert r["converged_seeds_per_split"] == [0, 1]
    ft = PLAN["finetune_extension"]
    assert ft["n_test"] == 4000 and len(ft["seeds"]) >= ft["min_seeds"] >= 5
    assert ft["noise"] == [0.0, 0.4]
    assert ft["losses"] == ["forward_kl", "reverse_kl", "reverse_ce"]
