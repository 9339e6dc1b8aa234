"""``ruche lab down``: stop and remove everything the lab created, by the ids it recorded."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.lab.host import require_root
from orchestrator.operations.lab import remove_lab
from orchestrator.workspace import open_workspace


def tear_down(workspace_path: Path | None, *, progress: Progress = no_progress) -> dict:
    """Remove the lab of the workspace (see :func:`orchestrator.operations.lab.remove_lab`); give counts of what was
    removed.  Safe to run on a half-created lab or no lab at all.
    """
    require_root()
    # the lab's settings go first (with the lab's directory at the end, again): ruche.toml's alone apply from now
    # on, and a damaged settings file cannot stop the lab from being taken down
    open_workspace(workspace_path).lab_settings_path.unlink(missing_ok=True)
    with opened(workspace_path) as (workspace, store):
        return remove_lab(workspace, store, progress=progress)
