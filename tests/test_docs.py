"""The API docstrings pass the docs toolchain's checks without running `mkdocs build --strict`.

`mkdocs build --strict` (in `make test` and .ci/run) failed with freshly resolved docs packages on
two docstrings (issue 17): griffe's google parser warned on `ledger.py:76` ("Failed to get
'name: description' pair"), and mkdocs-autorefs read the example output `[8, 8, 8]` in
`sources.py` (under an `Example:` admonition, i.e. rendered as Markdown, right after
`...)["sizes"]`) as the reference link `["sizes"][8, 8, 8]`. These tests load the whole package
with griffe as mkdocstrings-python does (options from mkdocs.yml), so a new docstring with either
problem fails here, fast, in any module.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import version
from pathlib import Path

import griffe
import markdown
import pytest
import yaml
from mkdocs_autorefs import AutorefsExtension

ROOT = Path(__file__).resolve().parents[1]


def _python_handler_options() -> dict:
    """The mkdocstrings python handler's options, read from mkdocs.yml (not copied)."""
    cfg = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    for plugin in cfg["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            return plugin["mkdocstrings"]["handlers"]["python"]["options"]
    raise AssertionError("mkdocs.yml: no mkdocstrings python handler")


def _docstring_config() -> tuple[str, dict]:
    opts = _python_handler_options()
    parser_opts = {k: v == "true" if v in ("true", "false") else v
                   for k, v in opts.get("docstring_options", {}).items()}
    return opts["docstring_style"], parser_opts


def _objects(obj, seen=None):
    """Every module, class, function and attribute of the package (aliases skipped)."""
    seen = set() if seen is None else seen
    if obj.path in seen:
        return
    seen.add(obj.path)
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _objects(member, seen)


@pytest.fixture(scope="module")
def package():
    style, opts = _docstring_config()
    return griffe.load("w2s_theory", search_paths=[str(ROOT)], docstring_parser=style,
                       docstring_options=opts, allow_inspection=False)


def test_mkdocs_config_is_read():
    style, opts = _docstring_config()
    assert style == "google"
    assert opts == {"warn_missing_types": False, "warn_unknown_params": False}


def test_every_docstring_parses_without_griffe_warnings(package, caplog):
    """The generalisation of the ledger check: every docstring of every module."""
    objs = [o for o in _objects(package) if o.docstring is not None]
    modules = {o.path for o in objs if o.is_module}
    assert {"w2s_theory.ledger", "w2s_theory.sources", "w2s_theory.pipelines.synthetic"} <= modules
    assert len(objs) > 300
    caplog.set_level(logging.WARNING)
    for o in objs:
        o.docstring.parse()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, "\n".join(warnings)


def test_griffe_check_catches_the_old_ledger_docstring(caplog):
    """Control: the pre-fix PairedEffect Attributes (a continuation line without indentation)."""
    style, opts = _docstring_config()
    old = ("Mean of paired differences.\n\nAttributes:\n"
           "    n: pairs; mean, sd: mean and standard deviation (ddof 1) of ``a - b``;\n"
           "    ci_low, ci_high: ``mean -/+ t_{n-1} sd / sqrt(n)`` at ``confidence``;\n"
           "    p_value: two-sided paired t-test of mean 0 (``nan`` when ``n < 2``; when every\n"
           "    difference is equal, ``0`` if they are non-zero, ``1`` otherwise).\n")
    caplog.set_level(logging.WARNING)
    griffe.Docstring(old, lineno=1, parser=style, parser_options=opts).parse()
    assert any("name: description" in r.getMessage() for r in caplog.records)


def _markdown_texts(sections):
    """The parts of a parsed docstring that mkdocstrings renders as Markdown (code examples
    of an `Examples:` section are rendered as code, so they are left out)."""
    for s in sections:
        kind = s.kind.value
        if kind == "text":
            yield s.value
        elif kind == "admonition":
            yield s.value.description
        elif kind == "examples":
            yield from (text for k, text in s.value if k.value == "markdown")
        elif isinstance(s.value, list):
            for item in s.value:
                desc = getattr(item, "description", None)
                if isinstance(desc, str):
                    yield desc


def _autorefs(text: str) -> list[str]:
    """The cross-references mkdocs-autorefs would create for this Markdown: the project's
    markdown extensions plus the autorefs inline processor, whose `<autoref>` tags the
    plugin must later resolve (`--strict` fails on one that resolves nowhere)."""
    md = markdown.Markdown(extensions=["admonition", "pymdownx.superfences", "toc",
                                       AutorefsExtension()])
    html = md.convert(text)
    return re.findall(r'<autoref identifier="([^"]*)"', html)


def test_autorefs_check_catches_the_old_sources_example():
    """Control: the pre-fix `check_source` docstring, `Example:` (an admonition: Markdown)."""
    style, opts = _docstring_config()
    old = ('Check a source.\n\nExample:\n'
           '    >>> check_source({"kind": "hh_rlhf_hub", "sizes": [8, 8, 8]})["sizes"]\n'
           '    [8, 8, 8]\n')
    sections = griffe.Docstring(old, lineno=1, parser=style, parser_options=opts).parse()
    refs = [r for t in _markdown_texts(sections) for r in _autorefs(t)]
    assert refs == ["8, 8, 8"]
    new = old.replace("Example:", "Examples:")
    sections = griffe.Docstring(new, lineno=1, parser=style, parser_options=opts).parse()
    assert not [r for t in _markdown_texts(sections) for r in _autorefs(t)]


def test_no_docstring_makes_an_accidental_cross_reference(package):
    """No docstring uses `[text][id]` cross-references on purpose, so any `<autoref>` that its
    Markdown produces is an accident (bracketed example output, an index after a call)."""
    found = {}
    for o in _objects(package):
        if o.docstring is None:
            continue
        refs = [r for t in _markdown_texts(o.docstring.parse()) for r in _autorefs(t)]
        if refs:
            found[f"{o.relative_filepath}:{o.docstring.lineno} {o.path}"] = refs
    assert not found, found


def test_docs_toolchain_pins_are_the_installed_versions():
    """`make test` builds the docs strictly with what is installed; the pins in pyproject.toml
    are the versions checked, so the two must agree."""
    from w2s_theory.config import toml_module

    deps = toml_module().loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = dict(re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)\s*", d).groups()
                for d in deps["docs"])
    assert {"mkdocs", "mkdocstrings", "mkdocstrings-python", "griffelib", "mkdocs-autorefs"} <= set(pins)
    assert {name: version(name) for name in pins} == pins
