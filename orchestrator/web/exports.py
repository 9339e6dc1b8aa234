"""What the member's space says of their association's export (issue 27), in the member's words and language: the
button to ask for one, an export being prepared, a ready one with its size ("12,3 Mo") and until when its link
works, a downloaded, expired or failed one (never the admins' error); and what a refused request or link says.
"""

from __future__ import annotations

from dataclasses import dataclass

from babel.units import format_unit
from sqlalchemy.orm import Session

from orchestrator.i18n import N_, Translator
from orchestrator.operations.member_exports import purge
from orchestrator.state.exports import EXPORTS_PER_DAY, latest_export
from orchestrator.state.models import MemberExport, WebSession
from orchestrator.web.space import when
from orchestrator.workspace import Workspace

# What a refused request says, by state/exports.ExportRefused's reason (placeholder: count)
REFUSALS = {
    "open": N_("Your association's data is already being prepared, or ready to download: use that one first."),
    "rate": N_(
        "Your association asked for its data %(count)s times in the last 24 hours, the most allowed: "
        "try again tomorrow."
    ),  # fmt: skip
    "nothing": N_("Your association has no service yet: there is no data to download."),
    "idle": N_(
        "Every service must be running for its data to be prepared: your association's manager can start "
        "the suspended ones again first."
    ),  # fmt: skip
}
# What the space says of the newest export, by its status (placeholders: at, size, until)
STATUS_TEXTS = {
    "queued": N_(
        "Your data is being prepared (asked for on %(at)s). Come back to this page in a while: the "
        "download link will be here."
    ),  # fmt: skip
    "ready": N_("Your data is ready: %(size)s, to download once, until %(until)s."),
    "downloaded": N_("Your data was downloaded on %(at)s; the file was then deleted from our servers."),
    "expired": N_("The data prepared on %(at)s was not downloaded within a day: the file was deleted."),
    "failed": N_("Your data could not be prepared (asked for on %(at)s). The admins can see why; you may ask again."),
}
LINK_USED = N_("This download link was already used: each link works once. Ask for your data again from your space.")
LINK_EXPIRED = N_("This download link has expired (a link works for a day) and the file was deleted. Ask for your "
                  "data again from your space.")  # fmt: skip
LINK_GONE = N_("This download is not available any more. Ask for your data again from your space.")
WHAT_IT_HOLDS = N_(
    "The download is one archive of all your services' data (their databases and files), signed by %(collective)s, "
    "that another host can import. It holds no password of your services."
)


@dataclass(frozen=True)
class ExportView:
    """The export part of the member's space."""

    text: str  # the newest export in words, or "" when there was none
    ready: bool  # a link may be issued (its button shown)
    can_ask: bool  # the button to ask for the data shown (no export queued or ready)
    per_day: int


def human_size(size: int, language: str) -> str:
    """A file's size in the member's words, in decimal units: "12,3 Mo" in French, "12.3 MB" in English."""
    for unit, scale in (("digital-gigabyte", 10**9), ("digital-megabyte", 10**6), ("digital-kilobyte", 10**3)):
        if size >= scale:
            return format_unit(size / scale, unit, length="short", locale=language, format="#,##0.#")
    return format_unit(size, "digital-byte", length="short", locale=language)


def export_texts(export: MemberExport, _: Translator) -> dict[str, str]:
    """The values an export's texts are filled with, in the member's language: ``at`` when it was asked for, or
    downloaded, or prepared (what its status's text says)."""
    moment = {"downloaded": export.downloaded_at, "expired": export.ready_at}.get(export.status) or export.created_at
    return {"at": when(moment, _), "size": human_size(export.size or 0, _.language),
            "until": when(export.expires_at, _) if export.expires_at else ""}  # fmt: skip


def export_view(workspace: Workspace, session: Session, signed_in: WebSession, _: Translator) -> ExportView:
    """The newest export of the member's association, after the due ones expired and their files were deleted."""
    purge(workspace, session)
    export = latest_export(session, signed_in.association_id)
    if export is None:
        return ExportView(text="", ready=False, can_ask=True, per_day=EXPORTS_PER_DAY)
    text = _(STATUS_TEXTS[export.status], **export_texts(export, _)) if export.status in STATUS_TEXTS else ""
    return ExportView(text=text, ready=export.status == "ready", can_ask=export.status not in ("queued", "ready"),
                      per_day=EXPORTS_PER_DAY)  # fmt: skip
