"""``ruche instance upgrade``: move one instance to a newer version of its service, or back where it was
(the work: :mod:`orchestrator.operations.upgrades`)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations import upgrades


def preview(workspace_path: Path | None, address: str, *, to: str | None = None, check_health: bool = True) -> dict:
    """Check that ``address`` may be upgraded (to ``to``, default: its service's current version); give the plan
    (see :func:`orchestrator.operations.upgrades.preview`)."""
    with opened(workspace_path) as (workspace, store):
        return upgrades.preview(workspace, store, address, to=to, check_health=check_health)


def upgrade_instance(
    workspace_path: Path | None, address: str, *, to: str | None = None, dry_run: bool = False,
    progress: Progress = no_progress, actor: str | None = None, fleet: str | None = None, pull_first: bool = True,
) -> dict:  # fmt: skip
    """Upgrade ``address`` step by step, after finishing or rolling back an interrupted upgrade of it; give the plan,
    or the recorded upgrade (see :func:`orchestrator.operations.upgrades.upgrade_instance`)."""
    with opened(workspace_path) as (workspace, store):
        return upgrades.upgrade_instance(
            workspace,
            store,
            address,
            to=to,
            dry_run=dry_run,
            progress=progress,
            actor=actor,
            fleet=fleet,
            pull_first=pull_first,
        )


def recover_interrupted_upgrades(
    workspace_path: Path | None, *, instance: str | None = None, server: str | None = None, by: str,
    progress: Progress = no_progress,
) -> list[dict]:  # fmt: skip
    """Finish or roll back every interrupted upgrade (of ``instance``, or of the instances on ``server``); give them."""
    with opened(workspace_path) as (workspace, store):
        return upgrades.recover_interrupted_upgrades(
            workspace, store, instance=instance, server=server, by=by, progress=progress
        )
