# The two commands of the README (make test also lints: ruff, configured in pyproject.toml). Both install what they need into .venv first.
VENV ?= .venv
.PHONY: run test setup

setup:
	@bash scripts/setup_env.sh

run: setup
	$(VENV)/bin/w2s-theory demo

test: setup
	$(VENV)/bin/python -m pytest --nbval --doctest-modules w2s_theory tests notebooks
	$(VENV)/bin/ruff check .
