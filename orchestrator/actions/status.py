"""``ruche status``: every instance with its server, state and health, checked now through Caddy."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.state.instances import ACTIVE_STATES, instance_as_dict, instance_views, list_instances


def status(workspace_path: Path | None, *, association: str | None = None, check: bool = True) -> list[dict]:
    """Check and give every instance (or one association's) with server, state and health.

    ``check=False``: give the health last recorded (by an apply, a status, the worker), checking nothing.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        if not check:
            return instance_views(session, association=association, states=ACTIVE_STATES)
        instances = [i for i in list_instances(session, association=association) if i.state in ACTIVE_STATES]
        check_and_record_health(workspace, workspace.catalog, instances)
        return [instance_as_dict(i) for i in instances]


def unhealthy(entries: list[dict]) -> list[dict]:
    """Give the entries that should answer and do not."""
    return [e for e in entries if e["desired_state"] == "present" and e["health"] != "healthy"]
