"""``ruche request approve|reject``: an admin's decision on a pending request (recorded with who and when)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.requests import approve_in_session
from orchestrator.state.actors import current_actor
from orchestrator.state.requests import checked_reason, get_request, move, request_as_dict


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
