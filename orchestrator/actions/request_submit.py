"""Submitting a service request (what the web form and the API call): validated like `instance create`."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.requests import submit_in_session


def submit_request(
    workspace_path: Path | None, *, association: str, service: str, name: str | None, size: str,
    parameters: dict[str, str], requested_by: str,
) -> dict:  # fmt: skip
    """Record a request of ``association`` for ``service``; give it.

    The parameters are validated by the catalogue's models, as for `instance create`. When the
    association's offer says auto_approve and the request fits in it, the request is approved at
    once (an instance planned and a run queued). Raises InvalidInput, NotFound or Conflict
    (the name is taken by an instance or an open request) with nothing recorded.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return submit_in_session(workspace, session, association=association, service=service, name=name, size=size,
                                 parameters=parameters, requested_by=requested_by)  # fmt: skip
