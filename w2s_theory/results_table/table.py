"""`ResultTable`: a locked, atomically rewritten CSV with one row per run key."""

from __future__ import annotations

import csv
import io
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from .._validation import ArgumentTypeError, check_number
from ..atomic_io import atomic_write_text, remove_stale_temps
from ..export import frame_to_latex, frame_to_markdown
from .reading import Entry, State, load_state, problems_text, sidecar_text, to_frame
from .schema import (
    LOCK_TIMEOUT_S,
    Col,
    ResultTableWarning,
    check_table_path,
    convert_cell,
    digests_of_rows,
    parse_declared,
    schema_path,
    value_kind,
    widen,
)


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
        self.path = check_table_path(path, "path")
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.schema_path = schema_path(self.path)
        self.lock_timeout = check_number(lock_timeout, "lock_timeout", low=0.0)
        self._declared = parse_declared(schema)
        self._clean_temps()
        self._state = State([], [], dict(self._declared), None)
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

    def _set(self, st: State) -> None:
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
        st = load_state(self.path, self._declared)
        bad = [e for e in st.entries if not e.valid]
        if bad:
            warnings.warn(problems_text(self.path, bad) + "; left out, their runs will be "
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
        st = load_state(self.path, self._declared)
        merged: dict[str, Entry] = {e.key: e for e in st.entries}
        for e in self._valid:                        # ours, if the file lost them
            merged.setdefault(e.key, e)
        header = list(st.header)
        schema = {c: Col(col.dtype, col.nullable, col.declared) for c, col in st.schema.items()}
        fresh: list[Entry] = []
        for i, r in enumerate(new):
            where = what or f"rows[{i}]"
            raw = {}
            for c, v in r.items():
                if not isinstance(c, str) or not c:
                    raise ArgumentTypeError(f"{where}: column names must be non-empty strings, "
                                            f"got {c!r}")
                try:
                    kind, text = value_kind(v)
                except TypeError as exc:
                    raise ArgumentTypeError(f"{where}: column {c!r}: {exc}") from None
                schema[c] = widen(schema.get(c), kind, c, v, where, self.path)
                raw[c] = text
                if c not in header:
                    header.append(c)
            fresh.append(Entry(r["run_key"], raw, 0))
        for c in header:                             # a row without a column: null there
            for e in fresh:
                if c not in e.raw:
                    schema[c] = widen(schema.get(c), None, c, None,
                                       what or "rows", self.path)
        new_cols = [c for c in header if c not in st.header]
        if new_cols and any(e.valid for e in merged.values()):
            for c in new_cols:                       # the rows already there lack them
                schema[c] = Col(schema[c].dtype, True, schema[c].declared)
        before = {c: st.schema[c].dtype for c in st.header if c in st.schema}
        for e in fresh:
            merged.pop(e.key, None)
            merged[e.key] = e
        entries = list(merged.values())
        final = {}
        ok = [e for e in entries if e.valid]
        for e, dg in zip(ok, digests_of_rows(header, [[e.raw.get(c, "") for c in header]
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
        atomic_write_text(self.schema_path, sidecar_text(self.path, header, schema, pending))
        atomic_write_text(self.path, buf.getvalue())
        atomic_write_text(self.schema_path, sidecar_text(self.path, header, schema, final))
        widened = [c for c in header if c in before and schema[c].dtype != before[c]]
        for e in fresh:
            e.values = {c: convert_cell(e.raw.get(c, ""), schema[c])[0] for c in header}
        for e in ok:                                  # the schema may have widened (int -> float)
            for c in widened if e.row else ():
                e.values[c] = convert_cell(e.raw.get(c, ""), schema[c])[0]
            for c in new_cols if e.row else ():
                e.values[c] = math.nan
        self._set(State(header, entries, schema, final))

    # -------------------------------------------------------------- views
    def frame(self):
        """The valid rows as a typed pandas DataFrame (`read_table`'s dtypes)."""
        return to_frame(self._state.header, self._state.schema, self._valid)

    def to_latex(self, columns: Iterable[str] | None = None, **kwargs: Any) -> str:
        """The rows (optionally only ``columns``) as a booktabs table: `w2s_theory.export.frame_to_latex`."""
        return frame_to_latex(self._select(columns), **kwargs)

    def to_markdown(self, columns: Iterable[str] | None = None, **kwargs: Any) -> str:
        """The rows (optionally only ``columns``) as a Markdown table: `w2s_theory.export.frame_to_markdown`."""
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
