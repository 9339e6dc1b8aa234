"""The JSON API (/api/v1): the same session cookie as the pages; writes want the session's CSRF token in
X-CSRF-Token. Bodies are the pydantic models of ``orchestrator.web.models``, published at /api/openapi.json."""

from __future__ import annotations

from fastapi import APIRouter, Request

from orchestrator.errors import RucheError
from orchestrator.operations.requests import submit_in_session
from orchestrator.state.models import iso_utc
from orchestrator.state.requests import RequestView
from orchestrator.web.dependencies import ApiMember, ApiWriter, RowId, StateSession, Web
from orchestrator.web.errors import API_ERRORS, API_NOT_FOUND, API_WRITE_ERRORS, ApiError
from orchestrator.web.models import InstanceView, RequestDetail, RequestIn, SessionView
from orchestrator.web.pages import texts_of
from orchestrator.web.refusals import UNKNOWN_SERVICE, api_field_name, request_problems, submission_error_text
from orchestrator.web.security import INVISIBLE_REFUSED, invisible_in
from orchestrator.web.views import (
    follow_request,
    members_instances,
    members_request,
    members_requests,
    submission_refusal,
)

router = APIRouter(prefix="/api/v1", tags=["member"], responses=API_ERRORS)


@router.get("/session", summary="Your session: the CSRF token writes send in X-CSRF-Token, and when it ends")
def api_session(signed_in: ApiMember) -> SessionView:
    """Read with the session cookie only (a GET changes nothing); another site cannot read the answer (no CORS)."""
    return SessionView(association=signed_in.association.slug, csrf_token=signed_in.csrf_token,
                       expires_at=iso_utc(signed_in.expires_at))  # fmt: skip


@router.get("/instances", summary="Your association's services")
def api_instances(session: StateSession, signed_in: ApiMember) -> list[InstanceView]:
    return members_instances(session, signed_in)


@router.get("/requests", summary="Your association's requests, newest first")
def api_requests(session: StateSession, signed_in: ApiMember) -> list[RequestView]:
    return members_requests(session, signed_in)


@router.get(
    "/requests/{request_id}",
    summary="One of your requests, with its run's progress and, once deployed, its service's URL and health",
)
def api_request(request: Request, request_id: RowId, session: StateSession, signed_in: ApiMember) -> RequestDetail:
    found = members_request(session, signed_in, request_id)
    if found is None:
        raise ApiError(404, API_NOT_FOUND)
    return follow_request(session, found, texts_of(request)).detail()


@router.post("/requests", summary="Request a service", status_code=201, responses=API_WRITE_ERRORS)
def api_submit(request: Request, body: RequestIn, web: Web, session: StateSession, signed_in: ApiWriter) -> RequestView:
    invisible = invisible_in({"name": body.name or "", "service": body.service, "size": body.size, **body.parameters})
    if invisible is not None:
        raise ApiError(400, texts_of(request)(INVISIBLE_REFUSED, field=invisible[0], code=invisible[1]))
    _ = texts_of(request)
    if body.service not in web.catalog.services:
        raise ApiError(400, _(UNKNOWN_SERVICE, service=body.service[:32]))
    problems = request_problems(web.catalog.services[body.service], name=body.name, size=body.size,
                                parameters=body.parameters, _=_, field_name=api_field_name)  # fmt: skip
    refusal = submission_refusal(web.workspace, session, web.catalog, signed_in, service=body.service, size=body.size,
                                 _=_)  # fmt: skip
    if refusal is not None:  # beyond the offer (409), with the fields' problems if any
        raise ApiError(409, " ".join([refusal, *problems]))
    if problems:
        raise ApiError(400, " ".join(problems))
    try:
        with session.begin_nested():
            created = submit_in_session(
                web.workspace, session, association=signed_in.association.slug, service=body.service, name=body.name,
                size=body.size, parameters=body.parameters,
                requested_by=f"member of {signed_in.association.slug} (invite {signed_in.invite_id})",
            )  # fmt: skip
    except RucheError as error:
        refused = submission_error_text(error, name=body.name or body.service, collective=web.pages.collective, _=_,
                                        field="name")  # fmt: skip
        raise ApiError(400 if error.exit_code in (2, 4) else 409, refused) from None
    return RequestView(**created)
