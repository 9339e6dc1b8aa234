"""``ruche inventory export``: write inventories/<environment>/ from the state."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.inventories import write_inventory


def export_inventory(workspace_path: Path | None) -> dict:
    """Write the inventory of the whole fleet and give ``{"directory", "files", "changed", "commit"}``
    (the commit of the inventories' history when something changed)."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return write_inventory(workspace, session, history="inventory export")
