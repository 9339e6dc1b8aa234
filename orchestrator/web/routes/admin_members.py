"""The admins' page of the associations' members (/admin/associations): make a member their association's
manager (or a plain member again), give a member who lost their link a new one.

Every route needs an admin's session and every form its CSRF token (``Admin``, ``AdminForm``); a member's
session, even a manager's, does not open them. Changes are in the audit trail as the admin's.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.i18n import N_
from orchestrator.state.associations import list_associations
from orchestrator.state.members import get_member, renew_link, set_manager
from orchestrator.state.models import WebSession
from orchestrator.web.dependencies import Admin, AdminForm, RowId, StateSession, Web, WebApp
from orchestrator.web.managing import LINK_STATES, described, link_of, member_rows
from orchestrator.web.pages import texts_of
from orchestrator.web.routes.manager import INVITED

router = APIRouter(prefix="/admin/associations", include_in_schema=False)

NOTICES = {
    "manager": N_("This member is now a manager of their association."),
    "member": N_("This member is now a plain member."),
}


def members_page(request: Request, web: WebApp, session: Session, signed_in: WebSession, *, notice: str = "",
                 link: str = "") -> Response:  # fmt: skip
    associations = [{"slug": a.slug, "name": a.name, "members": member_rows(session, a)}
                    for a in list_associations(session)]  # fmt: skip
    return web.pages.render(request, "admin_members.html", csrf=signed_in.csrf_token, admin=signed_in.admin.name,
                            associations=associations, notice=notice, link=link, link_states=LINK_STATES)  # fmt: skip


@router.get("", response_class=HTMLResponse)
def members_home(request: Request, web: Web, session: StateSession, signed_in: Admin) -> Response:
    key = request.query_params.get("info", "")
    return members_page(
        request, web, session, signed_in, notice=texts_of(request)(NOTICES[key]) if key in NOTICES else ""
    )


@router.post("/membres/{invite_id}/lien")
def new_link(request: Request, invite_id: RowId, web: Web, session: StateSession, signed_in: Admin,
             form: AdminForm) -> Response:  # fmt: skip
    try:
        member = get_member(session, invite_id)
    except NotFound:
        return web.pages.not_found(request)
    settings = web.workspace.config.web
    token = renew_link(session, member, timedelta(days=settings.invite_days))
    shown = texts_of(request)(INVITED, member=described(member), expires=member.expires_at.strftime("%Y-%m-%d"))
    return members_page(request, web, session, signed_in, notice=shown, link=link_of(settings.base_url, token))


@router.post("/membres/{invite_id}/{role}")
def change_role(request: Request, invite_id: RowId, role: str, web: Web, session: StateSession, signed_in: Admin,
                form: AdminForm) -> Response:  # fmt: skip
    if role not in ("gestionnaire", "membre"):
        return web.pages.not_found(request)
    try:
        member = get_member(session, invite_id)
    except NotFound:
        return web.pages.not_found(request)
    set_manager(session, member, role == "gestionnaire")
    return RedirectResponse(f"/admin/associations?info={'manager' if member.manager else 'member'}", status_code=303)
