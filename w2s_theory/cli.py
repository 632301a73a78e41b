"""``w2s-theory`` command line: ``w2s-theory COMMAND [options]``.

Each command lives in its own module with a ``main(argv) -> int`` function and
is imported only when called (no import-time work).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "demo": ("w2s_theory.sweeps.demo", "small synthetic Lemma 1 / Theorem 2 check (the README's main job)"),
    "synthetic": ("w2s_theory.sweeps.synthetic", "synthetic Gaussian W2SG sweep from a TOML config"),
    "real": ("w2s_theory.sweeps.real", "real-model last-layer sweep on cached LM features (TOML config)"),
    "finetune": ("w2s_theory.sweeps.finetune", "full fine-tuning sweep (TOML config; CPU or GPU)"),
    "features": ("w2s_theory.sweeps.features", "extract and cache LM features of a data set"),
}


def _usage() -> str:
    lines = ["usage: w2s-theory COMMAND [options]   (w2s-theory COMMAND --help for options)", "",
             "commands:"]
    w = max(map(len, COMMANDS))
    lines += [f"  {name:<{w}}  {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"w2s-theory: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
