"""Resumable sweeps: run keys and a tidy result table keyed by run.

Atomic writes live in :mod:`w2s_theory.atomic_io`, provenance in :mod:`w2s_theory.provenance`.

A sweep is a list of runs, each identified by a *key* (a stable hash of its
config and seed). :class:`ResultTable` stores one row per finished run in a
CSV file, rewritten atomically (temporary file + ``os.replace``) after every
run, so a sweep killed at any point loses at most the run in flight and a
rerun skips what is already done.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .atomic_io import atomic_write_text

__all__ = ["run_key", "ResultTable"]


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
