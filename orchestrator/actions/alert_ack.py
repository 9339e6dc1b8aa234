"""``ruche alerts ack ID --reason TEXT``: an open alert's reminders silenced, with a reason, in the audit trail."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput
from orchestrator.state.actors import current_actor
from orchestrator.state.alerts import acknowledge, alert_as_dict


def ack(workspace_path: Path | None, alert_id: int, *, reason: str) -> dict:
    """Acknowledge alert ``alert_id``: not reminded any more; it still clears, and that is still told."""
    reason = " ".join(reason.split())
    if not reason or len(reason) > 500 or any(not c.isprintable() for c in reason):
        raise InvalidInput("--reason must be 1 to 500 printable characters", hint='e.g. --reason "disk ordered, '
                           'arrives Tuesday"')  # fmt: skip
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return alert_as_dict(acknowledge(session, alert_id, reason=reason, by=current_actor()))
