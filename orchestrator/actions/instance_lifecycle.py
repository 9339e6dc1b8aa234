"""``ruche instance suspend|resume|delete``: change what an instance should be, then apply it at once."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations import lifecycle


def change_instance(
    workspace_path: Path | None,
    address: str,
    action: str,
    *,
    dry_run: bool = False,
    final_backup: bool = True,
    progress: Progress = no_progress,
) -> dict:
    """Suspend, resume, delete or purge instance ``address`` and converge its server (see
    :func:`orchestrator.operations.lifecycle.change_instance`); gives ``{"instance", "run", ...}``."""
    with opened(workspace_path) as (workspace, store):
        return lifecycle.change_instance(
            workspace, store, address, action, dry_run=dry_run, final_backup=final_backup, progress=progress
        )
