"""``w2s-theory`` command line: ``w2s-theory COMMAND [options]``.

The command-line layer only: each command lives in its own module here with a
``main(argv) -> int`` that parses arguments, loads the config and calls its pipeline's
``run`` (`w2s_theory.pipelines`); it is imported only when called (no import-time
work). Nothing outside this package imports it; tests call `main`.

Every user error (config, data, model, device: `w2s_theory.config.UserError`) prints
one line, ``w2s-theory COMMAND: message``, and exits 2, for every command; ``--traceback``
(anywhere before a ``--``) re-raises it with its traceback instead. An ``OSError`` (an output
path that is read-only, full or shadowed by a file) is one line naming the path, exit 2; Ctrl-C
is ``interrupted; rerun the same command to resume``, exit 130. ``--version`` prints the
package version. Shared options are spelt alike everywhere: ``--out``, ``--quiet``,
``--config``, ``--device``, ``--data-dir``, ``--dry-run``.
"""

from __future__ import annotations

import importlib
import sys

from .. import __version__
from ..config import EXIT_USAGE, UserError
from .common import EXIT_INTERRUPTED, INTERRUPTED, set_traceback, usage_error

COMMANDS = {
    "demo": ("w2s_theory.cli.demo", "small synthetic Lemma 1 / Theorem 2 check (the README's main job)"),
    "synthetic": ("w2s_theory.cli.synthetic", "synthetic Gaussian W2SG sweep from a TOML config"),
    "real": ("w2s_theory.cli.real", "real-model last-layer sweep on cached LM features (TOML config)"),
    "finetune": ("w2s_theory.cli.finetune", "full fine-tuning sweep (TOML config; CPU or GPU)"),
    "partial": ("w2s_theory.cli.partial", "partial fine-tuning sweep: the top k blocks train (TOML config)"),
    "features": ("w2s_theory.cli.features", "extract and cache LM features of a data set"),
    "report": ("w2s_theory.cli.report", "the answer (effects, CIs, verdicts), ledger and figure "
                                        "of your own result table(s)"),
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: w2s-theory [--version] [--traceback] COMMAND [options]   "
             "(w2s-theory COMMAND --help for options)", "",
             "commands:"]
    w = max(map(len, COMMANDS))
    lines += [f"  {name:<{w}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "options:",
              "  --version    print the package version and exit",
              "  --traceback  show the traceback of a user error (config, data, model, device) "
              "instead of one line"]
    return "\n".join(lines)


def version() -> str:
    """``w2s-theory X.Y.Z``: the version of the package that runs (``w2s_theory.__version__``)."""
    return f"w2s-theory {__version__}"


def _pop_flag(argv: list[str], flag: str) -> bool:
    """Remove every ``flag`` before a ``--`` from ``argv``; whether there was one."""
    end = argv.index("--") if "--" in argv else len(argv)
    found = flag in argv[:end]
    argv[:end] = [a for a in argv[:end] if a != flag]
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    tb = _pop_flag(argv, "--traceback")
    if argv and argv[0] in ("--version", "-V"):
        print(version())
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"w2s-theory: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    old = set_traceback(tb)
    try:
        module = importlib.import_module(COMMANDS[cmd][0])
        return int(module.main(rest) or 0)
    except UserError as exc:      # a user error that escaped the command: still one line, exit 2
        return usage_error(f"w2s-theory {cmd}", exc)
    except KeyboardInterrupt:     # Ctrl-C while the command's modules load (torch, ...)
        if tb:
            raise
        print(f"\nw2s-theory {cmd}: {INTERRUPTED}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        set_traceback(old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
