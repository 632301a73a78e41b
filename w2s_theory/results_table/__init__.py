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


from ..atomic_io import atomic_write_text as atomic_write_text  # noqa: F401 - the writer it uses
from .command import main as main
from .reading import read_table, record_schema
from .schema import (
    DTYPES,
    ResultTableError,
    ResultTableWarning,
    schema_path,
)
from .schema import LOCK_TIMEOUT_S as LOCK_TIMEOUT_S
from .schema import SCHEMA_FORMAT as SCHEMA_FORMAT
from .table import ResultTable
from .table import read_rows as read_rows

__all__ = ["ResultTable", "ResultTableError", "ResultTableWarning", "read_table",
           "record_schema", "schema_path", "DTYPES"]

