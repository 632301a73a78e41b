"""The one config layer: read a TOML file, check its keys, name the file in every error.

Every experiment family (``demo``, ``synthetic``, ``real``, ``finetune``, ``features``) reads its
TOML through :func:`load_config`, and every table's keys are checked by :func:`check_keys`, so
a misspelt or unknown key fails the same way everywhere::

    experiments/real/main.toml: [train] unknown key 'lrr' (did you mean 'lr'?); allowed: ...

:class:`ConfigError` is a ``ValueError``; the command line prints its message and exits 2.
Python 3.10 has no ``tomllib``: the ``tomli`` backport (same API) is used there.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

__all__ = ["ConfigError", "toml_module", "read_toml", "check_keys", "load_config", "EXIT_USAGE"]

#: exit status of the command line for a bad config or argument
EXIT_USAGE = 2

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the file and the key."""


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
    """Parse a TOML file; a missing file or a syntax error is a :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    tomllib = toml_module()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def check_keys(table: Mapping, allowed: Iterable[str], where: str = "") -> None:
    """Raise :class:`ConfigError` for the first key of ``table`` not in ``allowed``.

    The message names the table (``where``, e.g. ``"[train]"``), the key, the closest allowed
    key and the allowed keys.

    Examples:
        >>> check_keys({"lr": 1}, ["lr", "epochs"])
        >>> check_keys({"lrr": 1}, ["lr", "epochs"], "[train]")
        Traceback (most recent call last):
        ...
        w2s_theory.config.ConfigError: [train] unknown key 'lrr' (did you mean 'lr'?); allowed: epochs, lr
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a table, got {type(table).__name__}")
    allowed = sorted(set(allowed))
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            prefix = f"{where} " if where else ""
            raise ConfigError(f"{prefix}unknown key {key!r}{hint}; allowed: {', '.join(allowed)}")


def load_config(path: str | os.PathLike, build: Callable[[dict], T]) -> T:
    """Read ``path`` and ``build`` the typed config from its dict; every error names the file.

    ``build`` raises ``ValueError`` (or ``TypeError``) for unknown keys or out-of-range values;
    the error comes back as a :class:`ConfigError` whose message starts with the path.
    """
    raw = read_toml(path)
    try:
        return build(raw)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except (ValueError, TypeError, KeyError) as exc:
        msg = str(exc).strip("'\"")
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
