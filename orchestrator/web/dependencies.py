"""What a route declares it needs: the app's shared parts, a state session, who is signed in, a checked form.

A route reaches its body only once its dependencies are met: ``signed_in: Member`` redirects a
browser without a member's session to the landing page, ``Admin`` to the admins' sign-in,
``ApiMember`` answers 401, ``MemberForm`` / ``AdminForm`` refuse a form without the session's
CSRF token (400), ``ApiWriter`` an API write without X-CSRF-Token (403). The state session is
committed when the route's function returns, before the response leaves (``scope="function"``),
and rolled back if it raises.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from orchestrator.catalog import Catalog
from orchestrator.state.access import session_for_token
from orchestrator.state.database import StateStore
from orchestrator.state.models import WebSession
from orchestrator.web.errors import API_CSRF, API_SIGN_IN, ApiError, BadForm, SignInNeeded
from orchestrator.web.pages import COOKIE, Pages
from orchestrator.web.security import RateLimiter
from orchestrator.workspace import Workspace


@dataclass
class WebApp:
    """What every route shares for the app's life (``request.app.state.web``)."""

    workspace: Workspace
    store: StateStore
    catalog: Catalog
    pages: Pages
    sign_in_limit: RateLimiter  # invite links and admins' passwords, per client address
    account_limit: RateLimiter  # admins' passwords, per account name (whatever the address)
    join_limit: RateLimiter  # the public join page, per client address
    # what routes keep for a while (routes/chatonsinfos.py: the published files and when they were gathered)
    kept: dict = field(default_factory=dict)


def web_app(request: Request) -> WebApp:
    return request.app.state.web


Web = Annotated[WebApp, Depends(web_app)]

# A row id in a path (/espace/demandes/N): what the state's BIGINT/INTEGER columns hold; beyond, the database
# driver overflows (a 500). Outside the bounds (or not a number): a 404 page, or the API's 422.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def state_session(web: Web) -> Iterator[Session]:
    with web.store.session() as session:
        session.info["actor"] = "web visitor"  # until a session says who (the audit trail's actor)
        yield session


StateSession = Annotated[Session, Depends(state_session, scope="function")]


def signed_in_session(request: Request, session: StateSession) -> WebSession | None:
    """The browser's session, member's or admin's, if its cookie names one still valid (then its changes of
    state are recorded as that member's or admin's)."""
    found = session_for_token(session, request.cookies.get(COOKIE))
    if found is not None:
        session.info["actor"] = actor_of_web_session(found)
    return found


def actor_of_web_session(found: WebSession) -> str:
    if found.admin_id is not None:
        return f"admin {found.admin.name}"
    invite = found.invite
    if invite is not None and invite.manager:  # a manager's acts carry their name (state/members.py)
        who = f"{invite.name or invite.email} " if invite.name or invite.email else ""
        return f"manager {who}of {found.association.slug} (invite {found.invite_id})"
    return f"member of {found.association.slug} (invite {found.invite_id})"


AnySession = Annotated[WebSession | None, Depends(signed_in_session)]


def _member_or_none(found: AnySession) -> WebSession | None:
    # an admin's session does not open members' pages
    return found if found is not None and found.association_id is not None else None


def member(found: Annotated[WebSession | None, Depends(_member_or_none)]) -> WebSession:
    if found is None:
        raise SignInNeeded("/")
    return found


def member_of_a_part(found: Annotated[WebSession | None, Depends(_member_or_none)]) -> WebSession:
    """The same, for the part of a page a script fetches again: 401 alone, no redirect to follow."""
    if found is None:
        raise SignInNeeded(None)
    return found


def admin(found: AnySession) -> WebSession:
    if found is None or found.admin_id is None:
        raise SignInNeeded("/admin/connexion")
    return found


def api_member(found: Annotated[WebSession | None, Depends(_member_or_none)]) -> WebSession:
    if found is None:
        raise ApiError(401, API_SIGN_IN)
    return found


Member = Annotated[WebSession, Depends(member)]
MemberOfAPart = Annotated[WebSession, Depends(member_of_a_part)]
Admin = Annotated[WebSession, Depends(admin)]
ApiMember = Annotated[WebSession, Depends(api_member)]


def csrf_matches(form: FormData, signed_in: WebSession) -> bool:
    sent = form.get("csrf_token", "")
    return isinstance(sent, str) and secrets.compare_digest(sent, signed_in.csrf_token)


async def _checked_form(request: Request, signed_in: WebSession) -> FormData:
    form = await request.form()
    if not csrf_matches(form, signed_in):
        raise BadForm()
    return form


async def member_form(request: Request, signed_in: Member) -> FormData:
    """The posted form of a signed-in member, once its CSRF token is the session's."""
    return await _checked_form(request, signed_in)


async def admin_form(request: Request, signed_in: Admin) -> FormData:
    """The posted form of a signed-in admin, once its CSRF token is the session's."""
    return await _checked_form(request, signed_in)


def api_writer(request: Request, signed_in: ApiMember) -> WebSession:
    """A signed-in member whose API write carries the session's CSRF token in X-CSRF-Token."""
    if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), signed_in.csrf_token):
        raise ApiError(403, API_CSRF)
    return signed_in


MemberForm = Annotated[FormData, Depends(member_form)]
AdminForm = Annotated[FormData, Depends(admin_form)]
ApiWriter = Annotated[WebSession, Depends(api_writer)]
