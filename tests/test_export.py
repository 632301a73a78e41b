"""Paper-ready export (issue 11): booktabs LaTeX and Markdown from result objects and tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from w2s_theory import bounds, metrics
from w2s_theory.export import (
    frame_to_latex,
    frame_to_markdown,
    latex_escape,
    result_to_latex,
    result_to_markdown,
)
from w2s_theory.misspecification import MisspecifiedTheorem2Result
from w2s_theory.results_table import ResultTable

ROWS = [{"loss_name": "reverse_kl", "acc": 0.912345, "n_seeds": 3, "holds": True},
        {"loss_name": "forward_kl", "acc": 0.9, "n_seeds": 3, "holds": False},
        {"loss_name": "forward_ce", "acc": float("nan"), "n_seeds": 2, "holds": True}]


def _booktabs(tex: str, n_rows: int, header: str) -> list[str]:
    """Check the booktabs structure; return the body lines."""
    lines = tex.splitlines()
    i0 = next(i for i, s in enumerate(lines) if s.startswith(r"\begin{tabular}"))
    assert lines[i0 + 1] == r"\toprule"
    assert lines[i0 + 2] == header + r" \\"
    assert lines[i0 + 3] == r"\midrule"
    i1 = lines.index(r"\bottomrule")
    assert lines[i1 + 1] == r"\end{tabular}"
    body = lines[i0 + 4:i1]
    assert len(body) == n_rows and all(s.endswith(r" \\") for s in body)
    assert r"\hline" not in tex                        # booktabs rules only
    return body


@pytest.mark.parametrize("table", [ROWS, pd.DataFrame(ROWS),
                                   {k: [r[k] for r in ROWS] for k in ROWS[0]}])
def test_frame_to_latex_is_booktabs_with_escaped_underscores(table):
    tex = frame_to_latex(table)
    assert tex.splitlines()[0] == r"\begin{tabular}{lrrl}"    # numbers right, text left
    body = _booktabs(tex, 3, r"loss\_name & acc & n\_seeds & holds")
    assert body[0] == r"reverse\_kl & 0.9123 & 3 & True \\"
    assert body[2] == r"forward\_ce &  & 2 & True \\"           # NaN: empty cell
    assert "_" not in tex.replace(r"\_", "")


def test_frame_to_latex_float_caption_label():
    tex = frame_to_latex(ROWS, caption="Accuracy 50% & more", label="tab:acc", float_format="{:.2f}")
    lines = tex.splitlines()
    assert lines[:4] == [r"\begin{table}[t]", r"\centering", r"\caption{Accuracy 50\% \& more}",
                         r"\label{tab:acc}"]
    assert lines[-1] == r"\end{table}"
    assert _booktabs(tex, 3, r"loss\_name & acc & n\_seeds & holds")[0].startswith(r"reverse\_kl & 0.91 &")


def test_latex_escape_every_special_character():
    assert latex_escape(r"a_b&c%d$e#f{g}h~i^j\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")


def test_frame_to_markdown_structure():
    md = frame_to_markdown(pd.DataFrame(ROWS)).splitlines()
    assert len(md) == 2 + 3
    assert [c.strip() for c in md[0].strip("|").split("|")] == ["loss_name", "acc", "n_seeds", "holds"]
    align = [c.strip() for c in md[1].strip("|").split("|")]
    assert align[0].startswith(":") and align[1].endswith(":") and align[2].endswith(":")
    assert len({len(s) for s in md}) == 1                       # aligned columns
    assert "0.9123" in md[2] and md[4].split("|")[2].strip() == ""
    assert r"a \| b" in frame_to_markdown([{"x": "a | b"}])


def test_result_objects_export():
    rng = np.random.default_rng(0)
    fs, fw, fsw = rng.uniform(0.1, 0.9, (3, 20))
    for r in (bounds.lemma1(fs, fw, fsw, gamma=0.1), bounds.theorem2(fs, fw, fsw),
              metrics.paired_test([0.7, 0.71, 0.69], [0.6, 0.62, 0.6])):
        d = r.to_dict()
        body = _booktabs(r.to_latex(), len(d), r"quantity & value")
        assert body[0].startswith(latex_escape(next(iter(d))) + " & ")
        md = r.to_markdown().splitlines()
        assert len(md) == 2 + len(d) and md[2].split("|")[1].strip() == next(iter(d))
        assert r.to_latex(caption="c", label="tab:x").startswith(r"\begin{table}")
    assert result_to_latex({"gap_x": 1.5}).splitlines()[4] == r"gap\_x & 1.5 \\"
    assert result_to_markdown({"a": math.pi}, float_format="{:.3f}").splitlines()[2] == "| a        | 3.142 |"


def test_misspecification_result_exports_scalar_fields_only():
    vals = {f: 0.5 for f in MisspecifiedTheorem2Result.__dataclass_fields__}
    vals.update(eps_status="Solved", holds=True, gain_positive=False, n=4)
    r = MisspecifiedTheorem2Result(**vals)
    tex = r.to_latex()
    _booktabs(tex, len(vals), r"quantity & value")
    assert r"eps\_status & Solved \\" in tex


def test_result_table_exports(tmp_path):
    t = ResultTable(tmp_path / "r.csv")
    t.extend([dict(r, run_key=f"k{i}") for i, r in enumerate(ROWS)])
    _booktabs(t.to_latex(columns=["loss_name", "acc"]), 3, r"loss\_name & acc")
    assert len(t.to_markdown().splitlines()) == 5


@pytest.mark.parametrize("bad", [3, "text", [1, 2], {"a": [1], "b": [1, 2]}])
def test_bad_tables_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match="^table: "):
        frame_to_latex(bad)
