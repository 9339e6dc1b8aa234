"""``ruche status``: every instance with its server, state and health, checked now through Caddy."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import object_session

from orchestrator.actions.common import opened
from orchestrator.catalog import Catalog, load_catalog
from orchestrator.health import HealthTarget, check_all
from orchestrator.state.instances import ACTIVE_STATES, instance_as_dict, instance_views, list_instances
from orchestrator.state.models import HealthCheck, Instance, utc_now
from orchestrator.workspace import Workspace


def check_and_record_health(workspace: Workspace, catalog: Catalog, instances: list[Instance]) -> None:
    """Check the instances that should answer (desired present) and record each one's health.

    Others are recorded as ``stopped`` (suspended) or ``unknown``. Each check is also kept in
    ``health_checks`` (availability over a period). The session commits the rows.
    """
    answering = [i for i in instances if i.desired_state == "present" and i.state in ("running", "failed")]
    targets = []
    for instance in answering:
        service = catalog.get(instance.service_id)
        targets.append(
            HealthTarget(
                key=instance.address, server_address=instance.server.address, domain=instance.domain,
                path=service.health.path, expected_status=service.health.expected_status,
                timeout_seconds=service.health.timeout_seconds, body_contains=service.health.body_contains,
            )
        )  # fmt: skip
    results = {r.key: r for r in check_all(targets, verify_tls=workspace.config.proxy_tls == "acme")}
    now = utc_now()
    for instance in instances:
        result = results.get(instance.address)
        if result is not None:
            instance.health, instance.health_detail = result.health, result.detail
            object_session(instance).add(HealthCheck(instance_address=instance.address, service_id=instance.service_id, at=now,
                                    health=result.health))  # fmt: skip
        elif instance.state == "suspended":
            instance.health, instance.health_detail = "stopped", "suspended: its containers are stopped"
        else:
            instance.health, instance.health_detail = "unknown", f"not checked while {instance.state}"
        instance.health_checked_at = now


def status(workspace_path: Path | None, *, association: str | None = None, check: bool = True) -> list[dict]:
    """Check and give every instance (or one association's) with server, state and health.

    ``check=False``: give the health last recorded (by an apply, a status, the worker), checking nothing.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        if not check:
            return instance_views(session, association=association, states=ACTIVE_STATES)
        instances = [i for i in list_instances(session, association=association) if i.state in ACTIVE_STATES]
        check_and_record_health(workspace, load_catalog(workspace.catalog_dir), instances)
        return [instance_as_dict(i) for i in instances]


def unhealthy(entries: list[dict]) -> list[dict]:
    """Give the entries that should answer and do not."""
    return [e for e in entries if e["desired_state"] == "present" and e["health"] != "healthy"]
