"""The README's Python examples run as written (issue 11): every ```python block, each on its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)


def test_readme_has_the_sections_a_new_user_needs():
    heads = re.findall(r"^## (.+)$", README, flags=re.M)
    for want in ("Install and run: two commands", "Use the bound calculators in your paper",
                 "Use the losses in your trainer", "Use your own model and data",
                 "Reproduce the figures", "Results in brief"):
        assert want in heads, heads
    assert heads.index("Install and run: two commands") == 0
    assert "make run" in README and "make test" in README and "GB" in README
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(BLOCKS[i], f"README.md python block {i + 1}", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    if "to_latex" in BLOCKS[i]:
        assert r"\toprule" in out and r"\bottomrule" in out and r"data\_dependent\_bound" in out
