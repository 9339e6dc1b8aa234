"""``ruche request list|show``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput
from orchestrator.state.events import event_as_dict, list_events
from orchestrator.state.queue import queued_as_dict, runs_of_request
from orchestrator.state.requests import NEXT_STATES, get_request, list_requests, request_as_dict


def requests(workspace_path: Path | None, *, state: str | None = None) -> list[dict]:
    if state is not None and state not in NEXT_STATES:
        raise InvalidInput(f"state {state!r}: expected one of {', '.join(NEXT_STATES)}")
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [request_as_dict(r) for r in list_requests(session, state=state)]


def request(workspace_path: Path | None, request_id: int) -> dict:
    """Give request ``request_id`` with its history (who moved it, when) and its queued runs; raises NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        entry = request_as_dict(get_request(session, request_id))
        entry["history"] = [
            event_as_dict(e) for e in list_events(session, subject=f"request/{request_id}", kind="request.*")
        ]
        entry["runs"] = [queued_as_dict(r) for r in runs_of_request(session, request_id)]
        return entry
