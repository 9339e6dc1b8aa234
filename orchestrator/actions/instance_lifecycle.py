"""``ruche instance suspend|resume|delete``: change what an instance should be, then apply it at once."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.apply import apply
from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.errors import Conflict
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
    workspace_path: Path | None, address: str, action: str, *, dry_run: bool = False, progress: Progress = no_progress
) -> dict:
    """Suspend, resume, delete or purge instance ``address`` and converge its server.

    ``action`` is suspend (stop the containers, withdraw the site, keep the data), resume, delete
    (remove units, network and site; data to the server's dated trash) or purge (delete and erase
    the data). With ``dry_run``, only give what would be done. Gives ``{"instance", "run"}``.
    Raises NotFound, InvalidInput, or Conflict (deleted already, or in another transition).
    """
    desired, allowed_from = {
        "suspend": ("suspended", ("present", "suspended")),
        "resume": ("present", ("suspended", "present")),
        "delete": ("absent", ("present", "suspended", "absent")),
        "purge": ("purged", ("present", "suspended", "absent", "purged")),
    }[action]
    view = _check_and_set_desired_state(workspace_path, address, desired, allowed_from, record=not dry_run)
    if dry_run:
        return {"instance": view, "would": _description(action, view), "run": None, "dry_run": True}
    run = apply(workspace_path, instance=address, progress=progress)
    view = next(i for i in run["instances"] if i["address"] == address)
    return {"instance": view, "would": _description(action, view), "run": run, "dry_run": False}


def _description(action: str, view: dict) -> str:
    where = f"on {view['server']}"
    return {
        "suspend": f"stop {view['address']}'s containers and withdraw https://{view['domain']} {where}; data kept",
        "resume": f"start {view['address']} again and route https://{view['domain']} to it {where}",
        "delete": f"remove {view['address']}'s containers, network and site {where}; data moved to the server's trash",
        "purge": f"remove {view['address']}'s containers, network and site {where} and ERASE its data",
    }[action]
