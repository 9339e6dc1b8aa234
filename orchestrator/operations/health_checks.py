"""Instances checked through Caddy now, and each one's health recorded (``apply``, ``status``, the worker...)."""

from __future__ import annotations

from sqlalchemy.orm import object_session

from orchestrator.catalog import Catalog
from orchestrator.health import HealthTarget, check_all
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
