"""The pipelines reproduce the golden tables on any CPU (issue 8; portable since issue 17).

``tests/golden/*.csv`` were written by ``tests/golden/golden.py``; each family is rerun here
through the command line and compared column by column, each column within its tolerance
class (``tests/golden/TOLERANCES.md``). The perturbation tests rerun every family in a
subprocess on other BLAS / torch kernels (``OPENBLAS_CORETYPE=Sandybridge``,
``ATEN_CPU_CAPABILITY=default``, ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``: the stand-in for "another
CPU", checked through threadpoolctl and torch) and with other thread counts, and show the
compared columns stay within tolerance, while a real change (another seed, another loss)
still fails the comparison.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("w2s_golden", HERE / "golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

#: synthetic families are compared on their first runs (the whole CI table takes ~1 min here)
SYNTHETIC_LIMIT = 12
#: ... and rerun on other kernels on their first runs (every method of the first seed)
PERTURBED_LIMIT = 8
#: the environment of the perturbed reruns: other BLAS kernels, other torch kernels, 1 thread
OTHER_KERNELS = {"OPENBLAS_CORETYPE": "Sandybridge", "ATEN_CPU_CAPABILITY": "default",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENBLAS_NUM_THREADS": "1",
                 "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _want(name: str) -> pd.DataFrame:
    return pd.read_csv(HERE / f"{name}.csv")


def _rows_of(want: pd.DataFrame, got: pd.DataFrame) -> pd.DataFrame:
    """The golden rows of a rerun limited to its first runs (synthetic families)."""
    return want[want["run_key"].isin(got["run_key"])] if len(got) < len(want) else want


@pytest.mark.parametrize("family", golden.SYNTHETIC)
def test_synthetic_matches_golden(family, tmp_path):
    got = golden.synthetic(family, tmp_path, limit=SYNTHETIC_LIMIT)
    want = _want(f"synthetic_{family}")
    assert len(got) == SYNTHETIC_LIMIT and set(got["run_key"]) <= set(want["run_key"])
    golden.assert_same(got, _rows_of(want, got), f"synthetic_{family}")


def test_real_matches_golden(tmp_path):
    golden.assert_same(golden.real(tmp_path), _want("real"), "real")


def test_finetune_matches_golden(tmp_path):
    golden.assert_same(golden.finetune(tmp_path), _want("finetune"), "finetune")


def test_demo_matches_golden(tmp_path):
    golden.assert_same(golden.demo(tmp_path), _want("demo"), "demo")


# ----------------------------------------------------------------------------- the classes
@pytest.mark.parametrize("family", golden.FAMILIES)
def test_every_golden_column_has_a_tolerance_class(family):
    for c in _want(family).columns:
        assert golden.column_class(family, c) in ("volatile", "key", "count", "status",
                                                  "residual", "slack", "bool", "result")


def test_an_unclassified_column_is_refused():
    with pytest.raises(KeyError, match="no tolerance class"):
        golden.column_class("real", "a_new_metric")
    bad = _want("real").assign(a_new_metric=1.0)
    with pytest.raises(KeyError, match="a_new_metric"):
        golden.compare(bad, bad, "real")


def test_tolerances_md_names_every_class_and_rule():
    text = (HERE / "TOLERANCES.md").read_text()
    for cls in ("volatile", "key", "count", "status", "residual", "slack", "bool", "result"):
        assert f"`{cls}`" in text, cls
    for v in (*golden.RTOL.values(), *golden.SLACK_RTOL.values()):
        assert f"{v:.0e}".replace("e-0", "e-") in text, v
    assert f"{golden.SOLVER_C:g} sqrt(gap)" in text


def test_environment_is_recorded():
    env = json.loads((HERE / "environment.json").read_text())
    assert env["cpu"] and env["torch_config"] and env["torch_cpu_capability"]
    assert any(p.get("internal_api") == "openblas" and p.get("architecture")
               for p in env["threadpools"])


def test_a_changed_number_is_caught():
    want = _want("real")
    bad = want.copy()
    bad.loc[3, "student_acc"] += 1e-5
    with pytest.raises(AssertionError, match="student_acc"):
        golden.assert_same(bad, want, "real")


def test_a_slack_is_compared_to_the_size_of_its_terms():
    """A slack that cancels 0.6-sized terms may move by the accuracy of those terms (~1e-12),
    not by 1e-9; a boolean is compared only where its slack is clear of its tolerance."""
    want = _want("synthetic_strength")
    atol = golden.slack_atol("synthetic_strength", "slack_rev", want, want)
    ok, bad = want.copy(), want.copy()
    ok["slack_rev"] = ok["slack_rev"] + 0.5 * atol
    bad["slack_rev"] = bad["slack_rev"] + 1e-9
    assert np.nanmax(atol) < 1e-10
    assert golden.compare(ok, want, "synthetic_strength") == []
    assert any("slack_rev" in p for p in golden.compare(bad, want, "synthetic_strength"))
    clear = np.flatnonzero((np.abs(want["slack_rev"] + want["tol"]) > 1e-6).to_numpy())
    flip = want.copy()
    flip["holds_rev"] = flip["holds_rev"].astype(object)
    flip.loc[clear[:1], "holds_rev"] = not bool(want.loc[clear[0], "holds_rev"])
    assert any("holds_rev" in p for p in golden.compare(flip, want, "synthetic_strength"))
    theorem2 = _want("synthetic_theorem2")           # realizable reverse-KL rows: slack ~ 1e-15,
    on_edge = (theorem2["method"] == "convex/reverse_kl") & (theorem2["variant"] == "realizable")
    flip = theorem2.copy()                           # on the boundary: not compared
    flip["holds_rev"] = flip["holds_rev"].astype(object)
    flip.loc[on_edge, "holds_rev"] = ~theorem2.loc[on_edge, "holds_rev"].astype(bool)
    assert golden.compare(flip, theorem2, "synthetic_theorem2") == []


# ----------------------------------------------------------------------------- perturbations
@pytest.fixture(scope="module")
def other_kernels(tmp_path_factory):
    """Every family rerun in a subprocess on other BLAS and torch kernels, one thread."""
    out = tmp_path_factory.mktemp("other_kernels")
    env = {**os.environ, **OTHER_KERNELS, "PYTHONPATH": str(HERE.parents[1])}
    proc = subprocess.run([sys.executable, str(HERE / "golden.py"), "--rerun", str(out),
                           str(PERTURBED_LIMIT)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_rerun_ran_on_other_kernels(other_kernels):
    env = json.loads((other_kernels / "environment.json").read_text())
    blas = [p for p in env["threadpools"] if p.get("internal_api") == "openblas"]
    assert blas and all(p["architecture"] == "Sandybridge" for p in blas), blas
    assert env["torch_cpu_capability"] == "DEFAULT"
    assert all(p["num_threads"] == 1 for p in env["threadpools"]), env["threadpools"]


@pytest.mark.parametrize("family", golden.FAMILIES)
def test_other_kernels_stay_within_tolerance(family, other_kernels):
    got = pd.read_csv(other_kernels / f"{family}.csv")
    golden.assert_same(got, _rows_of(_want(family), got), family)


_GRID = {"synthetic_noise": ["noise_frac"], "synthetic_strength": ["weak_noise"]}
#: per family, the real changes: (what changes, the columns that stay equal between partners)
CHANGES = {**{f: [("seed", ["variant", "method", *_GRID.get(f, [])]),
                  ("method", ["seed", "variant", *_GRID.get(f, [])])]
              for f in golden.FAMILIES if f.startswith("synthetic_")},
           "real": [("seed", ["loss", "confidence", "noise"]),
                    ("loss", ["seed", "confidence", "noise"])],
           "finetune": [("loss", ["regime", "role", "noise", "seed"])],
           "demo": [("trial", ["table", "classes", "binary_shorthand"]),
                    ("instance", ["table", "class", "projection", "truth"])]}


def _changed(df: pd.DataFrame, family: str, same: list[str]) -> pd.DataFrame:
    """``df`` with each row's results replaced by those of a partner row equal in ``same`` (and
    so differing in the changed key: another seed, another loss): the table a real change would
    produce, under the original keys."""
    res = [c for c in df.columns if golden.column_class(family, c) not in ("key", "volatile")]
    out = df.copy()
    keys = df[same].astype(object).where(df[same].notna(), "").astype(str)
    moved = 0
    for idx in keys.groupby(same, sort=False).indices.values():
        if len(idx) < 2:
            continue
        out.loc[df.index[idx], res] = df.loc[df.index[np.roll(idx, 1)], res].to_numpy()
        moved += len(idx)
    return out if moved else None


@pytest.mark.parametrize("family", golden.FAMILIES)
def test_a_real_change_still_fails(family, other_kernels):
    """The other-kernel rerun (and the golden table itself, which has every seed) with each
    row's results taken from another seed or another loss fails the comparison, in results
    or slacks (not only in a key)."""
    got = pd.read_csv(other_kernels / f"{family}.csv")
    full = _want(family)
    checked = 0
    for table, want in ((got, _rows_of(full, got)), (full, full)):
        for vary, same in CHANGES[family]:
            changed = _changed(table, family, same)
            if changed is None:                 # (the short rerun has one seed only)
                continue
            problems = golden.compare(changed, want, family)
            moved = [p for p in problems if "(result)" in p or "(slack)" in p]
            assert moved, f"{family}: a change of {vary} passed the comparison"
            checked += 1
    assert checked >= 2
