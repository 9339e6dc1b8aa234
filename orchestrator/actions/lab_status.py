"""``ruche lab status``: each lab server, its address, whether SSH answers, its systemd state."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.lab import lab_state


def inspect(workspace_path: Path | None) -> dict:
    """Give the lab's state (see :func:`orchestrator.operations.lab.lab_state`)."""
    with opened(workspace_path) as (workspace, store):
        return lab_state(workspace, store)
