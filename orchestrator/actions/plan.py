"""``ruche plan``: what ``ruche apply`` would change, per server, before anything runs.

Computed from the state alone: each instance's deployment (from its record and the current
catalogue) is compared with the one last applied successfully; servers never converged are listed.
Instances behind their service's current version are listed apart, with the path of versions to it:
``apply`` never changes a version, ``ruche instance upgrade`` and ``ruche upgrade`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from orchestrator.actions.common import opened
from orchestrator.catalog import Catalog, load_catalog
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.operations.fingerprints import current_fingerprints
from orchestrator.operations.inventories import refuse_lab_only
from orchestrator.state.instances import ACTIVE_STATES
from orchestrator.state.models import Association, Instance, Server
from orchestrator.state.runs import list_runs
from orchestrator.state.servers import list_servers


def _change(instance, current: str) -> str | None:
    desired, applied = instance.desired_state, instance.applied_fingerprint
    if desired in ("absent", "purged"):
        return "purge" if desired == "purged" else "delete"
    if applied is None:
        return "create" if desired == "present" else "create suspended"
    if applied == current and instance.state != "failed":
        return None
    if desired == "suspended" and instance.state != "suspended":
        return "suspend"
    if desired == "present" and instance.state == "suspended":
        return "resume"
    return "retry" if applied == current else "update"


@dataclass(frozen=True)
class Planned:
    """What plan reads of an instance (a plain row: plans read every instance of the fleet)."""

    id: int
    server_id: int
    server: str
    address: str
    service_id: str
    service_version: str
    desired_state: str
    state: str
    applied_fingerprint: str | None


def plan(workspace_path: Path | None, *, server: str | None = None) -> dict:
    """Give ``{"servers": [{"server", "base", "changes": [{"instance", "service", "change"}]}], "changes": N}``.

    ``base`` is "first converge" for a server no successful run has reached yet, else "up to date".
    Raises Conflict as ``apply`` would, for an instance whose images only the lab's registry serves on
    another server (``operations.inventories.refuse_lab_only``).
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        refuse_lab_only(workspace, session, server=server)
        catalog = load_catalog(workspace.catalog_dir)
        converged = set()
        for run in reversed(list_runs(session, limit=1000)):
            for host, counts in run.hosts.items():
                if counts.get("failed", 0) == 0 and counts.get("unreachable", 0) == 0:
                    converged.add(host)
        live = [Planned(identifier, server_id, server_name, f"{slug}/{name}", *rest) for identifier, server_id, server_name, slug, name, *rest
                in session.execute(select(Instance.id, Instance.server_id, Server.name, Association.slug, Instance.name,
                                          Instance.service_id, Instance.service_version, Instance.desired_state, Instance.state,
                                          Instance.applied_fingerprint)
                                   .join(Association, Instance.association).join(Server, Instance.server)
                                   .where(Instance.state.in_(ACTIVE_STATES)).order_by(Association.slug, Instance.name))]  # fmt: skip
        if server is not None:
            live = [i for i in live if i.server == server]
        current = current_fingerprints(workspace, session, catalog, [i.id for i in live])
        by_server: dict[int, list[Planned]] = {}
        for instance in live:
            by_server.setdefault(instance.server_id, []).append(instance)
        servers = []
        for entry in list_servers(session):
            if server is not None and entry.name != server or entry.role != "apps":
                continue
            changes = []
            for instance in by_server.get(entry.id, []):
                change = _change(instance, current[instance.id])
                if change is not None:
                    changes.append({"instance": instance.address, "service": instance.service_id, "change": change})
            base = "up to date" if entry.name in converged else "first converge"
            servers.append({"server": entry.name, "base": base, "changes": changes})
        count = sum(len(s["changes"]) + (s["base"] != "up to date") for s in servers)
        return {"servers": servers, "changes": count, "upgrades": behind(catalog, live)}


def behind(catalog: Catalog, instances) -> list[dict]:
    """Give the instances not on their service's current version, with the path to it (or why there is none)."""
    found = []
    for instance in sorted(instances, key=lambda i: i.address):
        try:
            service = catalog.get(instance.service_id)
        except NotFound:
            continue
        if instance.service_version == service.version:
            continue
        entry = {"instance": instance.address, "service": service.id, "server": instance.server,
                 "version": instance.service_version, "current": service.version, "path": None, "blocked": None}  # fmt: skip
        try:
            entry["path"] = [step.version for step in service.upgrade_path(instance.service_version)]
        except InvalidInput as error:
            entry["blocked"] = error.message
        found.append(entry)
    return found
