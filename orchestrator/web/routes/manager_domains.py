"""A manager's own domains (/espace/gestion/domaines/SERVICE): claim one for a service (the records to publish are
then on its card; the worker proves it within minutes) or remove one (after typing it; a queued run when it was
served). Plain members only see them (their space); another association's service answers 404 like a missing one.
Claims are rate-limited per association, refused ones included."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.domains import shown as shown_name
from orchestrator.errors import NotFound, RucheError
from orchestrator.i18n import N_
from orchestrator.operations.own_domains import add_claim, remove_queued
from orchestrator.state.domains import get_domain
from orchestrator.state.instances import get_instance
from orchestrator.state.models import Instance, WebSession
from orchestrator.web.dependencies import StateSession, Web
from orchestrator.web.own_domains import (
    ADDED,
    ALREADY_ADDED,
    NO_SUCH_DOMAIN,
    NOT_A_DOMAIN,
    NOT_NOW,
    REMOVED,
    REMOVED_ATTACHED,
    TYPE_THE_DOMAIN,
    claim_refusal,
    printable,
    takes_domains,
    typed_domain,
)
from orchestrator.web.pages import texts_of
from orchestrator.web.routes.manager import ManagerForm, ManagerSession, manager_page, text
from orchestrator.web.security import INVISIBLE_REFUSED, TOO_MANY_TEN_MINUTES, RateLimiter, invisible_in, over_the_limit

router = APIRouter(prefix="/espace/gestion/domaines", include_in_schema=False)

# Claims per association, refused ones included: enough to mend a typo, not to probe which names are taken.
CLAIM_LIMIT = RateLimiter("own-domain", limit=30, window=600, refusal=TOO_MANY_TEN_MINUTES)
DOMAIN_FIELD = N_("Domain name")


def own_instance(session, signed_in: WebSession, name: str) -> Instance | None:
    """The manager's association's service ``name``; None when missing, another association's, or no name at all."""
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name[:64]):  # never a NUL or the like to the database
        return None
    try:
        return get_instance(session, f"{signed_in.association.slug}/{name[:64]}")
    except RucheError:
        return None


@router.post("/{name}")
def claim(request: Request, name: str, web: Web, session: StateSession, signed_in: ManagerSession,
          form: ManagerForm) -> Response:  # fmt: skip
    instance = own_instance(session, signed_in, name)
    if instance is None:
        return web.pages.not_found(request)
    if over_the_limit(CLAIM_LIMIT, session, request, key=signed_in.association.slug):
        return web.pages.message(request, CLAIM_LIMIT.refusal, 429)
    _ = texts_of(request)
    typed = text(form, "domain")
    invisible = invisible_in({"domain": typed})
    if invisible is not None:
        refused = _(INVISIBLE_REFUSED, field=_(DOMAIN_FIELD), code=invisible[1])
        return manager_page(request, web, session, signed_in, status=400, errors=[refused])
    domain = typed_domain(typed)
    if domain is None:
        refused = _(NOT_A_DOMAIN, name=printable(typed))
        return manager_page(request, web, session, signed_in, status=400, errors=[refused])
    if not takes_domains(web.catalog, instance):
        return manager_page(request, web, session, signed_in, status=409, errors=[_(NOT_NOW, service=instance.name)])
    try:
        with session.begin_nested():
            claimed = add_claim(web.workspace, session, instance.address, domain)
    except RucheError as error:
        refused = claim_refusal(web.workspace, instance, domain, error, _)
        return manager_page(request, web, session, signed_in, status=400 if error.exit_code == 2 else 409,
                            errors=[refused])  # fmt: skip
    said = ADDED if claimed["added"] else ALREADY_ADDED
    return manager_page(request, web, session, signed_in, notice=_(said, name=claimed["domain"]["shown"],
                                                                   service=instance.name))  # fmt: skip


@router.post("/{name}/retirer")
def remove(request: Request, name: str, web: Web, session: StateSession, signed_in: ManagerSession,
           form: ManagerForm) -> Response:  # fmt: skip
    instance = own_instance(session, signed_in, name)
    if instance is None:
        return web.pages.not_found(request)
    _ = texts_of(request)
    domain = typed_domain(text(form, "domain"))
    try:
        if domain is None:
            raise NotFound("no domain")
        found = get_domain(session, instance, domain)
    except NotFound:
        refused = _(NO_SUCH_DOMAIN, name=printable(text(form, "domain")))
        return manager_page(request, web, session, signed_in, status=409, errors=[refused])
    shown = shown_name(found.name)
    if typed_domain(text(form, "confirm")) != found.name:
        return manager_page(request, web, session, signed_in, status=400, errors=[_(TYPE_THE_DOMAIN, name=shown)])
    removed = remove_queued(session, instance, found.name, actor=session.info["actor"])
    said = REMOVED_ATTACHED if removed["was"] == "attached" else REMOVED
    return manager_page(request, web, session, signed_in, notice=_(said, name=shown, service=instance.name))
