"""A result table's schema: column types and nullability, inferred from text or declared,
widened by new rows; the cell conversions and the row digests; the errors and warnings."""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .._validation import ArgumentTypeError, check_path
from ..config import UserError

#: Seconds ``extend`` waits for another writer's lock before giving up (a sweep's rewrite
#: takes milliseconds; a lock held this long means a stuck process).
LOCK_TIMEOUT_S = 600.0

#: Column types of a schema (``empty``: no value written yet; any type may claim it).
DTYPES = ("str", "int", "float", "bool", "empty")

SCHEMA_FORMAT = "w2s-result-table/1"

RECOVER = ("to recover, move the file aside (the runs it held will be recomputed) or "
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
    path = check_table_path(path, "path")
    return path.with_name(path.stem + ".schema.json")


def check_table_path(path: Any, name: str) -> Path:
    p = check_path(path, name, must="out")       # not a folder, no parent that is a file
    if p.name in ("", ".", "..") or p.is_dir():
        raise ValueError(f"{name}: must name a file, got the folder {str(p)!r}")
    return p


# ----------------------------------------------------------------------------- schema
@dataclass
class Col:
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


def infer_from_text(name: str, cells: list[str]) -> Col:
    vals = [c for c in cells if c != ""]
    nullable = len(vals) < len(cells)
    fam = _family(name)
    if fam is not None:
        return Col(fam, nullable)
    if not vals:
        return Col("empty", True)
    if all(v in _TRUE or v in _FALSE for v in vals):
        return Col("bool", nullable)
    if all(_INT_RE.match(v) and _canonical_number(v) for v in vals):
        return Col("int", nullable)
    if all(_canonical_number(v) for v in vals):
        return Col("float", nullable)
    return Col("str", nullable)


def parse_declared(schema: Any) -> dict[str, Col]:
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
        out[col] = Col(dtype, nullable, declared=True)
    if "run_key" in out and out["run_key"].dtype != "str":
        raise ValueError("schema['run_key']: must be 'str' (run keys are strings)")
    return out


def value_kind(v: Any) -> tuple[str | None, str]:
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
    if v is pd.NA or v is pd.NaT:
        return None, ""
    if isinstance(v, os.PathLike):
        return "str", os.fspath(v)
    if isinstance(v, (list, tuple, dict, set, frozenset, bytes, bytearray, complex)) or \
            getattr(v, "ndim", 0):
        raise TypeError(f"a {type(v).__name__} ({v!r:.40}) is not one cell: write numbers, "
                        f"strings, booleans or None (json.dumps a structure)")
    if type(v).__str__ is object.__str__ and type(v).__repr__ is object.__repr__:
        raise TypeError(f"a {type(v).__name__} object has no text form for a cell")
    return "str", str(v)


def widen(col: Col | None, kind: str | None, name: str, value: Any, where: str,
           table: Path) -> Col:
    if col is None:
        col = Col("empty", False)
    if kind is None:
        if col.declared and not col.nullable:
            raise ValueError(f"{where}: column {name!r} is declared non-nullable in {table}'s "
                             f"schema, got {value!r}")
        return Col(col.dtype, True, col.declared)
    if col.dtype == "empty" or col.dtype == kind:
        return Col(kind, col.nullable, col.declared)
    if {col.dtype, kind} == {"int", "float"} and not (col.declared and col.dtype == "int"):
        return Col("float", col.nullable, col.declared)
    if not col.declared and _family(name) in (None, "str"):
        # a column of mixed kinds (e.g. partial_k: 0, 1, 'lastlayer') is a text column, as
        # pandas has always read it; columns typed by name (*_acc, *_holds) or declared are not
        return Col("str", col.nullable, False)
    raise ValueError(f"{where}: column {name!r} holds {col.dtype} values in {table}'s schema, "
                     f"got {value!r} ({type(value).__name__}); convert it, or write it to a "
                     f"new column")


def convert_cell(text: str, col: Col) -> tuple[Any, str | None]:
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


def convert_column(cells: list[str], col: Col) -> tuple[list, dict[int, str]]:
    """`convert_cell` over a column: (typed values, {row index: problem}); fast when all is well."""
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
            v, prob = convert_cell(c, col)
            vals.append(v)
            if prob:
                probs[i] = prob
        return vals, probs


def row_digest(raw: Mapping[str, str]) -> str:
    blob = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(raw.items()) if v != "")
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def digests_of_rows(header: list[str], body: list[list[str]]) -> list[str]:
    """`row_digest` of each row of ``body`` (fields in ``header`` order), computed in bulk."""
    order = sorted(range(len(header)), key=lambda j: header[j])
    pre = [(j, header[j] + "\x1e") for j in order]
    sha = hashlib.sha256
    return [sha("\x1f".join([p + r[j] for j, p in pre if r[j]]).encode("utf-8")).hexdigest()[:16]
            for r in body]
