# The two commands of the README (make test also builds the docs site with --strict, so a broken
# reference fails, and lints: ruff, configured in pyproject.toml). Both install what they need into .venv first.
VENV ?= .venv
.PHONY: run test setup

setup:
	@bash scripts/setup_env.sh

run: setup
	$(VENV)/bin/w2s-theory demo

test: setup
	$(VENV)/bin/python -m pytest --nbval --doctest-modules -n auto --maxprocesses 4 --dist loadscope w2s_theory tests notebooks
	$(VENV)/bin/mkdocs build --strict --quiet -d build/site
	$(VENV)/bin/ruff check .
