"""Recorded upgrades of instances (``ruche instance upgrade``, ``ruche upgrade``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.processes import is_local, is_same_process
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
        "interrupted": upgrade.status == "running" and is_interrupted(upgrade),
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


def is_interrupted(record: Upgrade) -> bool:
    """Tell whether ``record``, still ``running``, lost the process that ran it (killed, machine rebooted). An
    upgrade run from another machine is never taken for interrupted; one recorded without its process (before
    ruche recorded it) is."""
    process = (record.detail or {}).get("process")
    if not process:
        return True
    if not is_local(process):
        return False
    try:
        _host, pid, start, _token = process.split(":")
        return not is_same_process(int(pid), int(start))
    except ValueError:
        return True


def running_upgrades(session: Session, addresses: list[str] | None = None) -> list[Upgrade]:
    """Give the upgrades still recorded as running (of ``addresses`` only, when given), oldest first."""
    query = select(Upgrade).where(Upgrade.status == "running").order_by(Upgrade.started_at, Upgrade.id)
    if addresses is not None:
        query = query.where(Upgrade.instance_address.in_(addresses))
    return list(session.scalars(query))


def latest_upgrades(session: Session, addresses: list[str]) -> dict[str, Upgrade]:
    """Give the newest upgrade of each of ``addresses`` that has one."""
    if not addresses:
        return {}
    rows = session.scalars(select(Upgrade).where(Upgrade.instance_address.in_(addresses))
                           .order_by(Upgrade.started_at, Upgrade.id))  # fmt: skip
    return {row.instance_address: row for row in rows}
