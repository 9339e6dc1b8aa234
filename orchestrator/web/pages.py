"""Rendering the pages: Jinja2 templates in the request's language, cookies, forms shown before any session."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from orchestrator.i18n import LANGUAGE_NAMES, LANGUAGES, N_, Translator, choose_language, translator

TEMPLATES_DIR = Path(__file__).parent / "templates"
COOKIE = "ruche_session"
FORM_COOKIE = "ruche_form"
LANGUAGE_COOKIE = "ruche_lang"


def language_of(request: Request) -> str:
    return choose_language(request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE),
                           request.headers.get("accept-language"))  # fmt: skip


def texts_of(request: Request) -> Translator:
    """The texts in the request's language (``_ = texts_of(request); _("Page not found.")``)."""
    return translator(language_of(request))


class Pages:
    """The app's templates, with what every page shows (the collective's name, the language switch)."""

    def __init__(self, collective: str, secure_cookies: bool) -> None:
        self.collective = collective
        self.secure_cookies = secure_cookies
        self.environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]))

    def render(self, request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        """``template`` in the request's language; remembers a language chosen with ?lang= in a cookie.

        Translated texts are plain strings: autoescaping applies to them as to any value, so neither a
        translation nor a value filled into one can add markup."""
        lang = language_of(request)
        _ = translator(lang)
        html = self.environment.get_template(template).render(
            _=_, gettext=_, label=_.label, upgrade_text=_.upgrade_text, lang=lang, collective=self.collective,
            other_languages=[{"code": code, "name": LANGUAGE_NAMES[code]} for code in LANGUAGES if code != lang], **context,
        )  # fmt: skip
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=self.secure_cookies)
        return response

    def message(self, request: Request, message: str, status: int = 200, **values) -> HTMLResponse:
        """A page saying ``message`` (an English text of the catalogs, translated here)."""
        return self.render(request, "message.html", status, message=texts_of(request)(message, **values))

    def not_found(self, request: Request) -> HTMLResponse:
        return self.message(request, N_("Page not found."), 404)

    def signed_in_to(self, location: str, cookie: str) -> Response:
        """Redirect to ``location`` with the new session's cookie (HttpOnly, SameSite=Lax, Secure unless turned off)."""
        response = RedirectResponse(location, status_code=303)
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax", secure=self.secure_cookies, path="/")
        return response

    # Forms shown before any session (join, admin sign-in) carry a double-submit token: the same random
    # value in a hidden field and in a SameSite=Strict cookie scoped to the form's path.
    def with_form_token(self, request: Request, template: str, path: str, status: int = 200, **context) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.render(request, template, status, form_token=token, **context)
        response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=self.secure_cookies, path=path)
        return response


def form_token_matches(request: Request, form) -> bool:
    sent, expected = form.get("form_token", ""), request.cookies.get(FORM_COOKIE, "")
    return isinstance(sent, str) and bool(expected) and secrets.compare_digest(sent, expected)
