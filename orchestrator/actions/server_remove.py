"""``ruche server remove``: unregister a server."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import Conflict
from orchestrator.state.servers import get_server, remove_server


def unregister_server(workspace_path: Path | None, name: str) -> None:
    """Unregister server ``name``; raises NotFound, or Conflict for a lab server (use `lab down`)."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        if get_server(session, name).origin == "lab":
            raise Conflict(f"{name} belongs to the lab", hint="`ruche lab down` removes lab servers")
        remove_server(session, name)
