"""Who may see what in the web app: members' invites (personal links) and browser sessions.

Tokens are random (256 bits) and only their SHA-256 is stored, so the state database never holds
a usable link or session. An invite expires and can be revoked; revoking it ends its sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.state.models import Admin, Association, Invite, WebSession, as_utc, utc_now

SESSION_LIFETIME = timedelta(hours=12)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_invite(session: Session, association: Association, *, email: str, created_by: str,
                  valid_for: timedelta, name: str = "", manager: bool = False) -> tuple[Invite, str]:  # fmt: skip
    """Make an invite for ``association`` (its manager's with ``manager``); give it and its token (shown once,
    never stored)."""
    token = secrets.token_urlsafe(32)
    invite = Invite(association=association, token_hash=digest(token), email=email, name=name, manager=manager,
                    created_by=created_by, created_at=utc_now(), expires_at=utc_now() + valid_for)  # fmt: skip
    session.add(invite)
    session.flush()
    return invite, token


def invite_for_token(session: Session, token: str) -> Invite | None:
    """Give the live invite of ``token``: known, not expired, not revoked; else None."""
    if not token or len(token) > 200:
        return None
    invite = session.scalar(select(Invite).where(Invite.token_hash == digest(token)))
    if invite is None or invite.revoked_at is not None or as_utc(invite.expires_at) <= utc_now():
        return None
    return invite


def revoke_invite(session: Session, invite_id: int) -> Invite:
    """Revoke invite ``invite_id`` and end the sessions opened with it; raises NotFound."""
    invite = session.get(Invite, invite_id)
    if invite is None:
        raise NotFound(f"no invite {invite_id}", hint="`ruche association invites SLUG` lists them")
    invite.revoked_at = invite.revoked_at or utc_now()
    session.execute(delete(WebSession).where(WebSession.invite_id == invite.id))
    return invite


def list_invites(session: Session, association: Association) -> list[Invite]:
    return list(session.scalars(select(Invite).where(Invite.association_id == association.id).order_by(Invite.id)))


def _new_session(session: Session, *, expires_at: datetime | None = None, **owner) -> tuple[WebSession, str]:
    """Open a browser session for ``owner`` (an invite and its association, or an admin), for at most
    SESSION_LIFETIME (and not past ``expires_at``); give it and its cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utc_now()
    # each sign-in also removes the sessions that have expired (nothing else would: they only stop working)
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    lifetime_end = now + SESSION_LIFETIME
    opened = WebSession(token_hash=digest(token), csrf_token=secrets.token_urlsafe(32), created_at=now,
                        expires_at=min(lifetime_end, expires_at) if expires_at else lifetime_end, **owner)  # fmt: skip
    session.add(opened)
    session.flush()
    return opened, token


def open_session(session: Session, invite: Invite) -> tuple[WebSession, str]:
    """Open a browser session for ``invite``'s association (not past the invite's expiry); give it and its cookie token."""
    invite.last_used_at = utc_now()
    return _new_session(session, expires_at=as_utc(invite.expires_at), invite_id=invite.id,
                        association_id=invite.association_id)  # fmt: skip


def session_for_token(session: Session, token: str | None) -> WebSession | None:
    """Give the live session of cookie ``token``, or None."""
    if not token or len(token) > 200:
        return None
    found = session.scalar(select(WebSession).where(WebSession.token_hash == digest(token)))
    if found is None or as_utc(found.expires_at) <= utc_now():
        return None
    return found


def close_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == digest(token)))


def invite_as_dict(invite: Invite) -> dict:
    state = "revoked" if invite.revoked_at else ("expired" if as_utc(invite.expires_at) <= utc_now() else "active")
    return {"id": invite.id, "association": invite.association.slug, "email": invite.email, "state": state,
            "name": invite.name, "manager": invite.manager, "created_by": invite.created_by,
            "created_at": invite.created_at.isoformat(timespec="seconds"),
            "expires_at": as_utc(invite.expires_at).isoformat(timespec="seconds"),
            "last_used_at": invite.last_used_at.isoformat(timespec="seconds") if invite.last_used_at else None}  # fmt: skip


PASSWORDS = PasswordHasher()  # Argon2id with argon2-cffi's current defaults
ADMIN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def add_admin(session: Session, name: str, password: str) -> Admin:
    """Register admin ``name``; raises InvalidInput (bad name, password under 12 characters) or Conflict."""
    if not ADMIN_NAME.match(name):
        raise InvalidInput(f"admin name {name!r}: use a-z, 0-9, '.', '_' and '-', 64 at most")
    if len(password) < 12 or len(password) > 1024:
        raise InvalidInput("the password must have 12 to 1024 characters")
    if session.scalar(select(Admin).where(Admin.name == name)) is not None:
        raise Conflict(f"admin {name} exists already")
    admin = Admin(name=name, password_hash=PASSWORDS.hash(password), created_at=utc_now())
    session.add(admin)
    session.flush()
    return admin


def remove_admin(session: Session, name: str) -> None:
    admin = session.scalar(select(Admin).where(Admin.name == name))
    if admin is None:
        raise NotFound(f"no admin {name}", hint="`ruche admin list` shows them")
    session.delete(admin)


def list_admins(session: Session) -> list[Admin]:
    return list(session.scalars(select(Admin).order_by(Admin.name)))


def check_admin(session: Session, name: str, password: str) -> Admin | None:
    """Give the admin when ``password`` is theirs, else None (the same work is done for an unknown name)."""
    admin = session.scalar(select(Admin).where(Admin.name == name[:64]))
    try:
        PASSWORDS.verify(admin.password_hash if admin else DUMMY_HASH, password[:1024])
    except (VerificationError, InvalidHashError):
        return None
    return admin


DUMMY_HASH = PASSWORDS.hash("not a password of anyone")


def open_admin_session(session: Session, admin: Admin) -> tuple[WebSession, str]:
    """Open a browser session for ``admin``; give it and its cookie token."""
    return _new_session(session, admin_id=admin.id)
