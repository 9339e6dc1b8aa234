"""``ruche server trust``: read a server's SSH host key, show its fingerprint and, once accepted, record it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import Conflict
from orchestrator.remote import trust_host_key
from orchestrator.state.servers import changed_spec, get_server, server_as_dict, update_server


def trust_server(workspace_path: Path | None, name: str, confirm: Callable[[str, str], bool]) -> dict:
    """Record the host key server ``name`` offers now in ``WORKSPACE/known_hosts/NAME`` once ``confirm(type,
    fingerprint)`` accepts it, and make it the server's known_hosts file; give ``{"server", "fingerprint",
    "known_hosts"}``. For a server added with --no-connect, or whose key changed (reinstalled, moved).

    Raises NotFound, Conflict (a lab server: `ruche lab up` records its keys), OperationFailed (no answer,
    key refused: nothing recorded)."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        server = get_server(session, name)
        if server.origin == "lab":
            raise Conflict(f"{name} belongs to the lab, whose host keys `ruche lab up` records")
        path = workspace.known_hosts_dir / name
        fingerprint = trust_host_key(path, server.address, server.ssh_port, confirm)
        update_server(session, server, changed_spec(server, {"ssh_known_hosts_path": str(path)}))
        return {"server": server_as_dict(server), "fingerprint": fingerprint, "known_hosts": str(path)}
