"""What every command shares: one way to report a bad config or argument (exit 2, one line)."""

from __future__ import annotations

import argparse
import sys

from ..config import EXIT_USAGE, ConfigError

__all__ = ["usage_error", "Parser", "BAD_CONFIG"]

#: errors that mean "fix your config / arguments": one message, exit 2, no traceback
BAD_CONFIG = (ConfigError, ValueError, OSError)


def usage_error(prog: str, exc: BaseException | str) -> int:
    """Print ``prog: message`` on stderr and return the usage exit status (2)."""
    print(f"{prog}: {exc}", file=sys.stderr)
    return EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """``argparse`` with the toolkit's exit status for bad arguments (2, one line, no usage dump)."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")
