"""Pages anyone may open: the landing page, the sign-in link, signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.i18n import N_
from orchestrator.state.access import close_session, invite_for_token, open_session
from orchestrator.web.dependencies import AnySession, StateSession, Web, csrf_matches
from orchestrator.web.pages import COOKIE
from orchestrator.web.security import TOO_MANY, over_the_limit

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, web: Web, signed_in: AnySession) -> Response:
    if signed_in is not None and signed_in.association_id is not None:
        return RedirectResponse("/espace", status_code=303)
    return web.pages.render(request, "landing.html")


@router.get("/connexion/{token}")
def sign_in(request: Request, token: str, web: Web, session: StateSession) -> Response:
    """A member's personal link (`ruche association invite`): opens a session, rate-limited per address."""
    if over_the_limit(web.sign_in_limit, session, request):
        return web.pages.message(request, TOO_MANY, 429)
    invite = invite_for_token(session, token)
    if invite is None:
        return web.pages.message(request, N_("This sign-in link is not (or no longer) valid. Ask %(collective)s's "
                                             "admins for a new one."), 403, collective=web.pages.collective)  # fmt: skip
    session.info["actor"] = f"member of {invite.association.slug} (invite {invite.id})"
    _opened, cookie = open_session(session, invite)
    return web.pages.signed_in_to("/espace", cookie)


@router.post("/deconnexion")
async def sign_out(request: Request, web: Web, session: StateSession, signed_in: AnySession) -> Response:
    """Ends the session (member's or admin's) when the form carries its CSRF token; the cookie goes anyway."""
    form = await request.form()
    if signed_in is not None and csrf_matches(form, signed_in):
        close_session(session, request.cookies.get(COOKIE))
    response = web.pages.message(request, N_("You are signed out."))
    response.delete_cookie(COOKIE, path="/")
    return response
