"""``ruche inventory diff``: what changed between two recorded inventories, in the fleet's terms."""

from __future__ import annotations

from pathlib import Path

from orchestrator import inventory_history
from orchestrator.workspace import open_workspace


def inventory_diff(workspace_path: Path | None, before: str | None = None, after: str | None = None) -> dict:
    """Compare the inventories recorded at ``before`` and ``after`` (run ids or Git revisions; by default
    the last recorded commit and the one before it). Gives the commits, the changes and their lines."""
    workspace = open_workspace(workspace_path)
    inventories, environment = workspace.inventories_dir, workspace.config.environment
    to = inventory_history.resolve(inventories, after or "HEAD")
    since = (
        inventory_history.resolve(inventories, before)
        if before is not None
        else inventory_history.parent_of(inventories, to)
    )
    changes = inventory_history.describe_changes(
        inventory_history.files_at(inventories, since, environment) if since else {},
        inventory_history.files_at(inventories, to, environment),
    )
    return {"from": since, "to": to, "summary": inventory_history.summary_line(changes),
            "changes": changes, "lines": inventory_history.change_lines(changes)}  # fmt: skip
