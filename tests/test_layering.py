"""The import graph keeps the layers of docs/architecture.md ("Layers").

Every module under ``src/recai`` is parsed with ``ast`` (nothing is imported). Imports at module level
and inside functions count; imports under ``if TYPE_CHECKING:`` never run and are not checked. Relative
imports are resolved, and ``from package import name`` counts as an import of the submodule when
``name`` is one. The rules:

1. no module imports a module of a higher layer; a CLI module (``recai.cli``, ``recai.cli_*``,
   ``recai.__main__`` and every ``commands.py``) is the top layer and may import anything;
2. the module-level imports between modules form no cycle;
3. no two units (the rows of ``LAYERS``) import each other, even through imports inside functions.
   Inside one unit a cycle through a function-level import is allowed: that is deliberate laziness
   (``load_encoder`` imports its backends only when one is asked for).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "recai"

# unit -> layer; a module belongs to the longest unit that prefixes its name (docs/architecture.md)
LAYERS: dict[str, int] = {
    "recai": 0,  # the flat lazy facade: importing it loads nothing (as an importer it is exempt)
    "recai._lazy": 0,
    "recai.errors": 0,  # RecaiError, the base of every library exception
    "recai.data": 0,
    "recai.evaluate.metrics": 0,  # pure numpy ranking metrics: rec uses them for early stopping
    "recai.llm": 1,
    "recai.rec": 1,
    "recai.evaluate": 2,  # evaluation core: parsing, samples, simulator, judge, runs, reports, prices
    "recai.train": 2,  # the training layer: trainer arguments, work folders, SFT recipe, collators, chat encoding
    "recai.embed": 3,
    "recai.agent": 4,
    "recai.gen": 4,
    "recai.knowledge": 4,
    "recai.explain": 4,
    "recai.evaluate.runners": 5,  # what `recai eval` runs: every system, from classic models to the agent
    "recai.serve": 5,
    "recai.testing": 6,
}
CLI_LAYER = 7
EXEMPT = {"recai"}  # the lazy facade names every public object (only under TYPE_CHECKING)
# (importer, imported) edges left on purpose until their fix lands; each says why. Keep this empty.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    path: Path
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _existing(name: str) -> str:
    """The module ``name`` names, or its closest parent that is one (``recai.x.func`` -> ``recai.x``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports() -> list[Import]:
    found: list[Import] = []
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]

        def visit(
            node: ast.AST, in_function: bool, module: str = module, path: Path = path, package: str = package
        ) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    for other in child.orelse:
                        visit(other, in_function)
                    continue
                inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base = package.split(".")[: len(package.split(".")) - child.level + 1]
                        origin = ".".join([*base, *([child.module] if child.module else [])])
                    else:
                        origin = child.module or ""
                    for alias in child.names:
                        sub = f"{origin}.{alias.name}"
                        targets.append(sub if sub in MODULES else origin)
                for target in targets:
                    if target == "recai" or target.startswith("recai."):
                        found.append(Import(module, _existing(target), path, child.lineno, in_function))
                visit(child, inner)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return list(dict.fromkeys(found))  # one entry per (module, target, line)


IMPORTS = _imports()


def _is_cli(module: str) -> bool:
    return (
        module in ("recai.cli", "recai.__main__")
        or module.startswith("recai.cli_")
        or module.endswith(".commands")
    )


def unit(module: str) -> str:
    if _is_cli(module):
        return module
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")


def layer(module: str) -> int:
    return CLI_LAYER if _is_cli(module) else LAYERS[unit(module)]


def _where(imp: Import) -> str:
    kind = "inside a function" if imp.in_function else "at module level"
    return f"{imp.path.relative_to(SRC.parent)}:{imp.line} imports {imp.target} ({kind})"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{_where(imp)}: layer {layer(imp.source)} ({unit(imp.source)}) imports layer {layer(imp.target)} "
        f"({unit(imp.target)})"
        for imp in IMPORTS
        if imp.source not in EXEMPT
        and layer(imp.target) > layer(imp.source)
        and (imp.source, imp.target) not in ALLOWED
    ]
    assert not upward, "imports of a higher layer (see docs/architecture.md, Layers):\n" + "\n".join(upward)


def test_no_import_cycle_at_module_level() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if not imp.in_function and imp.source != imp.target:
            edges[imp.source].add(imp.target)
    cycles = _cycles(edges)
    detail = [
        _where(imp)
        for cycle in cycles
        for imp in IMPORTS
        if not imp.in_function and imp.source in cycle and imp.target in cycle and imp.source != imp.target
    ]
    assert not cycles, f"module-level import cycles {cycles}:\n" + "\n".join(detail)


def test_no_import_cycle_between_units() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if (
            imp.source not in EXEMPT
            and unit(imp.source) != unit(imp.target)
            and (imp.source, imp.target) not in ALLOWED
        ):
            edges[unit(imp.source)].add(unit(imp.target))
    cycles = _cycles(edges)
    detail = [
        _where(imp)
        for cycle in cycles
        for imp in IMPORTS
        if imp.source not in EXEMPT
        and (imp.source, imp.target) not in ALLOWED
        and unit(imp.source) in cycle
        and unit(imp.target) in cycle
        and unit(imp.source) != unit(imp.target)
    ]
    assert not cycles, f"import cycles between units {cycles}:\n" + "\n".join(detail)


def test_allowed_edges_still_exist() -> None:
    """An allowance whose import is gone must be deleted, so the list only shrinks."""
    present = {(imp.source, imp.target) for imp in IMPORTS}
    assert not set(ALLOWED) - present, f"remove from ALLOWED: {sorted(set(ALLOWED) - present)}"


def test_the_checker_sees_relative_and_function_level_imports() -> None:
    """The parser itself: a function-level import is found and marked, and every edge names a module."""
    assert any(imp.in_function for imp in IMPORTS)
    assert all(imp.target in MODULES for imp in IMPORTS)
    assert layer("recai.gen.commands") == CLI_LAYER
    assert layer("recai.evaluate.runners") > layer("recai.evaluate.runs") > layer("recai.rec.base")


def test_a_catalog_loads_its_index_provider_on_demand() -> None:
    """data never imports embed, yet ``catalog.index()`` works in a process that has not imported it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from recai.data import load\n"
        "catalog = load('demo').catalog\n"
        "assert 'recai.embed' not in sys.modules\n"
        "try:\n"
        "    catalog.index(encoder='no-such-backend:x')\n"
        "except Exception as exc:\n"
        "    assert 'Catalog.index' not in str(exc), exc\n"
        "assert 'recai.embed' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
