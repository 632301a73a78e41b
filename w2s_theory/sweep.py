"""Resumable sweeps: atomic writes and a tidy result table keyed by run.

A sweep is a list of runs, each identified by a *key* (a stable hash of its
config and seed). :class:`ResultTable` stores one row per finished run in a
CSV file, rewritten atomically (temporary file + ``os.replace``) after every
run, so a sweep killed at any point loses at most the run in flight and a
rerun skips what is already done.
"""

from __future__ import annotations

import hashlib
import functools
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["atomic_write_bytes", "atomic_write_text", "run_key", "ResultTable", "git_commit",
           "machine_name"]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> atomic_write_bytes(p, b"hello"); p.read_bytes()
        b'hello'
        >>> oct(p.stat().st_mode & 0o777) == oct(0o666 & ~_current_umask())
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the usual permissions (0666 less the umask).
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def run_key(config: dict, **extra: Any) -> str:
    """Stable 16-hex-digit key of a run's config (and extras such as the seed).

    Example:
        >>> run_key({"a": 1, "b": [1, 2]}, seed=0) == run_key({"b": [1, 2], "a": 1}, seed=0)
        True
    """
    blob = json.dumps({"config": config, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class ResultTable:
    """One CSV row per finished run, keyed by the ``run_key`` column; resumable.

    Example:
        >>> import tempfile, pathlib
        >>> t = ResultTable(pathlib.Path(tempfile.mkdtemp()) / "r.csv")
        >>> t.append({"run_key": "k1", "acc": 0.5}); t.has("k1"), t.has("k2")
        (True, False)
        >>> ResultTable(t.path).frame()["acc"].tolist()
        [0.5]
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._rows: list[dict] = []
        if self.path.exists():
            import pandas as pd

            df = pd.read_csv(self.path)
            if "run_key" not in df.columns:
                raise ValueError(f"{self.path}: not a result table (no 'run_key' column)")
            self._rows = df.to_dict("records")
        self._keys = {str(r["run_key"]) for r in self._rows}

    def has(self, key: str) -> bool:
        return key in self._keys

    def keys(self) -> set[str]:
        return set(self._keys)

    def append(self, row: dict) -> None:
        """Add a finished run's row and rewrite the file atomically."""
        if "run_key" not in row:
            raise ValueError("row: needs a 'run_key' entry")
        self.extend([row])

    def extend(self, rows: Iterable[dict]) -> None:
        import pandas as pd

        rows = list(rows)
        for r in rows:
            self._rows.append(r)
            self._keys.add(str(r["run_key"]))
        df = pd.DataFrame(self._rows)
        atomic_write_text(self.path, df.to_csv(index=False))

    def frame(self):
        """The table as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self._rows)


# ----------------------------------------------------------------------------- provenance
@functools.lru_cache(maxsize=None)
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


def machine_name() -> str:
    """``<cpu model> (<n> cpu), <os> <arch>`` of this machine (for result rows and benchmarks)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} cpu), {platform.system()} {platform.machine()}"
