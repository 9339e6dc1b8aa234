"""``ruche request approve|reject``: an admin's decision on a pending request (recorded with who and when)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from orchestrator.actions.common import opened
from orchestrator.actions.instance_create import plan_instance
from orchestrator.catalog import load_catalog
from orchestrator.state.events import current_actor
from orchestrator.state.models import ServiceRequest
from orchestrator.state.queue import enqueue
from orchestrator.state.requests import checked_reason, get_request, move, request_as_dict
from orchestrator.workspace import Workspace


def approve_in_session(workspace: Workspace, session: Session, request: ServiceRequest, *, actor: str,
                       over_quota: bool = False, server: str | None = None) -> dict:  # fmt: skip
    """Approve ``request`` in ``session``: plan its instance, queue its run, move it to provisioning.

    All in the caller's transaction: either the request is approved with its instance and its run,
    or nothing is. Raises QuotaExceeded, Conflict (no room, name taken) or NotFound.
    """
    definition = load_catalog(workspace.catalog_dir).get(request.service_id)
    move(session, request, "approved", actor=actor)
    planned = plan_instance(
        workspace, session, definition, association=request.association.slug, name=request.name, size=request.size,
        values=dict(request.parameters), server=server, over_quota=over_quota, actor=actor,
    )  # fmt: skip
    session.flush()
    address = planned["instance"]["address"]
    queued = enqueue(session, server=planned["instance"]["server"], instance_address=address, requested_by=actor,
                     request_id=request.id)  # fmt: skip
    request.instance_address = address
    move(
        session,
        request,
        "provisioning",
        actor=actor,
        detail={"queued_run": queued.id, "server": planned["instance"]["server"]},
    )
    return {"request": request_as_dict(request), "queued_run": queued.id, "placement": planned["placement"]}


def approve(
    workspace_path: Path | None, request_id: int, *, over_quota: bool = False, server: str | None = None
) -> dict:
    """Approve pending request ``request_id`` (see :func:`approve_in_session`); nothing changes if it fails."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        request = get_request(session, request_id)
        return approve_in_session(
            workspace, session, request, actor=current_actor(), over_quota=over_quota, server=server
        )


def reject(workspace_path: Path | None, request_id: int, *, reason: str) -> dict:
    """Reject pending request ``request_id`` with ``reason`` (shown to the association); give it."""
    reason = checked_reason(reason)
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        request = get_request(session, request_id)
        move(session, request, "rejected", actor=current_actor(), reason=reason)
        return request_as_dict(request)
