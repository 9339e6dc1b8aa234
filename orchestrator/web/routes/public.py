"""Pages anyone may open: the landing page, the sign-in link, signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import update

from orchestrator.i18n import N_
from orchestrator.state.access import close_session, invite_for_token, open_session
from orchestrator.state.models import Invite, WebSession, utc_now
from orchestrator.web.dependencies import AnySession, StateSession, Web, WebApp, csrf_matches
from orchestrator.web.pages import COOKIE, texts_of
from orchestrator.web.security import over_the_limit

router = APIRouter(include_in_schema=False)

LINK_USED = N_(
    "This sign-in link has already been used: each link opens one session only. To sign in again, ask "
    "your association's manager or %(collective)s's admins to send you a new link."
)
SIGNED_IN_AS_MEMBER = N_(
    "You are signed in to %(association)s's space, and this link opens another session. To use it, first sign "
    'out with the "Sign out" button at the top of this page, then open the link again: it has not been used.'
)
SIGNED_IN_AS_ADMIN = N_(
    "You are signed in as the admin %(admin)s, and this link opens a member's session. To use it, first sign "
    'out with the "Sign out" button at the top of this page, then open the link again: it has not been used.'
)
SIGN_OUT_REFUSED = N_(
    'You are still signed in: the sign-out form had expired. Reload the page and use its "Sign out" button again.'
)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, web: Web, signed_in: AnySession) -> Response:
    if signed_in is not None and signed_in.association_id is not None:
        return RedirectResponse("/espace", status_code=303)
    return web.pages.render(request, "landing.html")


@router.get("/connexion/{token}")
def sign_in(request: Request, token: str, web: Web, session: StateSession, signed_in: AnySession) -> Response:
    """A member's personal link (`ruche association invite`), rate-limited per address: exchanged once for a
    session. Opened again it opens nothing (whoever saw it, in a mailbox or a log, cannot sign in with it);
    the browser whose session it opened is simply taken to its space."""
    if over_the_limit(web.sign_in_limit, session, request):
        return web.pages.message(request, web.sign_in_limit.refusal, 429)
    invite = invite_for_token(session, token)
    if invite is None:
        return web.pages.message(request, N_("This sign-in link is not (or no longer) valid. Ask %(collective)s's "
                                             "admins for a new one."), 403, collective=web.pages.collective)  # fmt: skip
    if signed_in is not None and signed_in.invite_id == invite.id:
        return RedirectResponse("/espace", status_code=303)
    if signed_in is not None and invite.last_used_at is None:  # another session: never replaced silently
        return signed_in_elsewhere(request, web, signed_in)
    # the first opening marks the invite used, atomically: of two openings at once, one only gets a session
    first_use = session.execute(update(Invite).where(Invite.id == invite.id, Invite.last_used_at.is_(None))
                                .values(last_used_at=utc_now())).rowcount == 1  # fmt: skip
    if not first_use:
        return web.pages.message(request, LINK_USED, 403, collective=web.pages.collective)
    session.info["actor"] = f"member of {invite.association.slug} (invite {invite.id})"
    _opened, cookie = open_session(session, invite)
    return web.pages.signed_in_to("/espace", cookie)


def signed_in_elsewhere(request: Request, web: WebApp, signed_in: WebSession) -> Response:
    """The page a browser signed in already gets for another sign-in link: it says whose session is open and to
    sign out first (its button in the page's header); the link is left unused, to open again after."""
    _ = texts_of(request)
    if signed_in.admin_id is not None:
        text = _(SIGNED_IN_AS_ADMIN, admin=signed_in.admin.name)
    else:
        text = _(SIGNED_IN_AS_MEMBER, association=signed_in.association.name)
    return web.pages.render(request, "message.html", 409, message=text, csrf=signed_in.csrf_token)


@router.post("/deconnexion")
async def sign_out(request: Request, web: Web, session: StateSession, signed_in: AnySession) -> Response:
    """Ends the session (member's or admin's) when the form carries its CSRF token. Without it nothing is
    ended and the answer says so (another site's form must not sign anyone out, nor claim it did)."""
    form = await request.form()
    if signed_in is not None:
        if not csrf_matches(form, signed_in):
            return web.pages.message(request, SIGN_OUT_REFUSED, 400)
        close_session(session, request.cookies.get(COOKIE))
    response = web.pages.message(request, N_("You are signed out."))
    response.delete_cookie(COOKIE, path="/")
    return response
