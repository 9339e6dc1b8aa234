"""``ruche server drain|undrain``: keep new instances off a server (or let them back)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.servers import get_server, server_as_dict


def set_draining(workspace_path: Path | None, name: str, draining: bool) -> dict:
    """Mark server ``name`` draining (placement skips it) or not; give its entry. Raises NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        server = get_server(session, name)
        server.draining = draining
        return server_as_dict(server)
