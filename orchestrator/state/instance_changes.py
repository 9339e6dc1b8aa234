"""Suspend, resume or delete an instance by queuing its run: what a manager's button does.

The change is recorded in the caller's session (the instance's desired state and a queued run of that one
instance, which a worker carries out as `ruche apply --instance` would, exactly like an approved request's
run), so the web process never runs Ansible itself. The same transitions as `ruche instance suspend|resume|
delete` are refused; the worker takes a final backup before a delete when backups are configured (as `ruche
instance delete` does: operations/lifecycle.take_final_backup), then the data goes to the server's trash.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.errors import Conflict
from orchestrator.state.events import record_event
from orchestrator.state.models import Instance, QueuedRun
from orchestrator.state.queue import enqueue

# action -> (the desired state it sets, the desired states it may come from): `ruche instance suspend|resume|delete|
# purge` (operations/lifecycle.py) and a manager's buttons (suspend, resume, delete: never purge)
TRANSITIONS = {
    "suspend": ("suspended", ("present", "suspended")),
    "resume": ("present", ("suspended", "present")),
    "delete": ("absent", ("present", "suspended", "absent")),
    "purge": ("purged", ("present", "suspended", "absent", "purged")),
}
MANAGER_ACTIONS = ("suspend", "resume", "delete")


def check_transition(instance: Instance, action: str) -> str:
    """Give the desired state ``action`` sets on ``instance``; raise Conflict when the instance was deleted or is to
    be made something the action cannot follow (`ruche instance suspend|resume|delete|purge` and a manager's buttons)."""
    desired, allowed_from = TRANSITIONS[action]
    if instance.state == "deleted":
        raise Conflict(f"{instance.address} was deleted")
    if instance.desired_state not in allowed_from:
        raise Conflict(f"{instance.address} is to be {instance.desired_state}; cannot make it {desired}")
    return desired


def queue_change(session: Session, instance: Instance, action: str, *, actor: str) -> QueuedRun:
    """Set ``instance``'s desired state for ``action`` (suspend, resume, delete) and queue its run; give the run.

    Raises Conflict when the instance was deleted or is to be made something the action cannot follow.
    """
    if action not in MANAGER_ACTIONS:
        raise Conflict(f"{action!r}: a manager may only {', '.join(MANAGER_ACTIONS)}")
    instance.desired_state = desired = check_transition(instance, action)
    session.flush()
    run = enqueue(session, server=instance.server.name, instance_address=instance.address, requested_by=actor)
    record_event(session, kind=f"instance.{action}", subject=instance.address, actor=actor,
                 detail={"desired_state": desired, "queued_run": run.id})  # fmt: skip
    return run
