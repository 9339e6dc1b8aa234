"""``ruche apply --enqueue`` and ``ruche queue list|show``: runs for the worker."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.actors import current_actor
from orchestrator.state.instances import get_instance
from orchestrator.state.queue import enqueue, get_queued, list_queue, queued_as_dict
from orchestrator.state.servers import get_server, list_servers


def enqueue_apply(workspace_path: Path | None, *, server: str | None = None, instance: str | None = None) -> list[dict]:
    """Queue what ``ruche apply`` with the same options would do, one run per server; give the queued runs.

    Raises NotFound for an unknown server or instance.
    """
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        if instance is not None:
            runs = [enqueue(session, server=get_instance(session, instance).server.name, instance_address=instance,
                            requested_by=current_actor())]  # fmt: skip
        elif server is not None:
            runs = [
                enqueue(
                    session,
                    server=get_server(session, server).name,
                    instance_address=None,
                    requested_by=current_actor(),
                )
            ]
        else:
            runs = [enqueue(session, server=s.name, instance_address=None, requested_by=current_actor())
                    for s in list_servers(session) if s.role == "apps"]  # fmt: skip
        return [queued_as_dict(run) for run in runs]


def queued_runs(workspace_path: Path | None, *, limit: int = 50) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [queued_as_dict(run) for run in list_queue(session, limit=limit)]


def queued_run(workspace_path: Path | None, run_id: int) -> dict:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return queued_as_dict(get_queued(session, run_id))
