"""``ruche server add``: register a server of the pool."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened, parse_key_values
from orchestrator.state.servers import (
    add_server,
    disk_gib,
    memory_mib,
    server_as_dict,
    ssh_key_file,
    validate_server_spec,
)


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """Give ``{"k": "v"}`` for ``--label k=v`` pairs; raises InvalidInput for a malformed or repeated one."""
    return parse_key_values(pairs, option="--label", example="region=lyon")


def register_server(
    workspace_path: Path | None,
    *,
    name: str,
    address: str,
    ssh_user: str,
    ssh_port: int,
    ssh_key: str | None,
    cpu: int,
    memory: str,
    disk: str,
    labels: tuple[str, ...],
    role: str,
) -> dict:
    """Validate and register a server; give its entry. Raises InvalidInput or Conflict, storing nothing."""
    memory_mb, disk_gb = memory_mib(memory), disk_gib(disk)
    if ssh_key is not None:
        ssh_key = ssh_key_file(ssh_key)
    spec = validate_server_spec(
        name=name, address=address, ssh_user=ssh_user, ssh_port=ssh_port, ssh_key_path=ssh_key,
        cpu=cpu, memory_mb=memory_mb, disk_gb=disk_gb, labels=parse_labels(labels), role=role,
    )  # fmt: skip
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return server_as_dict(add_server(session, spec))
