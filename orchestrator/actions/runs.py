"""``ruche runs list|show``: the audit trail of provisioning runs."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.runs import get_run, list_runs, run_as_dict


def runs(workspace_path: Path | None, *, limit: int = 50) -> list[dict]:
    """Give the newest runs, newest first."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [run_as_dict(run) for run in list_runs(session, limit=limit)]


def run(workspace_path: Path | None, run_id: str) -> dict:
    """Give run ``run_id``; raises NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return run_as_dict(get_run(session, run_id))
