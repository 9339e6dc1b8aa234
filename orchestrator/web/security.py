"""What every response and request goes through: security headers, a body size limit, rate limits."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.i18n import N_
from orchestrator.state.rate_limits import hit

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
# pages and API answers hold personal data (a member's services, requests, an admin's lists): never kept by a
# browser's or a proxy's cache; only /static/ files may be
NO_STORE = (b"cache-control", b"no-store")
# Paths whose last part is a secret: a member's sign-in link, a download link of their association's data (not the
# form that issues one, /espace/export/lien)
SECRET_PATH = re.compile(r"^(/connexion|/espace/export)/(?!lien(?:\?|$))[^?\s]+")
# Characters that change how a text is displayed without being seen: bidirectional controls (U+202E shows an
# admin's reason reversed), zero-width ones, the byte-order mark. Refused in what members and admins type.
INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
INVISIBLE_REFUSED = N_(
    "%(field)s: invisible or direction-changing characters (such as U+%(code)s) are not "
    "accepted. Type the text again without them."
)


def invisible_in(values: dict[str, str]) -> tuple[str, str] | None:
    """The first field of ``values`` holding an INVISIBLE character, and the character's code (e.g. 202E)."""
    for field, value in values.items():
        found = INVISIBLE.search(value) if isinstance(value, str) else None
        if found:
            return field, f"{ord(found.group()):04X}"
    return None


class RedactSignInLinks(logging.Filter):
    """Keep a member's sign-in token and their data's download token out of uvicorn's access log:
    `/connexion/<token>` is written `/connexion/(hidden)` (whoever reads the log could otherwise sign in as that
    member), `/espace/export/<token>` `/espace/export/(hidden)`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = record.args[:2] + (SECRET_PATH.sub(r"\1/(hidden)", record.args[2]),) + record.args[3:]
        return True


def redact_access_log() -> None:
    """Install RedactSignInLinks on uvicorn's access logger (once per process)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignInLinks) for f in logger.filters):
        logger.addFilter(RedactSignInLinks())


class Guard:
    """ASGI middleware: refuses bodies over ``max_body_bytes`` (413, counted as they arrive, whatever
    Content-Length says; answered by ``too_large(scope)``: a page in the site's layout, or the API's JSON) and
    adds the security headers (HSTS when cookies are HTTPS-only)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts: bool,
                 too_large: Callable[[Scope], Response] | None = None) -> None:  # fmt: skip
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.headers = SECURITY_HEADERS + ([HSTS] if hsts else [])
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        cacheable = scope.get("path", "").startswith("/static/")

        slash_redirect = scope.get("path", "").endswith("/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if cacheable or h[0].lower() != b"cache-control"]
                if slash_redirect and message.get("status") in (307, 308):
                    headers = [relative_location(h) for h in headers]
                message["headers"] = headers + self.headers + ([] if cacheable else [NO_STORE])
            await send(message)

        try:
            await self.app(scope, counting_receive, with_headers)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.too_large is not None:

            async def with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                    message["headers"] = headers + self.headers + [NO_STORE]
                await send(message)

            await self.too_large(scope)(scope, receive, with_headers)
            return
        body = b"Request too large / Requete trop volumineuse.\n"
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
                    + self.headers + [NO_STORE]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def relative_location(header: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """Starlette's trailing-slash redirect (``/espace/`` -> ``/espace``) writes an absolute URL from the request's
    Host header: a forged Host sent the visitor to any site. The redirect keeps its path and query only, one
    leading slash (never ``//host``, which a browser reads as another site)."""
    if header[0].lower() != b"location":
        return header
    target = urlsplit(header[1].decode("latin-1"))
    relative = "/" + target.path.lstrip("/") + (f"?{target.query}" if target.query else "")
    return header[0], relative.encode("latin-1")


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (a client address, or an account), counted in the
    state database: every `ruche serve` process shares them (state/rate_limits.py). ``refusal``: the 429 page's
    text, which names the window."""

    name: str
    limit: int
    window: float
    refusal: str

    def allow(self, session: Session, key: str) -> bool:
        return hit(session, name=self.name, key=key, limit=self.limit, window_seconds=self.window)


TOO_MANY = N_("Too many attempts: try again in a minute.")
TOO_MANY_TEN_MINUTES = N_("Too many attempts: try again in ten minutes.")


def over_the_limit(limiter: RateLimiter, session: Session, request: Request, key: str | None = None) -> bool:
    """Count a hit of ``key`` (default: the client's address) on ``limiter``; tell whether it is over the rate
    (then answer 429 with ``limiter.refusal``).

    The client's address is the connection's, or X-Forwarded-For's only when the connection comes from one of
    `[web] trusted_proxies` (uvicorn's forwarded-allow-ips, set by `ruche serve`). The hit is committed at once,
    in its own transaction, whatever the route does next."""
    if key is None:
        key = request.client.host if request.client else "unknown"
    allowed = limiter.allow(session, key)
    session.commit()
    return not allowed
