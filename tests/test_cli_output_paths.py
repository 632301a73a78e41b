"""Output folders through the CLI (issue 17): a file where `--cache-dir` / `--figures-dir` /
`--out`'s folder should be, and a real read-only folder, end in one line naming the path and exit 2,
with and without `--dry-run`, before anything is computed.

The read-only folder is real: as root (where permission bits do not stop writes) a read-only tmpfs
is mounted on it; as any other user its mode is 0o555.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import write_tiny_real_config
from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]
LEMMA1 = ROOT / "experiments" / "synthetic" / "lemma1.toml"
SYNTH = ["synthetic", "--config", str(LEMMA1), "--ci", "--quiet", "--limit", "1"]


def _one_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture()
def read_only_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() == 0:
        # large enough that the free-space check (1 MiB) is not what refuses it
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,ro", "tmpfs", str(d)], check=True)
        try:
            yield d
        finally:
            subprocess.run(["umount", str(d)], check=True)
    else:
        d.chmod(0o555)
        try:
            yield d
        finally:
            d.chmod(0o755)


def test_the_read_only_folder_is_really_read_only(read_only_dir):
    assert shutil.disk_usage(read_only_dir).free > 32 << 20
    with pytest.raises(OSError):
        (read_only_dir / "x").write_text("x")
    with pytest.raises(OSError):
        (read_only_dir / "sub").mkdir()


def _real_argv(tmp_path: Path) -> list[str]:
    p = write_tiny_real_config(tmp_path)
    return ["real", "--config", str(p), "--out", str(tmp_path / "o.csv"), "--quiet"]


def _shadow(tmp_path: Path) -> Path:
    block = tmp_path / "block"
    block.write_text("a file")
    return block


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("where", ["cache", "cache-sub"])
def test_real_cache_dir_file_shadowed(where, dry, hub_env, tmp_path, capsys):
    block = _shadow(tmp_path)
    cache = block if where == "cache" else block / "sub"
    argv = _real_argv(tmp_path) + ["--cache-dir", str(cache)] + (["--dry-run"] if dry else [])
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(block) in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("where", ["cache", "cache-sub"])
def test_real_cache_dir_read_only(where, dry, hub_env, tmp_path, read_only_dir, capsys):
    cache = read_only_dir if where == "cache" else read_only_dir / "sub"
    argv = _real_argv(tmp_path) + ["--cache-dir", str(cache)] + (["--dry-run"] if dry else [])
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(read_only_dir) in err and "no space" not in err
    assert not (tmp_path / "o.csv").exists()


def _synthetic_case(flag: str, bad: Path, tmp_path: Path) -> list[str]:
    if flag == "--out":
        return SYNTH + ["--out", str(bad / "res"), "--figures-dir", str(tmp_path / "figs")]
    return SYNTH + ["--out", str(tmp_path / "res"), "--figures-dir", str(bad)]


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("flag", ["--out", "--figures-dir"])
def test_synthetic_out_and_figures_dir_file_shadowed(flag, dry, tmp_path, capsys):
    block = _shadow(tmp_path)
    argv = _synthetic_case(flag, block, tmp_path) + (["--dry-run"] if dry else [])
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(block) in err
    assert not (tmp_path / "res").exists() and not (tmp_path / "figs").exists()


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize("flag", ["--out", "--figures-dir"])
def test_synthetic_out_and_figures_dir_read_only(flag, dry, tmp_path, read_only_dir, capsys):
    argv = _synthetic_case(flag, read_only_dir, tmp_path) + (["--dry-run"] if dry else [])
    assert main(argv) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(read_only_dir) in err and "no space" not in err
    assert not (tmp_path / "res").exists() and not (tmp_path / "figs").exists()
