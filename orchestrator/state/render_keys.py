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

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.state.models import Association, Instance, Server

# What an instance's deployment is derived from (orchestrator.state.instances.deployment_record,
# orchestrator.actions.inventory_export.deployment_variables): keep in step with them.
DEPLOYMENT_COLUMNS = {
    Instance: ("name", "service_id", "service_version", "domain", "http_port", "desired_state", "cpu", "memory_mb",
               "parameters", "secrets", "id_slot"),
    Association: ("slug", "offer", "backup_password"),
}  # fmt: skip
SERVER_COLUMNS = ("name", "address", "ssh_user", "ssh_port", "role", "draining", "ssh_key_path", "ssh_known_hosts_path")


def server_render_keys(session: Session, states: tuple[str, ...], context: str) -> dict[str, str]:
    """Give each server's digest: its columns, its instances in ``states`` (their deployment columns), ``context``."""
    instance_columns = [getattr(Instance, name) for name in DEPLOYMENT_COLUMNS[Instance]]
    association_columns = [getattr(Association, name) for name in DEPLOYMENT_COLUMNS[Association]]
    rows = session.execute(
        select(Instance.server_id, *association_columns, *instance_columns).join(Association, Instance.association)
        .where(Instance.state.in_(states)).order_by(Association.slug, Instance.name)
    )  # fmt: skip
    by_server: dict[int, list[str]] = defaultdict(list)
    for server_id, *values in rows:
        by_server[server_id].append(repr(values))
    keys = {}
    for server_id, *values in session.execute(select(Server.id, *[getattr(Server, n) for n in SERVER_COLUMNS])):
        hashed = hashlib.sha256(context.encode())
        hashed.update(repr(values).encode())
        for line in by_server.get(server_id, []):
            hashed.update(b"\n" + line.encode())
        keys[values[0]] = hashed.hexdigest()
    return keys


def instance_render_keys(session: Session, states: tuple[str, ...], context: str) -> dict[int, str]:
    """Give each instance in ``states`` (by id) the digest of its deployment columns and ``context``: while
    it holds, the instance's deployment fingerprint is the one computed for it before (see actions/plan.py)."""
    instance_columns = [getattr(Instance, name) for name in DEPLOYMENT_COLUMNS[Instance]]
    association_columns = [getattr(Association, name) for name in DEPLOYMENT_COLUMNS[Association]]
    rows = session.execute(
        select(Instance.id, *association_columns, *instance_columns).join(Association, Instance.association)
        .where(Instance.state.in_(states))
    )  # fmt: skip
    prefix = context.encode()
    return {identifier: hashlib.sha256(prefix + repr(values).encode()).hexdigest() for identifier, *values in rows}
