"""``ruche status``: every instance with its server, state and health, checked now through Caddy; and its own
domains with their state and certificate (a TLS handshake on each attached one)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.own_domains import check_served
from orchestrator.state.domains import domain_as_dict, domains_of
from orchestrator.state.instances import ACTIVE_STATES, instance_as_dict, instance_views, list_instances


def status(workspace_path: Path | None, *, association: str | None = None, check: bool = True) -> list[dict]:
    """Check and give every instance (or one association's) with server, state and health.

    ``check=False``: give the health last recorded (by an apply, a status, the worker), checking nothing.
    """
    with opened(workspace_path) as (workspace, store):
        with store.session() as session:
            if not check:
                entries = instance_views(session, association=association, states=ACTIVE_STATES)
            else:
                instances = [i for i in list_instances(session, association=association) if i.state in ACTIVE_STATES]
                check_and_record_health(workspace, workspace.catalog, instances)
                entries = [instance_as_dict(i) for i in instances]
            ids = [d.id for d in domains_of(session) if association is None or d.association.slug == association]
        if check:  # TLS handshakes with no session open (they may wait on the network)
            check_served(workspace, store, ids)
        by_instance: dict[str, list[dict]] = {}
        with store.session() as session:
            for domain in domains_of(session):
                if domain.id in ids:
                    by_instance.setdefault(domain.instance.address, []).append(domain_as_dict(domain))
        for entry in entries:
            entry["own_domains"] = by_instance.get(entry["address"], [])
        return entries


def unhealthy(entries: list[dict]) -> list[dict]:
    """Give the entries that should answer and do not."""
    return [e for e in entries if e["desired_state"] == "present" and e["health"] != "healthy"]


def failing_domains(entries: list[dict]) -> list[dict]:
    """Give the own domains of running instances whose certificate was not seen fit."""
    return [d for e in entries if e["desired_state"] == "present" for d in e.get("own_domains", [])
            if d["state"] == "failing"]  # fmt: skip
