"""``ruche association manager|new-link``: an association's managers, and a new link for a member who lost theirs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.access import invite_as_dict
from orchestrator.state.members import get_member, renew_link, set_manager


def manager(workspace_path: Path | None, invite_id: int, *, manager: bool = True) -> dict:
    """Make member ``invite_id`` their association's manager (``manager`` false: a plain member again); give the
    invite. Raises NotFound for a missing or revoked invite."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return invite_as_dict(set_manager(session, get_member(session, invite_id), manager))


def new_link(workspace_path: Path | None, invite_id: int, *, days: int | None = None) -> dict:
    """Give member ``invite_id`` a new sign-in link (the old one and its sessions end); give the invite with its
    ``link`` (shown once). Raises NotFound for a missing or revoked invite."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        member = get_member(session, invite_id)
        token = renew_link(session, member, timedelta(days=days or workspace.config.web.invite_days))
        entry = invite_as_dict(member)
        entry["link"] = f"{workspace.config.web.base_url.rstrip('/')}/connexion/{token}"
        return entry
