"""``precision = "auto"``: bf16 only where a measured probe found it faster than fp32 (by 10 %);
the choice is cached per process and machine, reaches ``TrainingArguments`` and the result rows,
and leaves the run keys alone."""

from __future__ import annotations

import json

import pytest

import w2s_theory.precision as P
from conftest import save_tiny_bert
from w2s_theory.config import ConfigError
from w2s_theory.finetune import FinetuneConfig, mixed_precision_for


@pytest.fixture()
def fake_timer(tmp_path, monkeypatch):
    """Isolated caches and a timer that returns the given seconds per step (counts its calls)."""
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("W2S_AUTO_PRECISION", raising=False)   # conftest pins it for other tests
    P.forget()
    calls = []

    def install(fp32_s: float, bf16_s: float):
        """A fresh machine whose timer says this."""
        P.forget()
        (tmp_path / "cache" / P.CACHE_FILE).unlink(missing_ok=True)

        def timer(device="cpu", *, size=P.DEFAULT_SIZE, repeats=P.DEFAULT_REPEATS, seed=0):
            calls.append((str(device), tuple(size), repeats))
            # three noisy repeats around the given median
            return {"fp32": [fp32_s * 1.5, fp32_s, fp32_s * 0.9], "bf16": [bf16_s, bf16_s * 3, bf16_s * 0.5]}

        monkeypatch.setattr(P, "time_steps", timer)
        return calls

    yield install
    P.forget()


@pytest.mark.parametrize(("fp32_s", "bf16_s", "want"), [
    (1.0, 0.5, "bf16"),      # bf16 2x faster
    (1.0, 2.0, "fp32"),      # bf16 2x slower (the Xeon, emulated AVX2)
    (1.0, 0.95, "fp32"),     # faster by 5 %: inside the 10 % margin
    (1.0, 1.0 / 1.12, "bf16"),  # faster by 12 %
])
def test_auto_follows_the_measured_times(fake_timer, fp32_s, bf16_s, want):
    fake_timer(fp32_s, bf16_s)
    r = P.probe("cpu")
    assert r["fp32_s"] == fp32_s and r["bf16_s"] == bf16_s          # medians of the repeats
    assert r["speedup_bf16"] == pytest.approx(fp32_s / bf16_s)
    assert r["choice"] == want
    assert P.choose_precision("auto", "cpu") == want
    cfg = FinetuneConfig(precision="auto")
    assert mixed_precision_for(cfg, "cpu") == ("bf16" if want == "bf16" else "no")
    # a fixed precision is never probed over
    assert P.choose_precision("fp32", "cpu") == "fp32"
    assert P.choose_precision("bf16", "cpu") == "bf16"


def test_the_probe_runs_once_per_process_and_machine(fake_timer, tmp_path):
    calls = fake_timer(1.0, 0.5)
    for _ in range(3):
        assert P.choose_precision("auto", "cpu") == "bf16"
    assert len(calls) == 1
    disk = json.loads((tmp_path / "cache" / P.CACHE_FILE).read_text())
    (key, rec), = disk.items()
    assert key == P.probe_key("cpu") and rec["fp32_s"] == 1.0 and rec["bf16_s"] == 0.5
    P.forget()                                   # a new process: read from the user cache
    r = P.probe("cpu")
    assert r["cached"] and r["choice"] == "bf16" and len(calls) == 1
    # the margin is applied to the stored times, not stored with them
    assert P.probe("cpu", margin=1.5)["choice"] == "fp32" and len(calls) == 1
    P.probe("cpu", refresh=True)
    assert len(calls) == 2
    # another thread count is another machine state: probed again
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(n + 1)
    try:
        P.probe("cpu")
    finally:
        torch.set_num_threads(n)
    assert len(calls) == 3


def test_cuda_auto_needs_no_probe(fake_timer, monkeypatch):
    import torch

    calls = fake_timer(1.0, 2.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, s=supported, **k: s)
        assert P.choose_precision("auto", "cuda:0") == want
        assert P.choose_precision("auto", "cuda") == want
    assert calls == []


def test_bad_precision_values_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"^precision: must be one of .*'fp8'"):
        P.choose_precision("fp8", "cpu")
    with pytest.raises(ValueError, match=r"^precision: one of .*'fp8'"):
        FinetuneConfig(precision="fp8")
    with pytest.raises(TypeError, match=r"^precision: "):
        P.choose_precision(None, "cpu")
    with pytest.raises(ValueError, match=r"^repeats: "):
        P.probe("cpu", repeats=0, cache=False)
    with pytest.raises(ValueError, match=r"^margin: "):
        P.choice_from_times(1.0, 1.0, margin=-0.1)
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig

    p = tmp_path / "c.toml"
    p.write_text('name = "t"\n[sweep]\nlosses = ["forward_kl"]\nseeds = [0]\n[train]\nprecision = "half"\n')
    with pytest.raises((ConfigError, ValueError), match=r"precision: .*'half'"):
        FinetuneSweepConfig.from_toml(p)
    assert FinetuneConfig(precision="fp16").precision == "fp16"


def test_the_real_probe_times_both_precisions():
    """The real timer on this CPU (tiny shapes): positive times for both, choice by the rule."""
    t = P.time_steps("cpu", size=(16, 8, 32), repeats=3)
    assert set(t) == {"fp32", "bf16"}
    assert 1 <= len(t["fp32"]) == len(t["bf16"]) <= 3
    assert all(s > 0 for s in t["fp32"] + t["bf16"])
    r = P.probe("cpu", size=(16, 8, 32), repeats=3, cache=False)
    assert r["choice"] == P.choice_from_times(r["fp32_s"], r["bf16_s"])
    assert not r["cached"]


def test_training_arguments_take_the_chosen_precision(fake_timer, tmp_path):
    from w2s_theory.finetune import training_arguments

    fake_timer(1.0, 0.5)
    a = training_arguments(FinetuneConfig(precision="auto"), tmp_path / "o", total_steps=2)
    assert a.bf16 and not a.fp16
    a = training_arguments(FinetuneConfig(precision="fp32"), tmp_path / "o", total_steps=2)
    assert not a.bf16 and not a.fp16
    a = training_arguments(FinetuneConfig(precision="fp16"), tmp_path / "o", total_steps=2)
    assert a.fp16 and not a.bf16
    fake_timer(1.0, 2.0)
    a = training_arguments(FinetuneConfig(precision="auto"), tmp_path / "o", total_steps=2)
    assert not a.bf16 and not a.fp16


def _tiny_sweep(tmp_path, model, precision: str):
    from w2s_theory.pipelines.finetune import FinetuneSweepConfig

    out = tmp_path / f"res_{precision}.csv"
    p = tmp_path / f"c_{precision}.toml"
    p.write_text(f"""name = "prec"
strong = "{model}"
[data]
n_train = 16
n_test = 8
[weak]
l2_grid = [0.1]
[train]
max_length = 12
precision = "{precision}"
batch_size = 8
lr = 1e-3
[sweep]
losses = ["reverse_kl"]
seeds = [0]
regimes = ["full"]
[run]
out = "{out}"
device = "cpu"
""")
    return FinetuneSweepConfig.from_toml(p)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "m", hidden=16, layers=1)


def test_rows_of_an_auto_run_record_the_chosen_precision(fake_timer, tiny_model, tmp_path):
    """A tiny ``precision = "auto"`` sweep where the probe says bf16 is faster: every row says
    ``bf16`` (fp32 would say ``no``); the run keys are those of the config as written, whatever
    the probe says (an ``fp32`` config keeps its keys)."""
    import torch

    from w2s_theory.pipelines.finetune import plan_runs, run

    calls = fake_timer(1.0, 0.5)
    cfg = _tiny_sweep(tmp_path, tiny_model, "auto")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run(cfg, progress=False, log=lambda *_: None)
    finally:
        torch.set_num_threads(n)
    rows = res["rows"]
    assert rows and {r["precision"] for r in rows} == {"bf16"}
    assert len(calls) == 1                     # one probe for the whole sweep
    meta = {"subset": "harmless"}
    fp32 = _tiny_sweep(tmp_path, tiny_model, "fp32")
    keys_fast = [r.key for r in plan_runs(fp32, meta)]
    fake_timer(1.0, 2.0)
    assert [r.key for r in plan_runs(fp32, meta)] == keys_fast
    assert keys_fast != [r.key for r in plan_runs(cfg, meta)]


def test_train_stats_of_an_auto_run_say_fp32_when_bf16_is_slower(fake_timer, tiny_model):
    import numpy as np
    from transformers import AutoTokenizer

    from w2s_theory.finetune import TextTask, TokenizedTexts, build_model, load_backbone, train

    fake_timer(1.0, 2.0)
    tok = AutoTokenizer.from_pretrained(str(tiny_model), local_files_only=True)
    texts = [f"text number {i} is here" for i in range(8)]
    task = TextTask((TokenizedTexts.from_texts(tok, texts),), np.arange(8) % 2)
    cfg = FinetuneConfig(task="binary", precision="auto", max_length=12, batch_size=4, lr=1e-3)
    st = train(build_model(load_backbone(tiny_model), cfg), task, np.full(8, 0.7), cfg, progress=False)
    assert st.precision == "no" and st.steps == 2


def test_the_environment_pins_auto_on_a_cpu(fake_timer, monkeypatch):
    fake_timer(1.0, 0.5)                                   # bf16 measured twice as fast
    monkeypatch.setenv("W2S_AUTO_PRECISION", "fp32")
    assert P.choose_precision("auto", "cpu") == "fp32"
    assert P.choose_precision("bf16", "cpu") == "bf16"     # an explicit choice wins
    monkeypatch.setenv("W2S_AUTO_PRECISION", "fp8")
    with pytest.raises(ValueError, match="^W2S_AUTO_PRECISION"):
        P.choose_precision("auto", "cpu")
