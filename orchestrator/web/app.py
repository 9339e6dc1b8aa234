"""The web app: FastAPI (pydantic models validate the API's bodies and give its OpenAPI description;
Starlette serves the Jinja2 pages), over one state store for the app's life.

Members sign in with a personal link (`ruche association invite`) and see only their own
association: any other association's object answers 404, exactly like a missing one. Every form
carries the session's CSRF token; the API's writes want it in the X-CSRF-Token header.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.actions.request_review import approve_in_session
from orchestrator.actions.request_submit import SIZES, submit_in_session
from orchestrator.catalog import load_catalog
from orchestrator.errors import InvalidInput, RucheError
from orchestrator.quotas import find_offer
from orchestrator.state.access import (
    check_admin, close_session, invite_for_token, open_admin_session, open_session, session_for_token,
)  # fmt: skip
from orchestrator.state.applications import application_as_dict, decide, get_application, list_applications, submit_application
from orchestrator.state.backups import runs_of
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES, allocation, get_instance, list_instances
from orchestrator.state.models import WebSession
from orchestrator.state.queue import runs_of_request
from orchestrator.state.requests import FINAL_REQUEST_STATES, checked_reason, get_request, list_requests, move, request_as_dict
from orchestrator.state.upgrades import latest_upgrades
from orchestrator.web.i18n import choose_language, members_progress, translator
from orchestrator.web.security import Guard, RateLimiter
from orchestrator.workspace import open_workspace

HERE = Path(__file__).parent
COOKIE = "ruche_session"
FORM_COOKIE = "ruche_form"
LANGUAGE_COOKIE = "ruche_lang"


class RequestIn(BaseModel):
    """A service request as the API takes it (the same validation as the form and the CLI follows)."""

    model_config = ConfigDict(extra="forbid")
    service: str = Field(max_length=32, description="Catalogue id of the service, e.g. radicale.")
    name: str | None = Field(default=None, max_length=32, description="Instance name (default: the service id).")
    size: str = Field(default="small", max_length=16, description="small, medium or large.")
    parameters: dict[str, str] = Field(default_factory=dict, max_length=32, description="The service's parameters.")


def create_app(workspace_path: Path | None) -> FastAPI:
    """Give the ASGI app of the workspace at ``workspace_path`` (its state store opened for the app's life)."""
    workspace = open_workspace(workspace_path)
    settings = workspace.config.web
    store = StateStore(workspace.state_url)
    catalog = load_catalog(workspace.catalog_dir)
    pages = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    sign_in_limit = RateLimiter(limit=10, window=60)
    app = FastAPI(title="ruche", version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, hsts=settings.secure_cookies)

    def language(request: Request) -> str:
        return choose_language(request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE),
                               request.headers.get("accept-language"))  # fmt: skip

    def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        lang = language(request)
        t = translator(lang)
        html = pages.get_template(template).render(t=t, lang=lang, collective=workspace.config.collective, **context)
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=settings.secure_cookies)
        return response

    def current(request: Request, session) -> WebSession | None:
        """The signed-in member's session (admin sessions do not open members' pages)."""
        found = session_for_token(session, request.cookies.get(COOKIE))
        return found if found is not None and found.association_id is not None else None

    def current_admin(request: Request, session) -> WebSession | None:
        found = session_for_token(session, request.cookies.get(COOKIE))
        return found if found is not None and found.admin_id is not None else None

    def signed_in_to(location: str, cookie: str) -> Response:
        """Redirect to ``location`` with the new session's cookie (HttpOnly, SameSite=Lax, Secure unless turned off)."""
        response = RedirectResponse(location, status_code=303)
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax", secure=settings.secure_cookies, path="/")
        return response

    def not_found(request: Request) -> HTMLResponse:
        return render(request, "message.html", 404, message=translator(language(request))("not_found"))

    def checked_form(signed_in: WebSession, form) -> bool:
        sent = form.get("csrf_token", "")
        return isinstance(sent, str) and secrets.compare_digest(sent, signed_in.csrf_token)

    @app.exception_handler(404)
    async def _missing(request: Request, _error) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "not found"}, status_code=404)
        return not_found(request)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing(request: Request) -> Response:
        with store.session() as session:
            if current(request, session) is not None:
                return RedirectResponse("/espace", status_code=303)
        return render(request, "landing.html")

    @app.get("/connexion/{token}", include_in_schema=False)
    def sign_in(request: Request, token: str) -> Response:
        if (refused := refused_by(sign_in_limit, request)) is not None:
            return refused
        with store.session() as session:
            invite = invite_for_token(session, token)
            if invite is None:
                t = translator(language(request))
                return render(request, "message.html", 403, message=t("signin_failed", collective=workspace.config.collective))
            _opened, cookie = open_session(session, invite)
        return signed_in_to("/espace", cookie)

    @app.post("/deconnexion", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        form = await request.form()
        with store.session() as session:
            signed_in = current(request, session) or current_admin(request, session)
            if signed_in is not None and checked_form(signed_in, form):
                close_session(session, request.cookies.get(COOKIE))
        response = render(request, "message.html", message=translator(language(request))("signed_out"))
        response.delete_cookie(COOKIE, path="/")
        return response

    def dashboard_data(session, signed_in: WebSession) -> dict:
        association = signed_in.association
        instances = [i for i in list_instances(session, association=association.slug) if i.state in ACTIVE_STATES]
        rows = []
        upgrades = latest_upgrades(session, [i.address for i in instances])
        for instance in instances:
            last = next((r for r in runs_of(session, instance.address, kind="backup") if r.status == "success"), None)
            upgrade = upgrades.get(instance.address)
            rows.append({"address": instance.address, "name": instance.name, "service": instance.service_id,
                         "version": instance.service_version,
                         "url": f"https://{instance.domain}/", "state": instance.state, "health": instance.health,
                         "last_backup": last.finished_at.isoformat(timespec="minutes") if last and last.finished_at else None,
                         "upgrade": None if upgrade is None else {
                             "status": upgrade.status, "to": upgrade.to_version, "version": instance.service_version,
                             "at": (upgrade.finished_at or upgrade.started_at).isoformat(timespec="minutes")}})  # fmt: skip
        offer = find_offer(workspace.config.offers, association.offer)
        used = allocation(session, association.id)
        requests = [request_as_dict(r) for r in list_requests(session, association=association)]
        return {"association": {"slug": association.slug, "name": association.name}, "instances": rows,
                "requests": requests,
                "quota": None if offer is None else {
                    "instances": used.instances, "max_instances": offer.max_instances, "memory": used.memory_mb,
                    "max_memory": offer.memory_mb, "disk": used.disk_gb, "max_disk": offer.disk_gb}}  # fmt: skip

    @app.get("/espace", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request) -> Response:
        with store.session() as session:
            signed_in = current(request, session)
            if signed_in is None:
                return RedirectResponse("/", status_code=303)
            return render(request, "dashboard.html", csrf=signed_in.csrf_token, **dashboard_data(session, signed_in))

    @app.get("/espace/demande", response_class=HTMLResponse, include_in_schema=False)
    def services(request: Request) -> Response:
        with store.session() as session:
            signed_in = current(request, session)
            if signed_in is None:
                return RedirectResponse("/", status_code=303)
            return render(request, "services.html", csrf=signed_in.csrf_token, services=list(catalog.services.values()))

    def form_page(request: Request, signed_in: WebSession, service, status: int = 200, errors=(), values=None) -> Response:
        return render(request, "form.html", status, csrf=signed_in.csrf_token, service=service, sizes=SIZES,
                      errors=list(errors), values=values or {})  # fmt: skip

    @app.get("/espace/demande/{service_id}", response_class=HTMLResponse, include_in_schema=False)
    def request_form(request: Request, service_id: str) -> Response:
        with store.session() as session:
            signed_in = current(request, session)
            if signed_in is None:
                return RedirectResponse("/", status_code=303)
            if service_id not in catalog.services:
                return not_found(request)
            return form_page(request, signed_in, catalog.services[service_id])

    @app.post("/espace/demande/{service_id}", include_in_schema=False)
    async def send_request(request: Request, service_id: str) -> Response:
        form = await request.form()
        with store.session() as session:
            signed_in = current(request, session)
            if signed_in is None:
                return RedirectResponse("/", status_code=303)
            if service_id not in catalog.services:
                return not_found(request)
            service = catalog.services[service_id]
            if not checked_form(signed_in, form):
                return form_page(request, signed_in, service, 400, [translator(language(request))("bad_form")])
            values = {key: value for key, value in form.items() if isinstance(value, str)}
            parameters = {p.name: values[f"param_{p.name}"] for p in service.parameters if values.get(f"param_{p.name}", "") != ""}
            try:
                with session.begin_nested():
                    created = submit_in_session(
                        workspace, session, association=signed_in.association.slug, service=service_id,
                        name=values.get("name") or None, size=values.get("size", "small"), parameters=parameters,
                        requested_by=f"member of {signed_in.association.slug} (invite {signed_in.invite_id})",
                    )  # fmt: skip
            except RucheError as error:
                return form_page(request, signed_in, service, 400, [error.message], values)
        return RedirectResponse(f"/espace/demandes/{created['id']}?envoyee=1", status_code=303)

    def request_context(request: Request, session, found) -> dict:
        """What a request's page shows: the request, its latest run's progress, its instance once it exists."""
        run = next(iter(runs_of_request(session, found.id)), None)
        instance = None
        if found.instance_address:
            try:
                made = get_instance(session, found.instance_address)
            except RucheError:
                made = None
            if made is not None and made.state in ACTIVE_STATES:
                instance = {"url": f"https://{made.domain}/", "state": made.state, "health": made.health}
        progress = members_progress(run.progress if run else "", translator(language(request)))
        return {"request_entry": request_as_dict(found), "progress": progress, "instance": instance,
                "final": found.state in FINAL_REQUEST_STATES}  # fmt: skip

    def members_request(request: Request, session, request_id: int):
        """The signed-in member's session and their association's request ``request_id`` (None where missing)."""
        signed_in = current(request, session)
        if signed_in is None:
            return None, None
        try:
            return signed_in, get_request(session, request_id, association=signed_in.association)
        except RucheError:
            return signed_in, None

    @app.get("/espace/demandes/{request_id}", response_class=HTMLResponse, include_in_schema=False)
    def request_page(request: Request, request_id: int) -> Response:
        with store.session() as session:
            signed_in, found = members_request(request, session, request_id)
            if signed_in is None:
                return RedirectResponse("/", status_code=303)
            if found is None:
                return not_found(request)
            return render(request, "request.html", csrf=signed_in.csrf_token, sent=request.query_params.get("envoyee") == "1",
                          **request_context(request, session, found))  # fmt: skip

    @app.get("/espace/demandes/{request_id}/suivi", response_class=HTMLResponse, include_in_schema=False)
    def request_status_part(request: Request, request_id: int) -> Response:
        """The status part of a request's page alone, fetched again by /static/suivi.js while the request moves."""
        with store.session() as session:
            signed_in, found = members_request(request, session, request_id)
            if found is None:
                return HTMLResponse("", status_code=404 if signed_in is not None else 401)
            context = request_context(request, session, found)
            response = render(request, "request_status.html", **context)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Ruche-Final"] = "1" if context["final"] else "0"
        return response

    # Forms shown before any session (join, admin sign-in) carry a double-submit token: the same random
    # value in a hidden field and in a SameSite=Strict cookie scoped to the form's path.
    def form_with_token(request: Request, template: str, path: str, status: int = 200, **context) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(request, template, status, form_token=token, **context)
        response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies, path=path)
        return response

    def form_token_matches(request: Request, form) -> bool:
        sent, expected = form.get("form_token", ""), request.cookies.get(FORM_COOKIE, "")
        return isinstance(sent, str) and bool(expected) and secrets.compare_digest(sent, expected)

    def refused_by(limiter: RateLimiter, request: Request) -> Response | None:
        """The 429 page when the client's address is over ``limiter``'s rate, else None."""
        if limiter.allow(request.client.host if request.client else "unknown"):
            return None
        return render(request, "message.html", 429, message=translator(language(request))("too_many"))

    # The public page: an association not registered yet applies to join (rate-limited; an admin decides).
    join_limit = RateLimiter(limit=5, window=600)

    def join_form(request: Request, status: int = 200, errors=(), values=None) -> Response:
        return form_with_token(request, "join.html", "/rejoindre", status, errors=list(errors), values=values or {})

    @app.get("/rejoindre", response_class=HTMLResponse, include_in_schema=False)
    def join_page(request: Request) -> Response:
        return join_form(request)

    @app.post("/rejoindre", include_in_schema=False)
    async def join(request: Request) -> Response:
        t = translator(language(request))
        if (refused := refused_by(join_limit, request)) is not None:
            return refused
        form = await request.form()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        if not form_token_matches(request, form):
            return join_form(request, 400, [t("bad_form")], values)
        try:
            with store.session() as session:
                submit_application(session, slug=values.get("slug", ""), name=values.get("name", ""),
                                   email=values.get("email", ""), message=values.get("message", ""))  # fmt: skip
        except RucheError as error:
            return join_form(request, 400, [error.message], values)
        return render(request, "message.html", message=t("applied", collective=workspace.config.collective))

    # Admins: password sign-in (Argon2id), then the review page.
    def sign_in_form(request: Request, status: int = 200, error: str | None = None) -> Response:
        return form_with_token(request, "admin_signin.html", "/admin", status, error=error)

    @app.get("/admin/connexion", response_class=HTMLResponse, include_in_schema=False)
    def admin_sign_in_page(request: Request) -> Response:
        return sign_in_form(request)

    @app.post("/admin/connexion", include_in_schema=False)
    async def admin_sign_in(request: Request) -> Response:
        t = translator(language(request))
        if (refused := refused_by(sign_in_limit, request)) is not None:
            return refused
        form = await request.form()
        if not form_token_matches(request, form):
            return sign_in_form(request, 400, t("bad_form"))
        name, password = form.get("name", ""), form.get("password", "")
        with store.session() as session:
            admin = check_admin(session, name, password) if isinstance(name, str) and isinstance(password, str) else None
            if admin is None:
                return sign_in_form(request, 401, t("wrong_password"))
            _opened, cookie = open_admin_session(session, admin)
        return signed_in_to("/admin", cookie)

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(request: Request) -> Response:
        with store.session() as session:
            signed_in = current_admin(request, session)
            if signed_in is None:
                return RedirectResponse("/admin/connexion", status_code=303)
            open_requests = [request_as_dict(r) for r in list_requests(session) if r.state in ("pending", "provisioning", "failed")]
            done = [request_as_dict(r) for r in list_requests(session) if r.state in ("done", "rejected")][:20]
            applying = [application_as_dict(a) for a in list_applications(session, state="pending")]
            return render(request, "admin.html", csrf=signed_in.csrf_token, admin=signed_in.admin.name,
                          open_requests=open_requests, done_requests=done, applications=applying,
                          offers=sorted(workspace.config.offers), notice=request.query_params.get("info", ""))  # fmt: skip

    async def admin_decision(request: Request, decision: str, allowed: tuple[str, str], act) -> Response:
        """Carry out an admin's ``decision`` (one of ``allowed``) posted from the review page with
        ``act(session, form, actor)``, in a savepoint; back to /admin, with the refusal's message if any."""
        form = await request.form()
        with store.session() as session:
            signed_in = current_admin(request, session)
            if signed_in is None:
                return RedirectResponse("/admin/connexion", status_code=303)
            if decision not in allowed or not checked_form(signed_in, form):
                return render(request, "message.html", 400, message=translator(language(request))("bad_form"))
            try:
                with session.begin_nested():
                    act(session, form, f"admin {signed_in.admin.name}")
            except RucheError as error:
                return RedirectResponse(f"/admin?info={quote(error.message[:300])}", status_code=303)
        return RedirectResponse("/admin", status_code=303)

    @app.post("/admin/candidatures/{application_id}/{decision}", include_in_schema=False)
    async def admin_application(request: Request, application_id: int, decision: str) -> Response:
        def act(session, form, actor: str) -> None:
            offer, reason = form.get("offer") or None, form.get("reason", "")
            if offer is not None and offer not in workspace.config.offers:
                raise InvalidInput(f"offer {offer!r} does not exist")
            decide(session, get_application(session, application_id), accept=decision == "accepter", actor=actor,
                   offer=offer if isinstance(offer, str) else None, reason=reason if isinstance(reason, str) else "")  # fmt: skip

        return await admin_decision(request, decision, ("accepter", "refuser"), act)

    @app.post("/admin/demandes/{request_id}/{decision}", include_in_schema=False)
    async def admin_decide(request: Request, request_id: int, decision: str) -> Response:
        def act(session, form, actor: str) -> None:
            found = get_request(session, request_id)
            if decision == "approuver":
                approve_in_session(workspace, session, found, actor=actor)
                return
            reason = form.get("reason", "")
            reason = checked_reason(reason if isinstance(reason, str) else "", message=translator(language(request))("reason_needed"))
            move(session, found, "rejected", actor=actor, reason=reason)

        return await admin_decision(request, decision, ("approuver", "refuser"), act)

    # The JSON API: the same session cookie; writes need the session's CSRF token in X-CSRF-Token.
    def api_session(request: Request, session) -> WebSession:
        signed_in = current(request, session)
        if signed_in is None:
            raise ApiError(401, "sign in with your invite link first")
        return signed_in

    @app.get("/api/v1/instances", tags=["member"], summary="Your association's services")
    def api_instances(request: Request) -> list[dict]:
        with store.session() as session:
            return dashboard_data(session, api_session(request, session))["instances"]

    @app.get("/api/v1/requests", tags=["member"], summary="Your association's requests, newest first")
    def api_requests(request: Request) -> list[dict]:
        with store.session() as session:
            signed_in = api_session(request, session)
            return [request_as_dict(r) for r in list_requests(session, association=signed_in.association)]

    @app.get("/api/v1/requests/{request_id}", tags=["member"],
             summary="One of your requests, with its run's progress and, once deployed, its service's URL and health")
    def api_request(request: Request, request_id: int) -> dict:
        with store.session() as session:
            signed_in = api_session(request, session)
            try:
                found = get_request(session, request_id, association=signed_in.association)
            except RucheError:
                raise ApiError(404, "not found") from None
            context = request_context(request, session, found)
            return {**context["request_entry"], "progress": context["progress"], "deployed": context["instance"]}

    @app.post("/api/v1/requests", tags=["member"], summary="Request a service", status_code=201)
    def api_submit(request: Request, body: RequestIn) -> dict:
        with store.session() as session:
            signed_in = api_session(request, session)
            if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), signed_in.csrf_token):
                raise ApiError(403, "missing or wrong X-CSRF-Token")
            try:
                with session.begin_nested():
                    return submit_in_session(
                        workspace, session, association=signed_in.association.slug, service=body.service, name=body.name,
                        size=body.size, parameters=body.parameters,
                        requested_by=f"member of {signed_in.association.slug} (invite {signed_in.invite_id})",
                    )  # fmt: skip
            except RucheError as error:
                raise ApiError(400 if error.exit_code in (2, 4) else 409, error.message) from None

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    app.state.store = store
    return app


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
