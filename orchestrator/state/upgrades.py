"""Recorded upgrades of instances (``ruche instance upgrade``, ``ruche upgrade``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.state.models import Upgrade

FINISHED = ("succeeded", "rolled_back", "rollback_failed", "refused")


def upgrade_as_dict(upgrade: Upgrade) -> dict:
    """A JSON-ready view of one upgrade (step outputs are the commands' own, never secrets)."""
    return {
        "id": upgrade.id,
        "instance": upgrade.instance_address,
        "service": upgrade.service_id,
        "server": upgrade.server,
        "from": upgrade.from_version,
        "to": upgrade.to_version,
        "status": upgrade.status,
        "step": upgrade.step,
        "requested_by": upgrade.requested_by,
        "fleet": upgrade.fleet,
        "safety_snapshot": upgrade.safety_snapshot,
        "started_at": upgrade.started_at.isoformat(timespec="seconds") if upgrade.started_at else None,
        "finished_at": upgrade.finished_at.isoformat(timespec="seconds") if upgrade.finished_at else None,
        "detail": upgrade.detail,
    }


def list_upgrades(
    session: Session, *, instance: str | None = None, fleet: str | None = None, limit: int = 100
) -> list[Upgrade]:
    """Give upgrades, newest first, optionally of one instance or one fleet upgrade."""
    query = select(Upgrade).order_by(Upgrade.started_at.desc(), Upgrade.id.desc()).limit(limit)
    if instance is not None:
        query = query.where(Upgrade.instance_address == instance)
    if fleet is not None:
        query = query.where(Upgrade.fleet == fleet)
    return list(session.scalars(query))


def running_upgrade(session: Session, instance: str) -> Upgrade | None:
    """Give the upgrade of ``instance`` still running, if any."""
    return session.scalars(
        select(Upgrade).where(Upgrade.instance_address == instance, Upgrade.status == "running")
    ).first()


def latest_upgrades(session: Session, addresses: list[str]) -> dict[str, Upgrade]:
    """Give the newest upgrade of each of ``addresses`` that has one."""
    if not addresses:
        return {}
    rows = session.scalars(select(Upgrade).where(Upgrade.instance_address.in_(addresses))
                           .order_by(Upgrade.started_at, Upgrade.id))  # fmt: skip
    return {row.instance_address: row for row in rows}
