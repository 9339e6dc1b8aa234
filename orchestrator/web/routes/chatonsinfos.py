"""/.well-known/chatonsinfos/: the collective's ChatonsInfos files (reports/chatonsinfos.py), public, read from the
state at each request: organization.properties and one SERVICE.properties per service it offers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from orchestrator.errors import ConfigError
from orchestrator.reports.chatonsinfos import FILE_NAME, WELL_KNOWN, gather
from orchestrator.web.dependencies import Web

router = APIRouter(include_in_schema=False)


@router.get(WELL_KNOWN + "{name}")
def chatonsinfos_file(name: str, web: Web) -> Response:
    """One file as text. A name that is no file's (checked by its shape before any lookup), a service the
    collective does not offer, or files not published yet (a mandatory [chatonsinfos] value unset: `ruche report
    --chatonsinfos` names it) get the site's missing page (404)."""
    if len(name) > 64 or not FILE_NAME.fullmatch(name):
        raise HTTPException(status_code=404)
    try:
        with web.store.session() as session:
            published = gather(session, web.workspace.config, web.catalog)
    except ConfigError:
        raise HTTPException(status_code=404) from None
    if name not in published.files:
        raise HTTPException(status_code=404)
    return Response(
        published.text(name).encode("utf-8"),
        media_type="text/plain; charset=utf-8",
        headers={"cache-control": "public, max-age=300", "access-control-allow-origin": "*"},
    )
