"""``ruche domain verify [ASSOCIATION/NAME [DOMAIN]]``: prove pending domains, attach and serve them."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations import own_domains


def verify_domains(
    workspace_path: Path | None,
    address: str | None = None,
    domain: str | None = None,
    *,
    wait_seconds: float = own_domains.CERTIFICATE_WAIT_SECONDS,
    progress: Progress = no_progress,
) -> dict:
    """Check the proofs of the pending domains (of ``address``; ``domain`` of it), attach those that hold, apply
    them, and wait for their certificates (see operations/own_domains.verify)."""
    with opened(workspace_path) as (workspace, store):
        return own_domains.verify(workspace, store, address=address, name=domain, wait_seconds=wait_seconds,
                                  progress=progress)  # fmt: skip
