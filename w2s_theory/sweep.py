"""Resumable sweeps: run keys and a tidy result table keyed by run.

Atomic writes live in `w2s_theory.atomic_io`, provenance in `w2s_theory.provenance`.

A sweep is a list of runs, each identified by a *key* (a stable hash of its
config and seed). `ResultTable` (`w2s_theory.results_table`) stores one row per
finished run in a CSV file, rewritten atomically (temporary file + ``os.replace``)
after every run, so a sweep killed at any point loses at most the run in flight and a
rerun skips what is already done. Each table has a schema and a digest of every row in
its sidecar ``<stem>.schema.json``: a row with a bad cell (a garbled number, a changed
digit, a pasted foreign row) does not count as done, so the rerun recomputes it; the
temporary files of a killed writer are removed when the table is opened.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .results_table import ResultTable  # the one result table: locked, validated (issue 10)

__all__ = ["run_key", "ResultTable"]


def run_key(config: dict, **extra: Any) -> str:
    """Stable 16-hex-digit key of a run's config (and extras such as the seed).

    Examples:
        >>> run_key({"a": 1, "b": [1, 2]}, seed=0) == run_key({"b": [1, 2], "a": 1}, seed=0)
        True
    """
    blob = json.dumps({"config": config, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
