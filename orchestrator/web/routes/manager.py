"""The association's manager's pages (/espace/gestion): its members (invite, remove, a new link, make manager),
its services (suspend, resume, delete after typing the name) and its audit trail.

Every route needs the session of a member who manages the association now (``ManagerSession``; a plain member
gets a 403 page, nothing changes); every form its CSRF token. Members and services are looked up in the
manager's own association only: another association's answer 404, like missing ones. A service's change is a
queued run for the worker (state/instance_changes.py), never Ansible in the web process. Every change is in the
audit trail with the manager's name (the session's actor, see dependencies.actor_of_web_session).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from orchestrator.errors import Conflict, NotFound, RucheError
from orchestrator.i18n import LANGUAGE_NAMES, N_
from orchestrator.state.access import create_invite
from orchestrator.state.events import record_event
from orchestrator.state.instance_changes import queue_change
from orchestrator.state.instances import get_instance
from orchestrator.state.members import get_member, is_manager, remove_member, renew_link, set_manager
from orchestrator.state.models import WebSession
from orchestrator.web.dependencies import Member, RowId, StateSession, Web, WebApp, csrf_matches
from orchestrator.web.errors import BadForm
from orchestrator.web.managing import (
    LINK_STATES,
    described,
    journal_rows,
    link_of,
    member_problems,
    member_rows,
    service_rows,
)
from orchestrator.web.own_domains import domain_blocks
from orchestrator.web.pages import texts_of

router = APIRouter(prefix="/espace/gestion", include_in_schema=False)


class NotAManager(Exception):
    """A signed-in member who does not manage their association opened a manager's page."""


NOT_A_MANAGER = N_(
    "This page is for your association's managers. Ask one of them, or %(collective)s's admins, to do it for you "
    "or to make you a manager."
)


def not_a_manager(request: Request, _error: NotAManager) -> Response:
    web: WebApp = request.app.state.web
    return web.pages.message(request, NOT_A_MANAGER, 403, collective=web.pages.collective)


def manager(session: StateSession, signed_in: Member) -> WebSession:
    if not is_manager(session, signed_in):
        raise NotAManager()
    return signed_in


ManagerSession = Annotated[WebSession, Depends(manager)]


async def manager_form(request: Request, signed_in: ManagerSession) -> FormData:
    """The posted form of a manager, once its CSRF token is the session's."""
    form = await request.form()
    if not csrf_matches(form, signed_in):
        raise BadForm()
    return form


ManagerForm = Annotated[FormData, Depends(manager_form)]

# What the page may say after a change, by the key in ?info= (any other value shows nothing)
NOTICES = {
    "removed": N_("Member removed: their link and their sessions no longer work."),
    "manager": N_("This member is now a manager of the association."),
    "member": N_("This member is now a plain member."),
    "suspend": N_("The service will be suspended: its set-up is queued."),
    "resume": N_("The service will start again: its set-up is queued."),
    "delete": N_("The service will be deleted: its set-up is queued. Its data goes to the server's trash."),
    "alerts-on": N_("Done: the association's contact address will be told by e-mail of its services' incidents."),
    "alerts-off": N_("Done: the association will no longer be told by e-mail of its services' incidents."),
}
ACTIONS = {"suspendre": "suspend", "reprendre": "resume", "supprimer": "delete"}
INVITED = N_("Sign-in link for %(member)s, shown this once: give it to them. It opens one session and is valid "
             "until %(expires)s.")  # fmt: skip
NOT_YOURSELF = N_("Nothing was changed: you cannot remove yourself or change your own role. Ask another manager "
                  "or the admins.")  # fmt: skip
TYPE_THE_NAME = N_("Nothing was changed: to delete “%(name)s”, type its name exactly in the box next to the button.")
ALREADY_DELETED = N_("Nothing was changed: “%(name)s” is deleted or being deleted. Reload the page.")


def manager_page(request: Request, web: WebApp, session: Session, signed_in: WebSession, *, status: int = 200,
                 notice: str = "", errors: list[str] | None = None, link: str = "") -> Response:  # fmt: skip
    association = signed_in.association
    return web.pages.render(
        request, "manager.html", status, csrf=signed_in.csrf_token, association={"name": association.name},
        alerts={"on": association.alerts_opt_in, "language": association.language, "email": association.email,
                "languages": LANGUAGE_NAMES},
        members=member_rows(session, association, you=signed_in.invite_id),
        services=service_rows(session, association), notice=notice, errors=errors or [], link=link,
        link_states=LINK_STATES, domains=domain_blocks(session, web.catalog, association, texts_of(request)),
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def manager_home(request: Request, web: Web, session: StateSession, signed_in: ManagerSession) -> Response:
    key = request.query_params.get("info", "")
    return manager_page(
        request, web, session, signed_in, notice=texts_of(request)(NOTICES[key]) if key in NOTICES else ""
    )


@router.get("/journal", response_class=HTMLResponse)
def journal(request: Request, web: Web, session: StateSession, signed_in: ManagerSession) -> Response:
    return web.pages.render(request, "manager_journal.html", csrf=signed_in.csrf_token,
                            association={"name": signed_in.association.name},
                            events=journal_rows(session, signed_in.association, texts_of(request)))  # fmt: skip


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@router.post("/membres")
def invite_member(request: Request, web: Web, session: StateSession, signed_in: ManagerSession,
                  form: ManagerForm) -> Response:  # fmt: skip
    _ = texts_of(request)
    name, email = text(form, "name"), text(form, "email")
    problems = member_problems(name, email, _)
    if problems:
        return manager_page(request, web, session, signed_in, status=400, errors=problems)
    association = signed_in.association
    settings = web.workspace.config.web
    created, token = create_invite(session, association, email=email.strip(), name=name.strip(),
                                   created_by=session.info["actor"], valid_for=timedelta(days=settings.invite_days))  # fmt: skip
    record_event(session, kind="invite.created", subject=association.slug, association=association.slug,
                 detail={"invite": created.id, "email": created.email, "name": created.name, "manager": False})  # fmt: skip
    shown = _(INVITED, member=described(created), expires=created.expires_at.strftime("%Y-%m-%d"))
    return manager_page(request, web, session, signed_in, notice=shown, link=link_of(settings.base_url, token))


def own_member(session: Session, signed_in: WebSession, invite_id: int):
    """Member ``invite_id`` of the manager's association; raises NotFound (another association's too)."""
    return get_member(session, invite_id, association=signed_in.association)


@router.post("/membres/{invite_id}/lien")
def new_link(request: Request, invite_id: RowId, web: Web, session: StateSession, signed_in: ManagerSession,
             form: ManagerForm) -> Response:  # fmt: skip
    try:
        member = own_member(session, signed_in, invite_id)
    except NotFound:
        return web.pages.not_found(request)
    settings = web.workspace.config.web
    if member.id == signed_in.invite_id:  # a new link ends the sessions of the old one: this one too
        return manager_page(request, web, session, signed_in, status=409, errors=[texts_of(request)(NOT_YOURSELF)])
    token = renew_link(session, member, timedelta(days=settings.invite_days))
    shown = texts_of(request)(INVITED, member=described(member), expires=member.expires_at.strftime("%Y-%m-%d"))
    return manager_page(request, web, session, signed_in, notice=shown, link=link_of(settings.base_url, token))


@router.post("/membres/{invite_id}/{change}")
def change_member(request: Request, invite_id: RowId, change: str, web: Web, session: StateSession,
                  signed_in: ManagerSession, form: ManagerForm) -> Response:  # fmt: skip
    if change not in ("retirer", "gestionnaire", "membre"):
        return web.pages.not_found(request)
    try:
        member = own_member(session, signed_in, invite_id)
    except NotFound:
        return web.pages.not_found(request)
    if member.id == signed_in.invite_id:
        return manager_page(request, web, session, signed_in, status=409, errors=[texts_of(request)(NOT_YOURSELF)])
    if change == "retirer":
        remove_member(session, member)
        return RedirectResponse("/espace/gestion?info=removed", status_code=303)
    set_manager(session, member, change == "gestionnaire")
    return RedirectResponse(f"/espace/gestion?info={'manager' if member.manager else 'member'}", status_code=303)


@router.post("/services/{name}/{action}")
def change_service(request: Request, name: str, action: str, web: Web, session: StateSession,
                   signed_in: ManagerSession, form: ManagerForm) -> Response:  # fmt: skip
    if action not in ACTIONS:
        return web.pages.not_found(request)
    try:
        instance = get_instance(session, f"{signed_in.association.slug}/{name[:64]}")
    except RucheError:  # a missing one, or a name that is no name: the same 404
        return web.pages.not_found(request)
    _ = texts_of(request)
    if ACTIONS[action] == "delete" and text(form, "confirm").strip() != instance.name:
        return manager_page(request, web, session, signed_in, status=400, errors=[_(TYPE_THE_NAME, name=instance.name)])
    try:
        with session.begin_nested():
            queue_change(session, instance, ACTIONS[action], actor=session.info["actor"])
    except Conflict:
        return manager_page(
            request, web, session, signed_in, status=409, errors=[_(ALREADY_DELETED, name=instance.name)]
        )
    return RedirectResponse(f"/espace/gestion?info={ACTIONS[action]}", status_code=303)
