"""The README's "Results in brief" block and the docs page ``docs/ledger.md`` are generated from
the committed claims ledger (``experiments/results/ledger*.csv``, written by
``python -m w2s_theory.ledger``): the block between ``w2s_theory.ledger.README_MARKERS`` is
exactly `w2s_theory.answer.readme_block` of it (at most six answer lines, the figure
``figures/answer.png``, a pointer to the full ledger), the page exactly
`w2s_theory.answer.ledger_page`. ``python -m w2s_theory.answer --readme`` rewrites both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from w2s_theory import answer
from w2s_theory.ledger import LEDGER_FILES, README_MARKERS, Ledger

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"


def _block(text: str) -> str:
    a, b = README_MARKERS
    assert text.count(a) == 1 and text.count(b) == 1, "README needs exactly one results block"
    return text.split(a, 1)[1].split(b, 1)[0].strip("\n")


def test_readme_results_block_is_generated_from_the_ledger():
    block = _block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block == answer.readme_block(answer.read_ledger(RESULTS)), (
        "README results block is stale: run `python -m w2s_theory.answer --readme`")


def test_readme_block_is_the_answer_and_the_figure():
    led = answer.read_ledger(RESULTS)
    block = _block((ROOT / "README.md").read_text(encoding="utf-8"))
    bullets = [ln[2:] for ln in block.splitlines() if ln.startswith("- ")]
    assert 1 <= len(bullets) <= answer.README_MAX_LINES
    assert bullets == answer.answer_lines(led, max_lines=answer.README_MAX_LINES)
    assert "](figures/answer.png)" in block
    assert (ROOT / "figures" / "answer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ROOT / "figures" / "answer.pdf").read_bytes()[:5] == b"%PDF-"
    assert "docs/ledger.md" in block and "30_claims_ledger" in block


def test_readme_block_follows_the_ledger():
    """A changed verdict or effect in the ledger's summary changes the README text."""
    led = answer.read_ledger(RESULTS)
    block = answer.readme_block(led)
    summ = led.summary.copy()
    i = summ.index[summ["family"] == "c1.minibatch.reverse_kl"][0]
    summ.loc[i, "word"] = "better" if summ.loc[i, "word"] != "better" else "worse"
    assert answer.readme_block(Ledger(led.rows, summ, led.excluded, led.checks)) != block
    summ = led.summary.copy()
    summ.loc[i, "effect_pts"] = summ.loc[i, "effect_pts"] + 0.5
    assert answer.readme_block(Ledger(led.rows, summ, led.excluded, led.checks)) != block


def test_docs_ledger_page_is_generated_from_the_ledger():
    page = (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    assert page == answer.ledger_page(answer.read_ledger(RESULTS)), (
        "docs/ledger.md is stale: run `python -m w2s_theory.answer --readme`")


def test_answer_main_rewrites_readme_page_and_figure(tmp_path, monkeypatch, capsys):
    """``python -m w2s_theory.answer --readme --root DIR`` on a copy: the block, the page and
    the figure, from DIR's ledger; the text outside the markers is kept."""
    a, b = README_MARKERS
    (tmp_path / "experiments" / "results").mkdir(parents=True)
    for name in LEDGER_FILES:
        shutil.copy(RESULTS / name, tmp_path / "experiments" / "results" / name)
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(f"# x\n\n{a}\nold\n{b}\n\nafter\n", encoding="utf-8")
    figs = tmp_path / "figs"
    monkeypatch.setenv("W2S_FIGURES_DIR", str(figs))
    assert answer.main(["--readme", "--root", str(tmp_path)]) == 0
    led = answer.read_ledger(tmp_path / "experiments" / "results")
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text == f"# x\n\n{a}\n{answer.readme_block(led)}\n{b}\n\nafter\n"
    assert (tmp_path / "docs" / "ledger.md").read_text(encoding="utf-8") == answer.ledger_page(led)
    assert (figs / "answer.png").is_file() and (figs / "answer.pdf").is_file()
    out = capsys.readouterr().out
    assert out.startswith("\n".join(answer.answer_lines(led, max_lines=answer.README_MAX_LINES)))
    # a missing ledger file: one line, exit 2
    (tmp_path / "experiments" / "results" / LEDGER_FILES[1]).unlink()
    assert answer.main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ledger_summary.csv is missing" in err


def test_committed_summary_has_the_interface_columns():
    summ = pd.read_csv(RESULTS / "ledger_summary.csv")
    for col in ("family", "claim", "regime", "arms", "noise_level", "effect_pts", "ci_low",
                "ci_high", "word", "margin", "paper_pts", "note"):
        assert col in summ.columns, col
