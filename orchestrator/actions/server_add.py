"""``ruche server add``: register a server of the pool."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.actions.common import opened, parse_key_values
from orchestrator.errors import InvalidInput
from orchestrator.state.servers import add_server, server_as_dict, validate_server_spec
from orchestrator.units import parse_size_mib


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
    try:
        memory_mb = parse_size_mib(memory)
        disk_gb = max(1, parse_size_mib(disk) // 1024)
    except ValueError as error:
        raise InvalidInput(f"size: {error}") from None
    if ssh_key is not None:
        key = Path(ssh_key).expanduser()
        if not key.is_file():
            raise InvalidInput(
                f"--ssh-key {ssh_key}: no such file",
                hint="give the private key ruche connects with "
                "(`ssh-keygen -t ed25519 -f FILE` makes one; its .pub goes to the server's authorized_keys)",
            )
        if not os.access(key, os.R_OK):
            raise InvalidInput(
                f"--ssh-key {ssh_key}: not readable by this user", hint=f"`chmod 600 {ssh_key}` as its owner"
            )
        ssh_key = str(key.resolve())
    spec = validate_server_spec(
        name=name, address=address, ssh_user=ssh_user, ssh_port=ssh_port, ssh_key_path=ssh_key,
        cpu=cpu, memory_mb=memory_mb, disk_gb=disk_gb, labels=parse_labels(labels), role=role,
    )  # fmt: skip
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return server_as_dict(add_server(session, spec))
