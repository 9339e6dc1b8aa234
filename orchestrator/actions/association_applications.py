"""``ruche association applications|accept|decline``: applications from the public join page."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.quotas import offer_for_new_association
from orchestrator.state.actors import current_actor
from orchestrator.state.applications import application_as_dict, decide, get_application, list_applications


def applications(workspace_path: Path | None, *, state: str | None = None) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [application_as_dict(a) for a in list_applications(session, state=state)]


def accept(workspace_path: Path | None, application_id: int, *, offer: str | None = None) -> dict:
    """Register the applying association (on ``offer``, else on ruche.toml's ``default_offer``, else on none);
    raises NotFound, InvalidInput or Conflict."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        offer = offer_for_new_association(workspace.config, offer)
        return application_as_dict(decide(session, get_application(session, application_id), accept=True,
                                          actor=current_actor(), offer=offer))  # fmt: skip


def decline(workspace_path: Path | None, application_id: int, *, reason: str) -> dict:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return application_as_dict(decide(session, get_application(session, application_id), accept=False,
                                          actor=current_actor(), reason=reason))  # fmt: skip
