"""The public join page: an association not hosted yet applies (rate-limited); an admin decides."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from orchestrator.errors import Conflict, RucheError
from orchestrator.i18n import N_
from orchestrator.state.applications import submit_application
from orchestrator.web.dependencies import StateSession, Web
from orchestrator.web.pages import form_token_matches, texts_of
from orchestrator.web.refusals import NOT_RECORDED, join_problems
from orchestrator.web.security import INVISIBLE_REFUSED, invisible_in, over_the_limit

router = APIRouter(prefix="/rejoindre", include_in_schema=False)

SLUG_UNAVAILABLE = N_("This short name cannot be used: choose another.")


def join_form(request: Request, web: Web, status: int = 200, errors=(), values=None) -> Response:
    return web.pages.with_form_token(
        request, "join.html", "/rejoindre", status, errors=list(errors), values=values or {}
    )


@router.get("", response_class=HTMLResponse)
def join_page(request: Request, web: Web) -> Response:
    return join_form(request, web)


@router.post("")
async def join(request: Request, web: Web, session: StateSession) -> Response:
    if over_the_limit(web.join_limit, session, request):
        return web.pages.message(request, web.join_limit.refusal, 429)
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    if not form_token_matches(request, form):
        return join_form(
            request, web, 400, [texts_of(request)(N_("The form expired: reload the page and try again."))], values
        )
    invisible = invisible_in({key: value for key, value in values.items() if key != "form_token"})
    if invisible is not None:
        _ = texts_of(request)
        return join_form(request, web, 400, [_(INVISIBLE_REFUSED, field=invisible[0], code=invisible[1])], values)
    problems = join_problems(values, texts_of(request))
    if problems:
        return join_form(request, web, 400, problems, values)
    try:
        with session.begin_nested():
            submit_application(session, slug=values.get("slug", ""), name=values.get("name", ""),
                               email=values.get("email", ""), message=values.get("message", ""))  # fmt: skip
    except Conflict:
        # the short name of an association or of a pending application: neither agreed to be listed
        return join_form(request, web, 400, [texts_of(request)(SLUG_UNAVAILABLE)], values)
    except RucheError:  # what join_problems let through: said in general words, never the action's English
        return join_form(request, web, 400, [texts_of(request)(NOT_RECORDED, collective=web.pages.collective)], values)
    return web.pages.message(request, N_("Thank you! %(collective)s's admins will review your application."),
                             collective=web.pages.collective)  # fmt: skip
