"""A config's ``[train.args]`` table as ``transformers.TrainingArguments``, checked key by key.

Everything ``TrainingArguments`` offers -- gradient (activation) checkpointing, ``report_to`` (wandb,
tensorboard), FSDP / DeepSpeed through accelerate, ``torch_compile``, ``optim``, logging and
saving -- is reachable from a config without new code: the ``[train.args]`` table is passed
through, each key checked against ``dataclasses.fields(TrainingArguments)`` (an unknown key is
refused naming ``train.args.<key>`` and the closest valid name) and each simple value against
the field's type (``bool``, ``int``, ``float``, ``str``, optionally ``None``); the rest is
``TrainingArguments``' own validation, re-raised as `w2s_theory.config.ConfigError` naming the
table.

Examples:
    >>> args = training_args("/tmp/run", {"seed": 7, "report_to": []},
    ...                      learning_rate=1e-5, use_cpu=True)
    >>> args.seed, args.learning_rate
    (7, 1e-05)
    >>> training_args("/tmp/run", {"learning_rat": 1e-5})
    Traceback (most recent call last):
    ...
    w2s_theory.config.ConfigError: train.args.learning_rat: not a TrainingArguments field; did you mean 'learning_rate'?
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping

from ._validation import check_str
from .config import ConfigError

__all__ = ["training_args", "check_table", "training_arg_names"]

_SIMPLE = (bool, int, float, str, type(None))


def training_arg_names() -> tuple[str, ...]:
    """The names ``TrainingArguments`` accepts (its ``__init__`` fields), sorted.

    Examples:
        >>> "gradient_checkpointing" in training_arg_names()
        True
    """
    from transformers import TrainingArguments

    return tuple(sorted(f.name for f in dataclasses.fields(TrainingArguments) if f.init))


def _allowed_types(tp) -> tuple[type, ...] | None:
    """The simple types of a field annotation, or ``None`` when it holds anything else."""
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or \
        typing.get_origin(tp) is typing.Union else (tp,)
    return args if args and all(a in _SIMPLE for a in args) else None


def _check_value(key: str, value, tp, name: str) -> None:
    allowed = _allowed_types(tp)
    if allowed is None:
        return
    ok = any((a is bool and isinstance(value, bool))
             or (a is int and isinstance(value, int) and not isinstance(value, bool))
             or (a is float and isinstance(value, (int, float)) and not isinstance(value, bool))
             or (a is str and isinstance(value, str))
             or (a is type(None) and value is None) for a in allowed)
    if not ok:
        want = " or ".join("None" if a is type(None) else a.__name__ for a in allowed)
        raise ConfigError(f"{name}: expected {want}, got {value!r:.60} ({type(value).__name__})")


def check_table(table, *, prefix: str = "train.args", reserved: Mapping | None = None,
                _fields: dict | None = None) -> dict:
    """Check a ``[train.args]`` table without building ``TrainingArguments``; a plain copy back.

    Args:
        table: the table (a mapping of ``TrainingArguments`` field names to values).
        prefix: how messages name the table.
        reserved: ``{field: where it is set instead}`` -- fields a pipeline sets from its own
            keys (``{"learning_rate": "[train] lr"}``), refused here naming that place.

    Returns:
        ``dict(table)``.

    Examples:
        >>> check_table({"report_to": "none"})
        {'report_to': 'none'}
        >>> check_table({"learning_rate": 1e-5}, reserved={"learning_rate": "[train] lr"})
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: train.args.learning_rate: set by [train] lr, not in [train.args] (one place per setting)
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{prefix}: a table of TrainingArguments fields, got "
                          f"{type(table).__name__}")
    if not table:                               # an empty table needs no transformers
        return {}
    if _fields is None:
        from transformers import TrainingArguments

        _fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    reserved = dict(reserved or {})
    for key, value in table.items():
        name = f"{prefix}.{key}"
        if isinstance(key, str) and key in reserved:
            raise ConfigError(f"{name}: set by {reserved[key]}, not in [{prefix}] (one place per "
                              f"setting)")
        if not isinstance(key, str) or key not in _fields:
            close = difflib.get_close_matches(str(key), list(_fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else \
                " (see transformers.TrainingArguments)"
            raise ConfigError(f"{name}: not a TrainingArguments field{hint}")
        if key == "output_dir":
            raise ConfigError(f"{name}: set by the pipeline (the run's folder); remove it")
        _check_value(key, value, _fields[key].type, name)
    return dict(table)


def training_args(output_dir, table: Mapping | None = None, *, prefix: str = "train.args",
                  **defaults):
    """``TrainingArguments(output_dir, **{**defaults, **table})``, every key checked.

    Args:
        output_dir: where ``Trainer`` writes checkpoints and logs (set by the pipeline, so
            ``output_dir`` inside ``table`` is refused).
        table: the config's ``[train.args]`` table (``None``: empty); its keys override
            ``defaults`` (`check_table`).
        prefix: how error messages name the table (``train.args``).
        **defaults: the pipeline's values (also checked: a typo there is a bug).

    Returns:
        a ``transformers.TrainingArguments``.

    Raises:
        ConfigError: an unknown key (naming ``<prefix>.<key>`` and the closest valid name), a
            value of the wrong simple type, or a combination ``TrainingArguments`` refuses.
    """
    from transformers import TrainingArguments

    output_dir = str(check_str(output_dir, "output_dir") if not hasattr(output_dir, "__fspath__")
                     else output_dir)
    fields = {f.name: f for f in dataclasses.fields(TrainingArguments) if f.init}
    check_table(defaults, prefix=prefix, _fields=fields)
    table = check_table({} if table is None else table, prefix=prefix, _fields=fields)
    merged = {**defaults, **table}
    try:
        return TrainingArguments(output_dir=output_dir, **merged)
    except (ValueError, TypeError, ImportError) as e:
        raise ConfigError(f"{prefix}: TrainingArguments refused {sorted(merged)}: "
                          f"{str(e).splitlines()[0][:300]}") from None
