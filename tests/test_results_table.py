"""Result tables that lose nothing (issue 10): locking, atomic rows, string keys, corrupt files."""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings

import pytest
from filelock import FileLock

from w2s_theory.results_table import ResultTable, ResultTableError, ResultTableWarning

RECOVER = "move the file aside"


# ----------------------------------------------------------------------------- API and values
def test_api_matches_the_sweep_table(tmp_path):
    from w2s_theory import sweep

    for name in ("has", "keys", "append", "extend", "frame"):
        assert callable(getattr(ResultTable, name)) and callable(getattr(sweep.ResultTable, name))
    t = ResultTable(tmp_path / "sub" / "r.csv")
    assert t.keys() == set() and not t.path.exists()
    t.append({"run_key": "k1", "acc": 0.5})
    t.extend([{"run_key": "k2", "acc": 0.25, "loss": "reverse_kl"}])
    assert t.has("k1") and t.has("k2") and not t.has("k3") and t.keys() == {"k1", "k2"}
    df = ResultTable(t.path).frame()
    assert df["run_key"].tolist() == ["k1", "k2"] and df["acc"].tolist() == [0.5, 0.25]
    with pytest.raises(ValueError, match=r"^row: needs a 'run_key' entry"):
        t.append({"acc": 1.0})
    with pytest.raises(ValueError, match=r"^rows\[1\]: 'run_key' must be a non-empty string"):
        t.extend([{"run_key": "k4"}, {"run_key": 123}])
    assert t.keys() == {"k1", "k2"}                    # nothing half-added


KEYS = ["0123456789abcdef", "1234e56789abcdef", "00000000000000001", "1e5", "NA", "nan",
        "inf", "-0", "TRUE", "12345678901234567890", "0x1f"]


def test_run_keys_always_read_as_strings(tmp_path):
    t = ResultTable(tmp_path / "r.csv")
    t.extend([{"run_key": k, "v": i} for i, k in enumerate(KEYS)])
    back = ResultTable(t.path)
    assert back.keys() == set(KEYS)
    assert back.frame()["run_key"].tolist() == KEYS
    for k in KEYS:
        assert back.has(k)
    assert not back.has("123456789abcdef")             # not the key with its zero lost


def test_values_round_trip_exactly(tmp_path):
    vals = [0.1 + 0.2, 1 / 3, 1e-300, 2.0 ** -1074, 123456.789012345678, -0.0, 7]
    t = ResultTable(tmp_path / "r.csv")
    t.extend([{"run_key": f"k{i}", "v": v} for i, v in enumerate(vals)])
    got = ResultTable(t.path).frame()["v"].tolist()
    assert got == vals


# ----------------------------------------------------------------------------- concurrent writers
def test_a_stale_table_does_not_drop_rows_written_since(tmp_path):
    p = tmp_path / "r.csv"
    a, b = ResultTable(p), ResultTable(p)              # two sweeps opened the table
    a.append({"run_key": "seed0", "acc": 0.1})
    b.append({"run_key": "seed1", "acc": 0.2})         # b never saw seed0
    a.append({"run_key": "seed0b", "acc": 0.3})
    assert ResultTable(p).keys() == {"seed0", "seed1", "seed0b"}
    assert a.keys() == {"seed0", "seed1", "seed0b"}    # a merged what b wrote
    b.append({"run_key": "seed1", "acc": 0.25})        # same key: replaced, not duplicated
    df = ResultTable(p).frame()
    assert len(df) == 3 and df.set_index("run_key").loc["seed1", "acc"] == 0.25


def _writer(path, prefix, n, barrier):
    t = ResultTable(path)
    barrier.wait()
    for i in range(n):
        t.append({"run_key": f"{prefix}-{i:03d}", "value": i, "writer": prefix})


@pytest.mark.parametrize("start", ["empty", "existing"])
def test_two_processes_writing_one_table_keep_every_row(tmp_path, start):
    p = tmp_path / "r.csv"
    if start == "existing":
        ResultTable(p).append({"run_key": "old", "value": -1, "writer": "setup"})
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    n = 40
    procs = [ctx.Process(target=_writer, args=(str(p), w, n, barrier)) for w in ("lemma1", "theorem2")]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(timeout=300)
        assert pr.exitcode == 0
    df = ResultTable(p).frame()
    want = {f"{w}-{i:03d}" for w in ("lemma1", "theorem2") for i in range(n)}
    if start == "existing":
        want.add("old")
    assert set(df["run_key"]) == want and len(df) == len(want)
    assert not list(tmp_path.glob(".r.csv.*.tmp"))        # no temporary file left behind


def test_lock_held_too_long_is_an_error_naming_the_table(tmp_path):
    t = ResultTable(tmp_path / "r.csv", lock_timeout=0.2)
    with FileLock(str(t.lock_path)):
        with pytest.raises(TimeoutError, match=r"r\.csv: another process has held the lock"):
            t.append({"run_key": "k", "v": 1})
    t.append({"run_key": "k", "v": 1})
    assert ResultTable(t.path).keys() == {"k"}


def test_a_failed_write_leaves_the_old_table(tmp_path, monkeypatch):
    t = ResultTable(tmp_path / "r.csv")
    t.append({"run_key": "k1", "v": 1})
    before = t.path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        t.append({"run_key": "k2", "v": 2})
    monkeypatch.undo()
    assert t.path.read_bytes() == before
    assert not list(tmp_path.glob(".r.csv.*.tmp"))


# ----------------------------------------------------------------------------- corrupt files
GOOD = "run_key,acc,loss\n0123,0.5,forward_kl\nabc,0.25,reverse_kl\n"


@pytest.mark.parametrize("content, msg", [
    (b"", r"empty file \(0 bytes\)"),
    (b"run_key,acc\n\xff\xfe0123,0.5\n", r"not UTF-8 text \(invalid byte at offset 12\)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not UTF-8 text"),
    (b"hello world\nthis is not a table\n", r"no 'run_key' column"),
    (b"run_key,acc\n0123,0.5\x00\n", r"contains NUL bytes"),
    (b'run_key,acc\n"0123,0.5\n', r"does not parse as CSV|incomplete"),
    (b"run_key,acc\nk1,0.5\nk2\nk3,0.7\n", r"row 2 has 1 fields, the header 2: the file is corrupt"),
    (b"run_key,acc\n,0.5\n", r"row 1 has an empty run_key"),
    (b"run_k", r"no 'run_key' column|header line is incomplete"),
    (b"\n\n\n", r"no header line"),
])
def test_unreadable_tables_are_errors_naming_the_file(tmp_path, content, msg):
    p = tmp_path / "results.csv"
    p.write_bytes(content)
    with pytest.raises(ResultTableError, match=rf"^{p}: .*{msg}") as info:
        ResultTable(p)
    assert RECOVER in str(info.value)
    assert p.read_bytes() == content                  # refused, not rewritten or dropped
    # the documented recovery: move it aside, and the table starts afresh
    p.rename(tmp_path / "results.csv.bad")
    t = ResultTable(p)
    t.append({"run_key": "k", "acc": 1.0})
    assert ResultTable(p).keys() == {"k"}


def test_an_unreadable_table_is_not_overwritten_by_a_writer(tmp_path):
    p = tmp_path / "r.csv"
    t = ResultTable(p)
    p.write_bytes(b"")                                 # truncated behind the writer's back
    with pytest.raises(ResultTableError, match=r"empty file"):
        t.append({"run_key": "k", "v": 1})
    assert p.read_bytes() == b""


@pytest.mark.parametrize("tail", [
    "zz,0.12",              # cut inside the last row: fields missing, no newline
    "zz,0.12,rev",          # cut inside the last field
    "zz,0.125,reverse_kl",  # all fields but no final newline: cannot tell it is complete
    "zz,0.1\n",             # a short last row with its newline
])
def test_a_torn_last_row_is_dropped_with_a_warning(tmp_path, tail):
    p = tmp_path / "r.csv"
    p.write_text(GOOD + tail)
    with pytest.warns(ResultTableWarning, match=rf"^{p}: the last row is incomplete .*dropped, its "
                                                rf"run will be recomputed"):
        t = ResultTable(p)
    assert t.keys() == {"0123", "abc"} and not t.has("zz")
    with pytest.warns(ResultTableWarning):            # the writer sees the same repair
        t.append({"run_key": "zz", "acc": 0.125, "loss": "reverse_kl"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # the rewritten file is clean
        back = ResultTable(p)
    assert back.frame()["run_key"].tolist() == ["0123", "abc", "zz"]


def test_duplicate_keys_from_an_unlocked_writer_are_merged_with_a_warning(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("run_key,acc\nk1,0.1\nk2,0.2\nk1,0.3\n")
    with pytest.warns(ResultTableWarning, match=rf"^{p}: 1 duplicate run_key rows"):
        t = ResultTable(p)
    assert t.frame().set_index("run_key")["acc"].to_dict() == {"k1": 0.3, "k2": 0.2}


def test_header_only_and_bom_are_valid(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("run_key,acc\n")
    assert ResultTable(p).keys() == set()
    p.write_bytes("\ufeffrun_key,acc\n0123,0.5\n".encode("utf-8"))
    assert ResultTable(p).keys() == {"0123"}


def test_torn_rows_are_detected_for_every_cut_of_a_table(tmp_path):
    """Every prefix of a table is either read whole, or loses only its torn last row (warned)."""
    p = tmp_path / "full.csv"
    t = ResultTable(p)
    t.extend([{"run_key": f"{i:04d}", "acc": i / 7, "loss": "forward_kl"} for i in range(5)])
    data = p.read_bytes()
    header_end = data.index(b"\n") + 1
    lines = data.splitlines(keepends=True)
    complete_at = {sum(len(x) for x in lines[:j]) for j in range(1, len(lines) + 1)}
    for cut in range(header_end, len(data) + 1):
        q = tmp_path / f"cut{cut}.csv"
        q.write_bytes(data[:cut])
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = ResultTable(q).frame()
        n_full = sum(1 for c in complete_at if c <= cut) - 1       # complete data rows
        if cut in complete_at:
            assert not w and len(got) == n_full
        else:
            assert len(w) == 1 and str(q) in str(w[0].message) and len(got) == n_full
        if len(got):
            assert got["run_key"].tolist() == [f"{i:04d}" for i in range(n_full)]
            assert got["acc"].tolist() == [i / 7 for i in range(n_full)]
