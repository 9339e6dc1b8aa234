"""The package's imports: no circle, and verbs do not import verbs (beyond the ones listed, which only shrink).

Top-level imports only (an import inside a function, made to load a heavy module late, is not a floor's edge).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"

# Actions importing other actions (issue 23: the shared work moves to a layer of its own under the verbs).
# The list may only shrink: a new verb-to-verb import fails, and so does an entry no longer needed.
VERB_TO_VERB = {
    ("apply", "backup_run"), ("apply", "inventory_export"), ("apply", "plan"), ("apply", "status"),
    ("audit", "audit_servers"), ("audit", "inventory_export"), ("audit_servers", "inventory_export"),
    ("backup_expire", "backup_run"), ("backup_list", "backup_run"), ("backup_restore", "apply"),
    ("backup_restore", "backup_run"), ("backup_restore", "instance_create"), ("backup_restore", "instance_lifecycle"),
    ("backup_restore", "status"), ("export", "backup_run"), ("instance_create", "catalog"),
    ("instance_lifecycle", "apply"), ("instance_lifecycle", "backup_run"), ("instance_move", "apply"),
    ("instance_move", "backup_run"), ("instance_move", "inventory_export"), ("instance_move", "status"),
    ("instance_upgrade", "apply"), ("instance_upgrade", "backup_restore"), ("instance_upgrade", "backup_run"),
    ("instance_upgrade", "status"), ("lab_up", "lab_down"), ("lab_up", "lab_status"), ("plan", "inventory_export"),
    ("request_review", "instance_create"), ("request_submit", "request_review"), ("worker", "apply"),
    ("worker", "instance_upgrade"),
}  # fmt: skip


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


def test_verbs_import_no_other_verb_beyond_the_shrinking_list():
    graph = module_graph()
    prefix = "orchestrator.actions."
    found = {
        (name.removeprefix(prefix), other.removeprefix(prefix))
        for name, imported in graph.items()
        if name.startswith(prefix)
        for other in imported
        if other.startswith(prefix) and other != f"{prefix}common"
    }
    assert not found - VERB_TO_VERB, "a verb imports another verb: move what they share under the verbs"
    assert not VERB_TO_VERB - found, "these imports are gone: take them off VERB_TO_VERB"
