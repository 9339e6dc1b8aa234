"""``ruche association invite|invites|revoke-invite``: members' personal sign-in links."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.access import create_invite, invite_as_dict, list_invites, revoke_invite
from orchestrator.state.actors import current_actor
from orchestrator.state.associations import get_association, validate_association_spec
from orchestrator.state.events import record_event
from orchestrator.state.members import checked_member_name


def invite(workspace_path: Path | None, slug: str, *, email: str | None = None, days: int | None = None,
           name: str = "", manager: bool = False) -> dict:  # fmt: skip
    """Make a sign-in link for a member of ``slug`` (named ``name``; its manager with ``manager``); give the invite
    with its ``link`` (shown once).

    Raises NotFound for an unknown association, InvalidInput for a bad e-mail address or name.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        association = get_association(session, slug)
        if email:
            validate_association_spec(slug=slug, name="x", email=email)  # the same e-mail rule
        valid_for = timedelta(days=days or workspace.config.web.invite_days)
        created, token = create_invite(session, association, email=email or "", created_by=current_actor(),
                                       valid_for=valid_for, name=checked_member_name(name), manager=manager)  # fmt: skip
        record_event(
            session,
            kind="invite.created",
            subject=slug,
            association=slug,
            detail={"invite": created.id, "email": email or "", "name": created.name, "manager": manager},
        )
        entry = invite_as_dict(created)
        entry["link"] = f"{workspace.config.web.base_url.rstrip('/')}/connexion/{token}"
        return entry


def invites(workspace_path: Path | None, slug: str) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [invite_as_dict(i) for i in list_invites(session, get_association(session, slug))]


def revoke(workspace_path: Path | None, invite_id: int) -> dict:
    """Revoke an invite and sign out the browsers that used it; give it."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        revoked = revoke_invite(session, invite_id)
        record_event(
            session,
            kind="invite.revoked",
            subject=revoked.association.slug,
            association=revoked.association.slug,
            detail={"invite": invite_id},
        )
        return invite_as_dict(revoked)
