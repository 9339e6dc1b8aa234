"""``ruche backup restore|verify``: bring a snapshot back into an instance, or prove that it can be."""

from __future__ import annotations

import secrets as random
from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.apply import apply
from orchestrator.actions.backup_run import back_up, require_backups
from orchestrator.actions.common import opened
from orchestrator.actions.instance_create import create_instance
from orchestrator.actions.instance_lifecycle import change_instance
from orchestrator.actions.status import check_and_record_health
from orchestrator.backups import backup_tool, compare_with_manifest
from orchestrator.catalog import load_catalog
from orchestrator.errors import Conflict, InvalidInput, NotFound, OperationFailed
from orchestrator.images import deployed_images, ensure_present
from orchestrator.remote import SshTarget
from orchestrator.state.backups import backup_run_as_dict, record_tool_result
from orchestrator.state.instances import get_instance, instance_as_dict, parse_address
from orchestrator.state.models import utc_now
from orchestrator.unit_watch import wait_watching

Progress = Callable[[str], None]
RESTART_TIMEOUT = 120  # seconds a restored instance may take to answer again


def _no_progress(_message: str) -> None:
    pass


def _instance_exists(workspace_path: Path | None, address: str) -> bool:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        try:
            return get_instance(session, address).state != "deleted"
        except Exception:
            return False


def _restore_into(
    workspace_path: Path | None, source: str, target: str, snapshot: str, progress: Progress, *, inspect: bool = False,
) -> dict:  # fmt: skip
    """Run the restore on the target's server, check the target's health, record it; give the tool's answer.

    The tool leaves the snapshot's quiet state (the entry's "after" commands, then its after-restore ones);
    a restore after which the instance does not answer its health check within RESTART_TIMEOUT is failed.
    ``inspect``: the answer's ``inspected`` is what was restored, read before the service started."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        source_id = get_instance(session, source).identifier
        instance = get_instance(session, target)
        server, identifier = SshTarget.of(instance.server), instance.identifier
        images = deployed_images(load_catalog(workspace.catalog_dir).get(instance.service_id), instance.service_version,
                                 workspace.config.images.registry)  # fmt: skip
    # the images the restarted units need, there before anything stops (pruned since, or a registry away)
    progress(f"{target}: checking that its images are on {server.name}")
    try:
        present, pulled = ensure_present(server, images)
    except OperationFailed as error:
        present, pulled = False, str(error)
    if not present:
        answer = {"status": "failed", "started_at": utc_now().isoformat(timespec="seconds"),
                  "error": f"an image of {target} cannot be had on {server.name}, nothing was stopped: "
                  f"{pulled.splitlines()[-1] if pulled else 'no answer'}"}  # fmt: skip
    else:
        progress(f"{target}: restoring snapshot {snapshot} of {source} on {server.name}")
        arguments = ["--inspect"] if inspect else []
        try:
            answer = backup_tool(server, "restore", identifier, "--snapshot", snapshot, "--source", source_id,
                                 *arguments)  # fmt: skip
        except OperationFailed as error:
            answer = {"status": "failed", "error": str(error), "started_at": utc_now().isoformat(timespec="seconds")}
    answer["source"] = source
    answer["data_restored"] = answer.get("status") == "success"  # the snapshot's files and database are back
    with opened(workspace_path) as (workspace, store), store.session() as session:
        instance = get_instance(session, target)
        if answer.get("status") == "success":
            progress(f"{target}: waiting for it to answer")
            catalog = load_catalog(workspace.catalog_dir)

            def answers() -> tuple[bool, str]:
                check_and_record_health(workspace, catalog, [instance])
                return instance.health == "healthy", instance.health_detail

            # the restore restarts its containers: the service has RESTART_TIMEOUT to come up, unless one of its
            # units fails or restarts in a loop meanwhile, which ends the wait at once
            outcome, detail = wait_watching(answers, RESTART_TIMEOUT, (server, identifier))
            if outcome == "failed":
                instance.health_detail = detail.splitlines()[0]
                answer["status"] = "failed"
                answer["error"] = (f"restored, but its service does not start: {detail}\n(`journalctl -u "
                                   f"{detail.split()[0]}` on {server.name} says more; fix the cause, then "
                                   f"`ruche apply --instance {target}`)")  # fmt: skip
            elif outcome == "timeout":
                answer["status"] = "failed"
                answer["error"] = (f"restored, but it does not answer its health check after {RESTART_TIMEOUT} s: "
                                   f"{detail}")  # fmt: skip
        record_tool_result(session, instance, server.name, {k: v for k, v in answer.items() if k != "inspected"},
                           kind="restore")  # fmt: skip
        answer["health"] = instance.health
        answer["health_detail"] = instance.health_detail
    return answer


def _carry_application_secrets(workspace_path: Path | None, source: str, target: str) -> list[str]:
    """Give ``target`` the recorded application secrets of ``source`` (their vault ciphertext as is); give the
    names that changed.

    A restore brings the source's data, and with it whatever the service keeps of those secrets (an admin
    password hashed in its database or users file, keys in its files): the target's recorded secrets must be
    the source's to open it. Database passwords (``db_*``) stay the target's: its own database server loads
    the dump under its own role.
    """
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        origin, destination = get_instance(session, source), get_instance(session, target)
        carried = {name: value for name, value in origin.secrets.items() if not name.startswith("db_")}
        changed = sorted(name for name, value in carried.items() if destination.secrets.get(name) != value)
        if changed:
            destination.secrets = {**destination.secrets, **carried}
        return changed


def restore(
    workspace_path: Path | None, address: str, *, snapshot: str = "latest", into: str | None = None,
    server: str | None = None, progress: Progress = _no_progress,
) -> dict:  # fmt: skip
    """Restore ``snapshot`` of instance ``address`` into itself, or into instance ``into``.

    Into itself: a safety backup is taken first (nothing is restored if it fails). Into another
    instance of the same association and service: created (on ``server``, else where placement
    puts it) and deployed first when it does not exist. Gives ``{"restore": {...}, "safety_backup",
    "target"}``. Raises InvalidInput, NotFound, Conflict, MissingPrerequisite or OperationFailed.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
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
    snapshot = _resolve_snapshot(workspace_path, address, snapshot)  # before the safety backup becomes "latest"
    if into is None:
        progress(f"{address}: safety backup before restoring")
        with opened(workspace_path) as (workspace, store), store.session() as session:
            (safety,) = back_up(workspace, session, [address], reason="safety", progress=progress)
        if safety["status"] != "success":
            raise OperationFailed(
                f"{address}: the safety backup failed, nothing was restored: {safety['detail'].get('error')}"
            )
    elif not _instance_exists(workspace_path, into):
        _association, name = parse_address(into)
        with opened(workspace_path) as (workspace, store), store.session() as session:
            found = get_instance(session, address)
            source_server, source_identifier = SshTarget.of(found.server), found.identifier
            service = load_catalog(workspace.catalog_dir).get(source_view["service"])
        manifest = backup_tool(source_server, "manifest", source_identifier, "--snapshot", snapshot, timeout=600)
        version = version_for_snapshot(service, manifest, source_view["version"])
        progress(f"{into}: creating it from {address}'s settings, at {version} (the snapshot's version)")
        create_instance(
            workspace_path, association=source_view["association"], service=source_view["service"], name=name,
            size=source_view["size"], parameters=tuple(f"{k}={v}" for k, v in source_view["parameters"].items()),
            server=server, version=version,
        )  # fmt: skip
        created = True
        carried = _carry_application_secrets(workspace_path, address, into)
        # its application starts with the snapshot's data, never installing itself first
        run = apply(workspace_path, instance=into, progress=progress, check_health=False, restoring=True)
        if not run["succeeded"]:
            raise OperationFailed(f"{into}: deploying it failed (run {run['run_id']}); nothing restored")
    else:
        with opened(workspace_path) as (_workspace, store), store.session() as session:
            existing = get_instance(session, into)
            if existing.service_id != source_view["service"] or existing.state != "running":
                raise Conflict(f"{into} must be a running {source_view['service']} instance to restore into it")
        carried = _carry_application_secrets(workspace_path, address, into)
        if carried:
            progress(f"{into}: taking {address}'s application secrets ({', '.join(carried)}), as its data will")
            run = apply(workspace_path, instance=into, progress=progress, check_health=False)
            if not run["succeeded"]:
                raise OperationFailed(
                    f"{into}: redeploying it with {address}'s secrets failed (run {run['run_id']}); nothing restored"
                )
    answer = _restore_into(workspace_path, address, target, snapshot, progress)
    if created and answer.get("status") == "success":
        progress(f"{into}: converging it with its data (its settings commands)")
        run = apply(workspace_path, instance=into, progress=progress)
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


def version_for_snapshot(service, manifest: dict, current: str) -> str:
    """The version a new instance that a snapshot will fill starts at: the one the snapshot was taken at
    (its data's schema), if the catalogue still lists it; else ``current``. A newer version would find
    an older schema in the restored data and change it (update.php, occ upgrade), so the restored
    data would no longer be the snapshot's; `ruche instance upgrade` moves it on afterwards."""
    taken_at = manifest.get("version") if isinstance(manifest, dict) else None
    return taken_at if taken_at and any(v.version == taken_at for v in service.versions) else current


def _resolve_snapshot(workspace_path: Path | None, address: str, snapshot: str) -> str:
    """Give the full id of ``snapshot`` of ``address`` ("latest": its newest); raises NotFound if there is none."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        instance = get_instance(session, address)
        server, identifier = SshTarget.of(instance.server), instance.identifier
    listed = backup_tool(server, "snapshots", identifier, timeout=600)
    if isinstance(listed, dict):
        raise OperationFailed(f"{address}: cannot list its snapshots: {listed.get('error')}")
    for entry in reversed(listed):
        if snapshot == "latest" or entry["id"].startswith(snapshot):
            return entry["id"]
    raise NotFound(f"{address} has no snapshot {snapshot!r}", hint=f"`ruche backup list {address}` shows them")


def verify(workspace_path: Path | None, address: str, *, progress: Progress = _no_progress) -> dict:
    """Prove the latest snapshot of ``address`` restores: into a scratch instance, checked, then destroyed.

    Steps: `restic check` of the repository; read the snapshot's manifest; create and deploy a
    scratch instance; restore into it; health check; compare its files' checksums and its tables'
    row counts with the manifest; purge the scratch instance. The result is recorded (kind
    verify) and given as ``{"status", "problems", "snapshot_id", ...}``; nothing raises for a
    failed verification except when the instance or the repository setting is missing.
    """
    started = utc_now()
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        source = get_instance(session, address)
        view = instance_as_dict(source)
        server, identifier = SshTarget.of(source.server), source.identifier
        service = load_catalog(workspace.catalog_dir).get(view["service"])
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
            create_instance(
                workspace_path, association=view["association"], service=view["service"], name=scratch_name,
                size=view["size"], parameters=tuple(f"{k}={v}" for k, v in view["parameters"].items()),
                server=None, check_quota=False, version=version_for_snapshot(service, manifest, view["version"]),
            )  # fmt: skip
            _carry_application_secrets(workspace_path, address, scratch)
            run = apply(workspace_path, instance=scratch, progress=progress, check_health=False, restoring=True)
            if not run["succeeded"]:
                problems.append(f"the scratch instance could not be deployed (run {run['run_id']})")
            else:
                answer = _restore_into(
                    workspace_path, address, scratch, manifest["snapshot_id"], progress, inspect=True
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
        if scratch is not None and _instance_exists(workspace_path, scratch):
            progress(f"{address}: destroying scratch instance {scratch}")
            try:
                change_instance(workspace_path, scratch, "purge", final_backup=False, progress=progress)
                _forget_instance(workspace_path, scratch)
            except Exception as error:  # the verification result matters more; say what is left
                problems.append(f"scratch instance {scratch} could not be removed: {error}")
    result["status"] = "success" if not problems else "failed"
    result["problems"] = problems
    finished = utc_now()
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        row = record_tool_result(session, get_instance(session, address), server.name, {
            "status": result["status"], "reason": "scratch", "snapshot_id": result["snapshot_id"],
            "started_at": started.isoformat(timespec="seconds"), "finished_at": finished.isoformat(timespec="seconds"),
            "duration_seconds": round((finished - started).total_seconds(), 3), "problems": problems, "scratch": scratch,
        }, kind="verify")  # fmt: skip
        result["recorded"] = backup_run_as_dict(row)
    return result


def _forget_instance(workspace_path: Path | None, address: str) -> None:
    """Drop a purged scratch instance's row, so it does not linger in listings (its backup runs stay)."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        instance = get_instance(session, address)
        if instance.state == "deleted":
            session.delete(instance)
