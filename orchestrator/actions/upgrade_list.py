"""``ruche upgrades``: the recorded upgrades."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state import upgrades


def list_upgrades(workspace_path: Path | None, *, instance: str | None = None, fleet: str | None = None,
                  limit: int = 50) -> list[dict]:  # fmt: skip
    """Give the recorded upgrades, newest first (of one instance, or of one fleet upgrade)."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [
            upgrades.upgrade_as_dict(u)
            for u in upgrades.list_upgrades(session, instance=instance, fleet=fleet, limit=limit)
        ]
