"""w2s_theory.answer: the answer lines, the forest plot, the tables and the docs page, from a
ledger-shaped object whose summary the test writes (columns of the issue-18 interface)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from w2s_theory import answer
from w2s_theory.verdicts import VERDICT_WORDS

ROOT = Path(__file__).resolve().parents[1]
E, B, W, I = "equivalent within margin", "better", "worse", "inconclusive"
NUM = r"[+−-]\d+\.\d+"


def _fam(rows, fid, claim, regime, arms, q, eff, lo, hi, word, paper, *, kind="acc", note="",
         contrast=None, margin=0.5, counts=None):
    # counts = (n_better, n_worse, n_equivalent, n_inconclusive); default: all 11 settings
    # have the family's word
    if counts is None:
        order = ("better", "worse", "equivalent within margin", "inconclusive")
        counts = tuple(11 if w == word else 0 for w in order)
    rows.append(dict(family=fid, claim=claim, regime=regime,
                     contrast=contrast or f"acc({arms[0]} @ {q}) - acc({arms[1]} @ {q})",
                     kind=kind, noise_level=q,
                     # the ledger's spellings: "reverse_kl vs forward_kl", "cvx_rkl_acc - cvx_fkl_acc"
                     arms=(" - " if arms[0].startswith("cvx_") else " vs ").join(arms), n_settings=11,
                     effect_pts=eff, ci_low=lo, ci_high=hi, word=word, n_better=counts[0],
                     n_worse=counts[1], n_equivalent=counts[2], n_inconclusive=counts[3],
                     margin=margin, paper_pts=str(paper),
                     note=note))


def paper_summary():
    """A summary shaped like the committed plan's: claims 1, 2 (drop and acc), 4, 5."""
    r = []
    _fam(r, "c1.minibatch.reverse_kl", 1, "last_layer_minibatch", ("reverse_kl", "forward_kl"),
         0.0, 0.08, -0.05, 0.21, E, [1.8, 0.6, 0.6])
    _fam(r, "c1.minibatch.reverse_ce", 1, "last_layer_minibatch", ("reverse_ce", "forward_kl"),
         0.0, -1.24, -1.9, -0.6, W, [1.5, 0.3, 0.3])
    _fam(r, "c1.converged.reverse_kl", 1, "last_layer_converged", ("cvx_rkl_acc", "cvx_fkl_acc"),
         float("nan"), 0.02, -0.03, 0.07, E, [1.8, 0.6, 0.6], kind="column",
         contrast="cvx_rkl_acc - cvx_fkl_acc")
    _fam(r, "c1.full_finetune.reverse_kl", 1, "full_finetune", ("reverse_kl", "forward_kl"), 0.0,
         -0.03, -0.9, 0.85, I, [1.8, 0.6, 0.6], note="split 0 only: seed-only CI")
    _fam(r, "c1.full_finetune.reverse_ce", 1, "full_finetune", ("reverse_ce", "forward_kl"), 0.0,
         -1.1, -3.0, 0.8, I, [1.5, 0.3, 0.3], note="split 0 only: seed-only CI")
    for q, pk, pc in ((0.3, 8.3, 7.9), (0.4, 7.8, 9.0)):
        _fam(r, f"c2.minibatch.reverse_kl.drop.{q}", 2, "last_layer_minibatch",
             ("reverse_kl", "forward_kl"), q, 9.99, 9.01, 11.01, B, [6.5], kind="drop",
             contrast=f"drop(forward_kl) - drop(reverse_kl) @ {q}")
        _fam(r, f"c2.minibatch.reverse_kl.acc.{q}", 2, "last_layer_minibatch",
             ("reverse_kl", "forward_kl"), q, 0.3 + q, 0.1, 0.9 + q, I, [pk])
        _fam(r, f"c2.minibatch.reverse_ce.acc.{q}", 2, "last_layer_minibatch",
             ("reverse_ce", "forward_kl"), q, 1.5 + q, 0.8, 2.5, B, [pc])
        _fam(r, f"c2.converged.reverse_kl.acc.{q}", 2, "last_layer_converged",
             ("cvx_rkl_acc", "cvx_fkl_acc"), q, 0.1, -0.2, 0.4, E, [pk], kind="column",
             contrast=f"cvx_rkl_acc - cvx_fkl_acc @ {q}")
    _fam(r, "c2.full_finetune.reverse_kl.acc.0.4", 2, "full_finetune",
         ("reverse_kl", "forward_kl"), 0.4, 2.0, -1.0, 5.0, I, [7.8],
         note="split 0 only: seed-only CI")
    _fam(r, "c2.full_finetune.reverse_ce.acc.0.4", 2, "full_finetune",
         ("reverse_ce", "forward_kl"), 0.4, float("nan"), float("nan"), float("nan"), I, [9.0],
         note="split 0 only: seed-only CI")
    _fam(r, "c4.minibatch.reverse_kl", 4, "last_layer_minibatch", ("reverse_kl",), 0.0, 5.55, 5.1,
         5.9, B, [-0.1, 0.3], kind="capacity",
         contrast="student(all-MiniLM-L6-v2) - student(wordllama), reverse_kl")
    _fam(r, "c5.minibatch.reverse_kl_vs_forward_at_0.5", 5, "last_layer_minibatch",
         ("reverse_kl", "forward_kl"), 0.5, -3.33, -4.0, -2.0, W, [])
    return pd.DataFrame(r)


def user_summary(n_losses=8):
    """A default-plan summary (regime "user_table"): one family per loss at noise 0."""
    r = []
    for i in range(n_losses):
        _fam(r, f"loss{i}.vs.forward_kl.noise0", 1, "user_table", (f"alpha_{i}", "forward_kl"),
             0.0, 0.1 * i, 0.1 * i - 1, 0.1 * i + 1, I, "", margin=1.0)
    return pd.DataFrame(r)


def _nums(text):
    return [float(x.replace("−", "-")) for x in re.findall(NUM, text)]


def _row(summ, fid):
    return summ.set_index("family").loc[fid]


def test_answer_lines_paper_plan_one_line_per_regime_and_reverse_loss():
    summ = paper_summary()
    lines = answer.answer_lines(SimpleNamespace(summary=summ))
    assert len(lines) == 5
    expect = [("Last layer, trained (1 epoch), reverse KL − forward KL",
               "c1.minibatch.reverse_kl", "c2.minibatch.reverse_kl.acc.0.4"),
              ("Last layer, trained (1 epoch), reverse CE − forward KL",
               "c1.minibatch.reverse_ce", "c2.minibatch.reverse_ce.acc.0.4"),
              ("Last layer, converged (exact convex fit), reverse KL − forward KL",
               "c1.converged.reverse_kl", "c2.converged.reverse_kl.acc.0.4"),
              ("Full fine-tuning, reverse KL − forward KL",
               "c1.full_finetune.reverse_kl", "c2.full_finetune.reverse_kl.acc.0.4"),
              ("Full fine-tuning, reverse CE − forward KL",
               "c1.full_finetune.reverse_ce", "c2.full_finetune.reverse_ce.acc.0.4")]
    for line, (title, c1, c2) in zip(lines, expect):
        assert line.startswith(title + ": ")
        first, second = re.split(r"; (?=[+−]\d|no paired)", line[len(title) + 2:])
        assert "without noise" in first and "at 40 % flips" in second
        for part, fid in ((first, c1), (second, c2)):
            r = _row(summ, fid)
            counts = [(int(r[c]), w) for c, w in (("n_equivalent", "equivalent"),
                                                   ("n_better", "better"), ("n_worse", "worse"),
                                                   ("n_inconclusive", "inconclusive")) if r[c] > 0]
            phrase = "settings: " + ", ".join(f"{n} {w}" for n, w in counts)
            # the word counts are shown exactly when the settings disagree
            assert (phrase in part) == (len(counts) > 1 and np.isfinite(r.effect_pts)), part
            got = _nums(part.replace(phrase, "") if len(counts) > 1 else part)
            want = [r.effect_pts, r.ci_low, r.ci_high] + [float(str(r.paper_pts).strip("[]")
                                                               .split(",")[0])]
            if np.isfinite(r.effect_pts):
                assert got == pytest.approx(want, abs=0.005 + 1e-12), (part, want)
                assert r.word in part
            else:
                assert "no paired runs yet" in part and got == pytest.approx(want[3:])
    # drop, capacity and claim-5 families are not part of the answer
    text = "\n".join(lines)
    for absent in ("9.99", "5.55", "3.33", "6.5"):
        assert absent not in text
    assert "equivalent within margin (±0.5 pt; " in lines[0] and "paper +1.8)" in lines[0]
    assert lines[3].endswith("paper +7.8) [one data split: seed-only CI].")
    assert "[one data split" not in lines[0]


def test_answer_lines_use_the_verdict_words_exactly():
    summ = paper_summary()
    for word in VERDICT_WORDS:
        s = summ.copy()
        s.loc[s["family"] == "c1.minibatch.reverse_kl", "word"] = word
        line = answer.answer_lines(SimpleNamespace(summary=s))[0]
        assert f"without noise, {word}" in line
    s = summ.copy()
    s.loc[0, "word"] = "holds"
    with pytest.raises(ValueError, match=r"^ledger: unknown verdict words \['holds'\]"):
        answer.answer_lines(SimpleNamespace(summary=s))


def test_answer_lines_follow_the_summary():
    """A changed effect or word changes the line (the README test relies on it)."""
    summ = paper_summary()
    base = answer.answer_lines(SimpleNamespace(summary=summ))
    s = summ.copy()
    s.loc[s["family"] == "c2.minibatch.reverse_ce.acc.0.4", "effect_pts"] = 4.321
    changed = answer.answer_lines(SimpleNamespace(summary=s))
    assert changed[1] != base[1] and "+4.32 pt" in changed[1]
    assert changed[0] == base[0] and changed[2:] == base[2:]


def test_answer_lines_default_plan_one_line_per_family_at_most_max_lines():
    lines = answer.answer_lines(SimpleNamespace(summary=user_summary(8)))
    assert len(lines) == 6
    assert lines[-1].startswith("+ 3 more")
    s = user_summary(8)
    for i, line in enumerate(lines[:5]):
        assert line.startswith(f"Alpha {i} − forward KL: ")
        assert _nums(line) == pytest.approx([0.1 * i, 0.1 * i - 1, 0.1 * i + 1], abs=0.005)
        assert "paper" not in line and line.endswith(f"{s.word[i]}.")
    assert len(answer.answer_lines(SimpleNamespace(summary=user_summary(3)))) == 3
    assert len(answer.answer_lines(SimpleNamespace(summary=user_summary(8)), max_lines=3)) == 3


def test_answer_lines_bad_input():
    with pytest.raises(TypeError, match="^ledger: must have a pandas DataFrame 'summary'"):
        answer.answer_lines(object())
    with pytest.raises(ValueError, match=r"^ledger: its summary lacks the columns \['word'\]"):
        answer.answer_lines(SimpleNamespace(summary=paper_summary().drop(columns="word")))
    with pytest.raises(ValueError, match="^max_lines: "):
        answer.answer_lines(SimpleNamespace(summary=paper_summary()), max_lines=1)


def test_figure_rows_are_the_claim_1_and_2_accuracy_families():
    summ = paper_summary()
    rows, left_out = answer.figure_rows(SimpleNamespace(summary=summ))
    want = summ[summ["claim"].isin([1, 2]) & (summ["kind"] != "drop")]
    assert left_out == 0 and len(rows) == len(want) == 13
    assert set(rows["family"]) == set(want["family"])
    assert list(dict.fromkeys(rows["group"])) == [
        "Last layer, trained (1 epoch), reverse KL − forward KL",
        "Last layer, trained (1 epoch), reverse CE − forward KL",
        "Last layer, converged (exact convex fit), reverse KL − forward KL",
        "Full fine-tuning, reverse KL − forward KL", "Full fine-tuning, reverse CE − forward KL"]
    g = rows[rows["group"] == rows["group"][0]]
    assert list(g["label"]) == ["no noise", "30 % flips", "40 % flips"]
    # the paper's value once per row: the first number of paper_pts
    for _, r in rows.iterrows():
        first = str(_row(summ, r["family"]).paper_pts).strip("[]").split(",")[0]
        assert r["paper"] == float(first)
    assert list(rows["seed_only"]) == [False] * 9 + [True] * 4


def test_figure_rows_capped():
    rows, left_out = answer.figure_rows(SimpleNamespace(summary=user_summary(30)))
    assert len(rows) == answer.MAX_FIGURE_ROWS == 25 and left_out == 5
    assert rows["paper"].isna().all()


def test_plot_answer_writes_a_column_wide_png_and_pdf(tmp_path):
    from PIL import Image

    led = SimpleNamespace(summary=paper_summary())
    png, pdf = answer.plot_answer(led, tmp_path / "answer")
    assert png == tmp_path / "answer.png" and pdf == tmp_path / "answer.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        w, h = im.size
    assert 600 <= w <= 820, w            # about a column (3.5 in) at 200 dpi
    assert h < 1200                 # 13 rows with their word counts: under 6 in
    # the same drawing again: the PDF (no dates in it) is byte-identical
    first = pdf.read_bytes()
    answer.plot_answer(led, tmp_path / "answer.png")
    assert pdf.read_bytes() == first
    with pytest.raises(ValueError, match="^ledger: no accuracy contrast"):
        answer.plot_answer(SimpleNamespace(summary=paper_summary().iloc[0:0]), tmp_path / "x")


def test_markdown_and_latex_tables_hold_every_family():
    summ = paper_summary()
    led = SimpleNamespace(summary=summ)
    md = answer.markdown_table(led)
    tex = answer.latex_table(led, caption="c", label="tab:x")
    lines = md.splitlines()
    assert len(lines) == 2 + len(summ)
    for (_, r), line in zip(summ.iterrows(), lines[2:]):
        if np.isfinite(r.effect_pts):
            assert f"{r.effect_pts:+.2f}" in line and r.word in line
    assert tex.count(r"\\") >= len(summ) and r"\label{tab:x}" in tex
    assert "equivalent within margin" in tex


def test_readme_block_and_page_from_the_answer():
    summ = paper_summary()
    led = SimpleNamespace(summary=summ, rows=pd.DataFrame(), excluded=pd.DataFrame(),
                          checks=pd.DataFrame(), statements=["every loss reaches chance"])
    block = answer.readme_block(led)
    bullets = [ln[2:] for ln in block.splitlines() if ln.startswith("- ")]
    assert bullets == answer.answer_lines(led)
    assert "![" in block and "(figures/answer.png)" in block
    assert "docs/ledger.md" in block and "30_claims_ledger" in block
    assert len([ln for ln in block.splitlines() if ln.strip()]) <= 9
    page = answer.ledger_page(led)
    assert page.startswith("# The claims ledger\n") and page.endswith("\n")
    assert answer.markdown_table(led) in page and "- every loss reaches chance" in page


def test_update_readme_rewrites_only_the_block(tmp_path, monkeypatch):
    from w2s_theory.ledger import README_MARKERS

    a, b = README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{a}\nold\n{b}\nafter\n")
    led = SimpleNamespace(summary=paper_summary())
    answer.update_readme(led, readme)
    assert readme.read_text() == f"before\n{a}\n{answer.readme_block(led)}\n{b}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="^readme: "):
        answer.update_readme(led, readme)


def test_nan_noise_level_reads_as_no_noise():
    s = paper_summary()
    assert math.isnan(s.loc[s.family == "c1.converged.reverse_kl", "noise_level"].iloc[0])
    lines = answer.answer_lines(SimpleNamespace(summary=s))
    assert "+0.02 pt [−0.03, +0.07] without noise" in lines[2]


def test_read_ledger_round_trip_and_statements(tmp_path):
    from w2s_theory.ledger import Ledger, write

    summ = paper_summary()
    led = Ledger(rows=pd.DataFrame({"family": ["c1.minibatch.reverse_kl"], "n_splits": [1]}),
                 summary=summ, excluded=pd.DataFrame({"family": ["x"], "table": ["t.csv"],
                                                      "reason": ["duplicate run"]}),
                 checks=pd.DataFrame({"table": ["t.csv"], "n": [3]}))
    write(led, tmp_path)
    back = answer.read_ledger(tmp_path)
    assert back.statements == ()
    assert answer.answer_lines(back) == answer.answer_lines(led)
    # the rows' n_splits decide "one data split" (here the summary's note says nothing)
    assert ("without noise, equivalent within margin (±0.5 pt; one data split: seed-only CI; "
            "paper +1.8);") in answer.answer_lines(back)[0]
    (tmp_path / answer.STATEMENTS_FILE).write_text("every loss reaches chance\n\n")
    back = answer.read_ledger(tmp_path)
    assert back.statements == ("every loss reaches chance",)
    page = answer.ledger_page(back)
    assert "- every loss reaches chance" in page and "| x " in page and "duplicate run" in page
    (tmp_path / "ledger_checks.csv").unlink()
    with pytest.raises(FileNotFoundError, match="^folder: .*ledger_checks.csv is missing"):
        answer.read_ledger(tmp_path)


def test_one_split_tag_goes_where_it_belongs():
    """Both halves on one split: one tag at the end; only one half: the tag in its parentheses."""
    s = paper_summary()
    i = s.index[s["family"] == "c2.minibatch.reverse_kl.acc.0.4"][0]
    s.loc[i, "note"] = "split 0 only: seed-only CI"
    line = answer.answer_lines(SimpleNamespace(summary=s))[0]
    assert "[one data split" not in line
    assert line.endswith("at 40 % flips, inconclusive (one data split: seed-only CI; paper +7.8).")
    assert "without noise, equivalent within margin (±0.5 pt; paper +1.8);" in line


def test_mixed_settings_show_their_word_counts():
    """A family whose settings disagree shows the counts of the four words beside its word (the
    summary word alone would hide them); a unanimous family shows none."""
    s = paper_summary()
    i = s.index[s["family"] == "c1.minibatch.reverse_kl"][0]
    s.loc[i, ["n_better", "n_worse", "n_equivalent", "n_inconclusive"]] = [1, 0, 6, 4]
    s.loc[i, "word"] = "inconclusive"
    lines = answer.answer_lines(SimpleNamespace(summary=s))
    assert "without noise, inconclusive (settings: 6 equivalent, 1 better, 4 inconclusive; " \
           "paper +1.8)" in lines[0]
    assert "settings:" not in lines[1]
