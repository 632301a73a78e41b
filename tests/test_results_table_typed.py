"""Typed result tables (issue 17): schema sidecar, cell validation naming file/row/column, row
digests (a changed digit, a foreign row), invalid rows recomputed, strings kept as text, stale
temporary files removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from w2s_theory.atomic_io import remove_stale_temps
from w2s_theory.results_table import (
    ResultTable,
    ResultTableError,
    ResultTableWarning,
    read_table,
    record_schema,
    schema_path,
)

ROOT = Path(__file__).resolve().parents[1]

ROWS = [{"run_key": f"k{i}", "subset": "harmless", "loss": "reverse_kl", "seed": i,
         "student_acc": 0.5 + i / 64, "holds": bool(i % 2), "note": None if i else "first"}
        for i in range(4)]


def _table(tmp_path, rows=ROWS):
    t = ResultTable(tmp_path / "r.csv")
    t.extend(rows)
    return t


def _edit(path, row, column, value=None, *, header=None):
    """Rewrite one cell (data row ``row``, 1-based) or the header of a CSV, by text."""
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    if header is not None:
        lines[0] = header
    else:
        cells = lines[row].split(",")
        cells[head.index(column)] = value
        lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- schema
def test_the_schema_is_inferred_from_the_first_rows_and_stored_beside_the_table(tmp_path):
    t = _table(tmp_path)
    side = json.loads(schema_path(t.path).read_text())
    assert schema_path(t.path) == tmp_path / "r.schema.json"
    cols = {c["name"]: (c["dtype"], c["nullable"]) for c in side["columns"]}
    assert cols == {"run_key": ("str", False), "subset": ("str", False), "loss": ("str", False),
                    "seed": ("int", False), "student_acc": ("float", False),
                    "holds": ("bool", False), "note": ("str", True)}
    assert set(side["digests"]) == {"k0", "k1", "k2", "k3"}
    assert ResultTable(t.path).schema == cols
    df = ResultTable(t.path).frame()
    assert df["seed"].dtype == np.int64 and df["holds"].dtype == bool
    assert df["student_acc"].tolist() == [r["student_acc"] for r in ROWS]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(read_table(t.path), df)


def test_strings_round_trip_exactly(tmp_path):
    # pandas' guessing read subset '007' as 7, commit '1234e5' as 123400000.0 and 'NA' as NaN
    t = ResultTable(tmp_path / "r.csv")
    t.extend([{"run_key": "a", "subset": "007", "commit": "1234e5", "label": "NA", "v": 1.0},
              {"run_key": "b", "subset": "010", "commit": "00ff", "label": "nan", "v": 2.0}])
    df = ResultTable(t.path).frame()
    assert df["subset"].tolist() == ["007", "010"]
    assert df["commit"].tolist() == ["1234e5", "00ff"]
    assert df["label"].tolist() == ["NA", "nan"]
    # a table written by another program (no sidecar): key and identifier columns are text
    p = tmp_path / "legacy.csv"
    p.write_text("run_key,subset,git_commit,acc\n0123,007,1234e5,0.5\n")
    df = read_table(p)
    assert df.loc[0, "run_key"] == "0123" and df.loc[0, "subset"] == "007"
    assert df.loc[0, "git_commit"] == "1234e5" and df.loc[0, "acc"] == 0.5


def test_writes_that_do_not_fit_the_schema_are_refused_naming_row_and_column(tmp_path):
    t = _table(tmp_path)
    before = t.path.read_bytes()
    with pytest.raises(ValueError, match=r"^row: column 'student_acc' holds float values in "
                                         r".*r\.csv's schema, got 'high'"):
        t.append({"run_key": "k9", "student_acc": "high"})
    with pytest.raises(ValueError, match=r"^rows\[1\]: column 'holds' holds bool values"):
        t.extend([{"run_key": "k8"}, {"run_key": "k9", "holds": "yes"}])
    assert t.path.read_bytes() == before
    m = ResultTable(tmp_path / "mixed.csv")          # partial_k: 0, 1, then 'lastlayer'
    m.extend([{"run_key": "a", "partial_k": 0}, {"run_key": "b", "partial_k": 1}])
    m.append({"run_key": "c", "partial_k": "lastlayer"})
    assert ResultTable(m.path).frame()["partial_k"].tolist() == ["0", "1", "lastlayer"]
    m.append({"run_key": "d", "partial_k": 2})
    assert read_table(m.path)["partial_k"].tolist() == ["0", "1", "lastlayer", "2"]
    t.append({"run_key": "k9", "seed": 2.5, "student_acc": 1})    # int -> float widens
    assert ResultTable(t.path).schema["seed"] == ("float", False)
    assert ResultTable(t.path).schema["loss"] == ("str", True)      # k9 has no loss
    d = ResultTable(tmp_path / "d.csv", schema={"acc": "float", "tag": "str?"})
    with pytest.raises(ValueError, match=r"^row: column 'acc' is declared non-nullable"):
        d.append({"run_key": "x", "acc": None})
    d.append({"run_key": "x", "acc": np.float32(0.25), "tag": None})
    assert read_table(d.path)["acc"].tolist() == [0.25]


@pytest.mark.parametrize("schema, name", [(5, "schema"), ({"acc": "floaty"}, r"schema\['acc'\]"),
                                          ({"acc": 3}, r"schema\['acc'\]"),
                                          ({"run_key": "int"}, r"schema\['run_key'\]")])
def test_a_bad_declared_schema_is_named(tmp_path, schema, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: "):
        ResultTable(tmp_path / "r.csv", schema=schema)


# ----------------------------------------------------------------------------- bad cells
BAD = [
    ("student_acc", "0.#1", r"column 'student_acc': '0\.#1' is not a number"),
    ("holds", "Ture", r"column 'holds': 'Ture' is not a boolean"),
    ("student_acc", "", r"column 'student_acc': empty cell in a non-nullable column"),
    ("seed", "2.5", r"column 'seed': '2\.5' is not an integer"),
    ("student_acc", "0.53125000001", r"content differs from the digest"),   # a changed digit
    ("loss", "reverse_kk", r"content differs from the digest"),
]


@pytest.mark.parametrize("column, value, msg", BAD)
def test_a_bad_cell_invalidates_its_row_naming_file_row_and_column(tmp_path, column, value, msg):
    t = _table(tmp_path)
    _edit(t.path, 3, column, value)
    with pytest.warns(ResultTableWarning, match=rf"^{t.path}: 1 invalid row\(s\): row 3 \(run_key "
                                                rf"'k2'\): .*{msg}.*recomputed"):
        again = ResultTable(t.path)
    # the run counts as not done; the other runs do
    assert again.keys() == {"k0", "k1", "k3"} and not again.has("k2")
    assert "k2" not in set(again.frame()["run_key"]) and set(again.invalid) == {"k2"}
    with pytest.raises(ResultTableError, match=rf"^{t.path}: 1 invalid row\(s\): row 3 .*{msg}"):
        read_table(t.path)
    # kept verbatim until recomputed: another writer does not launder it into a valid row
    again.append({"run_key": "k4", "student_acc": 0.75})
    assert value in t.path.read_text().splitlines()[3].split(",")
    with pytest.warns(ResultTableWarning, match="row 3"):
        assert not ResultTable(t.path).has("k2")
    # recomputing the run replaces the row; the table is clean again
    again.append(dict(ROWS[2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = ResultTable(t.path)
    assert clean.keys() == {"k0", "k1", "k2", "k3", "k4"}
    assert clean.frame().set_index("run_key").loc["k2", "student_acc"] == ROWS[2]["student_acc"]


def test_a_foreign_row_is_not_counted_done(tmp_path):
    t = _table(tmp_path)
    other = _table(tmp_path / "other", [dict(ROWS[1], run_key="zz")])
    foreign = other.path.read_text().splitlines()[1]
    t.path.write_text(t.path.read_text() + foreign + "\n")          # pasted from another table
    with pytest.warns(ResultTableWarning, match=r"row 5 \(run_key 'zz'\): run_key not recorded "
                                                r"in r\.schema\.json \(a foreign row"):
        assert not ResultTable(t.path).has("zz")
    with pytest.raises(ResultTableError, match="a foreign row"):
        read_table(t.path)


def test_a_foreign_row_of_another_layout_is_invalid_even_without_a_sidecar(tmp_path):
    p = tmp_path / "legacy.csv"
    p.write_text("run_key,loss,student_acc\nk1,reverse_kl,0.5\nk2,0.61,forward_kl\n")
    with pytest.warns(ResultTableWarning, match=r"row 2 \(run_key 'k2'\): column 'student_acc': "
                                                r"'forward_kl' is not a number"):
        assert ResultTable(p).keys() == {"k1"}


def test_swapped_header_names_are_an_error_for_the_whole_table(tmp_path):
    t = _table(tmp_path)
    head = t.path.read_text().splitlines()[0].split(",")
    i, j = head.index("subset"), head.index("loss")
    head[i], head[j] = head[j], head[i]
    _edit(t.path, 0, None, header=",".join(head))
    with pytest.raises(ResultTableError, match=rf"^{t.path}: the header names are out of their "
                                               r"recorded order .*swapped header names.*'loss'"):
        ResultTable(t.path)
    with pytest.raises(ResultTableError, match="swapped header names"):
        read_table(t.path)


def test_reordered_columns_with_their_cells_are_accepted(tmp_path):
    t = _table(tmp_path)
    df = pd.read_csv(t.path, dtype=str, keep_default_na=False)
    cols = list(df.columns)
    df[cols[::-1]].to_csv(t.path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ResultTable(t.path).keys() == {"k0", "k1", "k2", "k3"}


def test_a_column_unknown_to_the_schema_and_a_broken_sidecar_are_errors(tmp_path):
    t = _table(tmp_path)
    df = pd.read_csv(t.path, dtype=str, keep_default_na=False).assign(extra="1")
    df.to_csv(t.path, index=False)
    with pytest.raises(ResultTableError, match=r"column\(s\) \['extra'\] are not in the schema"):
        ResultTable(t.path)
    record_schema(t.path)                     # the documented way to accept an intended edit
    assert ResultTable(t.path).schema["extra"] == ("int", False)
    schema_path(t.path).write_text("{not json")
    with pytest.raises(ResultTableError, match=rf"^{schema_path(t.path)}: not a valid schema "
                                               r"sidecar.*delete r\.schema\.json"):
        ResultTable(t.path)


def test_a_kill_between_the_sidecar_and_the_table_leaves_every_row_verifiable(tmp_path,
                                                                               monkeypatch):
    import w2s_theory.results_table.table as rt  # where ResultTable.extend writes

    t = _table(tmp_path)
    real = rt.atomic_write_text
    calls = []

    def dies_after_the_first_sidecar(path, text):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise KeyboardInterrupt                  # killed before the table was replaced
        real(path, text)

    monkeypatch.setattr(rt, "atomic_write_text", dies_after_the_first_sidecar)
    with pytest.raises(KeyboardInterrupt):
        t.extend([{"run_key": "k1", "student_acc": 0.9}, {"run_key": "k7", "student_acc": 0.1}])
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # old table, pending digests: all valid
        assert ResultTable(t.path).keys() == {"k0", "k1", "k2", "k3"}


def test_the_cli_checks_and_records(tmp_path):
    t = _table(tmp_path)
    r = subprocess.run([sys.executable, "-m", "w2s_theory.results_table", "check", str(t.path)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and "4 rows, all valid" in r.stdout
    _edit(t.path, 1, "student_acc", "0.#1")
    r = subprocess.run([sys.executable, "-m", "w2s_theory.results_table", "check", str(t.path)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 2 and "row 1 (run_key 'k0'): column 'student_acc'" in r.stderr


def test_the_committed_result_tables_have_schemas_and_are_valid():
    # result tables (a run_key column); the ledger's CSVs are derived from them, not results
    # (ledger_excluded.csv names run keys), and tests/test_ledger.py checks them against a
    # fresh build
    tables = [p for d in ("experiments/results", "experiments/synthetic/results")
              for p in sorted((ROOT / d).rglob("*.csv"))
              if "run_key" in p.read_text().split("\n", 1)[0].split(",")
              and not p.name.startswith("ledger")]
    assert len(tables) >= 16
    for p in tables:
        assert schema_path(p).is_file(), f"{p}: no schema sidecar"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            df = read_table(p)                 # strict: every row matches its digest
        assert len(df) == len(pd.read_csv(p)), p


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("call, name", [
    (lambda d: ResultTable(5), "path"),
    (lambda d: ResultTable(d), "path"),
    (lambda d: ResultTable(d / "r.csv", lock_timeout=-1), "lock_timeout"),
    (lambda d: ResultTable(d / "r.csv", lock_timeout="1"), "lock_timeout"),
    (lambda d: ResultTable(d / "r.csv").has(5), "key"),
    (lambda d: ResultTable(d / "r.csv").extend({"run_key": "a"}), "rows"),
    (lambda d: ResultTable(d / "r.csv").extend(5), "rows"),
    (lambda d: ResultTable(d / "r.csv").append([("run_key", "a")]), "row"),
    (lambda d: ResultTable(d / "r.csv").append({"run_key": "a", 5: 1}), "row"),
    (lambda d: read_table(d / "r.csv", strict="yes"), "strict"),
    (lambda d: read_table(None), "path"),
    (lambda d: remove_stale_temps(5), "folder"),
    (lambda d: remove_stale_temps(d, names="r.csv"), "names"),
    (lambda d: remove_stale_temps(d, older_than="now"), "older_than"),
])
def test_public_functions_name_the_bad_argument(tmp_path, call, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name}: "):
        call(tmp_path)


# ----------------------------------------------------------------------------- stale temporaries
_KILLED_WRITER = """
import os, sys
from w2s_theory.results_table import ResultTable
t = ResultTable(sys.argv[1])
t.append({"run_key": "k0", "acc": 0.5})
os.replace = lambda *a, **k: os._exit(9)      # killed before os.replace: the temp stays
t.append({"run_key": "k1", "acc": 0.25})
"""


def test_a_killed_writer_leaves_a_temp_that_the_next_open_removes(tmp_path):
    p = tmp_path / "r.csv"
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(p)], cwd=ROOT, timeout=300)
    assert r.returncode == 9
    left = sorted(x.name for x in tmp_path.glob(".r.*.tmp"))
    assert left and all(n.startswith((".r.csv.", ".r.schema.json.")) for n in left)
    (tmp_path / ".other.csv.abcd1234.tmp").write_text("another table's")
    (tmp_path / "keep.tmp").write_text("not ours")
    t = ResultTable(p)
    assert not list(tmp_path.glob(".r.*.tmp"))                   # removed on open
    assert (tmp_path / ".other.csv.abcd1234.tmp").exists() and (tmp_path / "keep.tmp").exists()
    assert t.keys() == {"k0"}                                   # the killed run is not done


def test_a_temp_of_a_running_writer_is_kept(tmp_path):
    p = tmp_path / "r.csv"
    ResultTable(p).append({"run_key": "k0", "acc": 0.5})
    old = tmp_path / ".r.csv.old12345.tmp"
    new = tmp_path / ".r.csv.new12345.tmp"
    old.write_text("left by a writer killed before this process started")
    os.utime(old, (time.time() - 10 ** 7, time.time() - 10 ** 7))
    new.write_text("being written right now")
    with FileLock(str(p.with_name(".r.csv.lock"))):              # a writer holds the lock
        ResultTable(p)
    assert not old.exists() and new.exists()
    ResultTable(p)                                              # lock free: no writer running
    assert not new.exists()


def test_remove_stale_temps_only_touches_the_projects_temporaries(tmp_path):
    names = [".a.csv.ab12cd34.tmp", ".b.json.zz_9yy8x.tmp", ".a.csv.short.tmp", "a.csv.ab12cd34.tmp",
             ".a.csv.ab12cd34.tmp.bak", "data.tmp", ".a.csv.AB12CD34.tmp"]
    for n in names:
        (tmp_path / n).write_text("x")
        os.utime(tmp_path / n, (1, 1))
    (tmp_path / ".dir.csv.ab12cd34.tmp").mkdir()
    gone = {x.name for x in remove_stale_temps(tmp_path, names=["a.csv"])}
    assert gone == {".a.csv.ab12cd34.tmp"}
    gone = {x.name for x in remove_stale_temps(tmp_path)}
    assert gone == {".b.json.zz_9yy8x.tmp"}
    assert (tmp_path / ".dir.csv.ab12cd34.tmp").is_dir()
    assert remove_stale_temps(tmp_path / "missing") == []
