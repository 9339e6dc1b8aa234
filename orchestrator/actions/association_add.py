"""``ruche association add``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.quotas import offer_for_new_association
from orchestrator.state.associations import add_association, association_as_dict, validate_association_spec


def register_association(workspace_path: Path | None, *, slug: str, name: str, email: str, offer: str | None,
                         no_offer: bool = False) -> dict:  # fmt: skip
    """Validate and register an association; give its entry. Raises InvalidInput or Conflict, storing nothing.

    Without ``offer`` it goes on ruche.toml's ``default_offer`` (no offer when that is unset, or ``no_offer``); the audit
    trail's ``associations.created`` event holds the offer it was given."""
    spec = validate_association_spec(slug=slug, name=name, email=email, offer=offer)
    with opened(workspace_path) as (workspace, store), store.session() as session:
        if not no_offer:
            spec = spec.model_copy(update={"offer": offer_for_new_association(workspace.config, spec.offer)})
        return association_as_dict(add_association(session, spec))
