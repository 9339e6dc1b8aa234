"""``ruche instance suspend|resume|delete``: change what an instance should be, then apply it at once."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.apply import apply
from orchestrator.actions.backup_run import back_up
from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.errors import Conflict, OperationFailed
from orchestrator.state.instances import get_instance, instance_as_dict


def _check_and_set_desired_state(
    workspace_path: Path | None, address: str, desired: str, allowed_from: tuple[str, ...], *, record: bool
) -> dict:
    """Refuse (Conflict) a change the instance cannot take; set it when ``record``; give the instance."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        instance = get_instance(session, address)
        if instance.state == "deleted":
            raise Conflict(f"{address} was deleted")
        if instance.desired_state not in allowed_from:
            raise Conflict(f"{address} is to be {instance.desired_state}; cannot make it {desired}")
        if record:
            instance.desired_state = desired
        return instance_as_dict(instance)


def change_instance(
    workspace_path: Path | None,
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
    desired, allowed_from = {
        "suspend": ("suspended", ("present", "suspended")),
        "resume": ("present", ("suspended", "present")),
        "delete": ("absent", ("present", "suspended", "absent")),
        "purge": ("purged", ("present", "suspended", "absent", "purged")),
    }[action]
    view = _check_and_set_desired_state(workspace_path, address, desired, allowed_from, record=False)
    backed_up = None
    with opened(workspace_path) as (workspace, store), store.session() as session:
        wants_backup = final_backup and action in ("delete", "purge") and workspace.config.backup.repository is not None
        would = _description(action, view) + ("; a final backup is taken first" if wants_backup else "")
        if dry_run:
            return {"instance": view, "would": would, "run": None, "final_backup": None, "dry_run": True}
        if wants_backup:
            if get_instance(session, address).state != "running":
                raise Conflict(f"{address} is {view['state']}: a final backup needs it running",
                               hint=f"`ruche instance resume {address}` first, or add --no-final-backup")  # fmt: skip
            progress(f"{address}: final backup before removal")
            (backed_up,) = back_up(workspace, session, [address], reason="final", progress=progress)
    if backed_up is not None and backed_up["status"] != "success":
        raise OperationFailed(f"{address}: the final backup failed, nothing was removed: {backed_up['detail'].get('error')}",
                              hint="fix the backup target (`ruche backup status`), or add --no-final-backup")  # fmt: skip
    _check_and_set_desired_state(workspace_path, address, desired, allowed_from, record=True)
    run = apply(workspace_path, instance=address, progress=progress)
    view = next(i for i in run["instances"] if i["address"] == address)
    return {"instance": view, "would": would, "run": run, "final_backup": backed_up, "dry_run": False}


def _description(action: str, view: dict) -> str:
    where = f"on {view['server']}"
    return {
        "suspend": f"stop {view['address']}'s containers and withdraw https://{view['domain']} {where}; data kept",
        "resume": f"start {view['address']} again and route https://{view['domain']} to it {where}",
        "delete": f"remove {view['address']}'s containers, network and site {where}; data moved to the server's trash",
        "purge": f"remove {view['address']}'s containers, network and site {where} and ERASE its data",
    }[action]
