"""The committed synthetic tables and the ledger built from them report the reverse-CE softmax
"exact fit" as having no minimiser (issue 17), instead of a risk from wherever the solver stopped.

Reverse CE is linear in p, so over a softmax head its infimum is reached only as the logits
diverge: the `softmax/reverse_ce` rows must say `fit_status = "no_minimizer"`, carry NaN in every
strong-head column and `fit_converged = False`, and no converged-regime reverse-CE result may
reach the claims ledger. (Notebooks 03, 04 and 30 assert the same under nbval; this runs in the
plain test suite.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from w2s_theory.ledger import build_ledger, load_runs
from w2s_theory.pipelines.synthetic import HEAD_COLUMNS
from w2s_theory.results_table import read_table

ROOT = Path(__file__).resolve().parents[1]
SYN = ROOT / "experiments" / "synthetic" / "results"
ILL_POSED = "softmax/reverse_ce"
# the committed tables whose sweeps have the reverse-CE softmax exact fit, and how many rows
WITH_REVERSE_CE = {"lemma1": 100, "noise": 30, "strength": 25}


def _tables():
    return sorted(p for p in SYN.glob("*.csv"))


def test_the_tables_are_there():
    names = {p.stem for p in _tables()}
    assert set(WITH_REVERSE_CE) <= names


@pytest.mark.parametrize("path", _tables(), ids=lambda p: p.stem)
def test_no_minimizer_rows_are_exactly_the_softmax_reverse_ce_rows(path):
    df = read_table(path) if "run_key" in path.read_text().split("\n", 1)[0] else pd.read_csv(path)
    if "method" not in df.columns:          # theorem2_misspecified: convex fits only, not typed
        assert "fit_status" not in df.columns or (df["fit_status"] != "no_minimizer").all()
        return
    ill = df["method"] == ILL_POSED
    flagged = df["fit_status"].astype(str) == "no_minimizer"
    assert (ill == flagged).all(), df.loc[ill != flagged, ["method", "fit_status"]]
    assert int(ill.sum()) == WITH_REVERSE_CE.get(path.stem, 0)
    if not ill.any():
        return
    rows = df[ill]
    cols = [c for c in HEAD_COLUMNS if c in df.columns]
    assert {"risk_strong", "d_forward", "test_acc_strong", "test_risk_strong"} <= set(cols)
    values = rows[cols].apply(pd.to_numeric, errors="coerce")
    assert values.isna().all().all(), values.columns[~values.isna().all()].tolist()
    assert rows[cols].isna().all().all()   # NaN cells, not text that only fails to parse
    assert not rows["fit_converged"].astype(bool).any()
    # every other exact fit of these tables has its strong-head results
    others = df[(df["head"] == "softmax") & ~ill]
    assert len(others) and np.isfinite(others["risk_strong"].astype(float)).all()


@pytest.fixture(scope="module")
def ledger():
    return build_ledger(ROOT)


def test_the_ledger_has_no_converged_reverse_ce_result(ledger):
    conv = ledger[ledger["regime"] == "last_layer_converged"]
    assert len(conv) and len(ledger[ledger["regime"] == "last_layer_minibatch"])
    mentions = conv[["contrast", "loss", "arms", "setting"]].astype(str).apply(
        lambda col: col.str.contains("reverse_ce"))
    assert not mentions.any(axis=None), conv[mentions.any(axis=1)][["claim", "setting", "contrast"]]
    # the minibatch regime of the same synthetic sweeps still has its reverse-CE results
    mb = ledger[(ledger["regime"] == "last_layer_minibatch")
                & ledger["source"].astype(str).str.startswith("synthetic")]
    assert mb["contrast"].astype(str).str.contains("reverse_ce").any()


def test_the_ledger_runs_leave_out_exactly_the_no_minimizer_rows():
    runs = load_runs(ROOT)
    syn = runs[runs["source"].astype(str).str.startswith("synthetic_")]
    conv = syn[syn["regime"] == "last_layer_converged"]
    assert not (conv["loss"] == "reverse_ce").any()
    for name in ("noise", "strength"):
        table = read_table(SYN / f"{name}.csv")
        kept = table[table["fit_status"].astype(str) != "no_minimizer"]
        assert (syn["source"] == f"synthetic_{name}").sum() == len(kept)
        assert np.isfinite(syn["acc"].astype(float)).all()
