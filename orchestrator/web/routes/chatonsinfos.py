"""/.well-known/chatonsinfos/: the collective's ChatonsInfos files (reports/chatonsinfos.py), public, read from the
state at each request: organization.properties and one SERVICE.properties per service it offers."""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from orchestrator.errors import ConfigError
from orchestrator.reports.chatonsinfos import FILE_NAME, WELL_KNOWN, gather
from orchestrator.web.dependencies import Web

router = APIRouter(include_in_schema=False)
# The files gathered last, by app, for as long as the answers say they may be kept (max-age): an anonymous
# visitor's request reads the whole fleet's state at most once every CACHE_SECONDS.
CACHE_SECONDS = 300
_lock = threading.Lock()


def _published(web):
    """The files to publish, gathered anew when the last gathering is older than CACHE_SECONDS (ConfigError while
    a mandatory value is unset)."""
    with _lock:
        kept = web.kept.get("chatonsinfos")
        if kept is not None and time.monotonic() - kept[0] < CACHE_SECONDS:
            return kept[1]
        with web.store.session() as session:
            published = gather(session, web.workspace.config, web.catalog)
        web.kept["chatonsinfos"] = (time.monotonic(), published)
        return published


@router.get(WELL_KNOWN + "{name}")
def chatonsinfos_file(name: str, web: Web) -> Response:
    """One file as text. A name that is no file's (checked by its shape before any lookup), a service the
    collective does not offer, or files not published yet (a mandatory [chatonsinfos] value unset: `ruche report
    --chatonsinfos` names it) get the site's missing page (404)."""
    if len(name) > 64 or not FILE_NAME.fullmatch(name):
        raise HTTPException(status_code=404)
    try:
        published = _published(web)
    except ConfigError:
        raise HTTPException(status_code=404) from None
    if name not in published.files:
        raise HTTPException(status_code=404)
    return Response(
        published.text(name).encode("utf-8"),
        media_type="text/plain; charset=utf-8",
        headers={"cache-control": "public, max-age=300", "access-control-allow-origin": "*"},
    )
