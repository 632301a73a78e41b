"""Where a result was computed: the git commit of the checkout and the machine.

Both go into every result row (and benchmark record) as provenance columns, which are left out
when rows are compared across machines.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["git_commit", "machine_name", "cpu_model"]


@functools.cache
def git_commit(root: str | os.PathLike | None = None) -> str:
    """Short commit of the checkout (``+dirty`` with uncommitted tracked changes), else ``unknown``."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` or the architecture
    where that file is not there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_name() -> str:
    """``<cpu model> (<n> cpu), <os> <arch>`` of this machine (for result rows and benchmarks)."""
    return f"{cpu_model()} ({os.cpu_count()} cpu), {platform.system()} {platform.machine()}"
