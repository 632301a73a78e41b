"""Any model, any data set through the pipelines: hub ids, sources, decoders through the Trainer.

Tiny random GPT-2 / Qwen2 models live in a local Hugging Face hub cache (``conftest.py``)
and are loaded by hub id with ``HF_HUB_OFFLINE=1``; the data are a few dozen pairs
written in the ``Anthropic/hh-rlhf`` hub form and a small two-class CSV.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from w2s_theory.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- decoders
def _gpt2_task(hub_cache, n=24):
    from w2s_theory.finetune import TextTask, TokenizedTexts, load_backbone
    from w2s_theory.hub import resolve_model

    bb = load_backbone(resolve_model("tiny-org/tiny-gpt2", cache_dir=hub_cache).path)
    rng = np.random.default_rng(0)

    def texts():
        lens = rng.integers(1, 10, n)
        ids = rng.integers(3, 300, int(lens.sum()))
        return TokenizedTexts(ids.astype(np.uint16), np.concatenate([[0], np.cumsum(lens)]), (), (), 0)

    task = TextTask((texts(), texts()), rng.integers(0, 2, n).astype(np.int8))
    return bb, task, rng.uniform(0.05, 0.95, n)


def test_gpt2_finetunes_through_the_trainer_and_reads_the_last_token(hub_cache, offline):
    """GPT-2 is not a BERT: it trains through the same Trainer; its reward is read at the last
    real token, so a text's score in a padded batch equals the text scored alone."""
    from w2s_theory.finetune import FinetuneConfig, build_model, make_targets, predict, train

    bb, task, weak = _gpt2_task(hub_cache)
    c = FinetuneConfig(lr=1e-3, max_length=12, precision="fp32", batch_size=8, loss="reverse_kl",
                       seed=1, max_grad_norm=1.0)
    m = build_model(bb, c)
    assert m.pooling == "last"                          # decoders read the last real token
    p0 = predict(m, task, c)
    st = train(m, task, make_targets(weak, c), c, progress=False)
    assert st.steps == 3 and st.real_tokens > 0
    p = predict(m, task, c)
    assert np.abs(p - p0).max() > 1e-4                   # training moved the scores
    with torch.no_grad():
        r = [[float(m(*t.batch([i], c.max_length))) for i in range(len(task))] for t in task.inputs]
    ref = 1 / (1 + np.exp(-(np.array(r[0]) - np.array(r[1]))))
    np.testing.assert_allclose(p, ref, atol=1e-6)


def test_last_token_pooling_handles_left_and_right_padding():
    from w2s_theory.finetune import pool_tokens

    h = torch.arange(12.0).view(2, 3, 2)
    m = torch.tensor([[1, 1, 0], [0, 1, 1]])
    assert pool_tokens(h, m, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool_tokens(h, m, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]


# ----------------------------------------------------------------------------- end to end
def _dialogue(i, turns):
    return "".join(f"\n\nHuman: w{(i + t) % 6 + 1} w{i % 5 + 1}\n\nAssistant: yes"
                   for t in range(turns))


@pytest.fixture()
def hh_hub_form(tmp_path):
    """A few dozen pairs in the hub layout of Anthropic/hh-rlhf (gzipped JSONL per split)."""
    root = tmp_path / "hh-rlhf"
    (root / "harmless-base").mkdir(parents=True)
    for split, n in (("train", 40), ("test", 20)):
        with gzip.open(root / "harmless-base" / f"{split}.jsonl.gz", "wt") as fh:
            for i in range(n):
                d = _dialogue(i, 1 + i % 2)
                fh.write(json.dumps({"chosen": d + " yes yes", "rejected": d + " no"}) + "\n")
    return root


def _toml(d: dict, prefix: str = "") -> str:
    """A tiny TOML writer for the test configs (scalars, lists, nested tables)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(v)
    lines = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{prefix}{k}]\n" + _toml(v, f"{prefix}{k}."))
    return "\n".join(lines) + "\n"


def _write(path: Path, d: dict) -> str:
    path.write_text(_toml(d))
    return str(path)


BOUND_COLUMNS = ("l1_holds", "t2test_truth_slack", "t2test_truth_holds", "t2test_ceil_slack")


def _pipeline_configs(tmp_path, source: dict, tag: str):
    weak, strong = "tiny-org/tiny-gpt2", "tiny-org/tiny-qwen2"
    feat = _write(tmp_path / f"feat_{tag}.toml",
                  {"features": {"model": weak, "device": "cpu", "source": source}})
    real = _write(tmp_path / f"real_{tag}.toml", {
        "name": f"e2e_{tag}", "datasets": [tag], "pairs": [[weak, strong]],
        "losses": ["forward_kl", "reverse_kl"], "seeds": [0], "out": str(tmp_path / f"real_{tag}.csv"),
        "cache": str(tmp_path / "real_cache"), "train": {"batch_size": 4, "dtype": "float64"},
        "convex": {"enabled": False}, "sources": {tag: source}})
    fine = _write(tmp_path / f"fine_{tag}.toml", {
        "name": f"e2e_{tag}", "strong": strong,
        "data": {"source": source},
        "weak": {"model": weak, "kind": "finetune", "lr": 1e-3},
        "train": {"max_length": 24, "batch_size": 4, "lr": 1e-3, "precision": "fp32"},
        "sweep": {"losses": ["forward_kl", "reverse_kl"], "seeds": [0], "regimes": ["full"]},
        "run": {"out": str(tmp_path / f"fine_{tag}.csv"), "device": "cpu"}})
    return feat, real, fine


def _check_rows(csv: str, n_rows: int):
    df = pd.read_csv(csv)
    assert len(df) == n_rows
    for col in BOUND_COLUMNS:
        assert col in df.columns and df[col].notna().all(), col
    assert df["l1_holds"].astype(bool).all()     # Lemma 1 holds always (Theorem 2 needs realizability)
    return df


def test_cli_end_to_end_hub_ids_on_the_hub_form_and_a_two_class_csv(hub_env, hh_hub_form,
                                                                     tmp_path, monkeypatch, capsys):
    """features -> real -> finetune through the command line, GPT-2-style weak and Qwen2-style
    strong models by hub id (offline, local hub cache), on hub-form pairs and on a CSV."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "w2s_cache"))
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(1, 7)]
    rows = [{"review": " ".join(rng.choice(words, 4)) + (" yes" if y else " no"), "stars": int(y)}
            for y in rng.integers(0, 2, 48)]
    csv = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    sources = {
        "hh": {"kind": "hh_rlhf_hub", "path": str(hh_hub_form), "sizes": [16, 16, 12],
               "cache_dir": str(tmp_path / "hf_datasets")},
        "reviews": {"kind": "table", "data": str(csv), "task": "binary",
                    "columns": {"text": "review", "label": "stars"}, "sizes": [16, 16, 16]},
    }
    for tag, source in sources.items():
        feat, real, fine = _pipeline_configs(tmp_path, source, tag)
        assert main(["features", "extract", "--config", feat]) == 0
        cached = list((tmp_path / "w2s_cache" / "features").rglob("*.npz"))
        assert cached and any("tiny-org--tiny-gpt2" in str(p) for p in cached)
        assert main(["real", "--config", real, "--quiet"]) == 0
        df = _check_rows(str(tmp_path / f"real_{tag}.csv"), 2)
        assert set(df["strong"]) == {"tiny-org/tiny-qwen2"}
        assert main(["finetune", "--config", fine, "--no-progress"]) == 0
        df = _check_rows(str(tmp_path / f"fine_{tag}.csv"), 3)    # ceiling + 2 students
        assert set(df["role"]) == {"ceiling", "student"} and (df["subset"] == tag if tag == "reviews"
                                                              else df["subset"] == "harmless-base").all()
    out = capsys.readouterr().out
    assert out.count("[finetune] 3 runs trained, 3 rows in") == 2   # one by one, both data sets
    assert "weak model tiny-org/tiny-gpt2 fine-tuned" in out
    # a second finetune run resumes: nothing to train, the weak model's predictions cached
    assert main(["finetune", "--config", fine, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 runs trained" in out and "weak model tiny-org/tiny-gpt2 fine-tuned on" not in out


def test_bad_sources_and_models_fail_before_training(hub_env, tmp_path, capsys):
    csv = tmp_path / "three.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(12)], "label": [i % 3 for i in range(12)]}).to_csv(
        csv, index=False)
    base = {"name": "bad", "strong": "tiny-org/tiny-qwen2",
            "weak": {"model": "tiny-org/tiny-gpt2", "kind": "finetune"},
            "run": {"out": str(tmp_path / "bad.csv"), "device": "cpu"}}
    three = _write(tmp_path / "three.toml", {**base, "data": {"source": {
        "kind": "table", "data": str(csv), "task": "classification", "sizes": [4, 4, 4]}}})
    assert main(["finetune", "--config", three]) == 2   # k classes: a weak head on features only
    assert "weak.kind: a multiclass table takes a weak head on features" in capsys.readouterr().err
    missing = _write(tmp_path / "missing.toml", {**base, "data": {"source": {
        "kind": "table", "data": str(csv), "task": "classification", "sizes": [4, 4, 4],
        "columns": {"text": "body"}}}})
    assert main(["finetune", "--config", missing]) == 2
    assert "'body'" in capsys.readouterr().err
    unknown = _write(tmp_path / "unknown.toml", {**base, "strong": "tiny-org/not-cached"})
    assert main(["finetune", "--config", unknown]) == 2
    err = capsys.readouterr().err
    assert "strong:" in err and "HF_HUB_OFFLINE is set" in err and "Traceback" not in err
    assert not (tmp_path / "bad.csv").exists()


# ----------------------------------------------------------------------------- paper presets
PRESETS = sorted((ROOT / "experiments" / "paper").glob("*.toml"))


def test_paper_presets_exist():
    names = {p.stem for p in PRESETS}
    for pair in ("gpt2_to_gpt2-medium", "gpt2_to_gpt2-large", "pythia-160m_to_pythia-410m",
                 "pythia-160m_to_pythia-1b", "qwen2.5-0.5b_to_qwen2.5-1.5b"):
        assert {f"{pair}_hh", f"{pair}_cai"} <= names, pair


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_paper_preset_dry_run_offline(path, offline, capsys, tmp_path, monkeypatch):
    """Offline with an empty hub cache the plan is printed, and the dry run is truthful: the
    hub models (and the data) are not here, so it exits 2 naming them."""
    import huggingface_hub.constants as c

    from w2s_theory.pipelines.finetune import FinetuneSweepConfig

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    assert main(["finetune", "--config", str(path), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "not in the local hub cache" in out and "models, data and output folders: all " \
        "present" not in out
    cfg = FinetuneSweepConfig.from_toml(path)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.max_length) == (1, 16, 1e-5, 512)
    assert set(cfg.sweep.losses) >= {"forward_kl", "reverse_kl", "forward_ce", "reverse_ce"}
    assert max(cfg.sweep.noise) == 0.5 and cfg.weak.kind == "finetune"
    assert f"{cfg.strong} [hub id" in out and "training tokens: at most" in out


def test_paper_preset_real_run_without_the_hub_fails_up_front(offline, tmp_path, capsys):
    path = ROOT / "experiments" / "paper" / "gpt2_to_gpt2-medium_hh.toml"
    assert main(["finetune", "--config", str(path), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "cannot get 'gpt2-medium' from the Hugging Face hub" in err and "Traceback" not in err


def _tiny_dp_config(tmp_path, hh_hub_form, tag, sweep):
    """A tiny GPT-2 full fine-tuning sweep on hub-form pairs, one run at a time through accelerate."""
    source = {"kind": "hh_rlhf_hub", "path": str(hh_hub_form), "sizes": [16, 16, 12],
              "cache_dir": str(tmp_path / "hf_datasets")}
    return _write(tmp_path / f"{tag}.toml", {
        "name": tag, "strong": "tiny-org/tiny-gpt2", "data": {"source": source},
        "weak": {"model": "tiny-org/tiny-gpt2", "l2_grid": [0.1]},
        "train": {"max_length": 24, "batch_size": 4, "lr": 1e-3, "precision": "fp32"},
        "sweep": {**sweep, "regimes": ["full"]},
        "run": {"out": str(tmp_path / f"{tag}.csv"), "device": "cpu"}})


# ----------------------------------------------------------------------------- two processes
@pytest.mark.slow
def test_two_process_data_parallel_finetune_equals_one_process(hub_env, hh_hub_form, tmp_path,
                                                               monkeypatch):
    """torchrun, 2 CPU processes (gloo) through accelerate: the same test logits as one process
    up to round-off, and only the main process writes the store and the table."""
    import os
    import socket
    import subprocess
    import sys

    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "w2s_cache"))

    def config(tag):
        return _tiny_dp_config(tmp_path, hh_hub_form, f"dp_{tag}",
                               {"losses": ["reverse_kl"], "seeds": [0]})

    assert main(["finetune", "--config", config("one"), "--no-progress"]) == 0
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "HF_HUB_CACHE": str(hub_env), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "-m", "w2s_theory.cli", "finetune",
           "--config", config("two"), "--no-progress"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    one, two = (np.load(tmp_path / f"dp_{t}.preds.npz") for t in ("one", "two"))
    assert list(one["keys"]) == list(two["keys"]) and len(one["keys"]) == 2
    np.testing.assert_allclose(one["logits"], two["logits"], atol=1e-4)
    df = pd.read_csv(tmp_path / "dp_two.csv")
    assert len(df) == 2 and set(df["num_processes"]) == {2}
    assert set(pd.read_csv(tmp_path / "dp_one.csv")["num_processes"]) == {1}


def test_multi_process_runs_destroy_their_process_group():
    """A rank that exits with its gloo/NCCL group alive can abort (SIGABRT) after the work is
    done; run() ends the group on every multi-process engine and leaves one-process engines."""
    from w2s_theory.finetune import end_processes

    class Engine:
        def __init__(self, n):
            self.num_processes, self.ended = n, 0

        def end_training(self):
            self.ended += 1

    two, one = Engine(2), Engine(1)
    end_processes(two)
    end_processes(one)
    end_processes(None)
    assert (two.ended, one.ended) == (1, 0)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [c for c, pp in parent.items() if pp == cur]
        out += kids
        todo += kids
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_two_process_run_killed_mid_sweep_resumes_without_loss(hub_env, hh_hub_form, tmp_path,
                                                               monkeypatch):
    """SIGKILL of the whole torchrun session (both ranks) once the table has grown by a row,
    then the same command again: every run of a one-process reference, once, same test logits
    (up to the round-off between 1 and 2 processes), nothing retrained that was stored."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "w2s_cache"))

    def config(tag):
        return _tiny_dp_config(tmp_path, hh_hub_form, f"k_{tag}",
                               {"losses": ["forward_kl", "reverse_kl", "reverse_ce"],
                                "seeds": [0, 1], "noise": [0.0, 0.2]})

    assert main(["finetune", "--config", config("ref"), "--no-progress"]) == 0
    ref = pd.read_csv(tmp_path / "k_ref.csv", dtype={"run_key": str})
    n = len(ref)
    assert n == 14                                  # 2 ceilings + 3 losses x 2 noise x 2 seeds
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "HF_HUB_CACHE": str(hub_env), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "k_two.csv"

    def rows():
        try:
            return len(pd.read_csv(out, dtype={"run_key": str}))
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return 0

    def launch():
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "w2s_theory.cli", "finetune",
               "--config", config("two"), "--no-progress"]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    p = launch()
    t0 = time.monotonic()
    while p.poll() is None and rows() == 0 and time.monotonic() - t0 < 600:
        time.sleep(0.02)
    assert p.poll() is None, "the sweep ended before it could be killed: " + p.stdout.read()[-2000:]
    # torchrun starts each rank in a session of its own: kill the launcher and every rank at once
    # (as a node failure or a cancelled job does), not the launcher alone (its ranks would go on)
    victims = _descendants(p.pid)
    assert len(victims) >= 2, victims
    for pid in [p.pid, *victims]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in victims)
    killed_at = rows()
    assert 0 < killed_at < n, killed_at            # killed mid-sweep, after a row was written
    stored = len(np.load(tmp_path / "k_two.preds.npz")["keys"])
    p = launch()
    log, _ = p.communicate(timeout=900)
    assert p.returncode == 0, log[-3000:]
    two = pd.read_csv(out, dtype={"run_key": str})
    assert not two["run_key"].duplicated().any() and set(two["run_key"]) == set(ref["run_key"])
    trained = [ln for ln in log.splitlines() if ln.startswith("full ")]
    assert len(trained) == n - stored              # stored runs are not trained again
    a, b = np.load(tmp_path / "k_ref.preds.npz"), np.load(tmp_path / "k_two.preds.npz")
    order = {k: i for i, k in enumerate(b["keys"])}
    assert sorted(a["keys"]) == sorted(b["keys"])
    np.testing.assert_allclose(a["logits"], b["logits"][[order[k] for k in a["keys"]]], atol=1e-4)
    r, t = ref.set_index("run_key").sort_index(), two.set_index("run_key").sort_index()
    np.testing.assert_allclose(r["student_acc"], t["student_acc"], atol=1e-9)
