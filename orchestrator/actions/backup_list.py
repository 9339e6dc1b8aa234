"""``ruche backup list|status``: an instance's snapshots; every instance's last backup against its policy."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.backups import backup_tool
from orchestrator.errors import OperationFailed
from orchestrator.operations.backup_jobs import require_backups
from orchestrator.remote import SshTarget, for_each_server
from orchestrator.state.actors import acting_as
from orchestrator.state.backups import backup_run_as_dict, backup_window, last_success, runs_of, sync_tool_log
from orchestrator.state.instances import get_instance, list_instances
from orchestrator.state.models import utc_now


def snapshots(workspace_path: Path | None, address: str) -> dict:
    """Give the restic snapshots of instance ``address`` (read from its repository through its server).

    Raises NotFound, MissingPrerequisite (no repository) or OperationFailed (server or repository unreachable).
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        instance = get_instance(session, address)
        target = SshTarget.of(instance.server)
        identifier = instance.identifier
    answer = backup_tool(target, "snapshots", identifier, timeout=600)
    if isinstance(answer, dict):
        raise OperationFailed(f"{address}: cannot list snapshots: {answer.get('error')}")
    return {"instance": address, "snapshots": answer}


def backup_status(workspace_path: Path | None, *, sync: bool = True) -> dict:
    """Give each active instance's last backup and whether it is inside its offer's window.

    With ``sync``, first records the results of timer-run backups read from the servers (in
    parallel); a server that does not answer is reported, not fatal. Gives ``{"instances": [...],
    "flagged": N, "unreachable": {...}}``; an instance is flagged when it has no successful backup
    newer than its window (the offer's backup_window_hours, else 26 h).
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        instances = [i for i in list_instances(session) if i.state in ("running", "suspended", "failed")]
        unreachable: dict[str, str] = {}
        if sync:
            by_server: dict[str, list] = {}
            targets = {}
            for instance in instances:
                by_server.setdefault(instance.server.name, []).append(instance.identifier)
                targets[instance.server.name] = SshTarget.of(instance.server)
            logs = for_each_server(
                targets.values(), lambda t: {ident: backup_tool(t, "log", ident, timeout=120) for ident in by_server[t.name]}
            )  # fmt: skip
            for instance in instances:
                found = logs.get(instance.server.name)
                if isinstance(found, Exception):
                    unreachable[instance.server.name] = str(found)
                elif isinstance(found, dict) and isinstance(found.get(instance.identifier), list):
                    with acting_as(f"backup timer on {instance.server.name}"):  # who made them, for the audit trail
                        sync_tool_log(session, instance, instance.server.name, found[instance.identifier])
                        session.flush()
        now = utc_now()
        entries = []
        for instance in instances:
            window = backup_window(workspace.config.offers, instance.association.offer)
            history = runs_of(session, instance.address, kind="backup")
            good, good_at = last_success(session, instance.address)
            last = history[0] if history else None
            problem = None
            if good is None:
                problem = "no successful backup"
            elif now - good_at > window:
                problem = f"last successful backup older than {window.total_seconds() / 3600:g} h"
            elif last is not None and last.status != "success":
                problem = "the last backup failed"
            entries.append({
                "instance": instance.address, "server": instance.server.name, "state": instance.state,
                "window_hours": window.total_seconds() / 3600,
                "last": backup_run_as_dict(last) if last else None,
                "last_success": backup_run_as_dict(good) if good else None,
                "problem": problem,
            })  # fmt: skip
        return {"instances": entries, "flagged": sum(1 for e in entries if e["problem"]), "unreachable": unreachable}
