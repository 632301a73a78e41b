"""The fine-tuning sweep's config after issue 19: the stacked ensemble's keys are refused by
name, ``[train.args]`` is checked against transformers' ``TrainingArguments`` and reaches the
trainer and the run keys, and every committed fine-tuning config still parses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from w2s_theory.config import ConfigError, read_toml
from w2s_theory.pipelines.finetune import (
    REMOVED_RUN_KEYS,
    TRAIN_OWNS,
    FinetuneSweepConfig,
    SweepSpec,
    plan_runs,
    training_args,
)
from w2s_theory.pipelines.partial import PartialConfig

ROOT = Path(__file__).resolve().parents[1]
BASE = 'name = "t"\n[sweep]\nlosses = ["forward_kl"]\nseeds = [0]\n'


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(BASE + text)
    return p


def _fields() -> set[str]:
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments) if f.init}


@pytest.mark.parametrize("line", ["ensemble = true", "ensemble = false", "runs_per_group = 5",
                                  "use_accelerate = false", "use_accelerate = true"])
def test_removed_ensemble_keys_are_an_error_naming_the_key(tmp_path, line):
    key = line.split()[0]
    p = _toml(tmp_path, f"[run]\n{line}\n")
    with pytest.raises(ConfigError) as e:
        FinetuneSweepConfig.from_toml(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: run.{key}: removed in issue 19"), msg
    # without the key the same file is fine
    p.write_text(BASE + "[run]\ngamma = 0.01\n")
    assert FinetuneSweepConfig.from_toml(p).run.gamma == 0.01


def test_cli_refuses_the_removed_keys_and_flag(tmp_path, capsys):
    from w2s_theory.cli import main as cli_main

    p = _toml(tmp_path, "[run]\nensemble = true\n")
    assert cli_main(["finetune", "--config", str(p), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("w2s-theory finetune: ") and "run.ensemble:" in err[0]
    p.write_text(BASE)
    with pytest.raises(SystemExit) as e:
        cli_main(["finetune", "--config", str(p), "--one-by-one", "--dry-run"])
    assert e.value.code == 2 and "--one-by-one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:               # use_accelerate's flag went with it
        cli_main(["finetune", "--config", str(p), "--no-accelerate", "--dry-run"])
    assert e.value.code == 2 and "--no-accelerate" in capsys.readouterr().err
    p.write_text(BASE + "[run]\nuse_accelerate = false\n")
    assert cli_main(["finetune", "--config", str(p), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.use_accelerate: removed in issue 19" in err[0], err


def test_committed_finetune_configs_parse_and_name_no_removed_key():
    files = sorted((ROOT / "experiments" / "finetune").glob("*.toml")) + sorted(
        (ROOT / "experiments" / "paper").glob("*.toml"))
    assert len(files) >= 17
    for f in files:
        raw = read_toml(f)
        assert not set(raw.get("run", {})) & set(REMOVED_RUN_KEYS), f
        cfg = PartialConfig.from_toml(f).sweep if "partial" in raw else FinetuneSweepConfig.from_toml(f)
        assert FinetuneSweepConfig.from_dict(cfg.to_dict()) == cfg, f


def test_train_args_are_checked_against_training_arguments_fields():
    """The pipeline's check is hf_args.check_table with TRAIN_OWNS reserved (one checker: its
    own cases are in tests/test_hf_args.py); here what only the pipeline adds."""
    from transformers import TrainingArguments

    from w2s_theory.hf_args import check_table

    fields = _fields()
    # every setting [train] owns is a real TrainingArguments field (the list cannot rot)
    assert set(TRAIN_OWNS) <= fields, set(TRAIN_OWNS) - fields
    free = sorted(fields - set(TRAIN_OWNS))
    assert {"gradient_checkpointing", "report_to", "torch_compile", "fsdp", "deepspeed"} <= set(free)
    # every free field passes with TrainingArguments' own default value
    defaults = {f.name: f.default for f in dataclasses.fields(TrainingArguments)
                if f.name in free and f.default is not dataclasses.MISSING}
    assert len(defaults) > 50 and training_args(defaults) == defaults
    for k, owner in TRAIN_OWNS.items():
        with pytest.raises(ConfigError, match=rf"^train\.args\.{k}: set by {owner.replace('[', '.').replace(']', '.')}"):
            training_args({k: 1})
    # an unknown key or a wrong type: the one checker's message
    def message(check, table):
        with pytest.raises(ConfigError) as e:
            check(table)
        return str(e.value)

    for bad in ({"gradient_checkpoint": True}, {"zzzzqqq": 1}, {"logging_steps": "1"}):
        assert message(training_args, bad) == message(check_table, bad), bad


def test_train_args_table_in_toml_round_trips_and_enters_the_run_keys(tmp_path):
    plain = FinetuneSweepConfig.from_toml(_toml(tmp_path, "[train]\nmax_length = 32\n"))
    p = _toml(tmp_path, '[train]\nmax_length = 32\n[train.args]\ngradient_checkpointing = true\n'
                        'report_to = "none"\n')
    cfg = FinetuneSweepConfig.from_toml(p)
    assert cfg.train_args == {"gradient_checkpointing": True, "report_to": "none"}
    assert cfg.train == plain.train                      # [train] itself is unchanged
    d = cfg.to_dict()
    assert d["train"]["args"] == cfg.train_args and "train_args" not in d
    assert FinetuneSweepConfig.from_dict(json.loads(json.dumps(d))) == cfg
    meta = {"subset": "harmless"}
    keys, keys_plain = ([r.key for r in plan_runs(c, meta)] for c in (cfg, plain))
    assert len(keys) == len(keys_plain) and not set(keys) & set(keys_plain)
    # a config without the table keeps the keys it had before [train.args] existed
    assert keys_plain == [r.key for r in plan_runs(FinetuneSweepConfig(
        name="t", train=plain.train, sweep=SweepSpec(losses=("forward_kl",), seeds=(0,))), meta)]
    bad = _toml(tmp_path, "[train.args]\nlearning_rate = 1e-4\n")
    with pytest.raises(ConfigError, match=r": train\.args\.learning_rate: set by \[train\] lr"):
        FinetuneSweepConfig.from_toml(bad)


def test_partial_refuses_train_args(tmp_path):
    p = _toml(tmp_path, '[train.args]\nreport_to = "none"\n[partial]\nout = "x.csv"\n')
    with pytest.raises(ConfigError, match=r": train\.args: not used by partial fine-tuning"):
        PartialConfig.from_toml(p)


def test_train_args_reach_every_training_run(tiny_bert, tmp_path, monkeypatch):
    """A tiny sweep (lr selection, ceiling, one student, full and head-only): every call of
    ``finetune.train`` gets the ``[train.args]`` table, and every row records it."""
    import torch

    import w2s_theory.finetune as F
    from w2s_theory.pipelines.finetune import run

    seen = []
    real_train = F.train

    def spy(*a, **kw):
        seen.append(kw.get("training_args"))
        return real_train(*a, **kw)

    monkeypatch.setattr(F, "train", spy)
    out = tmp_path / "res.csv"
    p = tmp_path / "c.toml"
    p.write_text(f"""name = "args"
strong = "{tiny_bert}"
[data]
n_train = 24
n_test = 16
[weak]
l2_grid = [0.1]
[lr_select]
grid = [1e-4, 1e-3]
holdout = 8
[train]
max_length = 16
precision = "fp32"
batch_size = 8
[train.args]
logging_steps = 1
[sweep]
losses = ["reverse_kl"]
seeds = [0]
[run]
out = "{out}"
device = "cpu"
""")
    cfg = FinetuneSweepConfig.from_toml(p)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run(cfg, progress=False, log=lambda *_: None)
    finally:
        torch.set_num_threads(n)
    # 2 lr candidates + (ceiling + student) x (full, head_only)
    assert seen == [{"logging_steps": 1}] * 6
    rows = res["rows"]
    assert len(rows) == 4 and all(json.loads(r["train_args"]) == {"logging_steps": 1} for r in rows)
    sel = json.loads(out.with_suffix(".lr_select.json").read_text())
    assert sel  # the lr-selection records were written


@pytest.mark.parametrize("text, pattern", [
    ('[data]\nn_train = "5"\n', r": \[data\] n_train: must be an integer, got '5' \(str\)$"),
    ("[weak]\nfolds = 2.5\n", r": \[weak\] folds: must be an integer"),
    ("[sweep]\nseed = [1]\n", r": \[sweep\] unknown key 'seed' \(did you mean 'seeds'\?\)"),
    ("[train]\nbetas = [0.9]\n", r": \[train\] betas: must be a list of 2 items, got 1"),
    ("[train]\nlearning_rate = 1e-4\n", r": \[train\] unknown key 'learning_rate'"),
    ("[head_only]\nlrr = 1e-3\n", r": \[head_only\] unknown key 'lrr' \(did you mean 'lr'\?\)"),
    ("[lr_select]\ngrid = [\"a\"]\n", r": \[lr_select\] grid: must be a number, got 'a'"),
    ('train_args = {}\n', r": top level unknown key 'train_args'"),
    ('[partial]\nout = "o.csv"\nsweep = 1\n', r": \[partial\] unknown key 'sweep'"),
    ('[partial]\nout = "o.csv"\nblocks = [true]\n', r": \[partial\] blocks: must be an integer"),
])
def test_typed_loader_names_section_and_key(tmp_path, text, pattern):
    """Both configs read through config.from_mapping: wrong types and unknown keys name the
    table and the key (the [sweep] line of BASE is replaced where the case writes its own)."""
    p = tmp_path / "c.toml"
    body = BASE if not text.startswith("[sweep]") else 'name = "t"\n'
    p.write_text((text + body) if text.startswith("train_args") else (body + text))
    cls = PartialConfig if "[partial]" in text else FinetuneSweepConfig
    with pytest.raises(ConfigError, match=pattern):
        cls.from_toml(p)


def test_partial_config_fields_from_toml(tmp_path):
    p = _toml(tmp_path, '[partial]\nblocks = [2, 0, 2]\nout = "o.csv"\nlast_layer = true\n'
                        'head_lr_grid = [1, 0.01]\n')
    pc = PartialConfig.from_toml(p)
    assert pc.blocks == (0, 2) and pc.out == "o.csv" and pc.last_layer is True
    assert pc.head_lr_grid == (1.0, 0.01) and all(type(v) is float for v in pc.head_lr_grid)
    assert pc.sweep == FinetuneSweepConfig.from_toml(_toml(tmp_path, ""))
    # the defaults of an absent key
    p.write_text(BASE + '[partial]\nout = "o.csv"\n')
    pc = PartialConfig.from_toml(p)
    assert (pc.blocks, pc.last_layer) == ((0, 1, 2), False)


def test_finetune_config_objective_settings_are_objectives():
    """FinetuneConfig's objective fields take Objective's defaults (one definition) and its
    ``objective`` carries every one of them (changed values included)."""
    from w2s_theory.finetune import FinetuneConfig
    from w2s_theory.objective import Objective

    names = [f.name for f in dataclasses.fields(Objective)]
    assert len(names) == 7
    for f in dataclasses.fields(FinetuneConfig):
        if f.name in names:
            assert f.default == getattr(Objective(), f.name), f.name
    assert FinetuneConfig().objective == Objective()
    changed = {"loss": "reverse_kl", "confidence": True, "alpha_max": 0.25,
               "confidence_warmup_frac": 0.3, "threshold_buffer": 64, "threshold_min_count": 8,
               "eps": 1e-4}
    assert set(changed) == set(names)
    assert FinetuneConfig(**changed).objective == Objective(**changed)
