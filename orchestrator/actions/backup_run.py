"""``ruche backup run``: back up instances now, servers in parallel, each server's instances in turn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput
from orchestrator.operations.backup_jobs import back_up, require_backups
from orchestrator.state.instances import get_instance, list_instances
from orchestrator.state.servers import get_server


def run_backups(
    workspace_path: Path | None, *, instance: str | None = None, server: str | None = None, all_instances: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict:  # fmt: skip
    """Back up one instance, a server's instances or all running instances now; give the recorded results.

    Gives ``{"results": [...], "skipped": [...], "succeeded": bool}``. Raises InvalidInput unless exactly
    one of the three targets is given, NotFound for an unknown one, MissingPrerequisite without a repository.
    """
    if sum((instance is not None, server is not None, all_instances)) != 1:
        raise InvalidInput("say what to back up: INSTANCE, --server S or --all (exactly one)")
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        if instance is not None:
            chosen = [get_instance(session, instance)]
        else:
            if server is not None:
                get_server(session, server)
            chosen = [i for i in list_instances(session) if server is None or i.server.name == server]
        runnable = [i for i in chosen if i.state == "running"]
        skipped = [
            {"instance": i.address, "state": i.state} for i in chosen if i.state != "running" and i.state != "deleted"
        ]
        if instance is not None and not runnable:
            raise InvalidInput(f"{instance} is {chosen[0].state}: only running instances are backed up",
                               hint="`ruche apply` or `ruche instance resume` first")  # fmt: skip
        results = back_up(workspace, session, [i.address for i in runnable], reason="manual", progress=progress)
        return {"results": results, "skipped": skipped, "succeeded": all(r["status"] == "success" for r in results)}
