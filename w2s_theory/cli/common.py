"""What every command shares: one way to report a user error (exit 2, one line), shared options.

A *user error* -- a bad config or argument, a missing or corrupt data file, a missing model,
an unavailable device (`w2s_theory.config.UserError` and its subclasses) -- ends the
command with one line on stderr, ``PROG: message``, and exit status 2; no traceback. The
global ``w2s-theory --traceback`` re-raises it instead, for developers.

Shared options have one spelling in every command: ``--out`` (where results go) and
``--quiet`` (no progress bars); the spellings used before (``--results``, ``--no-progress``)
are kept as hidden aliases.
"""

from __future__ import annotations

import argparse
import functools
import sys

from ..config import EXIT_USAGE, ConfigError, UserError

__all__ = ["usage_error", "Parser", "BAD_CONFIG", "command", "add_out", "add_quiet",
           "set_traceback", "traceback_enabled", "check_device", "preflight_error"]

#: errors that mean "fix your config / arguments": one message, exit 2, no traceback
BAD_CONFIG = (ConfigError, ValueError, OSError)

_TRACEBACK = {"on": False}


def set_traceback(on: bool) -> bool:
    """Turn traceback mode on or off (the global ``--traceback``); returns the previous mode."""
    old = _TRACEBACK["on"]
    _TRACEBACK["on"] = bool(on)
    return old


def traceback_enabled() -> bool:
    return _TRACEBACK["on"]


def _one_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or repr(exc)


def usage_error(prog: str, exc: BaseException | str) -> int:
    """Print ``prog: message`` (one line) on stderr and return the usage exit status (2).

    In traceback mode an exception is re-raised instead (with its traceback).
    """
    if isinstance(exc, BaseException) and traceback_enabled():
        raise exc
    print(f"{prog}: {_one_line(exc)}", file=sys.stderr)
    return EXIT_USAGE


def command(prog: str):
    """Decorate a command's ``main(argv) -> int``: a `UserError` becomes one line + exit 2."""
    def deco(fn):
        @functools.wraps(fn)
        def main(argv: list[str] | None = None) -> int:
            try:
                return fn(argv)
            except UserError as exc:
                return usage_error(prog, exc)
        return main
    return deco


class Parser(argparse.ArgumentParser):
    """``argparse`` with the toolkit's exit status for bad arguments (2, one line, no usage dump)."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def add_out(p: argparse.ArgumentParser, help: str, *, old: tuple[str, ...] = (), **kw) -> None:
    """``--out`` (dest ``out``); ``old`` spellings stay accepted, hidden from ``--help``."""
    p.add_argument("--out", help=help, **kw)
    for name in old:
        p.add_argument(name, dest="out", help=argparse.SUPPRESS)


def add_quiet(p: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    """``--quiet`` (dest ``quiet``); ``--no-progress``, its old spelling, stays as a hidden alias."""
    p.add_argument("--quiet", action="store_true", help=help)
    p.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)


def check_device(device) -> None:
    """Fail now, not after minutes of work, when the requested device is not on this machine
    (`w2s_theory._validation.check_device`; ``cpu`` and ``auto`` need no check, nor torch)."""
    if device in (None, "cpu", "auto"):
        return
    from .._validation import check_device as check

    check(device, "device")


def preflight_error(prog: str, pre, *, skip_hint: str = "") -> int:
    """The one-line error of a failed preflight (`w2s_theory.pipelines.preflight`), exit 2."""
    msg = pre.message()
    if skip_hint and pre.missing and not pre.data:
        msg += f"; {skip_hint}"
    return usage_error(prog, msg)
