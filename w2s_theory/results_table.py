"""Typed result tables that lose nothing: one CSV row per finished run, locked, atomic, verified.

`ResultTable` has the public API of the sweeps' table (``path``, ``has``, ``keys``,
``append``, ``extend``, ``frame``) and these guarantees:

* **Concurrent writers keep every row.** ``extend`` takes a file lock (``filelock``, on
  ``.<name>.lock`` next to the table), re-reads the table from disk, merges its rows with
  the new ones (one row per run key: a new row replaces the stored row of its key) and
  rewrites the file, all under the lock. Reading needs no lock (the file is always
  replaced whole), so a published table in a read-only directory can be read.
* **Rows are complete or absent.** The file is rewritten atomically (`w2s_theory.atomic_io`):
  a reader or a killed writer sees the old table or the new one. A torn last row (a copy
  cut short, an appending writer killed mid-row) is dropped with a `ResultTableWarning`; a
  short row in the middle is corruption: an error. Temporary files a killed writer left
  (``.<name>.XXXXXXXX.tmp``) are removed when the table is opened
  (`w2s_theory.atomic_io.remove_stale_temps`).
* **Every table has a schema**: column -> ``dtype`` (``str``, ``int``, ``float``,
  ``bool``; ``empty`` for a column that has held no value yet) and nullability. It is
  declared (``ResultTable(path, schema={"acc": "float", "note": "str?"})``, ``?`` =
  nullable) or inferred from the first rows written (Python types: ``str`` -> ``str``,
  ``int`` -> ``int``, ``float`` -> ``float``, ``bool`` -> ``bool``, ``None``/NaN -> null) and
  widened by later rows (``int`` -> ``float``; non-null -> nullable; a column that gets both
  text and numbers, such as ``partial_k`` = ``0, 1, 'lastlayer'``, -> ``str``, as pandas
  always read such columns). A value that does not fit a declared column, or a column typed
  by its name (``*_acc`` floats, ``*_holds`` booleans), is an error at write time. It is stored beside
  the CSV in the sidecar ``<stem>.schema.json`` (`schema_path`), together with a
  **digest of every row** (16 hex digits of SHA-256 over the row's non-empty
  ``column=text`` cells, sorted by column name).
* **Reading validates every cell** against the schema and the digests. A garbled number
  (``0.#1``), ``Ture`` in a boolean column, an empty cell in a non-nullable column, a row
  whose content does not match its digest (a changed digit) or that has no digest (a
  foreign row, pasted from another table) makes the row *invalid*: it is left out of
  `ResultTable.keys`, `ResultTable.has` and `ResultTable.frame` (its run is recomputed,
  never counted done), kept verbatim in the file until its run is rewritten, and named
  in one `ResultTableWarning` per read (file, row, column, cell). `read_table` (used by
  the claims ledger) refuses such a table with `ResultTableError` instead. Header names
  out of their recorded order whose rows then fail (swapped header names) and columns the
  schema does not know are errors for the whole table.
* **Strings round-trip exactly.** Cells are read as text (never through pandas' type
  guessing) and converted by the schema: a ``str`` column keeps ``'007'``, ``'1234e5'`` and
  ``'NA'``; only an empty cell is missing (NaN in `ResultTable.frame`, as pandas writes
  a missing value). Floats are written with ``repr`` (shortest round-trip text).
* **Tables written without a sidecar** (older tables, hand-made CSVs) are read with a
  schema inferred from the text: columns named like keys and identifiers (``run_key``,
  ``commit``, ``git_commit``, ``subset``, ``*_key``, ...) are strings, accuracy-like columns
  (``acc``, ``*_acc``, ``*_auroc``, ``*_ece``) floats, ``*_holds`` booleans; others
  ``bool`` / ``int`` / ``float`` when every cell is such a value written canonically, else
  ``str``. No digests are checked until the table is next written (or `record_schema`
  records them: ``python -m w2s_theory.results_table record PATH``).
* **An unreadable table is an error, never silently dropped.** A 0-byte file, bytes that
  are not UTF-8, a file that does not parse as CSV, a header without ``run_key``, a row
  without a key or a sidecar that is not valid JSON raise `ResultTableError` (a
  ``ValueError``) naming the file and how to recover. Duplicate keys in a file are merged
  to the last row of each key, with a warning naming the file.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import json
import math
import numbers
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._validation import ArgumentTypeError, PathNotFound, check_number, check_path
from .atomic_io import atomic_write_text, remove_stale_temps
from .config import UserError

__all__ = ["ResultTable", "ResultTableError", "ResultTableWarning", "read_table",
           "record_schema", "schema_path", "DTYPES"]

#: Seconds ``extend`` waits for another writer's lock before giving up (a sweep's rewrite
#: takes milliseconds; a lock held this long means a stuck process).
LOCK_TIMEOUT_S = 600.0

#: Column types of a schema (``empty``: no value written yet; any type may claim it).
DTYPES = ("str", "int", "float", "bool", "empty")

SCHEMA_FORMAT = "w2s-result-table/1"

_RECOVER = ("to recover, move the file aside (the runs it held will be recomputed) or "
            "restore it from a backup")

_STR_NAMES = {"run_key", "commit", "git_commit", "subset", "dataset", "weak", "strong", "loss",
              "method", "variant", "regime", "role", "head", "sweep", "model", "machine",
              "config_file", "note", "status", "reason", "protocol_note", "created_utc",
              "torch_version", "device", "precision", "labels", "truth", "noise_kind",
              "partial_k", "strong_note", "lr_rule", "train_split", "schedule",
              "truncation_side", "train_dtype", "fit_status"}
_STR_SUFFIXES = ("_key", "_commit", "_id", "_name", "_path", "_hash", "_sha", "_status",
                 "_note", "_version")
_FLOAT_NAMES = {"acc", "auroc", "ece"}
_FLOAT_SUFFIXES = ("_acc", "_auroc", "_ece")
_BOOL_SUFFIXES = ("_holds",)

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
                       r"|inf|nan)\Z")
_INT_RE = re.compile(r"[+-]?\d+\Z")
_NUM = r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|nan)"
_FLOAT_COL_RE = re.compile(rf"(?:{_NUM})?(?:\n(?:{_NUM})?)*")
_INT_COL_RE = re.compile(r"(?:[+-]?\d+)?(?:\n(?:[+-]?\d+)?)*")
_TRUE = {"True", "true", "TRUE"}
_FALSE = {"False", "false", "FALSE"}


class ResultTableError(UserError, ValueError):
    """A result table on disk that cannot be used (the message names the file)."""


class ResultTableWarning(UserWarning):
    """A result table on disk was repaired on read (torn last row, duplicate keys, invalid rows)."""


def schema_path(path: str | os.PathLike) -> Path:
    """The sidecar holding the schema and row digests of the table at ``path``:
    ``<stem>.schema.json`` beside it (``main.csv`` -> ``main.schema.json``)."""
    path = _check_path(path, "path")
    return path.with_name(path.stem + ".schema.json")


def _check_path(path: Any, name: str) -> Path:
    p = check_path(path, name, must="out")       # not a folder, no parent that is a file
    if p.name in ("", ".", "..") or p.is_dir():
        raise ValueError(f"{name}: must name a file, got the folder {str(p)!r}")
    return p


# ----------------------------------------------------------------------------- schema
@dataclass
class _Col:
    dtype: str
    nullable: bool
    declared: bool = False


def _family(name: str) -> str | None:
    if name in _STR_NAMES or name.endswith(_STR_SUFFIXES):
        return "str"
    if name in _FLOAT_NAMES or name.endswith(_FLOAT_SUFFIXES):
        return "float"
    if name == "holds" or name.endswith(_BOOL_SUFFIXES):
        return "bool"
    return None


def _canonical_number(s: str) -> bool:
    if _INT_RE.match(s):
        return s.lstrip("+-") == "0" or not s.lstrip("+-").startswith("0")
    try:
        return repr(float(s)) == s
    except ValueError:
        return False


def _infer_from_text(name: str, cells: list[str]) -> _Col:
    vals = [c for c in cells if c != ""]
    nullable = len(vals) < len(cells)
    fam = _family(name)
    if fam is not None:
        return _Col(fam, nullable)
    if not vals:
        return _Col("empty", True)
    if all(v in _TRUE or v in _FALSE for v in vals):
        return _Col("bool", nullable)
    if all(_INT_RE.match(v) and _canonical_number(v) for v in vals):
        return _Col("int", nullable)
    if all(_canonical_number(v) for v in vals):
        return _Col("float", nullable)
    return _Col("str", nullable)


def _parse_declared(schema: Any) -> dict[str, _Col]:
    if schema is None:
        return {}
    if not isinstance(schema, Mapping):
        raise ArgumentTypeError(f"schema: must be a mapping column -> dtype, got "
                                f"{type(schema).__name__}")
    out = {}
    for col, spec in schema.items():
        if not isinstance(col, str) or not col:
            raise ArgumentTypeError(f"schema: column names must be non-empty strings, got {col!r}")
        if isinstance(spec, str):
            dtype, nullable = spec.rstrip("?"), spec.endswith("?")
        elif (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)
              and isinstance(spec[1], bool)):
            dtype, nullable = spec
        else:
            raise ArgumentTypeError(f"schema[{col!r}]: must be a dtype string ('float', "
                                    f"'str?', ...) or a (dtype, nullable) pair, got {spec!r}")
        if dtype not in DTYPES[:4]:
            raise ValueError(f"schema[{col!r}]: dtype must be one of {list(DTYPES[:4])}, "
                             f"got {dtype!r}")
        out[col] = _Col(dtype, nullable, declared=True)
    if "run_key" in out and out["run_key"].dtype != "str":
        raise ValueError("schema['run_key']: must be 'str' (run keys are strings)")
    return out


def _value_kind(v: Any) -> tuple[str | None, str]:
    """(dtype or None for null, the cell text) of a Python/numpy value to be written."""
    if v is None:
        return None, ""
    if getattr(v, "ndim", None) == 0 and hasattr(v, "item"):   # numpy scalars, 0-d arrays/tensors
        v = v.item()
    if v is None:
        return None, ""
    if isinstance(v, str):
        return ("str", v) if v != "" else (None, "")
    if isinstance(v, bool):
        return "bool", "True" if v else "False"
    if isinstance(v, numbers.Integral):
        return "int", str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        return (None, "") if math.isnan(f) else ("float", repr(f))
    try:
        import pandas as pd

        if v is pd.NA or v is pd.NaT:
            return None, ""
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, os.PathLike):
        return "str", os.fspath(v)
    if isinstance(v, (list, tuple, dict, set, frozenset, bytes, bytearray, complex)) or \
            getattr(v, "ndim", 0):
        raise TypeError(f"a {type(v).__name__} ({v!r:.40}) is not one cell: write numbers, "
                        f"strings, booleans or None (json.dumps a structure)")
    if type(v).__str__ is object.__str__ and type(v).__repr__ is object.__repr__:
        raise TypeError(f"a {type(v).__name__} object has no text form for a cell")
    return "str", str(v)


def _widen(col: _Col | None, kind: str | None, name: str, value: Any, where: str,
           table: Path) -> _Col:
    if col is None:
        col = _Col("empty", False)
    if kind is None:
        if col.declared and not col.nullable:
            raise ValueError(f"{where}: column {name!r} is declared non-nullable in {table}'s "
                             f"schema, got {value!r}")
        return _Col(col.dtype, True, col.declared)
    if col.dtype == "empty" or col.dtype == kind:
        return _Col(kind, col.nullable, col.declared)
    if {col.dtype, kind} == {"int", "float"} and not (col.declared and col.dtype == "int"):
        return _Col("float", col.nullable, col.declared)
    if not col.declared and _family(name) in (None, "str"):
        # a column of mixed kinds (e.g. partial_k: 0, 1, 'lastlayer') is a text column, as
        # pandas has always read it; columns typed by name (*_acc, *_holds) or declared are not
        return _Col("str", col.nullable, False)
    raise ValueError(f"{where}: column {name!r} holds {col.dtype} values in {table}'s schema, "
                     f"got {value!r} ({type(value).__name__}); convert it, or write it to a "
                     f"new column")


def _convert(text: str, col: _Col) -> tuple[Any, str | None]:
    """(typed value, problem or None) of one cell."""
    if text == "":
        return math.nan, (None if col.nullable else "empty cell in a non-nullable column")
    d = col.dtype
    if d == "str":
        return text, None
    if d == "float":
        if _FLOAT_RE.match(text):
            return float(text), None
        return math.nan, f"{text!r} is not a number"
    if d == "int":
        if _INT_RE.match(text):
            return int(text), None
        return math.nan, f"{text!r} is not an integer"
    if d == "bool":
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return False, None
        return math.nan, f"{text!r} is not a boolean (True/False)"
    return math.nan, f"{text!r} in a column that has never held a value"   # 'empty'


def _convert_column(cells: list[str], col: _Col) -> tuple[list, dict[int, str]]:
    """`_convert` over a column: (typed values, {row index: problem}); fast when all is well."""
    d = col.dtype
    nan = math.nan
    try:
        if d == "str":
            vals = [c if c else nan for c in cells]
        elif d in ("float", "int"):
            # one regex over the whole column (float() alone would take ' 1.5', '1_0', 'infinity')
            if not (_FLOAT_COL_RE if d == "float" else _INT_COL_RE).fullmatch("\n".join(cells)):
                raise ValueError
            conv = float if d == "float" else int
            vals = [conv(c) if c else nan for c in cells]
        elif d == "bool":
            table = {**{t: True for t in _TRUE}, **{f: False for f in _FALSE}, "": nan}
            vals = [table[c] for c in cells]
        else:
            raise ValueError
        if not col.nullable and "" in cells:
            raise ValueError
        return vals, {}
    except (ValueError, KeyError):
        vals, probs = [], {}
        for i, c in enumerate(cells):
            v, prob = _convert(c, col)
            vals.append(v)
            if prob:
                probs[i] = prob
        return vals, probs


def _digest(raw: Mapping[str, str]) -> str:
    blob = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(raw.items()) if v != "")
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _digests_of_rows(header: list[str], body: list[list[str]]) -> list[str]:
    """`_digest` of each row of ``body`` (fields in ``header`` order), computed in bulk."""
    order = sorted(range(len(header)), key=lambda j: header[j])
    pre = [(j, header[j] + "\x1e") for j in order]
    sha = hashlib.sha256
    return [sha("\x1f".join([p + r[j] for j, p in pre if r[j]]).encode("utf-8")).hexdigest()[:16]
            for r in body]


# ----------------------------------------------------------------------------- reading
@dataclass
class _Entry:
    key: str
    raw: dict[str, str]
    row: int                       # 1-based data row in the file (0: not yet written)
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    old_digests: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class _State:
    header: list[str]
    entries: list[_Entry]
    schema: dict[str, _Col]
    digests: dict[str, list[str]] | None


def _read_sidecar(path: Path) -> dict | None:
    sp = schema_path(path)
    try:
        data = sp.read_bytes()
    except FileNotFoundError:
        return None
    fix = (f"to recover, delete {sp.name} (the schema is then inferred from the table and the "
           f"row digests recorded afresh) or restore it from a backup")
    try:
        side = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultTableError(f"{sp}: not a valid schema sidecar ({exc}); {fix}") from None
    ok = (isinstance(side, dict) and side.get("format") == SCHEMA_FORMAT
          and isinstance(side.get("columns"), list) and isinstance(side.get("digests"), dict)
          and all(isinstance(c, dict) and isinstance(c.get("name"), str)
                  and c.get("dtype") in DTYPES and isinstance(c.get("nullable"), bool)
                  for c in side["columns"])
          and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                  for v in side["digests"].values()))
    if not ok:
        raise ResultTableError(f"{sp}: not a schema sidecar of format {SCHEMA_FORMAT!r}; {fix}")
    return side


def _parse_csv(path: Path) -> tuple[list[str], list[list[str]]] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data:
        raise ResultTableError(f"{path}: empty file (0 bytes), not a result table; {_RECOVER}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultTableError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}), "
                               f"not a result table; {_RECOVER}") from None
    if "\x00" in text:
        raise ResultTableError(f"{path}: contains NUL bytes (binary data), not a result table; "
                               f"{_RECOVER}")
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error as exc:
        raise ResultTableError(f"{path}: does not parse as CSV ({exc}); {_RECOVER}") from None
    if not records:
        raise ResultTableError(f"{path}: no header line, not a result table; {_RECOVER}")
    header = records[0]
    if "run_key" not in header:
        raise ResultTableError(f"{path}: not a result table (no 'run_key' column in the header "
                               f"{header[:6]!r}); {_RECOVER}")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ResultTableError(f"{path}: the header names the column(s) {dup} twice; {_RECOVER}")
    body = records[1:]
    torn = None
    if body and (not text.endswith(("\n", "\r")) or len(body[-1]) != len(header)):
        torn = body.pop()
    if torn is not None:
        warnings.warn(f"{path}: the last row is incomplete (a torn write: {len(torn)} of "
                      f"{len(header)} fields{', no final newline' if not text.endswith(chr(10)) else ''}); "
                      f"dropped, its run will be recomputed", ResultTableWarning, stacklevel=4)
    elif len(records) == 1 and not text.endswith(("\n", "\r")):
        raise ResultTableError(f"{path}: the header line is incomplete (no final newline); "
                               f"{_RECOVER}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ResultTableError(f"{path}: row {i + 1} has {len(r)} fields, the header "
                                   f"{len(header)}: the file is corrupt; {_RECOVER}")
    ki = header.index("run_key")
    for i, r in enumerate(body):
        if not r[ki]:
            raise ResultTableError(f"{path}: row {i + 1} has an empty run_key; {_RECOVER}")
    return header, body


def _load(path: Path, declared: dict[str, _Col], *, verify: bool = True) -> _State:
    side = _read_sidecar(path) if verify else None
    parsed = _parse_csv(path)
    recorded: dict[str, _Col] = {}
    order: list[str] = []
    if side is not None:
        for c in side["columns"]:
            recorded[c["name"]] = _Col(c["dtype"], c["nullable"])
            order.append(c["name"])
    digests = side["digests"] if side is not None else None
    if parsed is None:
        schema = {**recorded, **declared}
        return _State(list(order), [], schema, digests)
    header, body = parsed
    sp = schema_path(path)
    if side is not None:
        unknown = [c for c in header if c not in recorded]
        if unknown:
            raise ResultTableError(f"{path}: column(s) {unknown} are not in the schema recorded "
                                   f"in {sp.name} (written by another program?); {_RECOVER}, or "
                                   f"record the new schema with python -m "
                                   f"w2s_theory.results_table record {path}")
        schema = dict(recorded)
    else:
        schema = {c: _infer_from_text(c, [r[j] for r in body]) for j, c in enumerate(header)}
    for c, col in declared.items():
        schema[c] = col
    columns, problems = [], []
    for j, c in enumerate(header):                 # column by column: one type per column
        vals, probs = _convert_column([r[j] for r in body], schema[c])
        columns.append(vals)
        problems.append(probs)
    absent = [c for c in schema if c not in header]   # recorded columns absent from the file
    absent_bad = [c for c in absent if not schema[c].nullable]
    row_digests = _digests_of_rows(header, body) if digests is not None else None
    row_probs: dict[int, list[str]] = {}
    for j, probs in enumerate(problems):
        for i, msg in probs.items():
            row_probs.setdefault(i, []).append(f"column {header[j]!r}: {msg}")
    entries = []
    for i, (r, vals) in enumerate(zip(body, zip(*columns) if columns else ())):
        raw = dict(zip(header, r))
        e = _Entry(raw["run_key"], raw, i + 1)
        e.values = dict(zip(header, vals))
        for c in absent:
            e.values[c] = math.nan
        e.problems.extend(row_probs.get(i, ()))
        for c in absent_bad:
            e.problems.append(f"column {c!r}: missing from the file (non-nullable)")
        if digests is not None:
            e.old_digests = list(digests.get(e.key, []))
            if e.key not in digests:
                e.problems.append(f"run_key not recorded in {sp.name} (a foreign row, or one "
                                  f"written by another program)")
            elif row_digests[i] not in digests[e.key]:
                e.problems.append(f"content differs from the digest recorded in {sp.name} "
                                  f"(a changed cell)")
        entries.append(e)
    if side is not None:
        rec_order = [c for c in order if c in header]
        if rec_order != [c for c in header if c in recorded] and any(
                not e.valid for e in entries):
            moved = [f"{c!r} (column {header.index(c) + 1}, recorded {rec_order.index(c) + 1})"
                     for c in header if header.index(c) != rec_order.index(c)]
            raise ResultTableError(f"{path}: the header names are out of their recorded order and "
                                   f"the rows no longer match their digests (swapped header "
                                   f"names?): {', '.join(moved)}; {_RECOVER}")
    merged: dict[str, _Entry] = {}
    for e in entries:
        merged.pop(e.key, None)
        merged[e.key] = e                      # the last row of a key wins
    if len(merged) < len(entries):
        warnings.warn(f"{path}: {len(entries) - len(merged)} duplicate run_key rows (an unlocked "
                      f"writer?); kept the last row of each key", ResultTableWarning, stacklevel=4)
    return _State(header, list(merged.values()), schema, digests)


def _problems_text(path: Path, bad: list[_Entry], limit: int = 5) -> str:
    items = [f"row {e.row} (run_key {e.key!r}): {'; '.join(e.problems)}" for e in bad[:limit]]
    more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{path}: {len(bad)} invalid row(s): " + " | ".join(items) + more


@functools.lru_cache(maxsize=1)
def _pandas_has_str_dtype() -> bool:
    try:
        import pandas as pd

        return int(pd.__version__.split(".")[0]) >= 3
    except Exception:  # noqa: BLE001 - pandas missing or an odd version string
        return False


def _frame(header: list[str], schema: dict[str, _Col], entries: list[_Entry]):
    import numpy as np
    import pandas as pd

    data = {}
    for c in header:
        vals = [e.values.get(c, math.nan) for e in entries]
        d = schema[c].dtype if c in schema else "str"
        nulls = any(isinstance(v, float) and math.isnan(v) for v in vals) if d != "float" else True
        if d in ("float", "empty"):
            data[c] = np.array(vals, dtype=np.float64)
        elif d == "int":
            data[c] = (np.array(vals, dtype=np.float64) if nulls
                       else np.array(vals, dtype=np.int64))
        elif d == "bool" and not nulls:
            data[c] = np.array(vals, dtype=bool)
        elif d == "str" and _pandas_has_str_dtype():
            data[c] = pd.Series(vals, dtype=object).astype("str")   # as pandas >= 3 reads text
        else:
            data[c] = pd.Series(vals, dtype=object)
    return pd.DataFrame(data, columns=header)


def read_table(path: str | os.PathLike, *, strict: bool = True):
    """The table at ``path`` as a typed ``pandas.DataFrame``, validated cell by cell.

    Columns get their schema's dtype (``float64``; ``int64``, or ``float64`` with NaN when an
    integer column has empty cells; ``bool``, or ``object`` with NaN; strings hold the exact
    text, in pandas' default text dtype: ``str`` from pandas 3, ``object`` before): the dtypes
    ``pandas.read_csv`` gives a clean table, without its guessing (``'007'`` stays text). With ``strict`` (the default; the claims ledger reads this way)
    any invalid row (see the module docstring) raises `ResultTableError` naming the
    file, row, run key and column; without it the invalid rows are left out with one
    `ResultTableWarning`.

    Args:
        path: the CSV file (a missing file is a ``FileNotFoundError``).
        strict: refuse invalid rows instead of leaving them out.

    Examples:
        >>> import tempfile, pathlib
        >>> t = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv")
        >>> t.append({"run_key": "k", "subset": "007", "acc": 0.5})
        >>> read_table(t.path)["subset"].tolist(), read_table(t.path)["acc"].dtype
        (['007'], dtype('float64'))
    """
    p = _check_path(path, "path")
    if not isinstance(strict, bool):
        raise ArgumentTypeError(f"strict: must be a bool, got {strict!r}")
    if not p.exists():
        raise PathNotFound(f"{p}: no such result table")
    st = _load(p, {})
    bad = [e for e in st.entries if not e.valid]
    if bad and strict:
        raise ResultTableError(_problems_text(p, bad) + "; rerun the sweep that writes it (the "
                               "invalid runs are recomputed) or restore it from a backup")
    if bad:
        warnings.warn(_problems_text(p, bad) + "; left out", ResultTableWarning, stacklevel=2)
    return _frame(st.header, st.schema, [e for e in st.entries if e.valid])


def _sidecar_text(path: Path, header: list[str], schema: dict[str, _Col],
                  digests: dict[str, list[str]]) -> str:
    cols = [{"name": c, "dtype": schema[c].dtype, "nullable": schema[c].nullable}
            for c in header]
    # one line per column and per row digest: small, and diffs show the rows that changed
    lines = [f"{json.dumps(c)}" for c in cols]
    digs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in digests.items()]
    return ("{\n" f'"format": {json.dumps(SCHEMA_FORMAT)},\n"table": {json.dumps(path.name)},\n'
            '"columns": [\n' + ",\n".join(lines) + '\n],\n"digests": {\n' + ",\n".join(digs)
            + "\n}\n}\n")


def record_schema(path: str | os.PathLike) -> Path:
    """Record (or re-record) the schema and row digests of the table at ``path`` in its sidecar.

    For a table written before sidecars existed, or after an intended edit by another
    program. The rows must be valid under the schema inferred from the text (an existing
    sidecar's digests are not checked: recording trusts the file as it is now).

    Returns:
        the sidecar's path (`schema_path`).
    """
    p = _check_path(path, "path")
    if not p.exists():
        raise PathNotFound(f"{p}: no such result table")
    st = _load(p, {}, verify=False)
    bad = [e for e in st.entries if not e.valid]
    if bad:
        raise ResultTableError(_problems_text(p, bad) + "; fix or remove these rows first")
    dig = {e.key: [_digest(e.raw)] for e in st.entries}
    sp = schema_path(p)
    atomic_write_text(sp, _sidecar_text(p, st.header, st.schema, dig))
    return sp


# ----------------------------------------------------------------------------- the table
class ResultTable:
    """One CSV row per finished run, keyed by the ``run_key`` column; typed, resumable, shareable.

    Args:
        path: the CSV file (created with its folder on the first write).
        lock_timeout: seconds ``extend`` waits for another writer's lock (``>= 0``).
        schema: optional declared column types, ``{"acc": "float", "note": "str?"}``
            (``?``: nullable) or ``{"acc": ("float", False)}``; other columns are inferred.

    Examples:
        >>> import tempfile, pathlib
        >>> t = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv")
        >>> t.append({"run_key": "0123", "subset": "007", "acc": 0.5}); t.has("0123"), t.has("123")
        (True, False)
        >>> ResultTable(t.path).frame()[["run_key", "subset"]].values.tolist()
        [['0123', '007']]
    """

    def __init__(self, path: str | os.PathLike, *, lock_timeout: float = LOCK_TIMEOUT_S,
                 schema: Mapping[str, Any] | None = None):
        self.path = _check_path(path, "path")
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.schema_path = schema_path(self.path)
        self.lock_timeout = check_number(lock_timeout, "lock_timeout", low=0.0)
        self._declared = _parse_declared(schema)
        self._clean_temps()
        self._state = _State([], [], dict(self._declared), None)
        self.refresh()

    # -------------------------------------------------------------- reading
    def _clean_temps(self) -> None:
        names = [self.path.name, self.schema_path.name]
        folder = self.path.parent
        if not folder.is_dir() or not any(
                p.name.startswith(tuple(f".{n}." for n in names)) and p.name.endswith(".tmp")
                for p in folder.iterdir()):
            return
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(self.lock_path), timeout=0):
                # no writer of this table is running: every temporary of it is stale
                remove_stale_temps(folder, names=names, older_than=time.time() + 1.0)
                return
        except (Timeout, OSError):
            pass
        remove_stale_temps(folder, names=names)          # only those older than this process

    def _set(self, st: _State) -> None:
        self._state = st
        self._valid = [e for e in st.entries if e.valid]
        self._keys = {e.key for e in self._valid}

    @property
    def _rows(self) -> list[dict]:
        header = self._state.header
        return [{c: e.values.get(c, math.nan) for c in header} for e in self._valid]

    def refresh(self) -> None:
        """Re-read the table from disk (rows other processes wrote since); invalid rows are
        left out (their runs count as not done) with one `ResultTableWarning` naming them."""
        st = _load(self.path, self._declared)
        bad = [e for e in st.entries if not e.valid]
        if bad:
            warnings.warn(_problems_text(self.path, bad) + "; left out, their runs will be "
                          "recomputed", ResultTableWarning, stacklevel=3)
        self._set(st)

    @property
    def schema(self) -> dict[str, tuple[str, bool]]:
        """Column -> ``(dtype, nullable)`` as of the last read or write."""
        return {c: (col.dtype, col.nullable) for c, col in self._state.schema.items()}

    @property
    def invalid(self) -> dict[str, list[str]]:
        """Run key -> problems of the rows left out at the last read (empty when all valid)."""
        return {e.key: list(e.problems) for e in self._state.entries if not e.valid}

    def has(self, key: str) -> bool:
        """Whether a valid row of run ``key`` was read or written (as of the last read or write)."""
        if not isinstance(key, str):
            raise ArgumentTypeError(f"key: must be a run key (str), got {type(key).__name__} "
                                    f"{key!r:.40}")
        if not key:
            raise ValueError("key: a run key is a non-empty string, got ''")
        return key in self._keys

    def keys(self) -> set[str]:
        """The run keys of the valid rows (the runs that count as done)."""
        return set(self._keys)

    # -------------------------------------------------------------- writing
    def append(self, row: dict) -> None:
        """Add a finished run's row and rewrite the file atomically (under the lock)."""
        _key_of(row, "row")
        self.extend([row], _what="row")

    def extend(self, rows: Iterable[dict], *, _what: str | None = None) -> None:
        """Add rows: lock, re-read the file, merge by run key, rewrite atomically, unlock."""
        from filelock import FileLock, Timeout

        if isinstance(rows, (dict, str, bytes)) or not isinstance(rows, Iterable):
            raise ArgumentTypeError(f"rows: must be an iterable of row dicts, got "
                                    f"{type(rows).__name__}")
        new = list(rows)
        for i, r in enumerate(new):
            _key_of(r, _what or f"rows[{i}]")
        new = [dict(r) for r in new]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.lock_path), timeout=self.lock_timeout):
                self._write_locked(new, _what)
        except Timeout:
            raise TimeoutError(f"{self.path}: another process has held the lock "
                               f"{self.lock_path} for {self.lock_timeout:g} s; if no sweep is "
                               f"writing this table, delete the lock file") from None

    def _write_locked(self, new: list[dict], what: str | None) -> None:
        st = _load(self.path, self._declared)
        merged: dict[str, _Entry] = {e.key: e for e in st.entries}
        for e in self._valid:                        # ours, if the file lost them
            merged.setdefault(e.key, e)
        header = list(st.header)
        schema = {c: _Col(col.dtype, col.nullable, col.declared) for c, col in st.schema.items()}
        fresh: list[_Entry] = []
        for i, r in enumerate(new):
            where = what or f"rows[{i}]"
            raw = {}
            for c, v in r.items():
                if not isinstance(c, str) or not c:
                    raise ArgumentTypeError(f"{where}: column names must be non-empty strings, "
                                            f"got {c!r}")
                try:
                    kind, text = _value_kind(v)
                except TypeError as exc:
                    raise ArgumentTypeError(f"{where}: column {c!r}: {exc}") from None
                schema[c] = _widen(schema.get(c), kind, c, v, where, self.path)
                raw[c] = text
                if c not in header:
                    header.append(c)
            fresh.append(_Entry(r["run_key"], raw, 0))
        for c in header:                             # a row without a column: null there
            for e in fresh:
                if c not in e.raw:
                    schema[c] = _widen(schema.get(c), None, c, None,
                                       what or "rows", self.path)
        new_cols = [c for c in header if c not in st.header]
        if new_cols and any(e.valid for e in merged.values()):
            for c in new_cols:                       # the rows already there lack them
                schema[c] = _Col(schema[c].dtype, True, schema[c].declared)
        before = {c: st.schema[c].dtype for c in st.header if c in st.schema}
        for e in fresh:
            merged.pop(e.key, None)
            merged[e.key] = e
        entries = list(merged.values())
        final = {}
        ok = [e for e in entries if e.valid]
        for e, dg in zip(ok, _digests_of_rows(header, [[e.raw.get(c, "") for c in header]
                                                       for e in ok])):
            final[e.key] = [dg]
        for e in entries:
            if not e.valid and e.old_digests:
                final[e.key] = list(e.old_digests)    # an invalid row stays invalid
        final = {e.key: final[e.key] for e in entries if e.key in final}   # file order
        pending = {k: list(dict.fromkeys((st.digests or {}).get(k, []) + v))
                   for k, v in final.items()}
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for e in entries:
            w.writerow([e.raw.get(c, "") for c in header])
        # sidecar first with the old and new digests, then the table, then the final sidecar:
        # a writer killed anywhere leaves every row of the table with its digest recorded
        atomic_write_text(self.schema_path, _sidecar_text(self.path, header, schema, pending))
        atomic_write_text(self.path, buf.getvalue())
        atomic_write_text(self.schema_path, _sidecar_text(self.path, header, schema, final))
        widened = [c for c in header if c in before and schema[c].dtype != before[c]]
        for e in fresh:
            e.values = {c: _convert(e.raw.get(c, ""), schema[c])[0] for c in header}
        for e in ok:                                  # the schema may have widened (int -> float)
            for c in widened if e.row else ():
                e.values[c] = _convert(e.raw.get(c, ""), schema[c])[0]
            for c in new_cols if e.row else ():
                e.values[c] = math.nan
        self._set(_State(header, entries, schema, final))

    # -------------------------------------------------------------- views
    def frame(self):
        """The valid rows as a typed pandas DataFrame (`read_table`'s dtypes)."""
        return _frame(self._state.header, self._state.schema, self._valid)

    def to_latex(self, columns: Iterable[str] | None = None, **kwargs: Any) -> str:
        """The rows (optionally only ``columns``) as a booktabs table: `w2s_theory.export.frame_to_latex`."""
        from .export import frame_to_latex

        return frame_to_latex(self._select(columns), **kwargs)

    def to_markdown(self, columns: Iterable[str] | None = None, **kwargs: Any) -> str:
        """The rows (optionally only ``columns``) as a Markdown table: `w2s_theory.export.frame_to_markdown`."""
        from .export import frame_to_markdown

        return frame_to_markdown(self._select(columns), **kwargs)

    def _select(self, columns: Iterable[str] | None) -> list[dict]:
        if columns is None:
            return [dict(r) for r in self._rows]
        if isinstance(columns, (str, Mapping)) or not isinstance(columns, Iterable):
            raise ArgumentTypeError(f"columns: must be a list of column names, got {columns!r:.60}")
        cols = list(columns)
        if not cols:
            raise ValueError("columns: empty; give at least one column (or None for all)")
        unknown = [c for c in cols if c not in self._state.header]
        if unknown:
            raise ValueError(f"columns: {unknown} not in the table {self.path} (columns: "
                             f"{self._state.header[:8]}{'...' if len(self._state.header) > 8 else ''})")
        return [{c: r.get(c) for c in cols} for r in self._rows]


def _key_of(row: Any, what: str) -> str:
    if not isinstance(row, dict):
        raise ArgumentTypeError(f"{what}: a row must be a dict, got {type(row).__name__}")
    if "run_key" not in row:
        raise ValueError(f"{what}: needs a 'run_key' entry")
    key = row["run_key"]
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what}: 'run_key' must be a non-empty string, got {key!r}")
    return key


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The valid rows of the table at ``path`` as dicts (``[]`` if it does not exist)."""
    return ResultTable(path)._select(None)


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``python -m w2s_theory.results_table {check,record} PATH...``: validate tables, or
    record their schema and row digests (after an intended edit by another program)."""
    ap = argparse.ArgumentParser(prog="python -m w2s_theory.results_table",
                                 description="Check result tables against their schema and row "
                                             "digests, or record them.")
    ap.add_argument("action", choices=["check", "record"])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args(argv)
    status = 0
    for p in args.paths:
        try:
            if args.action == "record":
                print(f"{p}: recorded {record_schema(p)}")
            else:
                n = len(read_table(p))
                print(f"{p}: {n} rows, all valid")
        except (ResultTableError, FileNotFoundError) as exc:
            print(str(exc), file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    raise SystemExit(main())
