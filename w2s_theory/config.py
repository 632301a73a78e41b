"""The one config layer: read a TOML file, check its keys, name the file in every error.

Every experiment family (``demo``, ``synthetic``, ``real``, ``finetune``, ``features``) reads its
TOML through `load_config`, and every table's keys are checked by `check_keys`, so
a misspelt or unknown key fails the same way everywhere::

    experiments/real/main.toml: [train] unknown key 'lrr' (did you mean 'lr'?); allowed: ...

`ConfigError` is a ``ValueError`` and a `UserError`; the command line prints its
message and exits 2.
Python 3.10 has no ``tomllib``: the ``tomli`` backport (same API) is used there.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, Union

from ._validation import ArgumentTypeError, check_path, check_str
from .errors import UserError

__all__ = ["UserError", "ConfigError", "toml_module", "read_toml", "check_keys", "load_config",
           "from_mapping", "EXIT_USAGE", "SELECTION_RULES", "check_selection"]

#: exit status of the command line for a bad config or argument
EXIT_USAGE = 2

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config file or value that cannot be used; the message names the file and the key."""


#: How a config's hyper-parameters (learning rate, weak-model L2, thresholds) were chosen: the
#: ``rule`` of its ``[selection]`` table. None of them sees test data or ground truth the student
#: could not have; ``tests/test_selection_rules.py`` reads every config's rule.
SELECTION_RULES = {
    "held_out_ground_truth": "chosen on held-out train_gt rows (ground truth the weak model is "
                             "trained on, never the test split and never the student's train_w2s "
                             "labels); ``source`` names the script or the [lr_select] that does it",
    "held_out_weak": "chosen on held-out weak-labelled train_w2s rows (what a student could use)",
    "band": "not chosen: the value is one point of a grid reported as a sensitivity band, the "
            "verdict stated per value (``source`` names the band)",
    "paper": "the paper's value, no selection",
    "fixed": "a fixed default, not tuned on any data (synthetic studies, pipeline checks)",
}


def check_selection(table, where: str = "[selection]") -> dict:
    """Validate a config's ``[selection]`` table: ``rule`` (one of `SELECTION_RULES`),
    optional ``source`` and ``note`` (text) and ``params`` (names of the hyper-parameters it
    covers). Returns it as a plain dict.

    Example:
        >>> check_selection({"rule": "paper", "params": ["lr"]})["rule"]
        'paper'
        >>> check_selection({"rule": "test"})
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: [selection] rule: 'test' is not a selection rule; allowed: band, fixed, held_out_ground_truth, held_out_weak, paper
    """
    check_keys(table, ["rule", "source", "note", "params"], where)
    rule = table.get("rule")
    if not isinstance(rule, str) or rule not in SELECTION_RULES:
        raise ConfigError(f"{where} rule: {rule!r} is not a selection rule; allowed: "
                          f"{', '.join(sorted(SELECTION_RULES))}")
    for k in ("source", "note"):
        if k in table and not isinstance(table[k], str):
            raise ConfigError(f"{where} {k}: expected text, got {type(table[k]).__name__}")
    params = table.get("params", [])
    if not isinstance(params, list) or not all(isinstance(x, str) for x in params):
        raise ConfigError(f"{where} params: expected a list of hyper-parameter names")
    return dict(table)


def toml_module():
    """``tomllib`` (Python >= 3.11) or the ``tomli`` backport (3.10).

    Examples:
        >>> toml_module().loads('a = 1')
        {'a': 1}
    """
    try:
        import tomllib
    except ImportError:  # pragma: no cover - python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("reading TOML on Python 3.10 needs the 'tomli' package "
                              "(pip install tomli)") from None
    return tomllib


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; a missing file or a syntax error is a `ConfigError` naming it."""

    path = check_path(path, "path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 (byte {raw[exc.start]:#04x} at offset "
                          f"{exc.start}); TOML files are UTF-8: re-save it as UTF-8") from None
    tomllib = toml_module()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def check_keys(table: Mapping, allowed: Iterable[str], where: str = "") -> None:
    """Raise `ConfigError` for the first key of ``table`` not in ``allowed``.

    The message names the table (``where``, e.g. ``"[train]"``), the key, the closest allowed
    key and the allowed keys.

    Examples:
        >>> check_keys({"lr": 1}, ["lr", "epochs"])
        >>> check_keys({"lrr": 1}, ["lr", "epochs"], "[train]")
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: [train] unknown key 'lrr' (did you mean 'lr'?); allowed: epochs, lr
    """

    check_str(where, "where", allow_empty=True)
    if isinstance(allowed, (str, bytes, Mapping)) or not isinstance(allowed, Iterable):
        raise ArgumentTypeError(f"allowed: an iterable of key names (list, tuple, set), got "
                                f"{allowed!r:.60} ({type(allowed).__name__})")
    allowed = list(allowed)
    for k in allowed:
        if not isinstance(k, str):
            raise ArgumentTypeError(f"allowed: key names must be strings, got {k!r:.40} "
                                    f"({type(k).__name__})")
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a table, got {type(table).__name__}")
    allowed = sorted(set(allowed))
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            prefix = f"{where} " if where else ""
            raise ConfigError(f"{prefix}unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


# ============================================================================= typed loader
def _hints(cls, types_: Mapping[str, Any] | None) -> dict:
    """The resolved field types of dataclass ``cls``; ``types_`` replaces (or supplies) some,
    e.g. a field whose annotation names a class imported only for type checking."""
    over = dict(types_ or {})
    try:
        hints = typing.get_type_hints(cls)
    except NameError:                          # an annotation names a type-checking-only import

        ns = dict(vars(sys.modules[cls.__module__]))
        hints = {}
        for f in dataclasses.fields(cls):
            if f.name in over:
                continue
            try:
                hints[f.name] = (eval(f.type, ns) if isinstance(f.type, str)  # noqa: S307
                                 else f.type)
            except NameError:
                hints[f.name] = Any
    hints.update(over)
    return hints


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list) or tp in (tuple, list):
        return "a list"
    if origin in (dict, Mapping) or tp is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", bool: "true or false",
            str: "text"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value, tp, key: str):
    """``value`` as type ``tp`` (TOML arrays become tuples or lists), or a
    ``ConfigError`` naming ``key``."""
    def bad():
        return ConfigError(f"{key}: must be {_type_name(tp)}, got {value!r:.60} "
                           f"({type(value).__name__})")

    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        errors = []
        for a in rest:
            try:
                return _convert(value, a, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(rest) == 1:
            raise errors[0]
        raise bad()
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise bad()
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad()
        sub = key[1:].replace("] ", ".") if key.startswith("[") else key
        return from_mapping(tp, value, where=f"[{sub}]", path=sub)
    if origin is tuple or tp is tuple or origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise bad()
        if origin in (tuple, list) and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):          # a fixed-length tuple
                raise ConfigError(f"{key}: must be a list of {len(args)} items, got "
                                  f"{len(value)}: {value!r:.60}")
            items = [_convert(v, a, key) for v, a in zip(value, args)]
        else:
            item = args[0] if args else Any
            items = [_convert(v, item, key) for v in value]
        return list(items) if (origin is list or tp is list) else tuple(items)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise bad()
        vt = args[1] if len(args) == 2 else Any
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value                         # as written: run keys hash 1 and 1.0 apart
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad()
    return value


def from_mapping(cls: type[T], data: Mapping, *, where: str = "", path: str = "",
                 types: Mapping[str, Any] | None = None) -> T:
    """Build the dataclass ``cls`` from a plain dict (a TOML table) by its field types.

    The one typed config loader: unknown keys are a `ConfigError` naming the table
    (``where``, e.g. ``"[train]"``), the key and the closest valid name (`check_keys`); each
    value is converted by its field's type -- nested dataclasses (a sub-table, checked the
    same way, ``[section]``), ``tuple[X, ...]`` / ``list[X]`` / fixed ``tuple[X, Y]`` (TOML
    arrays), ``dict[str, X]``, ``X | None``, ``Literal[...]`` (the allowed values), ``int``
    (never a bool), ``float`` (an integer is accepted and kept as written: run keys hash the
    config's values, ``1`` and ``1.0`` apart), ``bool``, ``str`` -- and a wrong type is a
    `ConfigError` naming the table and the key (``[section] key: must be ..., got ...``; a
    top-level key alone). Missing keys take
    the field's default; range checks stay in the class's ``__post_init__``.

    Why not pydantic: the package's core (theory, metrics, configs) depends on numpy and scipy
    only; pydantic would add a compiled dependency for the ~100 lines here, and its error
    texts differ from the one-line ``file: [section] key: ...`` messages the command line and
    its tests promise. The configs stay plain frozen dataclasses (``dataclasses.replace``,
    ``asdict`` and the run keys keep working).

    Args:
        cls: a dataclass type.
        data: the table.
        where: the table's name in messages (``""`` top level, ``"[train]"``).
        path: the table's dotted name in messages of its values (``"train"`` gives
            ``[train] lr: ...``; ``""`` at the top level gives ``lr: ...``).
        types: field types that replace the annotations (e.g. a class the module imports only
            for type checking).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Opt:
        ...     lr: float = 1e-3
        ...     betas: tuple[float, float] = (0.9, 0.999)
        >>> @dataclass(frozen=True)
        ... class Run:
        ...     name: str
        ...     seeds: tuple[int, ...] = (0,)
        ...     opt: Opt = Opt()
        >>> T = {"opt": Opt}     # (classes defined in a doctest are not module names)
        >>> from_mapping(Run, {"name": "a", "seeds": [1, 2], "opt": {"lr": 1}}, types=T)
        Run(name='a', seeds=(1, 2), opt=Opt(lr=1, betas=(0.9, 0.999)))
        >>> from_mapping(Run, {"name": "a", "opt": {"lrr": 1}}, types=T)
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: [opt] unknown key 'lrr' (did you mean 'lr'?); allowed: betas, lr
        >>> from_mapping(Run, {"name": "a", "seeds": ["1"]}, types=T)
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: seeds: must be an integer, got '1' (str)
        >>> from_mapping(Run, {"name": "a", "opt": {"betas": [0.9]}}, types=T)
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: [opt] betas: must be a list of 2 items, got 1: [0.9]
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"cls: a dataclass type, got {cls!r:.60}")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or path or 'config'}: expected a table, got "
                          f"{type(data).__name__}")
    flds = [f for f in dataclasses.fields(cls) if f.init]
    check_keys(data, [f.name for f in flds], where)
    hints = _hints(cls, types)
    kw = {}
    for f in flds:
        if f.name in data:
            kw[f.name] = _convert(data[f.name], hints.get(f.name, Any),
                                  f"[{path}] {f.name}" if path else f.name)
    return cls(**kw)


def load_config(path: str | os.PathLike, build: Callable[[dict], T]) -> T:
    """Read ``path`` and ``build`` the typed config from its dict; every error names the file.

    ``build`` raises ``ValueError`` (or ``TypeError``) for unknown keys or out-of-range values;
    the error comes back as a `ConfigError` whose message starts with the path.
    """
    if not callable(build):
        raise TypeError(f"build: a function from the config's dict to the typed config, got "
                        f"{build!r:.40} ({type(build).__name__})")
    raw = read_toml(path)
    try:
        if "selection" in raw:                  # how its hyper-parameters were chosen: checked,
            check_selection(raw.pop("selection"))   # recorded in the file, not a run parameter
        return build(raw)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except (ValueError, TypeError, KeyError) as exc:
        # a KeyError's str() is the repr of its key: unwrap that one, keep every other message
        # whole (stripping quotes off both ends lost a message's closing quote: "got 'tabel")
        msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
