"""Reading result tables for the ledger: the committed table plus its re-split rows, the columns
the ledger works on (``x_*``), member filters, and checks of tables given in memory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import (
    ArgumentTypeError,
)
from ..results_table import ResultTableError, read_table, schema_path


def _read_csv_table(path: Path):
    """The result table at ``path`` (it exists). A table with a schema sidecar is read by
    `w2s_theory.results_table.read_table` (strict: an invalid cell stops it, naming the file,
    row and column); one without by ``pandas.read_csv``. A file that cannot be parsed (0 bytes,
    not CSV) raises `ResultTableError` naming it: a damaged table is never read as missing."""
    if path.stat().st_size == 0:
        raise ResultTableError(f"{path}: empty file (0 bytes); rerun the sweep that writes it "
                               f"or restore it")
    if schema_path(path).is_file():
        return read_table(path)
    try:
        return pd.read_csv(path, low_memory=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultTableError(f"{path}: cannot be read as CSV ({first}); rerun the sweep "
                               f"that writes it or restore it") from None


#: numeric columns a family or check reads (besides every ``*_acc`` column)
_NUMERIC_COLUMNS = ("test_acc_strong", "noise", "noise_frac", "seed", "split", "lr",
                    "weak_noise")


def _check_numeric(df, where: str, exc=ValueError):
    """Raise ``exc`` naming ``where``, the column and the row when a numeric column the ledger
    reads holds text that is not a number (an empty cell is a missing value, not an error)."""
    for col in df.columns:
        if not (col in _NUMERIC_COLUMNS or str(col).endswith("_acc")):
            continue
        c = df[col]
        if pd.api.types.is_numeric_dtype(c) or pd.api.types.is_bool_dtype(c):
            continue
        num = pd.to_numeric(c, errors="coerce")
        text = c.astype(str).str.strip()
        bad = c.notna() & num.isna() & (text != "") & (text.str.lower() != "nan")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise exc(f"{where}: column {col!r}, data row {i} (line {i + 2}): "
                      f"{c.iloc[i]!r} is not a number")


def resplit_name(plan, table: str) -> str | None:
    """The re-split table of ``table`` by ``[replication] resplit_table_pattern``, when it
    lives under the committed table's folder (``.../real/splits/main.csv`` for
    ``.../real/main.csv``); ``None`` otherwise."""
    if not plan.resplit_table_pattern:
        return None
    rp = plan.resplit_table_pattern.format(stem=Path(table).stem)
    if rp == table or Path(table).parent not in Path(rp).parents:
        return None
    return rp


def load_table(plan, table: str, tables, root: Path):
    """``(frame or None, reason)``: the committed table (split 0) plus its re-split rows."""
    split = plan.split_column

    def get(name):
        if tables is not None:
            d = tables.get(name)
            if d is not None:
                _check_numeric(d, f"tables: {name}")
            return None if d is None else d.copy()
        p = root / name
        if not p.exists():
            return None
        if p.is_dir():
            raise ResultTableError(f"{p}: a folder, not a result table")
        d = _read_csv_table(p)
        _check_numeric(d, str(p), ResultTableError)
        return d

    df = get(table)
    if df is None:
        return None, "missing table"
    if split not in df.columns:
        df[split] = plan.committed_split
    df["_source_tmp"] = table
    rp = resplit_name(plan, table)
    if rp is not None:
        r = get(rp)
        if r is not None and len(r):
            if split not in r.columns:
                raise ValueError(f"tables: {rp} has no {split!r} column (a re-split table)")
            r["_source_tmp"] = rp
            df = pd.concat([df, r], ignore_index=True, sort=False)
    return _normalise(df, split), ""


def _normalise(df, split: str):
    """Add the columns the ledger works on: ``x_split``, ``x_acc``, ``x_noise``, ``x_dataset``,
    ``x_weak``, ``x_strong``, ``x_setting`` (synthetic tables: weak = ``weak_noise=...``,
    strong = the head; fine-tuning tables: the setting names its ``regime``)."""
    if "seed" not in df.columns:
        raise ValueError("tables: a result table needs a 'seed' column")
    n = len(df)

    def text(col, default=""):
        return (df[col].astype(str).to_numpy(dtype=object) if col in df.columns
                else np.full(n, default, dtype=object))

    x = {"x_split": pd.to_numeric(df[split], errors="raise").astype(int).to_numpy()}
    acc = next((c for c in ("student_acc", "test_acc_strong") if c in df.columns), None)
    x["x_acc"] = (pd.to_numeric(df[acc], errors="coerce").to_numpy(float) if acc
                  else np.full(n, np.nan))
    noise = next((c for c in ("noise", "noise_frac") if c in df.columns), None)
    x["x_noise"] = df[noise].astype(float).round(10).to_numpy() if noise else np.zeros(n)
    ds = next((c for c in ("dataset", "subset") if c in df.columns), None)
    x["x_dataset"] = text(ds) if ds else np.full(
        n, "synthetic" if "weak_noise" in df.columns else "", dtype=object)
    if "weak" in df.columns:
        x["x_weak"] = text("weak")
    elif "weak_noise" in df.columns:
        x["x_weak"] = np.array(["weak_noise=" + v for v in text("weak_noise")], dtype=object)
    else:
        x["x_weak"] = text("")
    x["x_strong"] = text("strong") if "strong" in df.columns else text("head")
    regime = text("regime") if ("regime" in df.columns and "role" in df.columns) else None
    setting = []
    for i in range(n):
        d, w, s = x["x_dataset"][i], x["x_weak"][i], x["x_strong"][i]
        name = f"{d}:{w}->{s}" if (w or s) else (d or "all")  # no models named: one setting
        setting.append(name if regime is None else f"{name} [{regime[i]}]")
    x["x_setting"] = np.array(setting, dtype=object)
    x["x_source"] = text("_source_tmp")
    keep = df.drop(columns=[c for c in df.columns if c.startswith("x_") or c == "_source_tmp"])
    if "run_key" in keep.columns:
        keep = keep.assign(run_key=keep["run_key"].astype(str).to_numpy(dtype=object))
    else:
        keep = keep.assign(run_key=np.full(n, "", dtype=object))
    if "loss" in keep.columns:
        keep = keep.assign(loss=keep["loss"].astype(str).to_numpy(dtype=object))
    return pd.concat([keep, pd.DataFrame(x, index=df.index)], axis=1)


def member_mask(df, filters: dict, pairs, where: str):
    mask = pd.Series(True, index=df.index)
    for col, vals in filters.items():
        if col not in df.columns:
            raise ValueError(f"plan: {where}: filter column {col!r} is not a column of the table")
        c = df[col]
        if pd.api.types.is_float_dtype(c):
            mask &= c.round(10).isin([round(float(v), 10) for v in vals])
        else:
            mask &= c.isin(list(vals))
    if pairs is not None:
        ps = set(pairs)
        mask &= pd.Series([(w, s) in ps for w, s in zip(df["x_weak"], df["x_strong"])],
                          index=df.index)
    return mask


def check_tables(tables: dict, plan) -> dict:
    """``tables`` with its keys as text paths; refuse keys that are not paths, values that
    are not DataFrames (``None``: a table not run yet), a dict lacking a table the plan names,
    and one holding no DataFrame at all."""
    out = {}
    for k, v in tables.items():
        if isinstance(k, (bytes, bytearray)) or not isinstance(k, (str, os.PathLike)):
            raise ArgumentTypeError(f"tables: keys must be table paths (str or os.PathLike), "
                                    f"got {k!r} ({type(k).__name__})")
        name = k if isinstance(k, str) else Path(k).as_posix()
        if v is not None and not isinstance(v, pd.DataFrame):
            raise ArgumentTypeError(f"tables: {name!r} must map to a DataFrame (or None: not "
                                    f"run yet), got {type(v).__name__}")
        out[name] = v
    missing = [t for t in plan.tables() if t not in out]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ValueError(f"tables: lacks {missing[0]!r}{more} of the plan's tables "
                         f"({', '.join(plan.tables())}); map a table not run yet to None, or "
                         f"pass no dict to read the files")
    if not any(isinstance(v, pd.DataFrame) for v in out.values()):
        raise ValueError("tables: holds no DataFrame (every table is None); pass no dict to "
                         "read the files")
    return out
