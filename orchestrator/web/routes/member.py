"""Members' pages (/espace): their association's services and requests, the request form, a request's page.

Every route needs a member's session (``Member``); another association's object answers 404,
exactly like a missing one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.catalog import SIZES
from orchestrator.errors import RucheError
from orchestrator.operations.requests import submit_in_session
from orchestrator.quotas import find_offer
from orchestrator.state.members import is_manager
from orchestrator.state.models import WebSession, utc_now
from orchestrator.web.dependencies import Member, MemberForm, MemberOfAPart, RowId, StateSession, Web
from orchestrator.web.exports import export_view
from orchestrator.web.own_domains import domain_blocks
from orchestrator.web.pages import texts_of
from orchestrator.web.refusals import FIELD_NAMES, request_problems, submission_error_text
from orchestrator.web.security import INVISIBLE_REFUSED, invisible_in
from orchestrator.web.space import (
    footprint_view,
    maintenance_text,
    offer_bars,
    own_footprint,
    service_cards,
    size_guide,
    size_text,
)
from orchestrator.web.views import (
    follow_request,
    members_quota,
    members_request,
    members_requests,
    submission_refusal,
)

router = APIRouter(prefix="/espace", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, web: Web, session: StateSession, signed_in: Member) -> Response:
    quota, _ = members_quota(web.workspace, session, signed_in), texts_of(request)
    cards = service_cards(session, web.catalog, signed_in, _)
    offer = find_offer(web.workspace.config.offers, signed_in.association.offer)
    return web.pages.render(request, "dashboard.html", csrf=signed_in.csrf_token,
                            association={"slug": signed_in.association.slug, "name": signed_in.association.name,
                                         "alerts": signed_in.association.alerts_opt_in},
                            cards=cards, requests=members_requests(session, signed_in), offer=signed_in.association.offer,
                            bars=offer_bars(None if quota is None else quota.model_dump(), _),
                            guide=size_guide(web.catalog, [c.service_id for c in cards], _),
                            maintenance=maintenance_text(offer.maintenance_window if offer else None, _),
                            service_names={s.id: s.name.model_dump()[_.language] for s in web.catalog.services.values()},
                            manager=is_manager(session, signed_in),
                            domains=domain_blocks(session, web.catalog, signed_in.association, _),
                            export=export_view(web.workspace, session, signed_in, _),
                            footprint=footprint_view(own_footprint(web.kept, web.store, web.workspace.config,
                                                                   signed_in.association.slug, utc_now()), _))  # fmt: skip


@router.get("/demande", response_class=HTMLResponse)
def services(request: Request, web: Web, signed_in: Member) -> Response:
    return web.pages.render(
        request, "services.html", csrf=signed_in.csrf_token, services=list(web.catalog.services.values())
    )


def form_page(
    request: Request, web: Web, signed_in: WebSession, service, status: int = 200, errors=(), values=None
) -> Response:
    size_texts = {size: size_text(service, size, texts_of(request)) for size in SIZES}  # what each size gives
    return web.pages.render(request, "form.html", status, csrf=signed_in.csrf_token, service=service, sizes=SIZES,
                            size_texts=size_texts, errors=list(errors), values=values or {})  # fmt: skip


@router.get("/demande/{service_id}", response_class=HTMLResponse)
def request_form(request: Request, service_id: str, web: Web, signed_in: Member) -> Response:
    if service_id not in web.catalog.services:
        return web.pages.not_found(request)
    return form_page(request, web, signed_in, web.catalog.services[service_id])


@router.post("/demande/{service_id}")
def send_request(request: Request, service_id: str, web: Web, session: StateSession, signed_in: Member,
                 form: MemberForm) -> Response:  # fmt: skip
    if service_id not in web.catalog.services:
        return web.pages.not_found(request)
    service = web.catalog.services[service_id]
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    parameters = {
        p.name: values[f"param_{p.name}"] for p in service.parameters if values.get(f"param_{p.name}", "") != ""
    }
    invisible = invisible_in(
        {key.removeprefix("param_"): value for key, value in values.items() if key != "csrf_token"}
    )
    if invisible is not None:
        field, code = invisible
        refused = texts_of(request)(INVISIBLE_REFUSED, field=field, code=code)
        return form_page(request, web, signed_in, service, 400, [refused], values)
    _ = texts_of(request)
    problems = request_problems(service, name=values.get("name") or None, size=values.get("size", "small"),
                                parameters=parameters, _=_)  # fmt: skip
    refusal = submission_refusal(web.workspace, session, web.catalog, signed_in, service=service_id,
                                 size=values.get("size", "small"), _=_)  # fmt: skip
    if problems or refusal is not None:  # every field's problem and the offer's at once
        return form_page(request, web, signed_in, service, 400, problems + ([refusal] if refusal else []), values)
    try:
        with session.begin_nested():
            created = submit_in_session(
                web.workspace, session, association=signed_in.association.slug, service=service_id,
                name=values.get("name") or None, size=values.get("size", "small"), parameters=parameters,
                requested_by=f"member of {signed_in.association.slug} (invite {signed_in.invite_id})",
            )  # fmt: skip
    except RucheError as error:
        refused = submission_error_text(error, name=values.get("name") or service_id, collective=web.pages.collective,
                                        _=_, field=_(FIELD_NAMES["name"]))  # fmt: skip
        return form_page(request, web, signed_in, service, 400, [refused], values)
    return RedirectResponse(f"/espace/demandes/{created['id']}?envoyee=1", status_code=303)


@router.get("/demandes/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: RowId, web: Web, session: StateSession, signed_in: Member) -> Response:
    found = members_request(session, signed_in, request_id)
    if found is None:
        return web.pages.not_found(request)
    followed = follow_request(session, found, texts_of(request))
    return web.pages.render(request, "request.html", csrf=signed_in.csrf_token, sent=request.query_params.get("envoyee") == "1",
                            request_entry=followed.request, progress=followed.progress, instance=followed.deployed,
                            final=followed.final)  # fmt: skip


@router.get("/demandes/{request_id}/suivi", response_class=HTMLResponse)
def request_status_part(
    request: Request, request_id: RowId, web: Web, session: StateSession, signed_in: MemberOfAPart
) -> Response:
    """The status part of a request's page alone, fetched again by /static/suivi.js while the request moves."""
    found = members_request(session, signed_in, request_id)
    if found is None:
        return HTMLResponse("", status_code=404)
    followed = follow_request(session, found, texts_of(request))
    response = web.pages.render(request, "request_status.html", request_entry=followed.request, progress=followed.progress,
                                instance=followed.deployed, final=followed.final)  # fmt: skip
    response.headers["X-Ruche-Final"] = "1" if followed.final else "0"
    return response
