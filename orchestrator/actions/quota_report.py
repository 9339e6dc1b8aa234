"""``ruche quota report``: per association and per server, limit vs allocated vs measured, with flags."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sqlalchemy import select

from orchestrator.actions.common import opened
from orchestrator.quotas import find_offer
from orchestrator.state.instances import ACTIVE_STATES
from orchestrator.state.models import Association, Instance
from orchestrator.state.servers import list_servers
from orchestrator.state.usage import latest_samples

GIB = 1024**3
MIB = 1024**2


def _percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def _sum(values) -> int | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def quota_report(workspace_path: Path | None) -> dict:
    """Give ``{"associations": [...], "servers": [...]}`` from the state and the latest usage samples.

    Each association: its offer's limits, what its instances' sizes allocate, what was measured
    (disk of its instances' directories, memory), percentages of the offer, and flags
    (``over_quota_allocated``, ``over_quota_measured``, ``not_measured``). Each server: capacity,
    allocated (and the overcommitted ceiling), measured, flags (``over_capacity``).
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        samples = latest_samples(session)
        by_association: dict[int, list] = defaultdict(list)
        by_server: dict[int, list] = defaultdict(list)
        # plain rows (no ORM objects): this reads every instance and association of the fleet
        held_rows = session.execute(select(Instance.id, Instance.association_id, Instance.server_id, Instance.cpu,
                                           Instance.memory_mb, Instance.disk_gb).where(Instance.state.in_(ACTIVE_STATES)))  # fmt: skip
        for instance in held_rows:
            by_association[instance.association_id].append(instance)
            by_server[instance.server_id].append(instance)
        associations = []
        for association in session.execute(
            select(Association.id, Association.slug, Association.offer).order_by(Association.slug)
        ):
            held = by_association[association.id]
            offer = find_offer(workspace.config.offers, association.offer)
            measured = [samples.get(i.id) for i in held]
            disk = _sum(s.disk_bytes if s else None for s in measured)
            memory = _sum(s.memory_bytes if s else None for s in measured)
            allocated = {
                "instances": len(held),
                "memory_mb": sum(i.memory_mb for i in held),
                "disk_gb": sum(i.disk_gb for i in held),
            }
            limit = (
                {"instances": offer.max_instances, "memory_mb": offer.memory_mb, "disk_gb": offer.disk_gb}
                if offer
                else None
            )
            flags = []
            if limit and any(allocated[key] > limit[key] for key in limit):
                flags.append("over_quota_allocated")
            if limit and disk is not None and disk > limit["disk_gb"] * GIB:
                flags.append("over_quota_measured")
            if held and disk is None:
                flags.append("not_measured")
            associations.append({
                "association": association.slug, "offer": association.offer, "limit": limit, "allocated": allocated,
                "measured": {"disk_bytes": disk, "memory_bytes": memory,
                             "taken_at": max((s.taken_at for s in measured if s), default=None)},
                "percent": {
                    "instances": _percent(allocated["instances"], limit["instances"]) if limit else None,
                    "memory_allocated": _percent(allocated["memory_mb"], limit["memory_mb"]) if limit else None,
                    "disk_allocated": _percent(allocated["disk_gb"], limit["disk_gb"]) if limit else None,
                    "disk_measured": _percent(disk, limit["disk_gb"] * GIB) if limit else None,
                },
                "flags": flags,
            })  # fmt: skip
        servers = []
        ratios = workspace.config.placement
        for server in list_servers(session):
            held = by_server[server.id]
            measured = [samples.get(i.id) for i in held]
            disk = _sum(s.disk_bytes if s else None for s in measured)
            memory = _sum(s.memory_bytes if s else None for s in measured)
            allocated = {"cpu": round(sum(i.cpu for i in held), 2), "memory_mb": sum(i.memory_mb for i in held),
                         "disk_gb": sum(i.disk_gb for i in held)}  # fmt: skip
            ceiling = {"cpu": server.cpu * ratios.cpu_overcommit, "memory_mb": server.memory_mb * ratios.memory_overcommit,
                       "disk_gb": server.disk_gb}  # fmt: skip
            flags = []
            if any(allocated[key] > ceiling[key] for key in ceiling):
                flags.append("over_capacity")
            if disk is not None and disk > server.disk_gb * GIB:
                flags.append("over_capacity_measured")
            servers.append({
                "server": server.name, "role": server.role, "instances": len(held),
                "capacity": {"cpu": server.cpu, "memory_mb": server.memory_mb, "disk_gb": server.disk_gb},
                "allocated": allocated, "ceiling": ceiling,
                "measured": {"disk_bytes": disk, "memory_bytes": memory},
                "percent": {"cpu_allocated": _percent(allocated["cpu"], server.cpu),
                            "memory_allocated": _percent(allocated["memory_mb"], server.memory_mb),
                            "disk_allocated": _percent(allocated["disk_gb"], server.disk_gb),
                            "disk_measured": _percent(disk, server.disk_gb * GIB)},
                "flags": flags,
            })  # fmt: skip
        for entry in associations:
            taken = entry["measured"]["taken_at"]
            entry["measured"]["taken_at"] = taken.isoformat(timespec="seconds") if taken else None
        return {"associations": associations, "servers": servers}
