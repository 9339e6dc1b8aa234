"""``ruche domain primary ASSOCIATION/NAME [DOMAIN]``: the name an instance's application calls itself by."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations import own_domains


def set_primary(
    workspace_path: Path | None, address: str, domain: str | None, *, progress: Progress = no_progress
) -> dict:
    """Make ``domain`` (attached; None: the collective's name) ``address``'s primary name and apply it."""
    with opened(workspace_path) as (workspace, store):
        return own_domains.set_primary(workspace, store, address, domain, progress=progress)
