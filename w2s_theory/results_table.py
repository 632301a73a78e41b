"""Result tables that lose nothing: one CSV row per finished run, locked, atomic, validated.

`ResultTable` has the public API of the sweeps' table (``path``, ``has``, ``keys``,
``append``, ``extend``, ``frame``) and adds what issue 10 asks of it:

* **Concurrent writers keep every row.** ``extend`` takes a file lock (``filelock``, on
  ``.<name>.lock`` next to the table), re-reads the table from disk, merges its rows with
  the new ones (one row per run key: a new row replaces the stored row of its key) and
  rewrites the file, all under the lock. Two sweeps writing one table at once (other
  seeds, other kinds of run) therefore keep each other's rows. Reading needs no lock
  (the file is always replaced whole), so a published table in a read-only directory
  can be read.
* **Rows are complete or absent.** The file is rewritten atomically (temporary file in
  the same directory, ``fsync``, ``os.replace``): a reader or a killed writer sees the old
  table or the new one. A table written otherwise (an appending writer killed mid-row, a
  copy cut short) is checked on read: a last row without its newline or with too few
  fields is *torn*; it is dropped with a `ResultTableWarning` naming the file, so its
  run is recomputed instead of being taken as finished. A short row in the middle is
  corruption, not a torn write: an error.
* **Run keys are strings.** The ``run_key`` column is read as the text in the file
  (``0123...`` keeps its leading zero, ``1234e5...`` is not a float, ``NA`` is not
  missing); the other columns are parsed by pandas, whose float parsing round-trips
  (tested), so a resumed sweep sees the values it wrote.
* **An unreadable table is an error, never silently dropped.** A 0-byte file, bytes that
  are not UTF-8, a file that does not parse as CSV, a header without ``run_key`` or a row
  without a key raise `ResultTableError` (a ``ValueError``) naming the file and how
  to recover (move it aside: its runs are recomputed; or restore it from a backup).
  Duplicate keys in a file (written by an older, unlocked writer) are merged to the last
  row of each key, with a warning naming the file.

``w2s_theory.sweep.ResultTable`` is the older table without these guarantees; the sweeps
switch to this one after the issue-8 refactor.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import UserError

__all__ = ["ResultTable", "ResultTableError", "ResultTableWarning"]

#: Seconds ``extend`` waits for another writer's lock before giving up (a sweep's rewrite
#: takes milliseconds; a lock held this long means a stuck process).
LOCK_TIMEOUT_S = 600.0

_RECOVER = ("to recover, move the file aside (the runs it held will be recomputed) or "
            "restore it from a backup")


class ResultTableError(UserError, ValueError):
    """A result table on disk that cannot be used (the message names the file)."""


class ResultTableWarning(UserWarning):
    """A result table on disk was repaired on read (torn last row, duplicate keys)."""


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                 # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _key_of(row: Any, what: str) -> str:
    if not isinstance(row, dict):
        raise TypeError(f"{what}: a row must be a dict, got {type(row).__name__}")
    if "run_key" not in row:
        raise ValueError(f"{what}: needs a 'run_key' entry")
    key = row["run_key"]
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what}: 'run_key' must be a non-empty string, got {key!r}")
    return key


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of the table at ``path`` (``[]`` if it does not exist), validated.

    Raises `ResultTableError` for an unreadable table; warns
    (`ResultTableWarning`) and drops a torn last row; merges duplicate keys.
    """
    import pandas as pd

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
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
    body = records[1:]
    torn = None
    if body and (not text.endswith(("\n", "\r")) or len(body[-1]) != len(header)):
        torn = body.pop()
    if torn is not None:
        warnings.warn(f"{path}: the last row is incomplete (a torn write: {len(torn)} of "
                      f"{len(header)} fields{', no final newline' if not text.endswith(chr(10)) else ''}); "
                      f"dropped, its run will be recomputed", ResultTableWarning, stacklevel=3)
    elif len(records) == 1 and not text.endswith(("\n", "\r")):
        raise ResultTableError(f"{path}: the header line is incomplete (no final newline); "
                               f"{_RECOVER}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ResultTableError(f"{path}: row {i + 1} has {len(r)} fields, the header "
                                   f"{len(header)}: the file is corrupt; {_RECOVER}")
    ki = header.index("run_key")
    keys = [r[ki] for r in body]
    for i, k in enumerate(keys):
        if not k:
            raise ResultTableError(f"{path}: row {i + 1} has an empty run_key; {_RECOVER}")
    if not body:
        return []
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header] + body)
    buf.seek(0)
    try:
        df = pd.read_csv(buf, dtype={"run_key": str})  # pandas >= 2: round-trip float parsing
    except (ValueError, pd.errors.ParserError) as exc:  # pragma: no cover - csv parsed it
        raise ResultTableError(f"{path}: pandas cannot read it ({exc}); {_RECOVER}") from None
    df["run_key"] = keys                                 # the text as written, never parsed
    rows = df.to_dict("records")
    merged: dict[str, dict] = {}
    for r in rows:
        merged[r["run_key"]] = r                          # the last row of a key wins
    if len(merged) < len(rows):
        warnings.warn(f"{path}: {len(rows) - len(merged)} duplicate run_key rows (an unlocked "
                      f"writer?); kept the last row of each key", ResultTableWarning, stacklevel=3)
    return list(merged.values())


class ResultTable:
    """One CSV row per finished run, keyed by the ``run_key`` column; resumable, shareable.

    Examples:
        >>> import tempfile, pathlib
        >>> t = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv")
        >>> t.append({"run_key": "0123", "acc": 0.5}); t.has("0123"), t.has("123")
        (True, False)
        >>> ResultTable(t.path).frame()["run_key"].tolist()
        ['0123']
    """

    def __init__(self, path: str | os.PathLike, *, lock_timeout: float = LOCK_TIMEOUT_S):
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.lock_timeout = float(lock_timeout)
        self._rows: list[dict] = read_rows(self.path)
        self._keys = {r["run_key"] for r in self._rows}

    def has(self, key: str) -> bool:
        """Whether a row of run ``key`` was read or written (as of the last read or write)."""
        return str(key) in self._keys

    def keys(self) -> set[str]:
        return set(self._keys)

    def refresh(self) -> None:
        """Re-read the table from disk (rows other processes wrote since)."""
        self._rows = read_rows(self.path)
        self._keys = {r["run_key"] for r in self._rows}

    def append(self, row: dict) -> None:
        """Add a finished run's row and rewrite the file atomically (under the lock)."""
        _key_of(row, "row")
        self.extend([row])

    def extend(self, rows: Iterable[dict]) -> None:
        """Add rows: lock, re-read the file, merge by run key, rewrite atomically, unlock."""
        import pandas as pd
        from filelock import FileLock, Timeout

        new = [dict(r) for r in rows]
        for i, r in enumerate(new):
            _key_of(r, f"rows[{i}]")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.lock_path), timeout=self.lock_timeout):
                merged = {r["run_key"]: r for r in read_rows(self.path)}
                for r in self._rows:                     # ours, if the file lost them
                    merged.setdefault(r["run_key"], r)
                for r in new:
                    merged[r["run_key"]] = r
                out = list(merged.values())
                text = pd.DataFrame(out).to_csv(index=False, lineterminator="\n") if out else ""
                if out:
                    _atomic_write_text(self.path, text)
        except Timeout:
            raise TimeoutError(f"{self.path}: another process has held the lock "
                               f"{self.lock_path} for {self.lock_timeout:g} s; if no sweep is "
                               f"writing this table, delete the lock file") from None
        self._rows = out
        self._keys = set(merged)

    def frame(self):
        """The table as a pandas DataFrame (``run_key`` as strings)."""
        import pandas as pd

        return pd.DataFrame(self._rows)

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
        cols = list(columns)
        return [{c: r.get(c) for c in cols} for r in self._rows]
