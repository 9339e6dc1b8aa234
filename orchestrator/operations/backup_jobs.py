"""Backups of instances now: each association's restic repository made sure of, then ``ruche-backup backup`` on each
server (servers in parallel, each server's instances in turn), every result recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.backups import backup_tool
from orchestrator.errors import MissingPrerequisite
from orchestrator.remote import SshTarget, for_each_server
from orchestrator.state.backups import backup_run_as_dict, record_tool_result
from orchestrator.state.instances import get_instance
from orchestrator.state.models import utc_now
from orchestrator.workspace import Workspace


@dataclass(frozen=True)
class BackupJob:
    address: str
    identifier: str
    server: str


def require_backups(workspace: Workspace) -> None:
    """Raise MissingPrerequisite when ruche.toml configures no backup repository."""
    if workspace.config.backup.repository is None:
        raise MissingPrerequisite(
            "no backup repository is configured",
            hint="set [backup] repository in ruche.toml (a path, sftp:USER@HOST:/PATH or s3:...), then `ruche apply`",
        )


def ensure_repositories(
    session, addresses: list[str], progress: Callable[[str], None] = lambda _m: None
) -> dict[str, str]:
    """Make sure each association of ``addresses`` has its restic repository, one association at a time
    through one of its instances' servers; give ``{association: error}`` for those that could not be.

    Two servers initialising one repository at once would each write a key and leave it unreadable for
    one of them, so this runs before anything backs up in parallel (``apply`` and ``back_up`` call it).
    """
    first: dict[str, tuple[SshTarget, str, object]] = {}
    for address in addresses:
        instance = get_instance(session, address)
        if not instance.association.backup_repository_ready:
            first.setdefault(
                instance.association.slug, (SshTarget.of(instance.server), instance.identifier, instance.association)
            )
    errors = {}
    for association, (target, identifier, record) in sorted(first.items()):
        try:
            answer = backup_tool(target, "init", identifier, timeout=600)
        except Exception as error:  # reported for the association's instances
            answer = {"status": "failed", "error": str(error)}
        if answer.get("status") != "success":
            errors[association] = f"its repository could not be opened or created: {answer.get('error')}"
            continue
        record.backup_repository_ready = True
        if answer.get("created"):
            progress(f"{association}: backup repository created")
    return errors


def back_up(workspace: Workspace, session, addresses: list[str], *, reason: str,
            progress: Callable[[str], None] = lambda _m: None) -> list[dict]:  # fmt: skip
    """Back up the instances at ``addresses`` (servers in parallel) and record each result; give them.

    An unreachable server gives a failed result for each of its instances; nothing raises.
    """
    jobs: dict[str, list[BackupJob]] = {}
    targets: dict[str, SshTarget] = {}
    results = []
    unopened = ensure_repositories(session, addresses, progress)
    for address in addresses:
        instance = get_instance(session, address)
        if instance.association.slug in unopened:
            answer = {"status": "failed", "error": unopened[instance.association.slug], "reason": reason,
                      "started_at": utc_now().isoformat(timespec="seconds")}  # fmt: skip
            results.append(
                backup_run_as_dict(record_tool_result(session, instance, instance.server.name, answer, kind="backup"))
            )
            continue
        jobs.setdefault(instance.server.name, []).append(BackupJob(address, instance.identifier, instance.server.name))
        targets[instance.server.name] = SshTarget.of(instance.server)

    def run_server(target: SshTarget) -> list[tuple[BackupJob, dict]]:
        done = []
        for job in jobs[target.name]:
            progress(f"{job.address}: backing up on {target.name}")
            try:
                answer = backup_tool(target, "backup", job.identifier, "--reason", reason)
            except Exception as error:  # reported per instance
                answer = {"status": "failed", "error": str(error), "reason": reason}
            progress(f"{job.address}: {answer.get('status')}")
            done.append((job, answer))
        return done

    outcomes = for_each_server(targets.values(), run_server)
    for server, outcome in sorted(outcomes.items()):
        pairs = outcome if not isinstance(outcome, Exception) else [
            (job, {"status": "failed", "error": str(outcome), "reason": reason}) for job in jobs[server]
        ]  # fmt: skip
        for job, answer in pairs:
            answer.setdefault("reason", reason)
            answer.setdefault("started_at", utc_now().isoformat(timespec="seconds"))
            row = record_tool_result(session, get_instance(session, job.address), server, answer, kind="backup")
            results.append(backup_run_as_dict(row))
    return results
