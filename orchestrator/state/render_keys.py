"""Digests of what each server's inventory file is made of, read as plain rows (no ORM object).

``inventory export`` renders a server's ``host_vars`` file again only when its digest changed (or the
file on disk is not the one it wrote): at 30,000 instances rendering them all takes minutes, reading
these rows a fraction of a second. A digest covers every column the file is derived from (the
server's own, and for each of its active instances the columns ``deployment_record`` and
``deployment_variables`` read, see DEPLOYMENT_COLUMNS, which a test holds to what they read) plus
the catalogue, the configuration and ruche's own code (the caller's ``context``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import JSON, String, cast, select
from sqlalchemy.orm import Session

from orchestrator.deployment import instance_identifier
from orchestrator.state.models import Association, Instance, Server

# What an instance's deployment is derived from (orchestrator.state.instances.deployment_record,
# orchestrator.operations.inventories.deployment_variables): keep in step with them.
DEPLOYMENT_COLUMNS = {
    Instance: ("name", "service_id", "service_version", "domain", "http_port", "desired_state", "cpu", "memory_mb",
               "parameters", "secrets", "id_slot", "own_domains", "primary_domain"),
    Association: ("slug", "offer", "backup_password"),
}  # fmt: skip
SERVER_COLUMNS = ("name", "address", "ssh_user", "ssh_port", "role", "draining", "ssh_key_path", "ssh_known_hosts_path")


@dataclass(frozen=True)
class InstanceKey:
    """An instance's render key (``key``) with where it is (its row id, server row id, address)."""

    row: int
    server_row: int
    association: str
    name: str
    key: str

    @property
    def id(self) -> str:
        """The instance's id in the inventory (orchestrator.deployment)."""
        return instance_identifier(self.association, self.name)


def _column(model, name: str):
    column = getattr(model, name)
    # JSON read as its stored text: the digest needs no parsing (a third of the time at 30,000 instances)
    return cast(column, String) if isinstance(column.type, JSON) else column


def instance_keys(session: Session, states: tuple[str, ...], context: str) -> list[InstanceKey]:
    """Give every instance in ``states`` with the digest of its deployment columns and ``context``: while
    it holds, the instance's deployment (its variables, its text in the inventory) is the one computed before."""
    columns = [_column(Association, n) for n in DEPLOYMENT_COLUMNS[Association]]
    columns += [_column(Instance, n) for n in DEPLOYMENT_COLUMNS[Instance]]
    rows = session.execute(
        select(Instance.id, Instance.server_id, Association.slug, Instance.name, *columns)
        .join(Association, Instance.association).where(Instance.state.in_(states))
    )  # fmt: skip
    prefix = context.encode()
    return [InstanceKey(row, server_row, slug, name, hashlib.sha256(prefix + repr(values).encode()).hexdigest())
            for row, server_row, slug, name, *values in rows]  # fmt: skip


def instance_render_keys(session: Session, states: tuple[str, ...], context: str) -> dict[int, str]:
    """Give each instance in ``states`` (by row id) its key (see instance_keys; used by actions/plan.py)."""
    return {k.row: k.key for k in instance_keys(session, states, context)}


def server_render_keys(session: Session, context: str, instances: list[InstanceKey]) -> dict[str, str]:
    """Give each server's digest: its columns, the keys of its ``instances`` (see instance_keys), ``context``."""
    by_server: dict[int, list[InstanceKey]] = defaultdict(list)
    for instance in instances:
        by_server[instance.server_row].append(instance)
    keys = {}
    for server_row, *values in session.execute(select(Server.id, *[getattr(Server, n) for n in SERVER_COLUMNS])):
        hashed = hashlib.sha256(context.encode())
        hashed.update(repr(values).encode())
        for instance in sorted(by_server.get(server_row, []), key=lambda i: (i.association, i.name)):
            hashed.update(f"\n{instance.id} {instance.key}".encode())
        keys[values[0]] = hashed.hexdigest()
    return keys
