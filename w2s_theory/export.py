"""Paper-ready tables: LaTeX (booktabs) and Markdown from result objects and result frames.

* `frame_to_latex` / `frame_to_markdown` turn a table (a pandas ``DataFrame``,
  a list of row dicts, or a dict of columns) into a ``booktabs`` ``tabular`` (optionally
  wrapped in a ``table`` float with caption and label) or a GitHub-flavoured pipe table.
* `result_to_latex` / `result_to_markdown` turn one result object (anything
  with ``to_dict()``, or a dataclass) into a two-column *quantity / value* table. The
  result classes (`w2s_theory.bounds.Lemma1Result`,
  `w2s_theory.bounds.Theorem2Result`, the misspecification results,
  `w2s_theory.metrics.PairedTest`) have ``to_latex()`` and ``to_markdown()``
  methods that call these; `w2s_theory.results_table.ResultTable` has them too.

Cells: floats are written with ``float_format`` (default ``"{:.4g}"``), integers and
booleans as they are, missing values (``None``, NaN) as an empty cell; LaTeX's special
characters (``_ & % $ # { } ~ ^ \\``) are escaped in every header and cell, and ``|`` in
Markdown. Numeric columns are right-aligned, the others left-aligned. No pandas,
``jinja2`` or ``tabulate`` needed (a ``DataFrame`` is read through its columns).

Examples:
    >>> from w2s_theory.export import frame_to_markdown
    >>> print(frame_to_markdown([{"loss": "reverse_kl", "acc": 0.91234}, {"loss": "forward_kl", "acc": 0.9}]))
    | loss       |    acc |
    | :--------- | -----: |
    | reverse_kl | 0.9123 |
    | forward_kl |    0.9 |
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from ._validation import ArgumentTypeError, check_float_format, check_str

__all__ = ["frame_to_latex", "frame_to_markdown", "result_to_latex", "result_to_markdown",
           "latex_escape", "TableExport", "text_table"]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: Any) -> str:
    r"""``text`` as LaTeX text: the ten special characters escaped.

    Examples:
        >>> latex_escape("forward_kl & 50%")
        'forward\\_kl \\& 50\\%'
    """
    if not isinstance(text, (str, numbers.Real)):
        raise ArgumentTypeError(f"text: a string or a number, got {text!r:.40} "
                                f"({type(text).__name__})")
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _columns(table: Any) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a DataFrame, a list of row mappings or a mapping of columns."""
    cols, rows = _raw_columns(table)
    if not cols:
        raise ValueError("table: no columns (an empty table has nothing to write)")
    if len(set(cols)) != len(cols):
        raise ValueError(f"table: duplicate column names {cols}")
    return cols, [[_scalar_cell(v, i, c) for v, c in zip(r, cols)] for i, r in enumerate(rows)]


def _raw_columns(table: Any) -> tuple[list[str], list[list[Any]]]:
    if hasattr(table, "columns") and hasattr(table, "itertuples"):        # a pandas DataFrame
        cols = [str(c) for c in table.columns]
        return cols, [list(r) for r in table.itertuples(index=False, name=None)]
    if isinstance(table, Mapping):                                        # columns
        cols = [str(c) for c in table]
        for c, v in table.items():
            if isinstance(v, (str, bytes, Mapping)) or not hasattr(v, "__len__") or \
                    getattr(v, "ndim", 1) != 1:
                raise ArgumentTypeError(f"table: column {str(c)!r} must be a sequence of cells, "
                                        f"got {type(v).__name__}")
        data = [list(v) for v in table.values()]
        n = len(data[0]) if data else 0
        if any(len(v) != n for v in data):
            raise ValueError("table: columns of different lengths")
        return cols, [[v[i] for v in data] for i in range(n)]
    if isinstance(table, Sequence) and not isinstance(table, (str, bytes)):
        rows = list(table)
        if not all(isinstance(r, Mapping) for r in rows):
            raise TypeError("table: expected a DataFrame, a list of row dicts or a dict of columns")
        cols: list[str] = []
        for r in rows:                                                    # union, first-seen order
            cols += [str(k) for k in r if str(k) not in cols]
        return cols, [[{str(k): v for k, v in r.items()}.get(c) for c in cols] for r in rows]
    raise TypeError(f"table: expected a DataFrame, a list of row dicts or a dict of columns, "
                    f"got {type(table).__name__}")


def _scalar_cell(v: Any, i: int, col: str) -> Any:
    """0-d numpy arrays and tensors as their number; larger arrays are not one cell."""
    shape = getattr(v, "shape", None)
    if shape is not None and hasattr(v, "ndim") and not isinstance(v, (str, bytes)):
        if v.ndim != 0:
            raise ValueError(f"table: row {i}, column {col!r}: an array of shape {tuple(shape)}, "
                             f"not one cell")
        if hasattr(v, "detach"):
            v = v.detach()
        return v.item()
    return v


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and math.isnan(v)
    except TypeError:                                                     # pragma: no cover
        return False


def _cell(v: Any, float_format: str) -> str:
    if _missing(v):
        return ""
    if isinstance(v, (bool,)) or type(v).__name__ == "bool_":
        return str(bool(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return float_format.format(float(v))
    return str(v)


def _numeric(col: list[Any]) -> bool:
    vals = [v for v in col if not _missing(v)]
    return bool(vals) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                              and type(v).__name__ != "bool_" for v in vals)


_LABEL_BAD = set(" \t\n{}\\%#&$^~")


def _check_caption_label(caption: Any, label: Any) -> tuple[str | None, str | None]:
    caption = check_str(caption, "caption", allow_empty=True, allow_none=True)
    label = check_str(label, "label", allow_none=True)
    if label is not None and any(c in _LABEL_BAD for c in label):
        raise ValueError(f"label: {label!r} holds a space or a LaTeX special character; use "
                         f"letters, digits and ':-_.' (e.g. 'tab:results')")
    return caption, label


def frame_to_latex(table: Any, *, caption: str | None = None, label: str | None = None,
                   float_format: str = "{:.4g}") -> str:
    r"""A ``booktabs`` table: ``\toprule``, header, ``\midrule``, one line per row, ``\bottomrule``.

    Args:
        table: a pandas ``DataFrame`` (its index is not written; ``reset_index()`` first to
            keep it), a list of row dicts (columns in first-seen order) or a dict of columns.
        caption, label: when either is given, the ``tabular`` is wrapped in a ``table``
            float with ``\caption`` and ``\label`` (the label is not escaped).
        float_format: ``str.format`` pattern for floats.

    Returns:
        LaTeX source (needs ``\usepackage{booktabs}``).

    Examples:
        >>> print(frame_to_latex([{"loss": "reverse_kl", "acc": 0.91234}]))
        \begin{tabular}{lr}
        \toprule
        loss & acc \\
        \midrule
        reverse\_kl & 0.9123 \\
        \bottomrule
        \end{tabular}
    """
    caption, label = _check_caption_label(caption, label)
    float_format = check_float_format(float_format)
    cols, rows = _columns(table)
    align = "".join("r" if _numeric([r[j] for r in rows]) else "l" for j in range(len(cols)))
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(_cell(v, float_format)) for v in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is None and label is None:
        return "\n".join(lines)
    head = [r"\begin{table}[t]", r"\centering"]
    if caption is not None:
        head.append(rf"\caption{{{latex_escape(caption)}}}")
    if label is not None:
        head.append(rf"\label{{{label}}}")
    return "\n".join(head + lines + [r"\end{table}"])


def frame_to_markdown(table: Any, *, float_format: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown pipe table (numeric columns right-aligned).

    Args:
        table: as in `frame_to_latex`.
        float_format: ``str.format`` pattern for floats.

    Returns:
        The table, one line per row after the header and the alignment line.
    """
    float_format = check_float_format(float_format)
    cols, rows = _columns(table)
    cells = [[_cell(v, float_format).replace("|", r"\|") for v in r] for r in rows]
    head = [c.replace("|", r"\|") for c in cols]
    num = [_numeric([r[j] for r in rows]) for j in range(len(cols))]
    width = [max([3, len(head[j])] + [len(r[j]) for r in cells]) for j in range(len(cols))]

    def line(vals):
        return "| " + " | ".join(v.rjust(w) if nm else v.ljust(w)
                                 for v, w, nm in zip(vals, width, num)) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if nm else (":" + "-" * (w - 1))
                             for w, nm in zip(width, num)) + " |"
    return "\n".join([line(head), rule] + [line(r) for r in cells])


def _result_dict(result: Any) -> dict:
    if isinstance(result, type):
        raise TypeError(f"result: expected a result object, got the class {result.__name__}")
    if hasattr(result, "to_dict"):
        d = result.to_dict()
        if not isinstance(d, Mapping):
            raise TypeError(f"result: its to_dict() returned {type(d).__name__}, not a mapping")
        return dict(d)
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    if isinstance(result, Mapping):
        return dict(result)
    raise TypeError(f"result: expected a result object (to_dict() or a dataclass) or a dict, "
                    f"got {type(result).__name__}")


def _two_columns(result: Any, float_format: str) -> list[dict]:
    # one "value" column of mixed kinds: format here so the column is text throughout
    float_format = check_float_format(float_format)
    rows = [{"quantity": str(k), "value": _cell(_scalar_cell(v, 0, str(k)), float_format)}
            for k, v in _result_dict(result).items()
            if not hasattr(v, "shape") or getattr(v, "ndim", 1) == 0]
    if not rows:
        raise ValueError("result: no scalar field to show (empty, or arrays only)")
    return rows


def result_to_latex(result: Any, *, caption: str | None = None, label: str | None = None,
                    float_format: str = "{:.6g}") -> str:
    r"""One result object as a two-column ``booktabs`` table (*quantity*, *value*).

    Array fields (e.g. the fitted member of `w2s_theory.misspecification.EpsilonFit`)
    are left out; ``caption`` and ``label`` as in `frame_to_latex`.

    Examples:
        >>> from w2s_theory.bounds import theorem2
        >>> tex = result_to_latex(theorem2([0.9, 0.2], [0.6, 0.5], [0.9, 0.2]))
        >>> print("\n".join(tex.splitlines()[:5]))
        \begin{tabular}{ll}
        \toprule
        quantity & value \\
        \midrule
        risk\_weak & 0.209517 \\
    """
    return frame_to_latex(_two_columns(result, float_format), caption=caption, label=label)


def result_to_markdown(result: Any, *, float_format: str = "{:.6g}") -> str:
    """One result object as a two-column Markdown table (*quantity*, *value*)."""
    return frame_to_markdown(_two_columns(result, float_format))


def text_table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """Plain text of a result: ``title``, a rule, then one line per ``(name, value)`` row,
    names left-aligned, values right-aligned in 12 characters (what ``str(result)`` prints).

    Examples:
        >>> print(text_table("R", [("n", "3"), ("holds", "True")]))
        R
        -------------------
        n                 3
        holds          True
    """
    title = check_str(title, "title")
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
        raise ArgumentTypeError(f"rows: a non-empty sequence of (name, value) text pairs, got "
                                f"{type(rows).__name__}")
    for i, row in enumerate(rows):
        if not (isinstance(row, tuple) and len(row) == 2 and all(isinstance(x, str) for x in row)):
            raise ArgumentTypeError(f"rows: entry {i} must be a (name, value) pair of texts, "
                                    f"got {row!r}")
    w = max(len(k) for k, _ in rows)
    lines = [title, "-" * max(len(title), w + 14)]
    lines += [f"{k:<{w}}  {s:>12}" for k, s in rows]
    return "\n".join(lines)


class TableExport:
    """Mixin for result objects with ``to_dict()``: ``to_latex()`` and ``to_markdown()``."""

    def to_latex(self, *, caption: str | None = None, label: str | None = None,
                 float_format: str = "{:.6g}") -> str:
        """This result as a two-column ``booktabs`` table (see `result_to_latex`)."""
        return result_to_latex(self, caption=caption, label=label, float_format=float_format)

    def to_markdown(self, *, float_format: str = "{:.6g}") -> str:
        """This result as a two-column Markdown table (see `result_to_markdown`)."""
        return result_to_markdown(self, float_format=float_format)
