"""Reading a result table: the CSV and its sidecar, every cell validated against the schema and
the row digests (`read_table`, strict), and recording them (`record_schema`)."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import ArgumentTypeError, PathNotFound
from ..atomic_io import atomic_write_text
from .schema import (
    DTYPES,
    RECOVER,
    SCHEMA_FORMAT,
    Col,
    ResultTableError,
    ResultTableWarning,
    check_table_path,
    convert_column,
    digests_of_rows,
    infer_from_text,
    row_digest,
    schema_path,
)


# ----------------------------------------------------------------------------- reading
@dataclass
class Entry:
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
class State:
    header: list[str]
    entries: list[Entry]
    schema: dict[str, Col]
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
        raise ResultTableError(f"{path}: empty file (0 bytes), not a result table; {RECOVER}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResultTableError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}), "
                               f"not a result table; {RECOVER}") from None
    if "\x00" in text:
        raise ResultTableError(f"{path}: contains NUL bytes (binary data), not a result table; "
                               f"{RECOVER}")
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error as exc:
        raise ResultTableError(f"{path}: does not parse as CSV ({exc}); {RECOVER}") from None
    if not records:
        raise ResultTableError(f"{path}: no header line, not a result table; {RECOVER}")
    header = records[0]
    if "run_key" not in header:
        raise ResultTableError(f"{path}: not a result table (no 'run_key' column in the header "
                               f"{header[:6]!r}); {RECOVER}")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise ResultTableError(f"{path}: the header names the column(s) {dup} twice; {RECOVER}")
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
                               f"{RECOVER}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ResultTableError(f"{path}: row {i + 1} has {len(r)} fields, the header "
                                   f"{len(header)}: the file is corrupt; {RECOVER}")
    ki = header.index("run_key")
    for i, r in enumerate(body):
        if not r[ki]:
            raise ResultTableError(f"{path}: row {i + 1} has an empty run_key; {RECOVER}")
    return header, body


def load_state(path: Path, declared: dict[str, Col], *, verify: bool = True) -> State:
    side = _read_sidecar(path) if verify else None
    parsed = _parse_csv(path)
    recorded: dict[str, Col] = {}
    order: list[str] = []
    if side is not None:
        for c in side["columns"]:
            recorded[c["name"]] = Col(c["dtype"], c["nullable"])
            order.append(c["name"])
    digests = side["digests"] if side is not None else None
    if parsed is None:
        schema = {**recorded, **declared}
        return State(list(order), [], schema, digests)
    header, body = parsed
    sp = schema_path(path)
    if side is not None:
        unknown = [c for c in header if c not in recorded]
        if unknown:
            raise ResultTableError(f"{path}: column(s) {unknown} are not in the schema recorded "
                                   f"in {sp.name} (written by another program?); {RECOVER}, or "
                                   f"record the new schema with python -m "
                                   f"w2s_theory.results_table record {path}")
        schema = dict(recorded)
    else:
        schema = {c: infer_from_text(c, [r[j] for r in body]) for j, c in enumerate(header)}
    for c, col in declared.items():
        schema[c] = col
    columns, problems = [], []
    for j, c in enumerate(header):                 # column by column: one type per column
        vals, probs = convert_column([r[j] for r in body], schema[c])
        columns.append(vals)
        problems.append(probs)
    absent = [c for c in schema if c not in header]   # recorded columns absent from the file
    absent_bad = [c for c in absent if not schema[c].nullable]
    row_digests = digests_of_rows(header, body) if digests is not None else None
    row_probs: dict[int, list[str]] = {}
    for j, probs in enumerate(problems):
        for i, msg in probs.items():
            row_probs.setdefault(i, []).append(f"column {header[j]!r}: {msg}")
    entries = []
    for i, (r, vals) in enumerate(zip(body, zip(*columns) if columns else ())):
        raw = dict(zip(header, r))
        e = Entry(raw["run_key"], raw, i + 1)
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
                                   f"names?): {', '.join(moved)}; {RECOVER}")
    merged: dict[str, Entry] = {}
    for e in entries:
        merged.pop(e.key, None)
        merged[e.key] = e                      # the last row of a key wins
    if len(merged) < len(entries):
        warnings.warn(f"{path}: {len(entries) - len(merged)} duplicate run_key rows (an unlocked "
                      f"writer?); kept the last row of each key", ResultTableWarning, stacklevel=4)
    return State(header, list(merged.values()), schema, digests)


def problems_text(path: Path, bad: list[Entry], limit: int = 5) -> str:
    items = [f"row {e.row} (run_key {e.key!r}): {'; '.join(e.problems)}" for e in bad[:limit]]
    more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{path}: {len(bad)} invalid row(s): " + " | ".join(items) + more


@functools.lru_cache(maxsize=1)
def _pandas_has_str_dtype() -> bool:
    try:
        return int(pd.__version__.split(".")[0]) >= 3
    except Exception:  # noqa: BLE001 - an odd version string
        return False


def to_frame(header: list[str], schema: dict[str, Col], entries: list[Entry]):
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
        >>> from w2s_theory.results_table import ResultTable
        >>> t = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv")
        >>> t.append({"run_key": "k", "subset": "007", "acc": 0.5})
        >>> read_table(t.path)["subset"].tolist(), read_table(t.path)["acc"].dtype
        (['007'], dtype('float64'))
    """
    p = check_table_path(path, "path")
    if not isinstance(strict, bool):
        raise ArgumentTypeError(f"strict: must be a bool, got {strict!r}")
    if not p.exists():
        raise PathNotFound(f"{p}: no such result table")
    st = load_state(p, {})
    bad = [e for e in st.entries if not e.valid]
    if bad and strict:
        raise ResultTableError(problems_text(p, bad) + "; rerun the sweep that writes it (the "
                               "invalid runs are recomputed) or restore it from a backup")
    if bad:
        warnings.warn(problems_text(p, bad) + "; left out", ResultTableWarning, stacklevel=2)
    return to_frame(st.header, st.schema, [e for e in st.entries if e.valid])


def sidecar_text(path: Path, header: list[str], schema: dict[str, Col],
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
    p = check_table_path(path, "path")
    if not p.exists():
        raise PathNotFound(f"{p}: no such result table")
    st = load_state(p, {}, verify=False)
    bad = [e for e in st.entries if not e.valid]
    if bad:
        raise ResultTableError(problems_text(p, bad) + "; fix or remove these rows first")
    dig = {e.key: [row_digest(e.raw)] for e in st.entries}
    sp = schema_path(p)
    atomic_write_text(sp, sidecar_text(p, st.header, st.schema, dig))
    return sp
