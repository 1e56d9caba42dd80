"""The shape of the code, checked: imports point down (no cycle; read never imports write;
keys sit below memory; backends never import test doubles), and no function or module
grows past what a reader can hold."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "src"
FORBIDDEN = [  # (importer, imported): prefixes of module names
    ("remem.read", "remem.write"),
    ("remem.read", "remem.memory"),
    ("remem.write", "remem.memory"),
    ("remem.stores", "remem.memory"),
    ("remem.keys", "remem.memory"),
    ("remem.inputs", "remem.write"),
    ("remem.embedders", "remem.testing"),
    ("remem.llms", "remem.testing"),
    ("remem.stores", "remem.testing"),
]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The remem modules `name` imports (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            yield from submodules
            if len(submodules) < len(node.names) and base in known:
                yield base


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports(name, path, known)) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_point_down() -> None:
    wrong = [
        (importer, imported)
        for importer, targets in graph().items()
        for imported in targets
        for high, low in FORBIDDEN
        if _within(importer, high) and _within(imported, low)
    ]
    assert wrong == []


def test_functions_and_modules_stay_small() -> None:
    too_long = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                # schema migrations are SQL text, read as a whole
                if lines > MAX_FUNCTION_LINES and not name.endswith("_schema"):
                    too_long.append(f"{name}.{node.name}: {lines} lines")
    assert too_long == []


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")
