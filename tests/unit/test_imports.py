"""The package's imports: no circle, verbs do not import verbs, and operations import no floor above them.

Top-level imports only (an import inside a function, made to load a heavy module late, is not a floor's edge).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


def module_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports at its top level."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {other for other in imported if other in modules and other != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_package_imports_itself_through_others():
    assert circles(module_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def imports_of(graph: dict[str, set[str]], prefix: str) -> set[tuple[str, str]]:
    """The (module, imported module) pairs of the modules under ``prefix``, including imports made inside functions."""
    found = set()
    for path in (PACKAGE.parent / prefix.replace(".", "/")).rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {(name, node.module)} | {(name, f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {(name, alias.name) for alias in node.names}
    return {(name, other) for name, other in found if other in graph}


def test_no_verb_imports_another_verb():
    # what verbs share lives under them, in orchestrator.operations (issue 23); an import inside a function counts too
    prefix = "orchestrator.actions."
    graph = module_graph()
    found = sorted(
        (name.removeprefix(prefix), other.removeprefix(prefix))
        for name, other in imports_of(graph, "orchestrator.actions")
        if other.startswith(prefix) and other not in (f"{prefix}common", name)
    )
    assert found == [], "a verb imports another verb: move what they share to orchestrator/operations/"


def test_operations_import_no_verb_no_cli_and_no_web():
    graph = module_graph()
    upward = sorted(
        (name, other)
        for name, other in imports_of(graph, "orchestrator.operations")
        if other.startswith(("orchestrator.actions", "orchestrator.cli", "orchestrator.web"))
    )
    assert upward == [], "an operation imports a floor above it: operations are called, they call nothing above"
