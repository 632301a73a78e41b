"""``python -m w2s_theory.ledger``: see `w2s_theory.ledger.cli.main`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
