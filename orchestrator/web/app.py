"""The web app's factory: FastAPI over one state store for the app's life.

Routes live in ``routes/`` (one router per area), what they need in ``dependencies.py`` (state
session, signed-in member or admin, CSRF-checked form), the API's bodies in ``models.py``, the
pages in ``pages.py`` and ``templates/``, the texts in gettext catalogs (``i18n.py``, ``locale/``),
the answers to refusals in ``errors.py`` (pages for pages, JSON for the API) and what a refused form or
decision says, per field and in the visitor's language, in ``refusals.py``, headers and limits in ``security.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from orchestrator.state.database import StateStore
from orchestrator.web.dependencies import WebApp
from orchestrator.web.errors import install_error_answers, too_large_answer
from orchestrator.web.pages import Pages
from orchestrator.web.routes import (
    admin,
    admin_members,
    api,
    chatonsinfos,
    join,
    manager,
    manager_alerts,
    manager_domains,
    member,
    member_export,
    metrics,
    public,
)
from orchestrator.web.security import TOO_MANY, TOO_MANY_TEN_MINUTES, Guard, RateLimiter, redact_access_log
from orchestrator.workspace import open_workspace

STATIC_DIR = Path(__file__).parent / "static"


def create_app(workspace_path: Path | None) -> FastAPI:
    """Give the ASGI app of the workspace at ``workspace_path`` (its state store opened for the app's life)."""
    workspace = open_workspace(workspace_path)
    settings = workspace.config.web
    app = FastAPI(title="ruche", version="1", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.web = WebApp(
        workspace=workspace, store=StateStore(workspace.state_url), catalog=workspace.catalog,
        pages=Pages(workspace.config.collective, secure_cookies=settings.secure_cookies),
        sign_in_limit=RateLimiter("sign-in", limit=10, window=60, refusal=TOO_MANY),
        account_limit=RateLimiter("admin-account", limit=10, window=600, refusal=TOO_MANY_TEN_MINUTES),
        join_limit=RateLimiter("join", limit=5, window=600, refusal=TOO_MANY_TEN_MINUTES),
    )  # fmt: skip
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, hsts=settings.secure_cookies,
                       too_large=too_large_answer(app.state.web.pages, settings.max_body_bytes))  # fmt: skip
    for area in (public, member, join, admin, api):
        app.include_router(area.router)
    for area in (manager, admin_members):  # association managers (issue 24)
        app.include_router(area.router)
    app.include_router(manager_domains.router)  # associations' own domains (issue 25)
    app.include_router(manager_alerts.router)  # associations choose their incident alerts (issue 26)
    app.include_router(metrics.router)  # Prometheus' /metrics, to [metrics]' token or clients only (issue 26)
    app.include_router(chatonsinfos.router)  # the ChatonsInfos files, public (issue 28)
    app.include_router(member_export.router)  # a member downloads the association's data (issue 27)
    install_error_answers(app)
    app.add_exception_handler(manager.NotAManager, manager.not_a_manager)
    redact_access_log()
    return app


def app_from_environment() -> FastAPI:
    """The app of the workspace named by $RUCHE_WORKSPACE: what each process of `ruche serve --workers N` runs."""
    return create_app(Path(os.environ["RUCHE_WORKSPACE"]))
