"""``python -m w2s_theory.results_table {check,record} PATH...`` (`w2s_theory.results_table.main`)."""

from .command import main

raise SystemExit(main())
