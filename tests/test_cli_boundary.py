"""The command line's boundary: every bad value, unusable output path, unknown hub id and
Ctrl-C ends in one line and a fixed exit status (2, or 130 after Ctrl-C), never a traceback;
``--quiet`` silences every progress bar; every ``python -m w2s_theory.X`` answers ``--help``
without side effects.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_tiny_real_config
from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]
LEMMA1 = ROOT / "experiments" / "synthetic" / "lemma1.toml"
INTERRUPTED = "interrupted; rerun the same command to resume"


def _one_line(err: str) -> str:
    err = err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def _synthetic_toml(tmp_path: Path, *, base="", random="", minibatch="", sweep="") -> Path:
    p = tmp_path / "s.toml"
    p.write_text(f"""[sweep]
name = "t"
kind = "lemma1"
seeds = 2
methods = ["minibatch/forward_kl", "softmax/forward_kl"]
{sweep}
[base]
n_w2s = 50
n_test = 50
{base or 'n_gt = 50'}
[random]
{random}
[minibatch]
{minibatch}
""")
    return p


def _syn(tmp_path, p, *extra) -> list[str]:
    return ["synthetic", "--config", str(p), "--no-figures", "--quiet",
            "--out", str(tmp_path / "out"), *extra]


# ----------------------------------------------------------------------------- invalid values
@pytest.mark.parametrize("kw, key", [
    ({"minibatch": "batch_size = 0"}, "[minibatch] batch_size"),
    ({"minibatch": 'optimizer = "bogus"'}, "[minibatch] optimizer"),
    ({"minibatch": "lr = -1"}, "[minibatch] lr"),
    ({"minibatch": "epochs = 0"}, "[minibatch] epochs"),
    ({"random": "d_strong = [32, 4]"}, "[random] d_strong"),
    ({"random": "d_strong = [0, 4]"}, "[random] d_strong"),
    ({"random": 'k = { choices = [] }'}, "[random] k"),
    ({"base": "n_gt = 100000000000"}, "[base] n_gt"),
    ({"random": "n_test = [10, 100000000000]"}, "[random] n_test"),
    ({"sweep": "seeds = [0, -1]"}, "[sweep] seeds"),
    ({"sweep": "seeds = 1e11"}, "[sweep] seeds"),
])
def test_invalid_synthetic_values_name_the_key(kw, key, tmp_path, capsys):
    p = _synthetic_toml(tmp_path, **kw)
    if "seeds" in kw.get("sweep", ""):
        p.write_text(p.read_text().replace("seeds = 2\n", "", 1))
    assert main(_syn(tmp_path, p)) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"w2s-theory synthetic: {p}: {key}:"), err
    assert not (tmp_path / "out").exists()                  # refused at config load


def test_memory_check_counts_every_place_a_size_comes_from():
    from w2s_theory.pipelines.synthetic import check_memory, sweep_config_from_dict

    raw = {"sweep": {"name": "t", "kind": "lemma1", "seeds": 1, "methods": ["softmax/forward_kl"]},
           "base": {"n_gt": 100, "n_w2s": 100, "n_test": 100}, "grid": {"n_w2s": [100, 10_000]}}
    cfg = sweep_config_from_dict(raw)
    check_memory(cfg, available=1 << 30)
    with pytest.raises(ValueError, match=r"^\[grid\] n_w2s: 10,000 rows .* more than this "
                                         r"machine's 1.0 MiB"):
        check_memory(cfg, available=1 << 20)


def test_every_failed_fit_gives_a_summary_not_a_key_error():
    from w2s_theory.pipelines.synthetic import format_summary, sweep_config_from_dict

    cfg = sweep_config_from_dict({"sweep": {"name": "t", "kind": "lemma1", "seeds": 1,
                                            "methods": ["softmax/forward_kl"]}})
    df = pd.DataFrame({"seed": [0, 1], "method": ["softmax/forward_kl"] * 2,
                       "fit_status": ["error: ValueError: boom", "error: ValueError: boom"]})
    text = format_summary(cfg, df)
    assert "every fit failed (2 runs)" in text and "boom" in text


@pytest.mark.parametrize("argv, key", [
    (["synthetic", "--config", str(LEMMA1), "--limit", "-1"], "--limit"),
    (["demo", "--seed", "-1"], "--seed"),
    (["finetune", "--config", "X", "--time-limit", "-1"], "--time-limit"),
    (["partial", "--config", "X", "--time-limit", "-5"], "--time-limit"),
    (["finetune", "--config", "X", "--time-limit", "nan"], "--time-limit"),
    (["real", "--config", "X", "--n-rows", "-1"], "--n-rows"),
    (["features", "extract", "--max-tokens", "0"], "--max-tokens"),
    (["features", "prepare-gpu", "--out", "X", "--limit", "-1"], "--limit"),
])
def test_negative_command_line_values_are_refused(argv, key, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = _one_line(capsys.readouterr().err)
    assert f"argument {key}: must be" in err
    assert not list(tmp_path.iterdir())


def test_finetune_noise_outside_unit_interval_dry_run(tmp_path, capsys):
    p = tmp_path / "f.toml"
    p.write_text('name = "t"\n[sweep]\nlosses = ["forward_kl"]\nseeds = [0]\nnoise = [-0.1]\n')
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{p}: sweep.noise: must lie in [0, 1], got -0.1" in err
    p.write_text(p.read_text().replace("[-0.1]", "[0.0, 1.5]"))
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    assert "sweep.noise" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("line, key", [("slot_seed = -1", "data.slot_seed")])
def test_finetune_negative_seeds(line, key, tmp_path, capsys):
    p = tmp_path / "f.toml"
    p.write_text(f'name = "t"\n[data]\n{line}\n')
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    assert f"{key}: must be an integer >= 0" in _one_line(capsys.readouterr().err)
    p.write_text('name = "t"\n[weak]\nseed = -3\n')
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    assert "weak.seed: must be an integer >= 0" in _one_line(capsys.readouterr().err)


def test_demo_seed_in_config_file(tmp_path, capsys):
    p = tmp_path / "d.toml"
    p.write_text("seed = -1\n")
    assert main(["demo", "--config", str(p), "--out", str(tmp_path / "o")]) == 2
    assert f"{p}: seed: must be an integer >= 0, got -1" in _one_line(capsys.readouterr().err)


def test_messages_keep_their_closing_quote(tmp_path, capsys):
    """A message ending in a quoted value used to lose its closing quote ("got 'tabel")."""
    p = tmp_path / "f.toml"
    p.write_text('name = "t"\n[data.source]\nkind = "tabel"\n')
    assert main(["finetune", "--config", str(p), "--dry-run"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.endswith("got 'tabel'"), err
    from w2s_theory.config import ConfigError, load_config

    def build(raw):
        raise ValueError("x: got 'y'")
    with pytest.raises(ConfigError) as e:
        load_config(p, build)
    assert str(e.value) == f"{p}: x: got 'y'"

    def missing(raw):
        return {}["key"]
    with pytest.raises(ConfigError) as e:
        load_config(p, missing)
    assert str(e.value) == f"{p}: key"


@pytest.mark.parametrize("cmd", [["synthetic"], ["real"], ["finetune"], ["partial"], ["demo"],
                                 ["features", "extract"]])
def test_non_utf8_config_names_its_file(cmd, tmp_path, capsys):
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'# ok\nname = "caf\xe9"\n')
    assert main(cmd + ["--config", str(p)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{p}:2: not valid UTF-8 (byte 0xe9" in err


# ----------------------------------------------------------------------------- output paths
def test_file_shadowed_out_and_figures_dir(tmp_path, capsys):
    block = tmp_path / "block"
    block.write_text("a file")
    argv = ["synthetic", "--config", str(LEMMA1), "--ci", "--quiet", "--limit", "1"]
    assert main(argv + ["--out", str(block / "res")]) == 2
    assert f"out {block / 'res'}" in _one_line(capsys.readouterr().err)
    assert main(argv + ["--out", str(tmp_path / "r"), "--figures-dir", str(block)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"figures-dir {block}: a file is in the way" in err
    assert main(["demo", "--out", str(block / "demo"), "--quiet"]) == 2
    assert str(block) in _one_line(capsys.readouterr().err)


def test_file_shadowed_cache_dir_real(tmp_path, capsys, hub_env):
    p = write_tiny_real_config(tmp_path)
    block = tmp_path / "block"
    block.write_text("a file")
    assert main(["real", "--config", str(p), "--out", str(tmp_path / "o.csv"),
                 "--cache-dir", str(block), "--quiet"]) == 2
    assert f"cache {block}: a file is in the way" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("code, text", [(errno.EROFS, "Read-only file system"),
                                        (errno.ENOSPC, "No space left on device")])
def test_os_error_while_writing_is_one_line(code, text, tmp_path, capsys, monkeypatch):
    """A read-only or full disk found while writing (after the preflight): one line naming
    the file, exit 2."""
    from w2s_theory import results_table

    def fail(self, rows, **kw):
        raise OSError(code, text, str(self.path))
    monkeypatch.setattr(results_table.ResultTable, "extend", fail)
    out = tmp_path / "r.csv"
    assert main(["synthetic", "--config", str(LEMMA1), "--ci", "--quiet", "--no-figures",
                 "--limit", "1", "--out", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"w2s-theory synthetic: {out}: {text}")


# ----------------------------------------------------------------------------- hub ids
def _hh(tmp_path) -> Path:
    d = tmp_path / "hh" / "harmless"
    d.mkdir(parents=True)
    for sp in ("train_gt", "train_w2s", "test"):
        (d / f"{sp}.jsonl").write_text('{"chosen": "Human: a", "rejected": "Human: b"}\n' * 4)
    return d.parent


def test_unknown_hub_id_real_and_features_extract(hub_env, tmp_path, capsys):
    bad = "tiny-org/no-such-model"
    p = tmp_path / "r.toml"
    p.write_text(f'name = "t"\ndatasets = ["harmless"]\npairs = [["wordllama", "{bad}"]]\n'
                 f'losses = ["forward_kl"]\nseeds = [0]\n[convex]\nenabled = false\n')
    hh = _hh(tmp_path)
    assert main(["real", "--config", str(p), "--data-dir", str(hh), "--quiet",
                 "--out", str(tmp_path / "o.csv"), "--cache-dir", str(tmp_path / "c")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"cannot get {bad!r} from the Hugging Face hub" in err
    assert main(["features", "extract", "--model", bad, "--subset", "harmless", "--split",
                 "test", "--data-dir", str(hh), "--cache", str(tmp_path / "c"), "--quiet"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"cannot get {bad!r} from the Hugging Face hub" in err


def test_unknown_hub_id_online_is_one_line(tmp_path, capsys, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants as c
    from huggingface_hub.errors import RepositoryNotFoundError

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))

    class Resp:
        status_code, headers, request = 404, {}, None

    def unknown(self, repo_id, **kw):
        raise RepositoryNotFoundError("404 Client Error", response=Resp())
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unknown)
    assert main(["features", "extract", "--model", "org/typo-model", "--subset", "harmless",
                 "--split", "test", "--data-dir", str(_hh(tmp_path)),
                 "--cache", str(tmp_path / "c")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "cannot get 'org/typo-model' from the Hugging Face hub: no such model" in err


# ----------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_in_process(tmp_path, capsys, monkeypatch):
    import w2s_theory.pipelines.synthetic as syn

    real_fit, calls = syn.fit_method, {"n": 0}

    def fit(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_fit(*a, **k)
    monkeypatch.setattr(syn, "fit_method", fit)
    out = tmp_path / "r.csv"
    argv = ["synthetic", "--config", str(LEMMA1), "--ci", "--quiet", "--no-figures",
            "--out", str(out)]
    assert main(argv) == 130
    assert _one_line(capsys.readouterr().err) == f"w2s-theory synthetic: {INTERRUPTED}"
    assert len(pd.read_csv(out)) == 2                       # the finished runs are kept
    assert not list(tmp_path.glob(".*.lock"))
    monkeypatch.setattr(syn, "fit_method", real_fit)
    assert main(argv + ["--limit", "1"]) == 0               # resumes
    assert "1 new runs, 2 already done" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.lock"))               # a normal end leaves none either


def test_ctrl_c_subprocess(tmp_path):
    out = tmp_path / "r.csv"
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # The --ci sizes (small runs: the signal lands between two of them soon) but 1,000 seeds, so
    # the sweep cannot finish between its first row reaching the table and the signal (with the
    # [ci] block's 6 seeds it could on an idle machine: rc 0, not 130).
    text = LEMMA1.read_text()
    assert "\n[ci]\nseeds = 6\n" in text
    cfg = tmp_path / "lemma1_long.toml"
    cfg.write_text(text.replace("\n[ci]\nseeds = 6\n", "\n[ci]\nseeds = 1000\n"))
    proc = subprocess.Popen([sys.executable, "-m", "w2s_theory.cli", "synthetic", "--config",
                             str(cfg), "--ci", "--quiet", "--no-figures", "--out", str(out)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a shell's background job (`make test &`)
                            # starts with SIGINT ignored, and the child would inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.time()
    while not out.exists() and time.time() - t0 < 240 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert _one_line(err) == f"w2s-theory synthetic: {INTERRUPTED}"
    assert not list(tmp_path.glob(".*.lock")) and not list(tmp_path.glob(".*.tmp"))


# ----------------------------------------------------------------------------- --quiet
def _bars():
    """One bar of each library that draws them."""
    import tqdm
    import tqdm.auto
    from datasets.utils import tqdm as datasets_tqdm
    from huggingface_hub.utils import tqdm as hub_tqdm
    from transformers.utils import logging as tlog

    for bar in (tqdm.tqdm, tqdm.auto.tqdm, tlog.tqdm, datasets_tqdm, hub_tqdm):
        for _ in bar(range(3), desc="BAR", mininterval=0):
            pass


def test_quiet_then_a_later_import_keeps_its_bars():
    """Libraries first imported inside a quiet block draw their bars again afterwards (in-process
    callers of `main` are not left silenced)."""
    code = ("import sys; from w2s_theory.cli.common import quiet_progress\n"
            "with quiet_progress(datasets=True):\n"
            "    import transformers.utils.logging as t\n"
            "    assert not t.is_progress_bar_enabled()\n"
            "import datasets, huggingface_hub.utils as h\n"
            "assert t.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()\n"
            "assert not h.are_progress_bars_disabled()\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("HF_DATASETS_DISABLE_PROGRESS_BARS", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


def test_quiet_silences_third_party_progress_bars(tmp_path, capsys, monkeypatch):
    import w2s_theory.pipelines.synthetic as syn

    def fake_run(cfg, **kw):
        _bars()
        raise SystemExit(0)
    monkeypatch.setattr(syn, "run", fake_run)
    argv = ["synthetic", "--config", str(LEMMA1), "--ci", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        main(argv)
    assert capsys.readouterr().err.count("BAR") >= 5            # each library draws
    with pytest.raises(SystemExit):
        main(argv + ["--quiet"])
    assert "BAR" not in capsys.readouterr().err
    with pytest.raises(SystemExit):                             # and the switch is restored
        main(argv)
    assert capsys.readouterr().err.count("BAR") >= 5


# ----------------------------------------------------------------------------- python -m
def _entry_points() -> list[str]:
    mods = []
    for f in sorted((ROOT / "w2s_theory").rglob("*.py")):
        rel = f.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        if f.name == "__main__.py":
            mods.append(name.removesuffix(".__main__"))
        elif re.search(r"^if __name__ == .__main__.:", f.read_text(), re.M):
            mods.append(name.removesuffix(".__init__"))
    return sorted(set(mods) - {"w2s_theory.ledger"})      # the ledger's own helper covers it


def test_entry_points_are_found():
    assert {"w2s_theory.cli", "w2s_theory.cli.real", "w2s_theory.models",
            "w2s_theory.results_table"} <= set(_entry_points())


@pytest.mark.parametrize("module", _entry_points())
def test_python_m_help_has_no_side_effects(module, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", W2S_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    stamp = {p: p.stat().st_mtime_ns for p in (ROOT / "experiments" / "results").rglob("*")
             if p.is_file()}
    work = tmp_path / "cwd"
    work.mkdir()
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower() and "Traceback" not in r.stderr
    assert not list(work.iterdir()) and not (tmp_path / "cache").exists()
    assert stamp == {p: p.stat().st_mtime_ns for p in (ROOT / "experiments" / "results").rglob("*")
                     if p.is_file()}



def test_ctrl_c_while_a_command_loads(capsys, monkeypatch):
    import importlib

    def interrupted(name, *a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert main(["real", "--help"]) == 130
    assert _one_line(capsys.readouterr().err) == f"w2s-theory real: {INTERRUPTED}"
