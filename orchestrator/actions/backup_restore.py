"""``ruche backup restore|verify``: bring a snapshot back into an instance, or prove that it can be."""

from __future__ import annotations

import secrets as random
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.backups import backup_tool, compare_with_manifest
from orchestrator.errors import Conflict, InvalidInput, OperationFailed
from orchestrator.operations.backup_jobs import back_up, require_backups
from orchestrator.operations.converge import converge
from orchestrator.operations.instances import record_instance
from orchestrator.operations.lifecycle import change_instance
from orchestrator.operations.restores import (
    carry_application_secrets,
    forget_instance,
    instance_exists,
    resolve_snapshot,
    restore_into,
    version_for_snapshot,
)
from orchestrator.remote import SshTarget
from orchestrator.state.backups import backup_run_as_dict, record_tool_result
from orchestrator.state.instances import get_instance, instance_as_dict, parse_address
from orchestrator.state.models import utc_now


def restore(
    workspace_path: Path | None, address: str, *, snapshot: str = "latest", into: str | None = None,
    server: str | None = None, progress: Progress = no_progress,
) -> dict:  # fmt: skip
    """Restore ``snapshot`` of instance ``address`` into itself, or into instance ``into``.

    Into itself: a safety backup is taken first (nothing is restored if it fails). Into another
    instance of the same association and service: created (on ``server``, else where placement
    puts it) and deployed first when it does not exist. Gives ``{"restore": {...}, "safety_backup",
    "target"}``. Raises InvalidInput, NotFound, Conflict, MissingPrerequisite or OperationFailed.
    """
    with opened(workspace_path) as (workspace, store):
        with store.session() as session:
            require_backups(workspace)
            source = get_instance(session, address)
            source_view = instance_as_dict(source)
            if into is not None:
                association, _name = parse_address(into)
                if association != source.association.slug:
                    raise InvalidInput(
                        f"{into}: restore only into an instance of {source.association.slug}, the snapshot's owner"
                    )
            elif source.state != "running":
                raise Conflict(f"{address} is {source.state}: restore into a running instance",
                               hint=f"`ruche instance resume {address}`, or restore --into a new instance")  # fmt: skip
        safety = None
        created = False
        target = into or address
        snapshot = resolve_snapshot(store, address, snapshot)  # before the safety backup becomes "latest"
        if into is None:
            progress(f"{address}: safety backup before restoring")
            with store.session() as session:
                (safety,) = back_up(workspace, session, [address], reason="safety", progress=progress)
            if safety["status"] != "success":
                raise OperationFailed(
                    f"{address}: the safety backup failed, nothing was restored: {safety['detail'].get('error')}"
                )
        elif not instance_exists(store, into):
            _association, name = parse_address(into)
            with store.session() as session:
                found = get_instance(session, address)
                source_server, source_identifier = SshTarget.of(found.server), found.identifier
                service = workspace.catalog.get(source_view["service"])
            manifest = backup_tool(source_server, "manifest", source_identifier, "--snapshot", snapshot, timeout=600)
            version = version_for_snapshot(service, manifest, source_view["version"])
            progress(f"{into}: creating it from {address}'s settings, at {version} (the snapshot's version)")
            record_instance(
                workspace, store, association=source_view["association"], service=source_view["service"], name=name,
                size=source_view["size"], values=source_view["parameters"], server=server, version=version,
            )  # fmt: skip
            created = True
            carried = carry_application_secrets(store, address, into)
            # its application starts with the snapshot's data, never installing itself first
            run = converge(workspace, store, instance=into, progress=progress, check_health=False, restoring=True)
            if not run["succeeded"]:
                raise OperationFailed(f"{into}: deploying it failed (run {run['run_id']}); nothing restored")
        else:
            with store.session() as session:
                existing = get_instance(session, into)
                if existing.service_id != source_view["service"] or existing.state != "running":
                    raise Conflict(f"{into} must be a running {source_view['service']} instance to restore into it")
            carried = carry_application_secrets(store, address, into)
            if carried:
                progress(f"{into}: taking {address}'s application secrets ({', '.join(carried)}), as its data will")
                run = converge(workspace, store, instance=into, progress=progress, check_health=False)
                if not run["succeeded"]:
                    raise OperationFailed(
                        f"{into}: redeploying it with {address}'s secrets failed (run {run['run_id']}); nothing restored"
                    )
        answer = restore_into(workspace, store, address, target, snapshot, progress)
        if created and answer.get("status") == "success":
            progress(f"{into}: converging it with its data (its settings commands)")
            run = converge(workspace, store, instance=into, progress=progress)
            if not run["succeeded"]:
                answer["converge_error"] = (
                    f"the run after the restore failed (run {run['run_id']}): `ruche apply --instance {into}`"
                )
        restored = {k: v for k, v in answer.items() if k != "manifest"}
        if into is not None:
            restored["secrets_carried_over"] = carried
            progress(
                f"{into}: its recorded secrets are now {address}'s ({', '.join(carried) or 'already the same'}), "
                f"so `ruche instance secrets {into}` opens the restored data"
            )
        return {"restore": restored, "safety_backup": safety, "target": target}


def record_scratch(workspace, store, view: dict, name: str, version: str) -> str:
    """Record verify's scratch instance ``name`` beside the instance ``view`` describes: on its own server when that
    server has room (its images are there already: nothing to pull, no other server loaded), else where placement
    puts it. Give the server's name."""
    common = dict(association=view["association"], service=view["service"], name=name, size=view["size"],
                  values=view["parameters"], check_quota=False, version=version)  # fmt: skip
    try:
        recorded = record_instance(workspace, store, server=view["server"], **common)
    except Conflict:  # no room there (or draining): any server that has
        recorded = record_instance(workspace, store, server=None, **common)
    return recorded["instance"]["server"]


def verify(workspace_path: Path | None, address: str, *, progress: Progress = no_progress) -> dict:
    """Prove the latest snapshot of ``address`` restores: into a scratch instance, checked, then destroyed.

    Steps: `restic check` of the repository; read the snapshot's manifest; create and deploy a
    scratch instance; restore into it; health check; compare its files' checksums and its tables'
    row counts with the manifest; purge the scratch instance. The result is recorded (kind
    verify) and given as ``{"status", "problems", "snapshot_id", ...}``; nothing raises for a
    failed verification except when the instance or the repository setting is missing.
    """
    with opened(workspace_path) as (workspace, store):
        started = utc_now()
        with store.session() as session:
            require_backups(workspace)
            source = get_instance(session, address)
            view = instance_as_dict(source)
            server, identifier = SshTarget.of(source.server), source.identifier
            service = workspace.catalog.get(view["service"])
            volatile = tuple(service.backup.volatile_tables)
        problems: list[str] = []
        result = {"instance": address, "status": "failed", "snapshot_id": None, "scratch": None}
        scratch = None
        try:
            progress(f"{address}: checking the repository")
            checked = backup_tool(server, "check", identifier, timeout=3600)
            if checked.get("status") != "success":
                problems.append(f"restic check failed: {checked.get('output') or checked.get('error')}")
            manifest = backup_tool(server, "manifest", identifier, "--snapshot", "latest", timeout=600)
            if manifest.get("status") == "failed":
                problems.append(f"cannot read the latest snapshot's manifest: {manifest.get('error')}")
            if not problems:
                result["snapshot_id"] = manifest["snapshot_id"]
                scratch_name = f"{view['name'][:20]}-v{random.token_hex(3)}"
                scratch = f"{view['association']}/{scratch_name}"
                result["scratch"] = scratch
                progress(f"{address}: restoring snapshot {manifest['snapshot_id'][:8]} into scratch instance {scratch}")
                scratch_server = record_scratch(
                    workspace, store, view, scratch_name, version_for_snapshot(service, manifest, view["version"])
                )
                result["scratch_server"] = scratch_server
                progress(f"{address}: scratch instance {scratch} placed on {scratch_server}")
                carry_application_secrets(store, address, scratch)
                run = converge(
                    workspace, store, instance=scratch, progress=progress, check_health=False, restoring=True
                )
                if not run["succeeded"]:
                    problems.append(f"the scratch instance could not be deployed (run {run['run_id']})")
                else:
                    answer = restore_into(
                        workspace, store, address, scratch, manifest["snapshot_id"], progress, inspect=True
                    )
                    if answer.get("status") != "success":
                        problems.append(f"restore failed: {answer.get('error')}")
                    if answer.get("inspected"):
                        # what the snapshot gave back, read before the service started: the service then leaves the
                        # snapshot's quiet state (maintenance or read-only mode), which changes its files
                        problems += compare_with_manifest(manifest, answer["inspected"], volatile)
                        result["tables"] = (manifest.get("database") or {}).get("tables")
                        result["files"] = sum(len(files) for files in (manifest.get("volumes") or {}).values())
        except OperationFailed as error:
            problems.append(str(error))
        finally:
            if scratch is not None and instance_exists(store, scratch):
                progress(f"{address}: destroying scratch instance {scratch}")
                try:
                    change_instance(workspace, store, scratch, "purge", final_backup=False, progress=progress)
                    forget_instance(store, scratch)
                except Exception as error:  # the verification result matters more; say what is left
                    problems.append(f"scratch instance {scratch} could not be removed: {error}")
        result["status"] = "success" if not problems else "failed"
        result["problems"] = problems
        finished = utc_now()
        with store.session() as session:
            row = record_tool_result(session, get_instance(session, address), server.name, {
                "status": result["status"], "reason": "scratch", "snapshot_id": result["snapshot_id"],
                "started_at": started.isoformat(timespec="seconds"), "finished_at": finished.isoformat(timespec="seconds"),
                "duration_seconds": round((finished - started).total_seconds(), 3), "problems": problems, "scratch": scratch,
            }, kind="verify")  # fmt: skip
            result["recorded"] = backup_run_as_dict(row)
        return result
