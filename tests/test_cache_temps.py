"""Stale temporaries of cache files are removed when `real` / `features extract` start (issue 17).

Cache writers (head weights and convex fits of `real`, feature entries and token ids) write
through `w2s_theory.atomic_io.atomic_write_bytes`; a process killed before its `os.replace`
leaves `.<name>.XXXXXXXX.tmp` beside the target. Before, only result tables cleaned their
temporaries, so a cache folder kept them forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from conftest import write_tiny_real_config
from w2s_theory.atomic_io import TEMP_PATTERN
from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]

KILLED_WRITER = """
import os, signal, sys
from w2s_theory import atomic_io
# die where a kill hurts most: the temporary is written and fsynced, os.replace not yet run
atomic_io.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)
atomic_io.atomic_write_bytes(sys.argv[1], b"half a cache entry")
"""


def _killed_writer(target: Path) -> Path:
    """Run a real writer of ``target`` in a child process and SIGKILL it before os.replace;
    returns the temporary it left."""
    r = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT)
    assert r.returncode == -signal.SIGKILL
    left = [p for p in target.parent.iterdir() if TEMP_PATTERN.match(p.name)]
    assert len(left) == 1 and not target.exists()
    return left[0]


def _old_temp(target: Path) -> Path:
    """A temporary of the exact `atomic_write_bytes` name, last modified long ago."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.utime(tmp, (0, 0))
    assert TEMP_PATTERN.match(Path(tmp).name)
    return Path(tmp)


def _real_config(tmp_path: Path, cache: Path) -> Path:
    return write_tiny_real_config(tmp_path, cache=cache)


def test_real_removes_a_killed_writers_temporary_from_its_cache(hub_env, tmp_path):
    """A real SIGKILLed writer, then `w2s-theory real` in a new process (started after it)."""
    cache = tmp_path / "cache"
    entry = cache / "t-0123456789ab" / "teachers.npz"
    entry.parent.mkdir(parents=True)
    left = _killed_writer(entry)
    convex = _killed_writer(cache / "convex" / "k.json")
    mine = cache / ".notes.tmp"                          # not a temporary of atomic_io: kept
    mine.write_text("x")
    cfg = _real_config(tmp_path, cache)
    # a process's start time is known to about a second (psutil: boot time in whole seconds),
    # and the rerun must start after the kill for the temporaries to count as stale
    time.sleep(max(0.0, max(left.stat().st_mtime, convex.stat().st_mtime) + 2.5 - time.time()))
    env = {**os.environ, "HF_HUB_CACHE": str(hub_env), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-m", "w2s_theory.cli", "real", "--config", str(cfg),
                        "--out", str(tmp_path / "o.csv"), "--quiet"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert not left.exists() and not convex.exists()
    assert mine.exists()
    assert "removed 2 temporary files left by an interrupted cache write" in r.stderr
    assert (tmp_path / "o.csv").exists()


def test_real_dry_run_removes_nothing(hub_env, tmp_path, capsys):
    cache = tmp_path / "cache"
    old = _old_temp(cache / "convex" / "k.json")
    cfg = _real_config(tmp_path, cache)
    assert main(["real", "--config", str(cfg), "--out", str(tmp_path / "o.csv"), "--quiet",
                 "--dry-run"]) == 0
    assert old.exists()


def test_real_keeps_the_temporary_of_a_writer_running_now(hub_env, tmp_path, capsys):
    cache = tmp_path / "cache"
    old = _old_temp(cache / "t-x" / "students.npz")
    fresh = _old_temp(cache / "t-x" / "teachers.npz")
    os.utime(fresh)                                      # modified now: a writer is running
    cfg = _real_config(tmp_path, cache)
    assert main(["real", "--config", str(cfg), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 0
    assert not old.exists() and fresh.exists()
    assert "removed 1 temporary file left by an interrupted cache write" in capsys.readouterr().err


def test_features_extract_removes_old_temporaries_of_its_cache(hub_env, tmp_path, capsys):
    csv = tmp_path / "reviews.csv"
    pd.DataFrame({"text": [f"text {i}" for i in range(16)], "label": [0, 1] * 8}).to_csv(
        csv, index=False)
    fcache = tmp_path / "fcache"
    entry = _old_temp(fcache / "features" / "tiny-org--tiny-gpt2" / "source-table" / "ab.npz")
    tokens = _old_temp(fcache / "features" / "tiny-org--tiny-gpt2" / "w2s_tokens.npz")
    p = tmp_path / "feat.toml"
    p.write_text(f'[features]\nmodel = "tiny-org/tiny-gpt2"\ndata = "source"\ncache = "{fcache}"\n'
                 f'device = "cpu"\n[features.source]\nkind = "table"\ndata = "{csv}"\n'
                 f'task = "classification"\nsizes = [4, 4, 4]\n')
    argv = ["features", "extract", "--config", str(p), "--quiet"]
    assert main(argv + ["--dry-run"]) == 0
    assert entry.exists() and tokens.exists()            # a dry run only looks
    assert main(argv) == 0, capsys.readouterr().err
    assert not entry.exists() and not tokens.exists()
    assert "removed 2 temporary files" in capsys.readouterr().err
