"""CI runs exactly the README's test command: `.ci/run` = the recipe of `make test`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _make_test_recipe() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("test:"))
    deps = lines[start].split(":", 1)[1].split()
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(VENV)", ".venv"))
    return [f"make {d}" for d in deps] + recipe


def test_ci_run_is_make_test():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    recipe = _make_test_recipe()
    assert any("pytest --nbval" in r for r in recipe), recipe
    assert recipe[-1] == ".venv/bin/ruff check .", recipe      # lint after the tests
    assert ci[-len(recipe):] == recipe, (ci, recipe)
    assert "set -euo pipefail" in ci            # a failing step fails CI


def test_ruff_comes_with_the_test_extras():
    """A fresh machine's `make setup` installs ruff, so CI's lint step can run."""
    text = (ROOT / "pyproject.toml").read_text()
    test_extras = text.split("test = [", 1)[1].split("]", 1)[0]
    assert '"ruff' in test_extras and "[tool.ruff.lint]" in text


def test_make_test_builds_the_docs_strictly():
    """A broken reference or docstring fails CI: the site is built with --strict before the lint."""
    recipe = _make_test_recipe()
    docs = [r for r in recipe if "mkdocs build" in r]
    assert len(docs) == 1 and "--strict" in docs[0], recipe
    assert "w2s-theory[docs]" in (ROOT / "pyproject.toml").read_text().split("test = [", 1)[1].split("\n]", 1)[0]


def test_readme_names_make_test():
    assert "make test" in (ROOT / "README.md").read_text()
