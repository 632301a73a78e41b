"""[train.args]: TrainingArguments fields passed through from a config table, each key checked."""

from __future__ import annotations

import inspect

import pytest

from w2s_theory.config import ConfigError
from w2s_theory.hf_args import check_table, training_arg_names, training_args


def test_names_are_the_init_parameters():
    from transformers import TrainingArguments

    params = set(inspect.signature(TrainingArguments.__init__).parameters) - {"self"}
    assert set(training_arg_names()) == params
    assert len(params) > 50


def test_table_overrides_defaults_and_every_value_arrives(tmp_path):
    table = {"gradient_checkpointing": True, "report_to": ["tensorboard"], "seed": 7,
             "lr_scheduler_type": "cosine", "learning_rate": 3e-5, "num_train_epochs": 2,
             "weight_decay": 0.0, "logging_steps": 5}
    args = training_args(tmp_path / "run", table, learning_rate=1e-5, use_cpu=True,
                         per_device_train_batch_size=16)
    assert args.output_dir == str(tmp_path / "run")
    assert args.learning_rate == 3e-5                 # the table wins over the pipeline's default
    assert args.per_device_train_batch_size == 16     # defaults kept where the table is silent
    assert args.gradient_checkpointing is True and args.seed == 7
    assert args.report_to == ["tensorboard"] and args.num_train_epochs == 2.0
    assert args.lr_scheduler_type.value == "cosine" and args.logging_steps == 5
    assert training_args(str(tmp_path), None, use_cpu=True).learning_rate == 5e-5   # its default


@pytest.mark.parametrize("table,pattern", [
    ({"learning_rat": 1e-5}, r"^train\.args\.learning_rat: not a TrainingArguments field; "
                             r"did you mean 'learning_rate'\?$"),
    ({"gradient_checkpoint": True}, r"did you mean 'gradient_checkpointing'"),
    ({"zzzzqqq": 1}, r"^train\.args\.zzzzqqq: not a TrainingArguments field \(see "),
    ({"output_dir": "x"}, r"^train\.args\.output_dir: set by the pipeline"),
    ({"bf16": "yes"}, r"^train\.args\.bf16: expected bool, got 'yes'"),
    ({"seed": 1.5}, r"^train\.args\.seed: expected int"),
    ({"seed": True}, r"^train\.args\.seed: expected int"),
    ({"learning_rate": "1e-5"}, r"^train\.args\.learning_rate: expected float"),
    ({"gradient_checkpointing": 1}, r"^train\.args\.gradient_checkpointing: expected bool or None"),
    ({"lr_scheduler_type": "cosin"}, r"^train\.args: TrainingArguments refused .*cosin"),
])
def test_bad_tables_name_the_key(tmp_path, table, pattern):
    with pytest.raises(ConfigError, match=pattern):
        training_args(tmp_path, table, use_cpu=True)


def test_defaults_and_the_table_itself_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.args\.lerning_rate: .*'learning_rate'"):
        training_args(tmp_path, {}, lerning_rate=1e-5)
    with pytest.raises(ConfigError, match=r"^train\.args: a table"):
        training_args(tmp_path, [("seed", 1)])
    with pytest.raises(ConfigError, match=r"^finetune\.args\.sed: "):
        training_args(tmp_path, {"sed": 1}, prefix="finetune.args")
    assert isinstance(ConfigError("x"), ValueError)


def test_check_table_alone():
    assert check_table({"seed": 3, "report_to": "none"}) == {"seed": 3, "report_to": "none"}
    with pytest.raises(ConfigError, match=r"^train\.args\.learning_rate: set by \[train\] lr"):
        check_table({"learning_rate": 1e-5}, reserved={"learning_rate": "[train] lr"})
    with pytest.raises(ConfigError, match=r"^train\.args\.sede: .*'seed'"):
        check_table({"sede": 1})
