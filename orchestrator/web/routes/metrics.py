"""/metrics: the state for Prometheus, to a bearer of `[metrics]`'s token or a client of its networks only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException

from orchestrator.web.dependencies import Web
from orchestrator.web.metrics import allowed, exposition

router = APIRouter(include_in_schema=False)


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/metrics", methods=METHODS)
def metrics(request: Request, web: Web) -> Response:
    """The metrics (web/metrics.py), to a GET only. Anyone else, a wrong or missing token or another method
    included, gets the site's missing page (404), as for an address that does not exist: nothing tells a prober
    it is there."""
    settings = web.workspace.config.metrics
    # the client's address: the connection's, or X-Forwarded-For's when it comes from `[web] trusted_proxies`
    # (uvicorn's forwarded-allow-ips, set by `ruche serve`), as security.over_the_limit counts it
    client = request.client.host if request.client else None
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if request.method != "GET" or not allowed(
        settings, authorization=request.headers.get("authorization"), client=client, forwarded=forwarded,
        proxies_trusted=bool(web.workspace.config.web.trusted_proxies),
    ):  # fmt: skip
        raise HTTPException(status_code=404)
    body = exposition(web.store, web.workspace.config.offers)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"cache-control": "no-store"})
