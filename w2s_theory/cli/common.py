"""What every command shares: one way to report a user error (exit 2, one line), shared options.

A *user error* -- a bad config or argument, a missing or corrupt data file, a missing model,
an unavailable device (`w2s_theory.config.UserError` and its subclasses) -- ends the
command with one line on stderr, ``PROG: message``, and exit status 2; no traceback. The
global ``w2s-theory --traceback`` re-raises it instead, for developers.

Shared options have one spelling in every command: ``--config`` (the TOML file), ``--out``
(where results go), ``--dry-run`` (check, plan, exit) and ``--quiet`` (no progress bars),
added by `add_config_options`; the spellings used before (``--results``, ``--no-progress``)
are kept as hidden aliases. A config is read one way (`read_config`: a bad file or value is
one line, exit 2), and every command writes where `output_path` says: ``--out`` (relative to
the working folder) > the config's output key (``out``, ``[run] out``, ``[sweep] results``;
relative to the project root, where the committed configs point) > the command's default.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .._validation import check_device as _check_device
from ..atomic_io import remove_stale_temps
from ..config import EXIT_USAGE, ConfigError, UserError
from ..data import project_root

__all__ = ["usage_error", "Parser", "BAD_CONFIG", "command", "add_out", "add_quiet",
           "set_traceback", "traceback_enabled", "check_device", "preflight_error",
           "EXIT_INTERRUPTED", "INTERRUPTED", "track_table", "release_locks", "quiet_progress",
           "os_error_line", "nonneg_int", "pos_int", "nonneg_float", "remove_cache_temps",
           "read_config", "output_path", "add_config_options", "config_parser",
           "dry_run_exit"]

T = TypeVar("T")

#: exit status after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130
#: the one line printed after Ctrl-C
INTERRUPTED = "interrupted; rerun the same command to resume"

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
    text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip()
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or repr(exc)


def usage_error(prog: str, exc: BaseException | str) -> int:
    """Print ``prog: message`` (one line) on stderr and return the usage exit status (2).

    In traceback mode an exception is re-raised instead (with its traceback).
    """
    if isinstance(exc, BaseException) and traceback_enabled():
        raise exc
    print(f"{prog}: {_one_line(exc)}", file=sys.stderr)
    return EXIT_USAGE


def os_error_line(exc: OSError) -> str:
    """``PATH: what went wrong`` for an ``OSError`` (the path it names first; no traceback).

    Example:
        >>> os_error_line(PermissionError(13, "Permission denied", "/ro/out.csv"))
        '/ro/out.csv: Permission denied (check that the folder exists, is a folder and is writable, and that the disk has room)'
    """
    names = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    what = exc.strerror or str(exc) or type(exc).__name__
    if not names:
        return what
    return (f"{' -> '.join(names)}: {what} (check that the folder exists, is a folder and is "
            f"writable, and that the disk has room)")


#: result tables the running command writes: their lock files are removed when it ends
_TABLES: list[Path] = []


def track_table(path) -> None:
    """Register a result table the command writes (its ``.<name>.lock`` is removed at the end)."""
    _TABLES.append(Path(path))


def release_locks() -> list[Path]:
    """Remove the lock files (``.<table>.lock``) of the tracked tables that no process holds.

    A lock another process holds (a second sweep writing the same table) is left alone.
    Returns the removed paths."""
    removed = []
    try:
        from filelock import FileLock, Timeout
    except ImportError:  # pragma: no cover
        return removed
    for table in dict.fromkeys(_TABLES):
        lock = table.with_name(f".{table.name}.lock")
        if not lock.is_file():
            continue
        try:
            with FileLock(str(lock), timeout=0):
                lock.unlink()           # unlinked while held: no other process holds it now
                removed.append(lock)
        except (Timeout, OSError):
            pass
    _TABLES.clear()
    return removed


def command(prog: str):
    """Decorate a command's ``main(argv) -> int``: a `UserError` or an ``OSError`` (a read-only,
    full or file-shadowed output path) becomes one line + exit 2; Ctrl-C becomes
    ``interrupted; rerun the same command to resume`` + exit 130. Lock files of the result
    tables the command wrote (`track_table`) are removed when it ends."""
    def deco(fn):
        @functools.wraps(fn)
        def main(argv: list[str] | None = None) -> int:
            _TABLES.clear()
            try:
                return fn(argv)
            except UserError as exc:
                return usage_error(prog, exc)
            except KeyboardInterrupt:
                if traceback_enabled():
                    raise
                print(f"\n{prog}: {INTERRUPTED}", file=sys.stderr)
                return EXIT_INTERRUPTED
            except OSError as exc:
                if traceback_enabled():
                    raise
                return usage_error(prog, os_error_line(exc))
            finally:
                release_locks()
        return main
    return deco


@contextlib.contextmanager
def quiet_progress(quiet: bool = True, *, datasets: bool = False):
    """Silence every progress bar while the block runs: tqdm's, transformers', huggingface_hub's
    and (``datasets=True``, for the commands that read data through it; it is imported then)
    datasets'; everything is switched back afterwards. Nothing happens when ``quiet`` is false.

    Example:
        >>> import io, contextlib, tqdm
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err), quiet_progress():
        ...     _ = list(tqdm.tqdm(range(3)))
        >>> err.getvalue()
        ''
    """
    if not quiet:
        yield
        return
    undo = []
    try:
        import tqdm.std as tstd

        init = tstd.tqdm.__init__

        @functools.wraps(init)
        def quiet_init(self, *a, **k):
            k["disable"] = True
            init(self, *a, **k)
        tstd.tqdm.__init__ = quiet_init
        undo.append(lambda: setattr(tstd.tqdm, "__init__", init))
    except ImportError:  # pragma: no cover
        pass
    hub_was_on = False
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        hub_was_on = not are_progress_bars_disabled()
        if hub_was_on:
            disable_progress_bars()
            undo.append(enable_progress_bars)
    except ImportError:  # pragma: no cover
        pass
    had_transformers = "transformers" in sys.modules
    if had_transformers:        # imported later, it reads huggingface_hub's switch (above)
        from transformers.utils import logging as tlog

        if tlog.is_progress_bar_enabled():
            tlog.disable_progress_bar()
            undo.append(tlog.enable_progress_bar)
    if datasets or "datasets" in sys.modules:
        try:
            import datasets as ds

            if ds.is_progress_bar_enabled():
                ds.disable_progress_bars()
                undo.append(ds.enable_progress_bars)
        except ImportError:  # pragma: no cover
            pass
    try:
        yield
    finally:
        for f in reversed(undo):
            f()
        if not had_transformers and hub_was_on and "transformers" in sys.modules:
            from transformers.utils import logging as tlog  # imported while quiet: as if not

            tlog.enable_progress_bar()


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0 (``--limit``, ``--seed``, ``--n-rows``)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def pos_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--max-tokens``)."""
    v = nonneg_int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    """argparse type: a finite number >= 0 (``--time-limit``)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return v


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
    _check_device(device, "device")


def preflight_error(prog: str, pre, *, skip_hint: str = "") -> int:
    """The one-line error of a failed preflight (`w2s_theory.pipelines.preflight`), exit 2."""
    msg = pre.message()
    if skip_hint and pre.missing and not pre.data:
        msg += f"; {skip_hint}"
    return usage_error(prog, msg)


def remove_cache_temps(prog: str, *roots) -> list[Path]:
    """Remove the temporaries that a killed cache writer left under each cache folder ``roots``.

    Cache files (head weights, convex fits, features, token ids) are written atomically by
    `w2s_theory.atomic_io`; a process killed before its ``os.replace`` leaves
    ``.<name>.XXXXXXXX.tmp`` beside the target. Every folder under each root (links not
    followed) is cleaned with `w2s_theory.atomic_io.remove_stale_temps`: only files of that
    exact name pattern and older than this process go, so a writer running now keeps its
    temporary. A file that cannot be removed is left. One line on stderr says how many went.

    Returns:
        the removed paths.
    """
    removed: list[Path] = []
    for root in roots:
        if root is None or not Path(root).is_dir():
            continue
        for folder, _dirs, _files in os.walk(root):
            try:
                removed += remove_stale_temps(folder)
            except OSError:
                continue
    if removed:
        where = ", ".join(str(r) for r in roots if r is not None)
        print(f"{prog}: removed {len(removed)} temporary file{'s' if len(removed) != 1 else ''} "
              f"left by an interrupted cache write under {where}", file=sys.stderr)
    return removed


def read_config(build: Callable[..., T], *args, **kw) -> T:
    """``build(*args, **kw)`` -- read a config file and apply the command line's overrides --
    with every bad file or value (``ValueError``, ``OSError``, `ConfigError`) turned into a
    `ConfigError`: one line and exit 2 under `command`.

    Examples:
        >>> read_config(int, "3")
        3
        >>> try:
        ...     read_config(int, "x")
        ... except ConfigError as e:
        ...     print(e)
        invalid literal for int() with base 10: 'x'
    """
    try:
        return build(*args, **kw)
    except UserError:
        raise
    except BAD_CONFIG as exc:
        raise ConfigError(_one_line(exc)) from exc


def output_path(cli_out: str | os.PathLike | None, config_out: str | os.PathLike | None,
                default: str | os.PathLike | None = None) -> Path:
    """Where a command writes: ``--out`` as given (relative to the working folder), else the
    config's output key (relative to the project root, as the committed configs are
    written), else ``default``.

    Examples:
        >>> str(output_path("x.csv", "experiments/results/a.csv"))
        'x.csv'
        >>> output_path(None, "experiments/a.csv") == project_root() / "experiments/a.csv"
        True
    """
    if cli_out:
        return Path(cli_out)
    if config_out:
        p = Path(config_out).expanduser()
        return p if p.is_absolute() else project_root() / p
    if default is None:
        raise ConfigError("out: the config names no output file; pass --out")
    return Path(default)


def add_config_options(p: argparse.ArgumentParser, *, config: str, out: str,
                       dry_run: str | None = None, quiet: str = "no progress bars",
                       config_required: bool = True, old_out: tuple[str, ...] = (),
                       **out_kw) -> None:
    """The options every config-driven command shares: ``--config``, ``--out`` (`add_out`),
    ``--dry-run`` (when ``dry_run`` gives its help) and ``--quiet`` (`add_quiet`)."""
    p.add_argument("--config", required=config_required, help=config)
    add_out(p, out, old=old_out, **out_kw)
    if dry_run is not None:
        p.add_argument("--dry-run", action="store_true", help=dry_run)
    add_quiet(p, quiet)


def config_parser(prog: str, description: str, **options) -> Parser:
    """A config-driven command's `Parser` with the shared options (`add_config_options`:
    ``options`` are its keywords: ``config=``, ``out=``, ``dry_run=``, ``quiet=``, ...)."""
    p = Parser(prog=prog, description=description)
    add_config_options(p, **options)
    return p


def dry_run_exit(prog: str, pre, lines: list[str], *, ok: bool | None = None,
                 skip_hint: str = "") -> int:
    """Print a ``--dry-run`` plan (``lines``) and the preflight report; exit 0 when the run could
    start (``ok``, default ``pre.ok``), else the one-line preflight error and 2."""
    print("\n".join([*lines, *pre.lines()]))
    if pre.ok if ok is None else ok:
        return 0
    return preflight_error(prog, pre, skip_hint=skip_hint)
