"""``ruche backup expire``: forget the snapshots of deleted instances once their offer's retention is over."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.backups import backup_tool
from orchestrator.config import Retention
from orchestrator.operations.backup_jobs import require_backups
from orchestrator.quotas import find_offer
from orchestrator.remote import SshTarget
from orchestrator.state.backups import record_tool_result, runs_of
from orchestrator.state.events import record_event
from orchestrator.state.instances import list_instances
from orchestrator.state.models import as_utc, utc_now


def expire_backups(workspace_path: Path | None, *, dry_run: bool = False) -> dict:
    """Forget every snapshot of each deleted instance whose final backup is older than its retention.

    The retention window is the association's offer's (the oldest snapshot it would keep: the
    largest of its daily, weekly and monthly spans). Gives ``{"expired": [...], "kept": [...]}``;
    each forgetting is recorded in the audit trail (``backup.expired``). A server that fails is
    reported in the entry, not raised.
    """
    now = utc_now()
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        expired, kept = [], []
        for instance in [i for i in list_instances(session) if i.state == "deleted"]:
            history = runs_of(session, instance.address, kind="backup")
            last = next((r for r in history if r.status == "success"), None)
            if last is None or any(r.kind == "expire" for r in runs_of(session, instance.address)):
                continue
            offer = find_offer(workspace.config.offers, instance.association.offer)
            retention = offer.backup_retention if offer else Retention()
            finished = as_utc(last.finished_at or last.started_at)
            keep_until = finished + timedelta(days=retention.window_days)
            entry = {"instance": instance.address, "last_backup": finished.isoformat(timespec="seconds"),
                     "keep_until": keep_until.isoformat(timespec="seconds")}  # fmt: skip
            if keep_until > now:
                kept.append(entry)
                continue
            if not dry_run:
                try:
                    answer = backup_tool(SshTarget.of(instance.server), "forget", instance.identifier, timeout=3600)
                except Exception as error:  # reported per instance
                    answer = {"status": "failed", "error": str(error)}
                entry["status"] = answer.get("status")
                entry["forgotten"] = answer.get("forgotten", [])
                if answer.get("status") == "success":
                    record_tool_result(session, instance, instance.server.name, {
                        "status": "success", "reason": "retention", "started_at": now.isoformat(timespec="seconds"),
                        "finished_at": utc_now().isoformat(timespec="seconds")}, kind="expire")  # fmt: skip
                    record_event(session, kind="backup.expired", subject=instance.address, detail=entry)
                else:
                    entry["error"] = answer.get("error")
            expired.append(entry)
        return {"expired": expired, "kept": kept, "dry_run": dry_run}
