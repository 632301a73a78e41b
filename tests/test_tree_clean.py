"""`make test` leaves the tree clean: figures go to ``$W2S_FIGURES_DIR`` during tests, and the
root ``conftest.py`` fails a run that changed any file git sees (issue 17)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from w2s_theory import plotting

ROOT = Path(__file__).resolve().parents[1]


def _root_conftest():
    spec = importlib.util.spec_from_file_location("w2s_root_conftest", ROOT / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_figures_go_outside_the_tree_during_tests():
    where = Path(os.environ["W2S_FIGURES_DIR"]).resolve()
    assert where.is_dir()
    assert ROOT not in where.parents and where != ROOT
    assert plotting.figures_dir(ROOT / "figures").resolve() == where


def test_figures_dir_without_the_variable(monkeypatch):
    monkeypatch.delenv("W2S_FIGURES_DIR")
    assert plotting.figures_dir(ROOT / "figures") == ROOT / "figures"
    monkeypatch.setenv("W2S_FIGURES_DIR", "   ")           # blank: not a folder name
    assert plotting.figures_dir("figures") == Path("figures")


def test_the_guard_sees_a_new_and_a_changed_file(tmp_path):
    guard = _root_conftest()
    before = guard._tree_state()
    if before is None:                              # pragma: no cover - not a git checkout
        raise AssertionError("the repository must be a git checkout for this test")
    probe = ROOT / "figures" / "_tree_guard_probe.txt"
    try:
        probe.write_text("a")
        mid = guard._tree_state()
        assert "figures/_tree_guard_probe.txt" in mid and mid != before
        probe.write_text("b")                       # same status, other content: still seen
        assert guard._tree_state()["figures/_tree_guard_probe.txt"] != mid["figures/_tree_guard_probe.txt"]
    finally:
        probe.unlink(missing_ok=True)
    assert "figures/_tree_guard_probe.txt" not in guard._tree_state()
