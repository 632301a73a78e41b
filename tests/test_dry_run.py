"""A truthful ``--dry-run``: every model, data source and output folder is checked; one line
per problem and exit 2 if any; ``all present`` only when it is true.

Models are tiny hub models in a local hub cache, offline (``hub_env`` in ``conftest.py``): a
hub id in the cache is present, one that is not is missing. Data are small CSV tables read
by the loaders the runs use (``[sources.NAME]`` / ``[data.source]`` / ``[features.source]``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from w2s_theory.cli import main
from w2s_theory.pipelines.preflight import ALL_PRESENT, DATA_DOCS, output_problem

ROOT = Path(__file__).resolve().parents[1]
GOOD_MODEL, OTHER_MODEL = "tiny-org/tiny-gpt2", "tiny-org/tiny-llama"
ABSENT_MODEL = "tiny-org/not-in-the-cache"


def _toml(d: dict, prefix: str = "") -> str:
    """A TOML text of a nested dict (tables after plain keys)."""
    plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in d.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and plain else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
    for k, v in tables.items():
        lines.append(_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines) + "\n"


def _csv(tmp_path: Path, labels, name="reviews.csv") -> Path:
    p = tmp_path / name
    pd.DataFrame({"text": [f"text {i}" for i in range(len(labels))], "label": labels}).to_csv(
        p, index=False)
    return p


def _source(csv: Path, **over) -> dict:
    return {"kind": "table", "data": str(csv), "task": "classification", "sizes": [4, 4, 4],
            **over}


# ----------------------------------------------------------------------------- configs
def _real(tmp_path, source, pair=(GOOD_MODEL, OTHER_MODEL)) -> list[str]:
    cfg = {"name": "t", "datasets": ["mine"], "pairs": [list(pair)], "losses": ["forward_kl"],
           "seeds": [0], "out": str(tmp_path / "out" / "real.csv"),
           "cache": str(tmp_path / "cache"), "convex": {"enabled": False},
           "sources": {"mine": source}}
    p = tmp_path / "real.toml"
    p.write_text(_toml(cfg))
    return ["real", "--config", str(p), "--dry-run"]


def _finetune(tmp_path, source, strong=OTHER_MODEL) -> list[str]:
    cfg = {"name": "t", "strong": strong,
           "weak": {"model": GOOD_MODEL, "kind": "finetune"},
           "data": {"n_train": 4, "n_test": 4, "source": source},
           "sweep": {"losses": ["forward_kl"], "seeds": [0]},
           "run": {"out": str(tmp_path / "out" / "ft.csv"), "device": "cpu"}}
    p = tmp_path / "ft.toml"
    p.write_text(_toml(cfg))
    return ["finetune", "--config", str(p), "--dry-run"]


def _features(tmp_path, source, model=GOOD_MODEL) -> list[str]:
    cfg = {"features": {"model": model, "data": "source", "cache": str(tmp_path / "fcache"),
                        "device": "cpu", "source": source}}
    p = tmp_path / "feat.toml"
    p.write_text(_toml(cfg))
    return ["features", "extract", "--config", str(p), "--dry-run"]


COMMANDS = {"real": _real, "finetune": _finetune, "features": _features}


def _run(argv, capsys):
    rc = main(argv)
    io = capsys.readouterr()
    return rc, io.out, io.err


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_all_present_only_when_true(cmd, hub_env, tmp_path, capsys):
    argv = COMMANDS[cmd](tmp_path, _source(_csv(tmp_path, [0, 1] * 8)))
    rc, out, err = _run(argv, capsys)
    assert rc == 0, out + err
    assert out.strip().endswith(ALL_PRESENT) and err == ""


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_missing_model(cmd, hub_env, tmp_path, capsys):
    src = _source(_csv(tmp_path, [0, 1] * 8))
    argv = (_real(tmp_path, src, (GOOD_MODEL, ABSENT_MODEL)) if cmd == "real" else
            _finetune(tmp_path, src, strong=ABSENT_MODEL) if cmd == "finetune" else
            _features(tmp_path, src, model=ABSENT_MODEL))
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and ALL_PRESENT not in out
    assert f"{ABSENT_MODEL}: cannot get {ABSENT_MODEL!r} from the Hugging Face hub" in out
    assert "not in the local hub cache" in out and "HF_HUB_OFFLINE is set" in out
    assert len(err.strip().splitlines()) == 1 and ABSENT_MODEL in err


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_missing_file(cmd, hub_env, tmp_path, capsys):
    missing = tmp_path / "no-such.csv"
    rc, out, err = _run(COMMANDS[cmd](tmp_path, _source(missing)), capsys)
    assert rc == 2 and ALL_PRESENT not in out
    assert "data problem: " in out and str(missing) in out and "file not found" in out
    assert DATA_DOCS in out
    assert len(err.strip().splitlines()) == 1 and str(missing) in err


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_wrong_column(cmd, hub_env, tmp_path, capsys):
    src = _source(_csv(tmp_path, [0, 1] * 8), columns={"text": "body"})
    rc, out, err = _run(COMMANDS[cmd](tmp_path, src), capsys)
    assert rc == 2 and ALL_PRESENT not in out
    assert "'body'" in out and "its columns are ['text', 'label']" in out
    assert len(err.strip().splitlines()) == 1 and "'body'" in err


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_string_labels(cmd, hub_env, tmp_path, capsys):
    src = _source(_csv(tmp_path, ["pos", "neg"] * 8))
    rc, out, err = _run(COMMANDS[cmd](tmp_path, src), capsys)
    assert rc == 2 and ALL_PRESENT not in out
    assert "label column" in out and "must hold integers" in out and "'label'" in out
    assert len(err.strip().splitlines()) == 1 and "label" in err


def test_dry_run_too_few_rows(hub_env, tmp_path, capsys):
    src = _source(_csv(tmp_path, [0, 1] * 8), sizes=[8, 8, 8])     # 24 rows asked, 16 there
    for argv in (_finetune(tmp_path, src), _real(tmp_path, src)):
        rc, out, _ = _run(argv, capsys)
        assert rc == 2 and "need 24 rows, the data have 16" in out


def test_finetune_asks_more_rows_than_a_split_has(hub_env, tmp_path, capsys):
    argv = _finetune(tmp_path, _source(_csv(tmp_path, [0, 1] * 8)))
    p = Path(argv[2])
    p.write_text(p.read_text().replace("n_train = 4", "n_train = 5"))
    rc, out, _ = _run(argv, capsys)
    assert rc == 2 and "data.n_train: 5 rows asked, the source's train_gt split has 4" in out


def test_default_hh_rlhf_layout_counts_rows(hub_env, tmp_path, capsys):
    d = tmp_path / "hh" / "harmless"
    d.mkdir(parents=True)
    for sp in ("train_gt", "train_w2s", "test"):
        (d / f"{sp}.jsonl").write_text('{"chosen": "a", "rejected": "b"}\n' * 3)
    cfg = {"name": "t", "strong": OTHER_MODEL, "weak": {"model": GOOD_MODEL, "kind": "finetune"},
           "data": {"n_train": 5, "n_test": 3, "root": str(tmp_path / "hh")},
           "sweep": {"losses": ["forward_kl"], "seeds": [0]},
           "run": {"out": str(tmp_path / "ft.csv")}}
    p = tmp_path / "c.toml"
    p.write_text(_toml(cfg))
    rc, out, _ = _run(["finetune", "--config", str(p), "--dry-run"], capsys)
    assert rc == 2 and f"data.n_train: 5 rows asked, {d / 'train_gt.jsonl'} has 3" in out


# ----------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_dry_run_output_folder_shadowed_by_a_file(cmd, hub_env, tmp_path, capsys):
    (tmp_path / "out").write_text("a file where the output folder goes")
    (tmp_path / "fcache").write_text("a file where the cache folder goes")
    rc, out, err = _run(COMMANDS[cmd](tmp_path, _source(_csv(tmp_path, [0, 1] * 8))), capsys)
    assert rc == 2 and "output problem:" in out and ALL_PRESENT not in out
    shadow = tmp_path / ("fcache" if cmd == "features" else "out")
    assert str(shadow) in err and len(err.strip().splitlines()) == 1


def test_output_problem_full_disk_and_read_only(tmp_path, monkeypatch):
    import os
    import shutil
    from collections import namedtuple

    import w2s_theory.pipelines.preflight as pre

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, 0))
    assert "no space left" in output_problem(tmp_path / "x.csv", "out")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1 << 40))
    assert output_problem(tmp_path / "x.csv", "out") is None
    monkeypatch.setattr(pre.os, "access", lambda p, mode: not (mode & os.W_OK))
    assert f"{tmp_path} is not writable" in output_problem(tmp_path / "new" / "x.csv", "out")


def test_synthetic_dry_run(tmp_path, capsys):
    cfg = ROOT / "experiments/synthetic/lemma1.toml"
    rc, out, err = _run(["synthetic", "--config", str(cfg), "--ci", "--dry-run",
                         "--out", str(tmp_path / "s")], capsys)
    assert rc == 0 and "48 runs (6 seeds)" in out and out.strip().endswith(ALL_PRESENT)
    assert not (tmp_path / "s").exists()                      # nothing written
    (tmp_path / "figs").write_text("x")
    rc, out, err = _run(["synthetic", "--config", str(cfg), "--ci", "--dry-run",
                         "--out", str(tmp_path / "s"), "--figures-dir", str(tmp_path / "figs")],
                        capsys)
    assert rc == 2 and f"figures-dir {tmp_path / 'figs'}: a file is in the way" in out


def test_partial_dry_run(hub_env, tmp_path, capsys):
    argv = _finetune(tmp_path, _source(_csv(tmp_path, [0, 1] * 8)))
    p = Path(argv[2])
    p.write_text(p.read_text() + f'[partial]\nblocks = [0, 1]\nout = "{tmp_path / "p.csv"}"\n')
    rc, out, err = _run(["partial", "--config", str(p), "--dry-run"], capsys)
    assert rc == 0, out + err
    assert "top k blocks for k in [0, 1]" in out and out.strip().endswith(ALL_PRESENT)
    p.write_text(p.read_text().replace(OTHER_MODEL, ABSENT_MODEL))
    rc, out, err = _run(["partial", "--config", str(p), "--dry-run"], capsys)
    assert rc == 2 and ABSENT_MODEL in err


# ----------------------------------------------------------------------------- models
def test_model_folder_without_config_or_weights(hub_env, tmp_path, capsys):
    src = _source(_csv(tmp_path, [0, 1] * 8))
    folder = tmp_path / "my-model"
    folder.mkdir()
    argv = _finetune(tmp_path, src, strong=str(folder))
    rc, out, _ = _run(argv, capsys)
    assert rc == 2 and f"the folder {folder} has no config.json" in out
    (folder / "config.json").write_text("{}")
    rc, out, _ = _run(argv, capsys)
    assert rc == 2 and f"the folder {folder} has no weights" in out


def test_preset_not_installed(hub_env, tmp_path, capsys, monkeypatch):
    from w2s_theory import models

    monkeypatch.setattr(models, "is_installed", lambda n: False)
    argv = _finetune(tmp_path, _source(_csv(tmp_path, [0, 1] * 8)), strong="SmolLM2-135M")
    rc, out, _ = _run(argv, capsys)
    assert rc == 2 and "strong: SmolLM2-135M: its weights are not installed" in out
    assert "install: bash scripts/install_models.sh SmolLM2-135M" in out


def test_online_hub_lookup(tmp_path, monkeypatch):
    """Online, a hub id outside the cache is looked up: unknown -> a problem, known -> a note."""
    import huggingface_hub
    import huggingface_hub.constants as c
    from huggingface_hub.errors import RepositoryNotFoundError

    from w2s_theory.pipelines.preflight import hub_model_problem

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))

    class Resp:
        status_code = 404
        headers: dict = {}
        request = None

    def unknown(self, repo_id, **kw):
        raise RepositoryNotFoundError("404", response=Resp())
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unknown)
    assert "no such model" in hub_model_problem("org/typo")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kw: None)
    notes: list = []
    assert hub_model_problem("org/real", notes=notes) is None
    assert "the run downloads it" in notes[0]


# ----------------------------------------------------------------------------- presets
CAI = sorted((ROOT / "experiments" / "paper").glob("*cai*.toml"))


@pytest.mark.parametrize("path", CAI, ids=[p.stem for p in CAI])
def test_cai_presets_name_the_missing_data_and_the_docs(path, offline, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)                      # data/cai_harmless is relative to the cwd
    rc, out, err = _run(["finetune", "--config", str(path), "--dry-run"], capsys)
    assert rc == 2 and ALL_PRESENT not in out
    assert "data problem: data.source" in out and "folder not found: data/cai_harmless" in out
    assert DATA_DOCS in out and DATA_DOCS in err
    assert (ROOT / DATA_DOCS).is_file()


def test_data_docs_cover_every_preset():
    text = (ROOT / DATA_DOCS).read_text()
    for p in sorted((ROOT / "experiments" / "paper").glob("*.toml")):
        assert p.name in text, p.name
    for word in ("cai_harmless_train_gt.jsonl", "cai_harmless_train_w2s.jsonl",
                 "cai_harmless_test.jsonl", "naming", "Anthropic/hh-rlhf", "SHA256SUMS"):
        assert word in text, word
    assert "data_sources.md" in (ROOT / "mkdocs.yml").read_text()


def test_vader_archive_missing_is_a_note_or_a_problem(hub_env, tmp_path, capsys, monkeypatch):
    argv = ["features", "extract", "--model", GOOD_MODEL, "--data", "vader", "--cache",
            str(tmp_path / "cache"), "--dry-run"]
    rc, out, _ = _run(argv, capsys)
    assert rc == 0 and "note: vader:" in out and ALL_PRESENT not in out
    assert "no problem: the run can start" in out
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and "PIP_NO_INDEX is set" in err
    (tmp_path / "cache" / "vader").mkdir(parents=True)
    (tmp_path / "cache" / "vader" / "vaderSentiment-3.3.2.tar.gz").write_bytes(b"x")
    rc, out, _ = _run(argv, capsys)
    assert rc == 0 and out.strip().endswith(ALL_PRESENT)


def test_online_model_to_download_is_not_all_present(tmp_path, capsys, monkeypatch):
    import huggingface_hub
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kw: None)
    d = tmp_path / "hh" / "harmless"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text('{"chosen": "a", "rejected": "b"}\n')
    rc, out, _ = _run(["features", "extract", "--model", "org/on-the-hub", "--subset", "harmless",
                       "--split", "test", "--data-dir", str(d.parent), "--cache",
                       str(tmp_path / "c"), "--dry-run"], capsys)
    assert rc == 0 and "note: org/on-the-hub: not in the Hugging Face cache yet" in out
    assert ALL_PRESENT not in out


def test_dry_run_draws_no_bar_and_restores_the_switch(hub_env, tmp_path, capsys):
    import datasets

    datasets.enable_progress_bars()
    rc, out, err = _run(_finetune(tmp_path, _source(_csv(tmp_path, [0, 1] * 8))), capsys)
    assert rc == 0 and err == ""                   # the source was read without a bar
    assert datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    rc, out, err = _run(_finetune(tmp_path, _source(_csv(tmp_path, [0, 1] * 8))), capsys)
    assert rc == 0 and not datasets.is_progress_bar_enabled()
    datasets.enable_progress_bars()
