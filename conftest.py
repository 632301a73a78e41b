"""Settings for every test run (``pytest`` over ``w2s_theory``, ``tests`` and ``notebooks``).

* Figures: the notebooks save their figures through `w2s_theory.plotting.figures_dir`, which
  honours ``W2S_FIGURES_DIR``; a test run points it at a temporary folder (removed at the end),
  so ``pytest --nbval`` redraws every figure without rewriting the committed ``figures/``.
  The kernels nbval starts inherit the variable.
* A clean tree: the run records ``git status`` (and the content of every changed file) at the
  start and fails if running the tests changed, added or removed any file git sees. Set
  ``W2S_NO_TREE_GUARD=1`` to switch the check off (e.g. while editing files during a run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_STATE: dict = {}


def _tree_state() -> dict[str, str] | None:
    """``{path: status + content hash}`` of every file git reports as changed or untracked."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                             cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None                                   # not a git checkout (an sdist), or no git
    state = {}
    for entry in filter(None, out.decode("utf-8", "surrogateescape").split("\0")):
        status, path = entry[:2], entry[3:]
        f = ROOT / path
        digest = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "-"
        state[path] = f"{status} {digest}"
    return state


def pytest_configure(config):
    if not os.environ.get("W2S_FIGURES_DIR"):
        tmp = tempfile.mkdtemp(prefix="w2s_test_figures_")
        os.environ["W2S_FIGURES_DIR"] = tmp
        _STATE["figures"] = tmp
    if not os.environ.get("W2S_NO_TREE_GUARD") and not hasattr(config, "workerinput"):
        _STATE["tree"] = _tree_state()


def pytest_sessionfinish(session, exitstatus):
    before = _STATE.pop("tree", None)
    if before is not None:
        after = _tree_state() or {}
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        if changed:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            msg = ("the test run changed the git tree (tests must write outside it): "
                   + ", ".join(changed[:20]) + (" ..." if len(changed) > 20 else ""))
            if reporter is not None:
                reporter.write_line(f"ERROR: {msg}", red=True)
            else:
                print(f"ERROR: {msg}")
            session.exitstatus = 1
    tmp = _STATE.pop("figures", None)
    if tmp is not None:
        os.environ.pop("W2S_FIGURES_DIR", None)
        shutil.rmtree(tmp, ignore_errors=True)
