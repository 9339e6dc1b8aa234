"""``ruche alerts``: the alerts the watcher opened (``--all``: cleared ones too)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.alerts import alert_as_dict, list_alerts
from orchestrator.state.associations import get_association


def alerts(workspace_path: Path | None, *, everything: bool = False, association: str | None = None) -> list[dict]:
    """Open alerts, newest first (``everything``: cleared ones after them), optionally one association's."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        if association is not None:
            get_association(session, association)  # NotFound for a name that is none: never "no alert" for a typo
        return [alert_as_dict(a) for a in list_alerts(session, everything=everything, association=association)]
