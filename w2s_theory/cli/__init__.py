"""``w2s-theory`` command line: ``w2s-theory COMMAND [options]``.

The command-line layer only: each command lives in its own module here with a
``main(argv) -> int`` that parses arguments, loads the config and calls its pipeline's
``run`` (:mod:`w2s_theory.pipelines`); it is imported only when called (no import-time
work). Nothing outside this package imports it; tests call :func:`main`. A bad config or
argument prints one line and exits 2 for every command.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo": ("w2s_theory.cli.demo", "small synthetic Lemma 1 / Theorem 2 check (the README's main job)"),
    "synthetic": ("w2s_theory.cli.synthetic", "synthetic Gaussian W2SG sweep from a TOML config"),
    "real": ("w2s_theory.cli.real", "real-model last-layer sweep on cached LM features (TOML config)"),
    "finetune": ("w2s_theory.cli.finetune", "full fine-tuning sweep (TOML config; CPU or GPU)"),
    "partial": ("w2s_theory.cli.partial", "partial fine-tuning sweep: the top k blocks train (TOML config)"),
    "features": ("w2s_theory.cli.features", "extract and cache LM features of a data set"),
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: w2s-theory COMMAND [options]   (w2s-theory COMMAND --help for options)", "",
             "commands:"]
    w = max(map(len, COMMANDS))
    lines += [f"  {name:<{w}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"w2s-theory: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from ..config import EXIT_USAGE, ConfigError

    module = importlib.import_module(COMMANDS[cmd][0])
    try:
        return int(module.main(rest) or 0)
    except ConfigError as exc:        # a config problem found late: still one line, exit 2
        print(f"w2s-theory {cmd}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
