"""``ruche server list|show``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.servers import get_server, list_servers, server_as_dict


def servers(workspace_path: Path | None) -> list[dict]:
    """Give every registered server, sorted by name."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [server_as_dict(server) for server in list_servers(session)]


def server(workspace_path: Path | None, name: str) -> dict:
    """Give the server called ``name``; raises NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return server_as_dict(get_server(session, name))
