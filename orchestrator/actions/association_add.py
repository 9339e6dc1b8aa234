"""``ruche association add``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.quotas import check_offer_name
from orchestrator.state.associations import add_association, association_as_dict, validate_association_spec


def register_association(workspace_path: Path | None, *, slug: str, name: str, email: str, offer: str | None) -> dict:
    """Validate and register an association; give its entry. Raises InvalidInput or Conflict, storing nothing."""
    spec = validate_association_spec(slug=slug, name=name, email=email, offer=offer)
    with opened(workspace_path) as (workspace, store), store.session() as session:
        check_offer_name(workspace.config.offers, spec.offer)
        return association_as_dict(add_association(session, spec))
