"""Admins' pages (/admin): password sign-in (Argon2id, rate-limited), the review page and its decisions.

Every route but the sign-in needs an admin's session (``Admin``); a member's session does not open them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from orchestrator.errors import InvalidInput, NotFound, RucheError
from orchestrator.i18n import N_
from orchestrator.operations.requests import approve_in_session
from orchestrator.state.access import check_admin, open_admin_session
from orchestrator.state.applications import application_as_dict, decide, get_application, list_applications
from orchestrator.state.models import WebSession
from orchestrator.state.requests import checked_reason, get_request, list_requests, move, request_view
from orchestrator.web.dependencies import Admin, AdminForm, RowId, StateSession, Web, WebApp
from orchestrator.web.errors import BadForm
from orchestrator.web.pages import form_token_matches, texts_of
from orchestrator.web.refusals import Refused, admin_error_text
from orchestrator.web.security import INVISIBLE_REFUSED, invisible_in, over_the_limit

router = APIRouter(prefix="/admin", include_in_schema=False)


def sign_in_form(request: Request, web: Web, status: int = 200, error: str | None = None) -> Response:
    return web.pages.with_form_token(request, "admin_signin.html", "/admin", status, error=error)


@router.get("/connexion", response_class=HTMLResponse)
def admin_sign_in_page(request: Request, web: Web) -> Response:
    return sign_in_form(request, web)


@router.post("/connexion")
async def admin_sign_in(request: Request, web: Web, session: StateSession) -> Response:
    _ = texts_of(request)
    if over_the_limit(web.sign_in_limit, session, request):
        return web.pages.message(request, web.sign_in_limit.refusal, 429)
    form = await request.form()
    if not form_token_matches(request, form):
        return sign_in_form(request, web, 400, _("The form expired: reload the page and try again."))
    name, password = form.get("name", ""), form.get("password", "")
    # and per account, whatever the address: many addresses (IPv6, a botnet) get no more tries at one password
    if isinstance(name, str) and over_the_limit(web.account_limit, session, request, key=name.strip().lower()):
        return web.pages.message(request, web.account_limit.refusal, 429)
    found = check_admin(session, name, password) if isinstance(name, str) and isinstance(password, str) else None
    if found is None:
        return sign_in_form(request, web, 401, _("Wrong name or password."))
    session.info["actor"] = f"admin {found.name}"
    _opened, cookie = open_admin_session(session, found)
    return web.pages.signed_in_to("/admin", cookie)


@router.get("", response_class=HTMLResponse)
def review_page(request: Request, web: Web, session: StateSession, signed_in: Admin) -> Response:
    key = request.query_params.get("info", "")
    return admin_page(
        request, web, session, signed_in, notice="", success=texts_of(request)(NOTICES[key]) if key in NOTICES else ""
    )


def admin_page(request: Request, web: WebApp, session: Session, signed_in: WebSession, *, notice: str,
               status: int = 200, success: str = "") -> Response:  # fmt: skip
    """The review page; ``notice``: a refusal (the alert box), ``success``: what a decision did (a status line)."""
    requests = [request_view(r) for r in list_requests(session)]
    return web.pages.render(
        request, "admin.html", status, csrf=signed_in.csrf_token, admin=signed_in.admin.name,
        open_requests=[r for r in requests if r.state in ("pending", "provisioning", "failed")],
        done_requests=[r for r in requests if r.state in ("done", "rejected")][:20],
        applications=[application_as_dict(a) for a in list_applications(session, state="pending")],
        offers=sorted(web.workspace.config.offers), notice=notice, success=success,
    )  # fmt: skip


# What the review page may say after a decision, by the key in ?info= (any other value shows nothing: the
# address bar must not put words in the page).
NOTICES = {
    "approved": N_("Request approved: its set-up is queued."),
    "rejected": N_("Request rejected: the association reads your reason."),
    "accepted": N_("Application accepted: the association is registered."),
    "declined": N_("Application declined."),
}
DONE = {"approuver": "approved", "refuser": "rejected", "accepter": "accepted"}


def carry_out(request: Request, web: Web, session: Session, signed_in: WebSession, act, done: str) -> Response:
    """Run ``act(actor)`` in a savepoint; back to the review page saying ``done`` (a key of NOTICES), or the
    review page itself with the refusal's message (409; nothing was changed)."""
    try:
        with session.begin_nested():
            act(f"admin {signed_in.admin.name}")
    except RucheError as error:
        notice = admin_error_text(error, texts_of(request))
        return admin_page(
            request, web, session, signed_in, notice=notice, status=404 if isinstance(error, NotFound) else 409
        )
    return RedirectResponse(f"/admin?info={done}", status_code=303)


def text_field(request: Request, form: FormData, name: str) -> str:
    """The form's field ``name`` (empty if missing); raises InvalidInput when it holds an invisible character."""
    value = form.get(name, "")
    value = value if isinstance(value, str) else ""
    invisible = invisible_in({name: value})
    if invisible is not None:
        raise Refused(texts_of(request)(INVISIBLE_REFUSED, field=name, code=invisible[1]))
    return value


UNKNOWN_OFFER = N_("Offer: there is no offer “%(offer)s” (offers: %(offers)s).")
GIVE_A_REASON_TO_DECLINE = N_("Give a reason for declining (1000 characters at most): the association reads it.")


def given_reason(reason: str, refusal: str) -> str:
    """``reason`` stripped; raises Refused(``refusal``, a translated text) when empty or over 1000 characters."""
    try:
        return checked_reason(reason, message=refusal)
    except InvalidInput:
        raise Refused(refusal) from None


@router.post("/candidatures/{application_id}/{decision}")
def admin_application(request: Request, application_id: RowId, decision: str, web: Web, session: StateSession,
                      signed_in: Admin, form: AdminForm) -> Response:  # fmt: skip
    if decision not in ("accepter", "refuser"):
        raise BadForm()
    offer = form.get("offer")
    offer = offer if isinstance(offer, str) and offer else None

    def act(actor: str) -> None:
        _ = texts_of(request)
        if offer is not None and offer not in web.workspace.config.offers:
            raise Refused(_(UNKNOWN_OFFER, offer=offer[:64], offers=", ".join(sorted(web.workspace.config.offers))))
        reason = text_field(request, form, "reason")
        if decision == "refuser":
            reason = given_reason(reason, _(GIVE_A_REASON_TO_DECLINE))
        decide(session, get_application(session, application_id), accept=decision == "accepter", actor=actor,
               offer=offer, reason=reason)  # fmt: skip

    return carry_out(request, web, session, signed_in, act, "accepted" if decision == "accepter" else "declined")


@router.post("/demandes/{request_id}/{decision}")
def admin_decide(request: Request, request_id: RowId, decision: str, web: Web, session: StateSession, signed_in: Admin,
                 form: AdminForm) -> Response:  # fmt: skip
    if decision not in ("approuver", "refuser"):
        raise BadForm()

    def act(actor: str) -> None:
        found = get_request(session, request_id)
        if decision == "approuver":
            approve_in_session(web.workspace, session, found, actor=actor)
            return
        reason = given_reason(text_field(request, form, "reason"), texts_of(request)(
            N_("Give a reason for the rejection (1000 characters at most): the association reads it.")))  # fmt: skip
        move(session, found, "rejected", actor=actor, reason=reason)

    return carry_out(request, web, session, signed_in, act, DONE[decision])
