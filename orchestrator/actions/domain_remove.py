"""``ruche domain remove ASSOCIATION/NAME DOMAIN``: take an own domain away from an instance."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations import own_domains


def remove_domain(workspace_path: Path | None, address: str, domain: str, *, progress: Progress = no_progress) -> dict:
    """Forget ``domain`` of ``address``; an attached one stops being served (its instance is applied again)."""
    with opened(workspace_path) as (workspace, store):
        return own_domains.remove(workspace, store, address, domain, progress=progress)
