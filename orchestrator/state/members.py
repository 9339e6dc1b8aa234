"""An association's members (each is one invite: a personal sign-in link) and its managers.

A manager is a member whose invite says ``manager``: an admin (``ruche association manager``, the admins'
pages) or another manager of the same association makes them one. Managers invite and remove their
association's members, give a member who lost their link a new one, and suspend, resume or delete its
services (state/instance_changes.py). Each change is a row change of the audit trail (state/change_listener.py) and
an event of its own saying what was done, both with the session's actor (the manager's name).
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.state.access import digest
from orchestrator.state.events import record_event
from orchestrator.state.models import Association, Invite, WebSession, utc_now

MAX_NAME = 80


def checked_member_name(name: str) -> str:
    """``name`` stripped; raises InvalidInput when longer than MAX_NAME or holding control or format characters."""
    name = name.strip()
    if len(name) > MAX_NAME or any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise InvalidInput(
            f"member name {name[:MAX_NAME]!r}: {MAX_NAME} characters at most, no control or invisible character"
        )
    return name


def members(session: Session, association: Association) -> list[Invite]:
    """The association's members: its invites not revoked (expired ones too: a new link revives them)."""
    return list(session.scalars(select(Invite).where(Invite.association_id == association.id,
                                                     Invite.revoked_at.is_(None)).order_by(Invite.id)))  # fmt: skip


def get_member(session: Session, invite_id: int, association: Association | None = None) -> Invite:
    """Member ``invite_id`` (of ``association`` when given); raises NotFound when missing, revoked or another
    association's (the same answer)."""
    invite = session.get(Invite, invite_id)
    if (
        invite is None
        or invite.revoked_at is not None
        or (association is not None and invite.association_id != association.id)
    ):
        raise NotFound(f"no member {invite_id}" + (f" in {association.slug}" if association is not None else ""),
                       hint="`ruche association invites SLUG` lists them")  # fmt: skip
    return invite


def is_manager(session: Session, web_session: WebSession) -> bool:
    """Whether the member signed in with ``web_session`` manages its association now (checked at each request:
    a role withdrawn or an invite revoked counts at once)."""
    if web_session.invite_id is None:
        return False
    invite = session.get(Invite, web_session.invite_id)
    return invite is not None and invite.manager and invite.revoked_at is None


def set_manager(session: Session, invite: Invite, manager: bool) -> Invite:
    """Make member ``invite`` their association's manager (or a plain member again); raises Conflict for a
    revoked invite."""
    if invite.revoked_at is not None:
        raise Conflict(f"invite {invite.id} is revoked", hint="make a new invite for this member")
    if invite.manager != manager:
        invite.manager = manager
        slug = invite.association.slug
        record_event(session, kind="invite.manager" if manager else "invite.member", subject=slug, association=slug,
                     detail={"invite": invite.id, "name": invite.name, "email": invite.email})  # fmt: skip
    return invite


def renew_link(session: Session, invite: Invite, valid_for: timedelta) -> str:
    """Give member ``invite`` a new sign-in link (a lost one, or one already used): a new token valid for
    ``valid_for``; the old link and the browsers signed in with it stop working. Give the token (shown once)."""
    if invite.revoked_at is not None:
        raise Conflict(f"invite {invite.id} is revoked", hint="make a new invite for this member")
    token = secrets.token_urlsafe(32)
    invite.token_hash = digest(token)
    invite.last_used_at = None
    invite.expires_at = utc_now() + valid_for
    session.execute(delete(WebSession).where(WebSession.invite_id == invite.id))
    slug = invite.association.slug
    record_event(session, kind="invite.renewed", subject=slug, association=slug,
                 detail={"invite": invite.id, "name": invite.name, "email": invite.email})  # fmt: skip
    return token


def remove_member(session: Session, invite: Invite) -> Invite:
    """Revoke member ``invite``'s link and end their sessions."""
    invite.revoked_at = invite.revoked_at or utc_now()
    session.execute(delete(WebSession).where(WebSession.invite_id == invite.id))
    slug = invite.association.slug
    record_event(session, kind="invite.revoked", subject=slug, association=slug,
                 detail={"invite": invite.id, "name": invite.name, "email": invite.email})  # fmt: skip
    return invite


def member_label(invite: Invite) -> str:
    """How the audit trail names a member: their name, else their address, else their invite's number."""
    return invite.name or invite.email or f"invite {invite.id}"
