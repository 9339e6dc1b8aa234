"""Members' exports of their association's data in the state: requested (a run of kind ``export`` queued for the
worker), ready, their download link issued, downloaded once, expired or failed (issue 27).

A download link is a secret like a sign-in link: random (256 bits), shown once in the page that issues it, and only
its SHA-256 is kept (``token_hash``, hidden from the audit trail like invites'). A link is looked up by that digest,
so no comparison ever runs over the token itself, and used at most once: one conditional UPDATE (``ready`` →
``downloaded``) decides which of two downloads at once gets the file. The files themselves are the operations'
(operations/member_exports.py); this module only records.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict
from orchestrator.state.access import digest
from orchestrator.state.instances import list_instances
from orchestrator.state.models import Association, MemberExport, QueuedRun, as_utc, utc_now
from orchestrator.state.queue import enqueue

# An export quiesces every service of the association (maintenance or read-only mode) while its data is copied,
# and takes their whole size on the control machine: a few a day are enough to leave with everything, more would
# let one association load the servers and the disk. Counted per association over the last 24 hours, whatever
# became of them (failed ones count too).
EXPORTS_PER_DAY = 3
RATE_WINDOW = timedelta(days=1)
# How long a ready export waits for its download; then it expires and its file is deleted.
LINK_LIFETIME = timedelta(days=1)
OPEN_STATUSES = ("queued", "ready")
EXPORTS_DIR = "exports"


class ExportRefused(Conflict):
    """A member's request for an export refused: ``reason`` is ``open`` (one is queued or ready already),
    ``rate`` (EXPORTS_PER_DAY reached), ``nothing`` (no service to export) or ``idle`` (a service not running)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


QUEUE_SERVER = "exports"


def queue_server(slug: str) -> str:
    """The queue's ``server`` of every member's export: not one of the servers, one name for them all.

    An export reads every server its association's instances are on, but it is a backup's work (the service
    quiesced, its data dumped and copied, each instance's lock held on its server: ruche-backup waits for a backup
    or a restore of the same instance), which ``ruche backup run`` already does beside queued applies: holding one
    real server would stop that server's applies for the export's length and still not cover the others. One name
    for every export keeps the queue's rule useful: one export runs at a time (``running_server`` is unique), so
    members pressing the button never take the worker's other slots; one open export per association is the
    table's own rule (its partial unique index)."""
    return QUEUE_SERVER


def request_export(session: Session, association: Association, *, requested_by: str) -> MemberExport:
    """Record a new export of ``association`` and queue its run; give it. Raises ExportRefused."""
    # the association's row is locked first (PostgreSQL; SQLite serialises writers): two requests at once are counted
    # one after the other, and the partial unique index refuses a second open export whatever happens
    session.scalar(select(Association.id).where(Association.id == association.id).with_for_update())
    open_one = session.scalar(select(MemberExport.id).where(MemberExport.association_id == association.id,
                                                            MemberExport.status.in_(OPEN_STATUSES)))  # fmt: skip
    if open_one is not None:
        raise ExportRefused("open", f"{association.slug} has an export queued or ready already")
    recent = session.scalar(select(func.count(MemberExport.id)).where(
        MemberExport.association_id == association.id, MemberExport.created_at > utc_now() - RATE_WINDOW))  # fmt: skip
    if recent >= EXPORTS_PER_DAY:
        raise ExportRefused("rate", f"{association.slug} asked for {recent} exports in the last 24 hours")
    instances = [i for i in list_instances(session, association=association.slug) if i.state != "deleted"]
    if not instances:
        raise ExportRefused("nothing", f"{association.slug} has no service to export")
    if any(i.state != "running" for i in instances):
        raise ExportRefused("idle", f"{association.slug} has a service that is not running")
    export = MemberExport(association_id=association.id, requested_by=requested_by, status="queued",
                          path=f"{EXPORTS_DIR}/{secrets.token_hex(16)}.tar.gz", created_at=utc_now(), error="")  # fmt: skip
    try:
        with session.begin_nested():
            session.add(export)
            session.flush()
    except IntegrityError as error:  # another request made one at the same moment
        raise ExportRefused("open", f"{association.slug} has an export queued or ready already") from error
    run = enqueue(session, server=queue_server(association.slug), instance_address=None, requested_by=requested_by,
                  kind="export", payload={"export": export.id})  # fmt: skip
    export.queued_run_id = run.id
    return export


def latest_export(session: Session, association_id: int) -> MemberExport | None:
    """The association's newest export, or None."""
    return session.scalar(select(MemberExport).where(MemberExport.association_id == association_id)
                          .order_by(MemberExport.created_at.desc(), MemberExport.id.desc()).limit(1))  # fmt: skip


def mark_ready(session: Session, export_id: int, *, size: int, sha256: str) -> MemberExport | None:
    """A queued export written: ready for a day from now. Gives it, or None when it is no longer queued."""
    export = session.get(MemberExport, export_id)
    if export is None or export.status != "queued":
        return None
    now = utc_now()
    export.status, export.size, export.sha256 = "ready", size, sha256
    export.ready_at, export.expires_at = now, now + LINK_LIFETIME
    return export


def mark_failed(session: Session, export_id: int, error: str) -> None:
    """A queued export that could not be written; ``error`` is for the admins (the member reads a text of theirs)."""
    export = session.get(MemberExport, export_id)
    if export is not None and export.status == "queued":
        export.status, export.error = "failed", error[:1000]


def issue_link(session: Session, export: MemberExport) -> str:
    """A new download link's token for a ready export (the one before it stops working); give it, never kept."""
    token = secrets.token_urlsafe(32)
    export.token_hash = digest(token)
    session.flush()
    return token


def export_for_token(session: Session, token: str) -> MemberExport | None:
    """The export whose link carries ``token`` (found by its digest), whatever its status; else None."""
    if not token or len(token) > 200:
        return None
    return session.scalar(select(MemberExport).where(MemberExport.token_hash == digest(token)))


def is_due(export: MemberExport, now: datetime) -> bool:
    """A ready export whose day is over."""
    return export.status == "ready" and export.expires_at is not None and as_utc(export.expires_at) <= now


def take_download(session: Session, export: MemberExport) -> bool:
    """Mark ``export`` downloaded if it is still ready, unexpired and its link unchanged: one UPDATE, so that of two
    downloads at once one only gets the file. Tell whether this one did."""
    now = utc_now()
    return session.execute(
        update(MemberExport)
        .where(MemberExport.id == export.id, MemberExport.status == "ready", MemberExport.expires_at > now,
               MemberExport.token_hash == export.token_hash)
        .values(status="downloaded", downloaded_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount == 1  # fmt: skip


def expire_due(session: Session) -> list[str]:
    """Mark every ready export whose day is over expired, and every queued one whose run ended without it (its
    worker lost, its attempts used up) failed; give the paths (in the workspace) of the exports still queued or ready,
    whose files are to be kept (every other file under exports/ may go)."""
    now = utc_now()
    for export in session.scalars(select(MemberExport).where(MemberExport.status == "ready",
                                                             MemberExport.expires_at <= now)):  # fmt: skip
        export.status = "expired"
    ended = select(MemberExport, QueuedRun.state).join(QueuedRun, QueuedRun.id == MemberExport.queued_run_id).where(
        MemberExport.status == "queued", QueuedRun.state.not_in(("queued", "running")))  # fmt: skip
    for export, state in session.execute(ended).all():
        export.status, export.error = "failed", f"its run ended ({state}) before the export was written"
    session.flush()
    return list(session.scalars(select(MemberExport.path).where(MemberExport.status.in_(OPEN_STATUSES))))
