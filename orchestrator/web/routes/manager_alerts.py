"""A manager's choice of the association's incident alerts (/espace/gestion/alertes): whether its contact address
is told by mail of the alerts on its own services (operations/watch.py), and in which language. Recorded as the
`ruche association alerts` command does (state/associations.set_alert_choice), with the manager's name. Plain
members only see the choice (their space); a plain member's post is refused like every manager's route."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from orchestrator.i18n import LANGUAGE_NAMES, LANGUAGES, N_
from orchestrator.state.associations import set_alert_choice
from orchestrator.web.dependencies import StateSession, Web
from orchestrator.web.pages import texts_of
from orchestrator.web.routes.manager import ManagerForm, ManagerSession, manager_page, text

router = APIRouter(prefix="/espace/gestion", include_in_schema=False)

BAD_CHOICE = N_("Nothing was changed: the language of the alerts must be one of %(languages)s, and the box ticked "
                "or left empty. Choose again in the form below.")  # fmt: skip


@router.post("/alertes")
def choose_alerts(request: Request, web: Web, session: StateSession, signed_in: ManagerSession,
                  form: ManagerForm) -> Response:  # fmt: skip
    notify, language = text(form, "notify"), text(form, "language")
    if notify not in ("", "on") or language not in LANGUAGES:
        refused = texts_of(request)(BAD_CHOICE, languages=", ".join(LANGUAGE_NAMES[code] for code in LANGUAGES))
        return manager_page(request, web, session, signed_in, status=400, errors=[refused])
    set_alert_choice(session, signed_in.association, opt_in=notify == "on", language=language,
                     actor=session.info["actor"])  # fmt: skip
    return RedirectResponse(f"/espace/gestion?info=alerts-{'on' if notify else 'off'}", status_code=303)
