"""Snapshots brought back into instances: the restore on the target's server (its images there first), the wait for
it to answer, the result recorded; what a restore into another instance needs (the source's application secrets, the
snapshot's version). ``backup restore``, ``backup verify`` and the upgrade's rollback use them."""

from __future__ import annotations

from orchestrator.backups import backup_tool
from orchestrator.errors import NotFound, OperationFailed
from orchestrator.images import deployed_images, ensure_present
from orchestrator.operations.context import Progress
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.remote import SshTarget
from orchestrator.state.backups import record_tool_result
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import utc_now
from orchestrator.unit_watch import wait_watching
from orchestrator.workspace import Workspace

RESTART_TIMEOUT = 120  # seconds a restored instance may take to answer again


def instance_exists(store: StateStore, address: str) -> bool:
    """Whether ``address`` is an instance that is not deleted."""
    with store.session() as session:
        try:
            return get_instance(session, address).state != "deleted"
        except Exception:
            return False


def restore_into(
    workspace: Workspace, store: StateStore, source: str, target: str, snapshot: str, progress: Progress, *, inspect: bool = False,
) -> dict:  # fmt: skip
    """Run the restore on the target's server, check the target's health, record it; give the tool's answer.

    The tool leaves the snapshot's quiet state (the entry's "after" commands, then its after-restore ones);
    a restore after which the instance does not answer its health check within RESTART_TIMEOUT is failed.
    ``inspect``: the answer's ``inspected`` is what was restored, read before the service started."""
    with store.session() as session:
        source_id = get_instance(session, source).identifier
    return put_back(workspace, store, target, ["restore", "--snapshot", snapshot, "--source", source_id],
                    f"restoring snapshot {snapshot} of {source}", progress, inspect=inspect, kind="restore",
                    extra={"source": source})  # fmt: skip


def put_back(
    workspace: Workspace, store: StateStore, target: str, command: list[str], doing: str, progress: Progress, *,
    inspect: bool, kind: str, extra: dict | None = None,
) -> dict:  # fmt: skip
    """Run ``ruche-backup COMMAND`` (``command``: its name, then its options after the identifier) that puts data
    back into ``target`` (a snapshot's: ``restore``; a bundle's upload: ``load``), then wait for the target to answer
    and record the result as ``kind``; give the tool's answer with ``extra`` added."""
    with store.session() as session:
        instance = get_instance(session, target)
        server, identifier = SshTarget.of(instance.server), instance.identifier
        images = deployed_images(workspace.catalog.get(instance.service_id), instance.service_version,
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
        progress(f"{target}: {doing} on {server.name}")
        arguments = ["--inspect"] if inspect else []
        try:
            answer = backup_tool(server, command[0], identifier, *command[1:], *arguments)
        except OperationFailed as error:
            answer = {"status": "failed", "error": str(error), "started_at": utc_now().isoformat(timespec="seconds")}
    answer.update(extra or {})
    answer["data_restored"] = answer.get("status") == "success"  # the snapshot's files and database are back
    with store.session() as session:
        instance = get_instance(session, target)
        if answer.get("status") == "success":
            progress(f"{target}: waiting for it to answer")
            catalog = workspace.catalog

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
                           kind=kind)  # fmt: skip
        answer["health"] = instance.health
        answer["health_detail"] = instance.health_detail
    return answer


def carry_application_secrets(store: StateStore, source: str, target: str) -> list[str]:
    """Give ``target`` the recorded application secrets of ``source`` (their vault ciphertext as is); give the
    names that changed.

    A restore brings the source's data, and with it whatever the service keeps of those secrets (an admin
    password hashed in its database or users file, keys in its files): the target's recorded secrets must be
    the source's to open it. Database passwords (``db_*``) stay the target's: its own database server loads
    the dump under its own role.
    """
    with store.session() as session:
        origin, destination = get_instance(session, source), get_instance(session, target)
        carried = {name: value for name, value in origin.secrets.items() if not name.startswith("db_")}
        changed = sorted(name for name, value in carried.items() if destination.secrets.get(name) != value)
        if changed:
            destination.secrets = {**destination.secrets, **carried}
        return changed


def version_for_snapshot(service, manifest: dict, current: str) -> str:
    """The version a new instance that a snapshot will fill starts at: the one the snapshot was taken at
    (its data's schema), if the catalogue still lists it; else ``current``. A newer version would find
    an older schema in the restored data and change it (update.php, occ upgrade), so the restored
    data would no longer be the snapshot's; `ruche instance upgrade` moves it on afterwards."""
    taken_at = manifest.get("version") if isinstance(manifest, dict) else None
    return taken_at if taken_at and any(v.version == taken_at for v in service.versions) else current


def resolve_snapshot(store: StateStore, address: str, snapshot: str) -> str:
    """Give the full id of ``snapshot`` of ``address`` ("latest": its newest); raises NotFound if there is none."""
    with store.session() as session:
        instance = get_instance(session, address)
        server, identifier = SshTarget.of(instance.server), instance.identifier
    listed = backup_tool(server, "snapshots", identifier, timeout=600)
    if isinstance(listed, dict):
        raise OperationFailed(f"{address}: cannot list its snapshots: {listed.get('error')}")
    for entry in reversed(listed):
        if snapshot == "latest" or entry["id"].startswith(snapshot):
            return entry["id"]
    raise NotFound(f"{address} has no snapshot {snapshot!r}", hint=f"`ruche backup list {address}` shows them")


def forget_instance(store: StateStore, address: str) -> None:
    """Drop a purged scratch instance's row, so it does not linger in listings (its backup runs stay)."""
    with store.session() as session:
        instance = get_instance(session, address)
        if instance.state == "deleted":
            session.delete(instance)
