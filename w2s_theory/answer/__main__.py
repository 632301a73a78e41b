"""``python -m w2s_theory.answer``: see `w2s_theory.answer.cli.main`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
