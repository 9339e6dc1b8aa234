"""A member's download of their association's data (/espace/export, issue 27): asked for with a button (a run of
the worker queued; refused while one is queued or ready, or past state/exports.EXPORTS_PER_DAY), its link issued once
it is ready, the file streamed once to a signed-in member of that association only.

The link's token is a secret: shown only in the page that issues it (a form's answer, never kept by a cache: every
page is no-store), looked up by its SHA-256, hidden in the access log (security.RedactSignInLinks) and never sent
on as a Referer (Referrer-Policy: no-referrer). Issuing a new link makes the one before it stop working. A link of
another association is a missing page, exactly like an unknown one; a used or expired one says so (403).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from orchestrator.operations.member_exports import delete_after_download, file_of, open_for_download, purge
from orchestrator.state.exports import (
    EXPORTS_PER_DAY,
    ExportRefused,
    export_for_token,
    is_due,
    issue_link,
    latest_export,
    request_export,
    take_download,
)
from orchestrator.state.models import utc_now
from orchestrator.web.dependencies import Member, MemberForm, StateSession, Web
from orchestrator.web.exports import LINK_EXPIRED, LINK_GONE, LINK_USED, REFUSALS, WHAT_IT_HOLDS, export_texts
from orchestrator.web.pages import texts_of

router = APIRouter(prefix="/espace/export", include_in_schema=False)
BLOCK = 1 << 20
BACK = "/espace#donnees"


@router.post("")
def ask_for_export(request: Request, web: Web, session: StateSession, signed_in: Member, form: MemberForm) -> Response:
    """The button "Download our data": an export queued for the worker, then back to the space, which follows it."""
    try:
        request_export(session, signed_in.association, requested_by=session.info["actor"])
    except ExportRefused as refused:
        status = 429 if refused.reason == "rate" else 409
        return web.pages.message(request, REFUSALS[refused.reason], status, count=EXPORTS_PER_DAY)
    return RedirectResponse(BACK, status_code=303)


@router.post("/lien", response_class=HTMLResponse)
def issue_export_link(request: Request, web: Web, session: StateSession, signed_in: Member,
                      form: MemberForm) -> Response:  # fmt: skip
    """The ready export's download link, in this page only (a new one each time: the one before stops working)."""
    purge(web.workspace, session)
    export = latest_export(session, signed_in.association_id)
    if export is None or export.status != "ready":
        return RedirectResponse(BACK, status_code=303)  # the space says what became of it
    token = issue_link(session, export)
    _ = texts_of(request)
    return web.pages.render(request, "export_link.html", csrf=signed_in.csrf_token, link=f"/espace/export/{token}",
                            values=export_texts(export, _),
                            holds=_(WHAT_IT_HOLDS, collective=web.pages.collective))  # fmt: skip


@router.get("/{token}")
def download_export(request: Request, token: str, web: Web, session: StateSession, signed_in: Member) -> Response:
    """The file, once, to a signed-in member of its association; deleted once streamed."""
    export = export_for_token(session, token)
    if export is None or export.association_id != signed_in.association_id:
        return web.pages.not_found(request)  # another association's link: as if there were none
    if export.status == "downloaded":
        return web.pages.message(request, LINK_USED, 403)
    if export.status != "ready" or is_due(export, utc_now()):
        purge(web.workspace, session)  # the due export expired and its file deleted now
        return web.pages.message(request, LINK_EXPIRED, 403)
    handle = open_for_download(web.workspace, export)  # opened first: a purge may delete its name meanwhile
    if handle is None:
        export.status, export.error = "expired", "its file was not there any more when its link was opened"
        return web.pages.message(request, LINK_GONE, 404)
    if not take_download(session, export):  # another download took it at the same moment
        handle.close()
        return web.pages.message(request, LINK_USED, 403)
    name = f"{signed_in.association.slug}-{utc_now():%Y%m%d}.ruche-bundle.tar.gz"
    return StreamingResponse(
        _blocks(handle), media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Content-Length": str(os.fstat(handle.fileno()).st_size)},
        background=BackgroundTask(delete_after_download, handle, file_of(web.workspace, export)),
    )  # fmt: skip


def _blocks(handle: BinaryIO) -> Iterator[bytes]:
    while block := handle.read(BLOCK):
        yield block
