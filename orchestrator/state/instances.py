"""Instances: queries, and the allocations placement needs."""

from __future__ import annotations

import json

from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from orchestrator.deployment import DEFAULT_RETENTION, InstanceRecord, MailRelay
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.idranges import POOL_START, RANGE_SIZE, id_range
from orchestrator.placement import Capacity
from orchestrator.quotas import Allocation
from orchestrator.state.models import Association, Instance, Server
from orchestrator.state.servers import list_servers

# Every state but "deleted": such instances hold room on their server and appear in the inventory.
ACTIVE_STATES = ("planned", "running", "suspended", "failed")


def list_instances(session: Session, *, association: str | None = None, servers: list[str] | None = None,
                   rows: list[int] | None = None) -> list[Instance]:  # fmt: skip
    """Give instances (all, or one association's, or those on ``servers``, or of these row ids) sorted by address."""
    # one query: each instance's association and server come with it (no query per instance)
    query = (
        select(Instance).join(Association).options(contains_eager(Instance.association), selectinload(Instance.server))
        .order_by(Association.slug, Instance.name)
    )  # fmt: skip
    if association is not None:
        query = query.where(Association.slug == association)
    if servers is not None:
        query = query.where(Instance.server_id.in_(select(Server.id).where(Server.name.in_(servers))))
    if rows is not None:
        query = query.where(Instance.id.in_(rows))
    return list(session.scalars(query))


def parse_address(address: str) -> tuple[str, str]:
    """Give (association, name) of ``ASSOCIATION/NAME``; raises InvalidInput otherwise."""
    association, separator, name = address.partition("/")
    if not separator or not association or not name or "/" in name:
        raise InvalidInput(f"{address!r} is not an instance address; write ASSOCIATION/NAME, e.g. mon-asso/nextcloud")
    return association, name


def get_instance(session: Session, address: str) -> Instance:
    """Give the instance at ``ASSOCIATION/NAME``; raises InvalidInput or NotFound."""
    association, name = parse_address(address)
    instance = session.scalars(
        select(Instance).join(Association).where(Association.slug == association, Instance.name == name)
    ).first()
    if instance is None:
        raise NotFound(f"no instance {address}", hint="`ruche instance list` shows them")
    return instance


def capacities(session: Session, association_id: int) -> list[Capacity]:
    """Give every server with what its active instances already hold, for placement (summed by the
    database: at 30,000 instances loading them took most of an `instance create`)."""
    held = {
        server_id: (cpu, memory_mb, disk_gb, own)
        for server_id, cpu, memory_mb, disk_gb, own in session.execute(
            select(Instance.server_id, func.sum(Instance.cpu), func.sum(Instance.memory_mb), func.sum(Instance.disk_gb),
                   func.sum(case((Instance.association_id == association_id, 1), else_=0)))
            .where(Instance.state.in_(ACTIVE_STATES)).group_by(Instance.server_id)
        )
    }  # fmt: skip
    result = []
    for server in list_servers(session):
        cpu, memory_mb, disk_gb, own = held.get(server.id, (0.0, 0, 0, 0))
        result.append(
            Capacity(
                name=server.name, role=server.role, draining=server.draining, labels=dict(server.labels),
                cpu=server.cpu, memory_mb=server.memory_mb, disk_gb=server.disk_gb,
                allocated_cpu=float(cpu or 0), allocated_memory_mb=int(memory_mb or 0), allocated_disk_gb=int(disk_gb or 0),
                association_instances=int(own or 0), origin=server.origin,
            )
        )  # fmt: skip
    return result


def instance_as_dict(instance: Instance) -> dict:
    """A JSON-ready view of ``instance`` (parameters are user data, never secrets)."""
    return {
        "address": instance.address,
        "association": instance.association.slug,
        "name": instance.name,
        "service": instance.service_id,
        "version": instance.service_version,
        "size": instance.size,
        "cpu": instance.cpu,
        "memory_mb": instance.memory_mb,
        "disk_gb": instance.disk_gb,
        "server": instance.server.name,
        "parameters": dict(sorted(instance.parameters.items())),
        "domain": instance.domain,
        "url": f"https://{instance.domain}/",
        "desired_state": instance.desired_state,
        "state": instance.state,
        "health": instance.health,
        "health_detail": instance.health_detail,
        "health_checked_at": instance.health_checked_at.isoformat() if instance.health_checked_at else None,
        "last_run_id": instance.last_run_id,
        "secrets": sorted(instance.secrets),  # names only
        "id_range": id_range(instance.id_slot).as_dict() if instance.id_slot is not None else None,
    }


# The columns instance_views reads: what instance_as_dict shows, without loading ORM objects.
_VIEW_COLUMNS = (
    Association.slug, Instance.name, Instance.service_id, Instance.service_version, Instance.size, Instance.cpu,
    Instance.memory_mb, Instance.disk_gb, Server.name, Instance.parameters, Instance.domain, Instance.desired_state,
    Instance.state, Instance.health, Instance.health_detail, Instance.health_checked_at, Instance.last_run_id,
    Instance.secrets, Instance.id_slot,
)  # fmt: skip


def instance_views(
    session: Session, *, association: str | None = None, states: tuple[str, ...] | None = None
) -> list[dict]:
    """What ``instance_as_dict`` gives for every instance (or one association's, or in ``states``), sorted by
    address: one query of plain rows, no ORM object (listings of 30,000 instances; see benchmarks/)."""
    # the JSON columns come as their text and are parsed in one call (a call per value cost a third)
    columns = [cast(c, String) if c in (Instance.parameters, Instance.secrets) else c for c in _VIEW_COLUMNS]
    query = select(*columns).join(Association, Instance.association).join(Server, Instance.server)
    if association is not None:
        query = query.where(Association.slug == association)
    if states is not None:
        query = query.where(Instance.state.in_(states))
    rows = session.execute(query.order_by(Association.slug, Instance.name)).all()
    parsed = json.loads("[" + ",".join(f"{row[9] or '{}'},{row[17] or '{}'}" for row in rows) + "]") if rows else []
    views = []
    for n, (slug, name, service, version, size, cpu, memory_mb, disk_gb, server, _parameters, domain, desired_state,
            state, health, health_detail, checked_at, run_id, _secrets, slot) in enumerate(rows):  # fmt: skip
        parameters, secrets = parsed[2 * n] or {}, parsed[2 * n + 1] or {}
        start = POOL_START + slot * RANGE_SIZE if slot is not None else None
        views.append({
            "address": f"{slug}/{name}", "association": slug, "name": name, "service": service, "version": version,
            "size": size, "cpu": cpu, "memory_mb": memory_mb, "disk_gb": disk_gb, "server": server,
            "parameters": dict(sorted(parameters.items())), "domain": domain, "url": f"https://{domain}/",
            "desired_state": desired_state, "state": state, "health": health, "health_detail": health_detail,
            "health_checked_at": checked_at.isoformat() if checked_at else None, "last_run_id": run_id,
            "secrets": sorted(secrets),
            # as id_range(slot).as_dict() (a test holds them equal), without an object per row
            "id_range": {"slot": slot, "start": start, "size": RANGE_SIZE, "end": start + RANGE_SIZE - 1} if start is not None else None,
        })  # fmt: skip
    return views


def deployment_record(
    instance: Instance,
    limits: dict[str, str] | None = None,
    retention: dict[str, int] | None = None,
    with_backups: bool = False,
    mail: MailRelay | None = None,
) -> InstanceRecord:
    """Give the facts of ``instance`` its deployment is derived from.

    ``limits``: its service's limits under its offer; ``retention``: its offer's backup retention;
    ``with_backups``: give it its association's restic password (when backups are configured).
    """
    return InstanceRecord(
        association=instance.association.slug, name=instance.name, domain=instance.domain,
        http_port=instance.http_port, desired_state=instance.desired_state, cpu=instance.cpu,
        memory_mb=instance.memory_mb, parameters=dict(instance.parameters), secrets=dict(instance.secrets),
        limits=dict(limits or {}), backup_retention=dict(retention or DEFAULT_RETENTION),
        backup_password=instance.association.backup_password if with_backups else None,
        id_start=id_range(instance.id_slot).start if instance.id_slot is not None else None, mail=mail,
        version=instance.service_version, own_domains=tuple(instance.own_domains or ()),
        primary_domain=instance.primary_domain,
    )  # fmt: skip


def allocation(session: Session, association_id: int) -> Allocation:
    """Give what the association's active instances take from its offer (sizes, not measured use)."""
    held = [
        i for i in session.scalars(select(Instance).where(Instance.association_id == association_id))
        if i.state in ACTIVE_STATES
    ]  # fmt: skip
    return Allocation(len(held), sum(i.memory_mb for i in held), sum(i.disk_gb for i in held))


def used_http_ports(session: Session, server_id: int) -> set[int]:
    """Give the loopback ports held by the active instances of a server."""
    query = select(Instance.http_port).where(Instance.server_id == server_id, Instance.state.in_(ACTIVE_STATES))
    return set(session.scalars(query))


def used_id_slots(session: Session) -> set[int]:
    """Give the subordinate ID range slots held by instances (fleet-wide: ranges are the same on every server)."""
    return set(session.scalars(select(Instance.id_slot).where(Instance.id_slot.is_not(None))))
