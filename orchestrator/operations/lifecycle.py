"""An instance suspended, resumed, deleted or purged: its desired state changed, then its server converged at once
(a final backup first before it is removed, when backups are configured)."""

from __future__ import annotations

from orchestrator.errors import Conflict, OperationFailed
from orchestrator.operations.backup_jobs import back_up
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.converge import converge
from orchestrator.operations.inventories import write_inventory
from orchestrator.state.database import StateStore
from orchestrator.state.domains import release
from orchestrator.state.instance_changes import check_transition
from orchestrator.state.instances import get_instance, instance_as_dict
from orchestrator.workspace import Workspace


def _check_and_set_desired_state(store: StateStore, address: str, action: str, *, record: bool) -> dict:
    """Refuse (Conflict) a change the instance cannot take (state.instance_changes.check_transition); set it when
    ``record``; give the instance."""
    with store.session() as session:
        instance = get_instance(session, address)
        desired = check_transition(instance, action)
        if record:
            instance.desired_state = desired
        return instance_as_dict(instance)


def take_final_backup(
    workspace: Workspace, store: StateStore, address: str, *, progress: Progress = no_progress
) -> dict:
    """Back ``address`` up before its removal (reason ``final``, kept in its association's repository); give the
    recorded result, whose status says whether it was taken (nothing raises for a failed backup)."""
    progress(f"{address}: final backup before removal")
    with store.session() as session:
        (backed_up,) = back_up(workspace, session, [address], reason="final", progress=progress)
    return backed_up


def change_instance(
    workspace: Workspace,
    store: StateStore,
    address: str,
    action: str,
    *,
    dry_run: bool = False,
    final_backup: bool = True,
    progress: Progress = no_progress,
) -> dict:
    """Suspend, resume, delete or purge instance ``address`` and converge its server.

    ``action`` is suspend (stop the containers, withdraw the site, keep the data), resume, delete
    (remove units, network and site; data to the server's dated trash) or purge (delete and erase
    the data). With ``dry_run``, only give what would be done. Gives ``{"instance", "run"}``.
    When backups are configured, delete and purge first take a final backup (kept in the
    association's repository) unless ``final_backup`` is false; if it cannot be taken, nothing is
    removed (OperationFailed).
    Raises NotFound, InvalidInput, or Conflict (deleted already, or in another transition).
    """
    view = _check_and_set_desired_state(store, address, action, record=False)
    backed_up = None
    if action in ("delete", "purge") and not dry_run:
        forgotten = _forget_if_never_deployed(workspace, store, address, action)
        if forgotten is not None:
            return forgotten
    with store.session() as session:
        wants_backup = final_backup and action in ("delete", "purge") and workspace.config.backup.repository is not None
        would = _description(action, view) + ("; a final backup is taken first" if wants_backup else "")
        if dry_run:
            return {"instance": view, "would": would, "run": None, "final_backup": None, "dry_run": True}
        if wants_backup:
            if get_instance(session, address).state != "running":
                raise Conflict(f"{address} is {view['state']}: a final backup needs it running",
                               hint=f"`ruche instance resume {address}` first, or add --no-final-backup")  # fmt: skip
    if wants_backup:
        backed_up = take_final_backup(workspace, store, address, progress=progress)
    if backed_up is not None and backed_up["status"] != "success":
        raise OperationFailed(f"{address}: the final backup failed, nothing was removed: {backed_up['detail'].get('error')}",
                              hint="fix the backup target (`ruche backup status`), or add --no-final-backup")  # fmt: skip
    _check_and_set_desired_state(store, address, action, record=True)
    run = converge(workspace, store, instance=address, progress=progress)
    view = next(i for i in run["instances"] if i["address"] == address)
    return {"instance": view, "would": would, "run": run, "final_backup": backed_up, "dry_run": False}


def _forget_if_never_deployed(workspace: Workspace, store: StateStore, address: str, action: str) -> dict | None:
    """Delete ``address`` at once when no run ever reached it (planned, no run recorded): nothing is on any server
    to remove or back up. Gives the result as change_instance does (no run), or None when it was deployed."""
    with store.session() as session:
        instance = get_instance(session, address)
        if instance.state != "planned" or instance.last_run_id is not None:
            return None
        instance.desired_state = check_transition(instance, action)
        instance.state, instance.id_slot = "deleted", None
        release(session, instance, reason="instance deleted")
        session.flush()
        write_inventory(workspace, session)  # it leaves the inventory
        view = instance_as_dict(instance)
    return {"instance": view, "would": f"forget {address}, never deployed", "run": None, "final_backup": None,
            "dry_run": False}  # fmt: skip


def _description(action: str, view: dict) -> str:
    where = f"on {view['server']}"
    return {
        "suspend": f"stop {view['address']}'s containers and withdraw https://{view['domain']} {where}; data kept",
        "resume": f"start {view['address']} again and route https://{view['domain']} to it {where}",
        "delete": f"remove {view['address']}'s containers, network and site {where}; data moved to the server's trash",
        "purge": f"remove {view['address']}'s containers, network and site {where} and ERASE its data",
    }[action]
