"""``ruche apply``: bring servers and their instances to the state ruche describes (``operations.converge``)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations.converge import converge


def apply(
    workspace_path: Path | None,
    *,
    server: str | None = None,
    instance: str | None = None,
    progress: Progress = no_progress,
    check_health: bool = True,
    full: bool = False,
) -> dict:
    """Export the inventory and converge the servers (``server`` only, or the server of ``instance``); give the run
    (see :func:`orchestrator.operations.converge.converge`). ``check_health=False`` checks no instance through Caddy
    afterwards; ``full`` converges unchanged instances and servers' bases all the same."""
    with opened(workspace_path) as (workspace, store):
        return converge(
            workspace,
            store,
            server=server,
            instance=instance,
            progress=progress,
            check_health=check_health,
            full=full,
            full_bases=full,
        )
