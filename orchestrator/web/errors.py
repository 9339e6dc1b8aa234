"""How the web app answers what stops a route: no session, a stale form, an API error, a missing page."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.i18n import N_
from orchestrator.web.pages import texts_of


class ApiError(Exception):
    """An API answer other than success: ``status`` and a ``detail`` for the client (a text of the catalogs,
    translated into the request's language when answered, or one translated already)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class ApiErrorBody(BaseModel):
    """What every API error answers."""

    detail: str


API_NOT_FOUND = N_("not found (or not your association's)")
API_SIGN_IN = N_("not signed in: open your personal sign-in link first (ask your association's manager or the admins)")
API_CSRF = N_("missing or wrong X-CSRF-Token header: send the csrf_token that GET /api/v1/session gives")

# The error answers each API route may give, for its OpenAPI description.
API_ERRORS = {401: {"model": ApiErrorBody, "description": "Not signed in"},
              404: {"model": ApiErrorBody, "description": "Not found (or another association's)"}}  # fmt: skip
API_WRITE_ERRORS = {**API_ERRORS,
                    400: {"model": ApiErrorBody, "description": "Refused: the request is not valid"},
                    403: {"model": ApiErrorBody, "description": "Missing or wrong X-CSRF-Token"},
                    409: {"model": ApiErrorBody, "description": "Refused: conflicts with the state"}}  # fmt: skip


class SignInNeeded(Exception):
    """A page that needs a session other than the browser's: back to where one signs in (a part of a
    page fetched by a script, ``location`` None, answers 401 alone)."""

    def __init__(self, location: str | None) -> None:
        super().__init__(location)
        self.location = location


class BadForm(Exception):
    """A posted form without the session's CSRF token (or an expired page)."""


# What a page says for the framework's own refusals (other than 404, the missing page).
HTTP_TEXTS = {
    405: N_("This address is not meant to be opened like this (it takes a form's button): go back to the page "
            "and use the button, or start from the home page."),
}  # fmt: skip


TOO_LARGE = N_("What was sent is too large (more than %(size)s KiB): shorten it and send it again.")


def too_large_answer(pages, max_body_bytes: int):
    """The 413 answer of security.Guard: the API's JSON, else a page in the site's layout and the visitor's
    language (like the 404 and 422 ones)."""

    def answer(scope) -> Response:
        request = Request(scope)
        size = max_body_bytes // 1024
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": texts_of(request)(TOO_LARGE, size=size)}, status_code=413)
        return pages.message(request, TOO_LARGE, 413, size=size)

    return answer


def install_error_answers(app: FastAPI) -> None:
    pages = app.state.web.pages

    @app.exception_handler(404)
    async def _missing(request: Request, _error) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": texts_of(request)(API_NOT_FOUND)}, status_code=404)
        return pages.not_found(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        """Any other refusal of the framework's (405 for a GET on a form's address...): the API keeps its JSON,
        a page answers a page in the site's layout and the visitor's language."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        if error.status_code == 404:
            return pages.not_found(request)
        text = HTTP_TEXTS.get(
            error.status_code,
            N_("This address cannot answer that request (HTTP %(code)s): start again from the home page."),
        )
        response = pages.message(request, text, error.status_code, code=error.status_code)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": texts_of(request)(error.detail)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        """A value that does not fit a route's declared type. The API answers 422 with where and why, never the
        value sent (a NaN or 1e999 would not even encode as JSON: a 500); a page whose path names no row
        (``/espace/demandes/abc``, an id past 2^63) is a missing page, any other a refused form."""
        if request.url.path.startswith("/api/"):
            detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                      for e in error.errors()]  # fmt: skip
            return JSONResponse({"detail": detail}, status_code=422)
        if any(e.get("loc", ("",))[0] == "path" for e in error.errors()):
            return pages.not_found(request)
        return pages.message(request, N_("The form expired: reload the page and try again."), 400)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, error: SignInNeeded) -> Response:
        if error.location is None:
            return Response(status_code=401)
        return RedirectResponse(error.location, status_code=303)

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, _error: BadForm) -> Response:
        return pages.message(request, N_("The form expired: reload the page and try again."), 400)
