# The two commands of the README. Both install what they need into .venv first.
VENV ?= .venv
.PHONY: run test setup

setup:
	@bash scripts/setup_env.sh

run: setup
	$(VENV)/bin/w2s-theory demo

test: setup
	$(VENV)/bin/python -m pytest --nbval --doctest-modules w2s_theory tests notebooks
