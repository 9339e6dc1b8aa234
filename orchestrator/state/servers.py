"""The registry of the collective's servers: validation of entries (new or changed) and queries."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.state.models import Instance, Server
from orchestrator.units import parse_size_mib
from orchestrator.validation import describe_validation_error

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9_.-]{0,62})$")


class ServerSpec(BaseModel):
    """What an admin (or the lab) declares about a server; the only definition of its fields."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, Field(pattern=SLUG_PATTERN, description="Short unique name: lower-case letters, digits, inner dashes.")
    ]
    address: Annotated[str, Field(description="IP address or DNS name ruche reaches the server at over SSH.")]
    ssh_user: Annotated[
        str,
        Field(
            pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
            description="SSH user: root (the playbooks and server tools run as it, without sudo).",
        ),
    ] = "root"
    ssh_port: Annotated[int, Field(ge=1, le=65535, description="SSH port.")] = 22
    ssh_key_path: Annotated[str | None, Field(description="Private key file; unset uses the SSH agent/defaults.")] = (
        None
    )
    ssh_known_hosts_path: Annotated[
        str | None, Field(description="known_hosts file holding the server's host key; unset uses ~/.ssh.")
    ] = None
    cpu: Annotated[int, Field(ge=1, le=1024, description="CPU cores offered to instances.")] = 2
    memory_mb: Annotated[int, Field(ge=256, description="Memory offered to instances, in MiB.")] = 4096
    disk_gb: Annotated[int, Field(ge=1, description="Disk offered to instance volumes, in GiB.")] = 50
    labels: Annotated[dict[str, str], Field(description="Free labels used by placement (e.g. region=lyon).")] = {}
    role: Annotated[
        Literal["apps", "backup"], Field(description="'apps' hosts instances; 'backup' only holds backups.")
    ] = "apps"
    origin: Annotated[
        Literal["manual", "lab"], Field(description="Who registered it: an admin, or `ruche lab up`.")
    ] = "manual"

    @field_validator("address")
    @classmethod
    def _address_is_ip_or_hostname(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.match(value):
                raise ValueError("must be an IP address or a DNS name") from None
        return value

    @field_validator("labels")
    @classmethod
    def _labels_are_simple(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} must be lower-case letters, digits, '_', '.', '-'")
            if not re.match(r"^[A-Za-z0-9_.-]{0,63}$", label):
                raise ValueError(f"label value {label!r} must be letters, digits, '_', '.', '-' (63 at most)")
        return value


def validate_server_spec(**fields) -> ServerSpec:
    """Give a ServerSpec from keyword fields; raises InvalidInput naming each wrong field."""
    try:
        return ServerSpec(**fields)
    except ValidationError as error:
        raise InvalidInput("\n".join(describe_validation_error(error, "server"))) from None


def memory_mib(text: str) -> int:
    """Give a server's ``--memory`` (``8G``, ``32GiB``, a bare number of MiB) in MiB; raises InvalidInput."""
    try:
        return parse_size_mib(text)
    except ValueError as error:
        raise InvalidInput(f"size: {error}") from None


def disk_gib(text: str) -> int:
    """Give a server's ``--disk`` (``500G``, ``1T``) in whole GiB (at least 1); raises InvalidInput."""
    try:
        return max(1, parse_size_mib(text) // 1024)
    except ValueError as error:
        raise InvalidInput(f"size: {error}") from None


def ssh_key_file(path: str) -> str:
    """Give the absolute path of the private key file ``path`` (``~`` expanded); raises InvalidInput when it
    is not a file or this user cannot read it (`ruche server add` and `server set` alike)."""
    key = Path(path).expanduser()
    if not key.is_file():
        raise InvalidInput(
            f"--ssh-key {path}: no such file",
            hint="give the private key ruche connects with "
            "(`ssh-keygen -t ed25519 -f FILE` makes one; its .pub goes to the server's authorized_keys)",
        )
    if not os.access(key, os.R_OK):
        raise InvalidInput(f"--ssh-key {path}: not readable by this user", hint=f"`chmod 600 {path}` as its owner")
    return str(key.resolve())


def refuse_clash(session: Session, name: str | None, address: str, *, other_than: int | None = None) -> None:
    """Raise Conflict when another server has this name or address."""
    taken = (Server.name == name) | (Server.address == address) if name is not None else Server.address == address
    query = select(Server).where(taken)
    if other_than is not None:
        query = query.where(Server.id != other_than)
    clash = session.scalars(query).first()
    if clash is not None:
        what = "name" if clash.name == name else "address"
        raise Conflict(f"a server with this {what} is already registered: {clash.name} ({clash.address})")


def add_server(session: Session, spec: ServerSpec) -> Server:
    """Register ``spec``; raises Conflict when the name or address is already registered."""
    refuse_clash(session, spec.name, spec.address)
    server = Server(**spec.model_dump(), draining=False)
    session.add(server)
    session.flush()
    return server


def spec_of(server: Server) -> dict:
    """Give the ServerSpec fields of a registered ``server``, as they are stored."""
    return {field: getattr(server, field) for field in ServerSpec.model_fields}


def changed_spec(server: Server, changes: dict) -> ServerSpec:
    """Give ``server``'s spec with ``changes`` (ServerSpec fields), validated as a new entry is; raises
    InvalidInput naming each wrong field."""
    return validate_server_spec(**(spec_of(server) | changes))


def check_address_free(session: Session, server: Server, address: str) -> None:
    """Raise Conflict when a server other than ``server`` is registered at ``address``."""
    refuse_clash(session, None, address, other_than=server.id)


def update_server(session: Session, server: Server, spec: ServerSpec) -> list[str]:
    """Give ``server`` the values of ``spec`` (its name unchanged); give the fields that changed.

    Raises Conflict when another server has its new address. The audit trail records the change
    (``servers.changed``, before and after) when the session flushes."""
    if spec.name != server.name:
        raise InvalidInput(f"a server's name cannot change ({server.name} -> {spec.name})")
    if spec.address != server.address:
        check_address_free(session, server, spec.address)
    changed = []
    for field, value in spec.model_dump().items():
        if getattr(server, field) != value:
            # labels as a new dict: a JSON column mutated in place is not seen changed
            setattr(server, field, dict(value) if isinstance(value, dict) else value)
            changed.append(field)
    session.flush()
    return changed


def list_servers(session: Session, *, origin: str | None = None) -> list[Server]:
    """Give the registered servers sorted by name, optionally only those of one origin."""
    query = select(Server).order_by(Server.name)
    if origin is not None:
        query = query.where(Server.origin == origin)
    return list(session.scalars(query))


def get_server(session: Session, name: str) -> Server:
    """Give the server called ``name``; raises NotFound listing the known names."""
    server = session.scalars(select(Server).where(Server.name == name)).first()
    if server is None:
        known = ", ".join(s.name for s in list_servers(session)) or "none registered"
        raise NotFound(f"no server named {name!r} (known: {known})")
    return server


def remove_server(session: Session, name: str, *, with_instances: bool = False) -> int:
    """Unregister the server called ``name`` and the records of its deleted instances; give how many.

    Raises NotFound if there is none, and Conflict while it holds instances that are not deleted,
    unless ``with_instances`` (the lab: its servers take their instances with them).
    """
    server = get_server(session, name)
    hosted = list(session.scalars(select(Instance).where(Instance.server_id == server.id)))
    active = sorted(i.address for i in hosted if i.state != "deleted")
    if active and not with_instances:
        raise Conflict(
            f"server {name} still holds {len(active)} instance(s): {', '.join(active[:5])}",
            hint="delete them (`ruche instance delete`) or drain the server and move them first",
        )
    for instance in hosted:
        session.delete(instance)
    session.flush()
    session.delete(server)
    return len(hosted)


def server_as_dict(server: Server) -> dict:
    """Give a JSON-ready view of ``server`` (no secret is stored on a server row)."""
    return {
        "name": server.name,
        "address": server.address,
        "ssh_user": server.ssh_user,
        "ssh_port": server.ssh_port,
        "ssh_key_path": server.ssh_key_path,
        "ssh_known_hosts_path": server.ssh_known_hosts_path,
        "cpu": server.cpu,
        "memory_mb": server.memory_mb,
        "disk_gb": server.disk_gb,
        "labels": dict(sorted(server.labels.items())),
        "role": server.role,
        "draining": server.draining,
        "origin": server.origin,
    }
