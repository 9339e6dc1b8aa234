"""``ruche server add``: register a server of the pool."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened, parse_labels
from orchestrator.errors import InvalidInput, OperationFailed
from orchestrator.remote import trust_host_key
from orchestrator.state.servers import (
    add_server,
    disk_gib,
    memory_mib,
    refuse_clash,
    server_as_dict,
    ssh_key_file,
    validate_server_spec,
)


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
    known_hosts: str | None = None,
    connect: bool = True,
    confirm_host_key: Callable[[str, str], bool] | None = None,
) -> dict:
    """Validate and register a server; give its entry. Raises InvalidInput or Conflict, storing nothing.

    Its SSH host key: from ``known_hosts`` (a file the admin keeps), else read from the server now and, once
    ``confirm_host_key(type, fingerprint)`` accepts it, recorded in ``WORKSPACE/known_hosts/NAME`` (so that
    every connection verifies it); ``connect=False`` records none (`ruche server trust NAME` does it later).
    Raises OperationFailed when the server does not answer or its key is refused.
    """
    memory_mb, disk_gb = memory_mib(memory), disk_gib(disk)
    if ssh_key is not None:
        ssh_key = ssh_key_file(ssh_key)
    if known_hosts is not None:
        known_hosts = known_hosts_file(known_hosts)
    spec = validate_server_spec(
        name=name, address=address, ssh_user=ssh_user, ssh_port=ssh_port, ssh_key_path=ssh_key,
        ssh_known_hosts_path=known_hosts, cpu=cpu, memory_mb=memory_mb, disk_gb=disk_gb,
        labels=parse_labels(labels), role=role,
    )  # fmt: skip
    with opened(workspace_path) as (workspace, store), store.session() as session:
        if known_hosts is None and connect:
            refuse_clash(session, spec.name, spec.address)  # before asking the admin about a key
            path = workspace.known_hosts_dir / spec.name
            try:
                trust_host_key(path, spec.address, spec.ssh_port, confirm_host_key or (lambda _type, _print: False))
            except OperationFailed as error:
                raise OperationFailed(error.message, hint="nothing was registered; check --address and --ssh-port, "
                                      "or add --no-connect to register it now and `ruche server trust "
                                      f"{spec.name}` once it answers") from None  # fmt: skip
            spec = spec.model_copy(update={"ssh_known_hosts_path": str(path)})
        return server_as_dict(add_server(session, spec))


def known_hosts_file(path: str) -> str:
    """Give the absolute path of the known_hosts file ``path``; raises InvalidInput when it is not a readable file."""
    file = Path(path).expanduser()
    if not file.is_file() or not os.access(file, os.R_OK):
        raise InvalidInput(f"--known-hosts {path}: no such readable file",
                           hint="give a known_hosts file holding the server's host key, or leave it out: ruche "
                           "reads the key from the server, shows its fingerprint and asks")  # fmt: skip
    return str(file.resolve())
