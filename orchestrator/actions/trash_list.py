"""``ruche trash list``: what deleted instances left in each application server's trash, and when it is due.

One SSH command per server (``trash.LIST_SCRIPT``), servers in parallel; each entry's due date follows
its association's offer as ruche.toml defines it now (``trash.due_date``).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.trash import survey


def list_trash(workspace_path: Path | None, *, server: str | None = None, progress: Progress = no_progress) -> dict:
    """``ruche trash list``: each entry of every application server's trash (or ``server``'s) with its instance,
    association, deletion time, size, due date and the rule that gives it; see ``trash.survey``."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return survey(session, dict(workspace.config.offers), server=server, progress=progress)[0]
