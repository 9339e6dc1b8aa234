"""Recorded backups, restores and verifications (rows of ``backup_runs``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.quotas import find_offer
from orchestrator.state.models import BackupRun, Instance, as_utc

# An instance's backups are expected at least this often when its offer sets no backup_window_hours.
DEFAULT_WINDOW_HOURS = 26


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def record_tool_result(
    session: Session, instance: Instance, server: str, result: dict, *, kind: str | None = None
) -> BackupRun:
    """Record what ``ruche-backup`` answered for ``instance`` (one backup or restore entry); give the row."""
    started = _time(result.get("started_at")) or _time(result.get("finished_at"))
    run = BackupRun(
        instance_id=instance.id, instance_address=instance.address, server=server,
        kind=kind or result.get("kind", "backup"), reason=result.get("reason", "manual"),
        status="success" if result.get("status") == "success" else "failed",
        snapshot_id=result.get("snapshot_id"), started_at=started, finished_at=_time(result.get("finished_at")),
        duration_seconds=result.get("duration_seconds"), data_added_bytes=result.get("data_added"),
        total_bytes=result.get("total_bytes"),
        detail={k: result[k] for k in ("error", "files", "tables", "source", "before_errors", "after_errors",
                                       "after_restore_errors", "problems", "scratch", "units_started",
                                       "retention_error") if result.get(k)},
    )  # fmt: skip
    session.add(run)
    return run


def sync_tool_log(session: Session, instance: Instance, server: str, entries: list[dict]) -> int:
    """Record the entries of a server's log not recorded yet (timer-run backups); give how many were new."""
    known = {
        (r.kind, r.started_at.replace(tzinfo=None) if r.started_at else None)
        for r in session.scalars(select(BackupRun).where(BackupRun.instance_address == instance.address))
    }
    added = 0
    for entry in entries:
        started = _time(entry.get("started_at"))
        key = (entry.get("kind", "backup"), started.replace(tzinfo=None) if started else None)
        if key in known or started is None:
            continue
        record_tool_result(session, instance, server, entry)
        known.add(key)
        added += 1
    return added


def runs_of(session: Session, address: str, *, kind: str | None = None) -> list[BackupRun]:
    """Give the recorded runs of instance ``address``, newest first."""
    query = select(BackupRun).where(BackupRun.instance_address == address)
    if kind is not None:
        query = query.where(BackupRun.kind == kind)
    return list(session.scalars(query.order_by(BackupRun.started_at.desc(), BackupRun.id.desc())))


def backup_run_as_dict(run: BackupRun) -> dict:
    return {
        "instance": run.instance_address, "server": run.server, "kind": run.kind, "reason": run.reason,
        "status": run.status, "snapshot_id": run.snapshot_id,
        "started_at": run.started_at.isoformat(timespec="seconds") if run.started_at else None,
        "finished_at": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        "duration_seconds": run.duration_seconds, "data_added_bytes": run.data_added_bytes,
        "total_bytes": run.total_bytes, "detail": run.detail,
    }  # fmt: skip


def backup_window(offers: dict, offer_name: str | None) -> timedelta:
    """How old an instance's last good backup may be under offer ``offer_name`` (else 26 h)."""
    offer = find_offer(offers, offer_name)
    return timedelta(hours=offer.backup_window_hours if offer else DEFAULT_WINDOW_HOURS)


def last_success(session: Session, address: str, *, kind: str = "backup") -> tuple[BackupRun | None, datetime | None]:
    """The last successful run of ``kind`` of instance ``address`` and when it finished (None, None if none)."""
    good = next((r for r in runs_of(session, address, kind=kind) if r.status == "success"), None)
    return good, (as_utc(good.finished_at or good.started_at) if good else None)
