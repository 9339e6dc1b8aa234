"""The audit trail: every recorded decision and change of state, with who made it and when.

Rows changed through a state session are recorded by ``state.change_listener.record_changes``; actions add
events of their own that say why (``record_event``: a quota override, an offer change). Both are
links of the same hash chain (``state.event_chain``); who acts is ``state.actors``'.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from orchestrator.state.event_chain import append_events
from orchestrator.state.models import Event

# subjects ``PREFIX/...`` that are not an instance's address
NOT_ASSOCIATIONS = ("request/", "server/", "admin/", "application/", "run/", "queued-run/")


def record_event(
    session: Session, *, kind: str, subject: str, detail: dict, actor: str | None = None, association: str | None = None
) -> None:
    """Append an event to the trail (committed with ``session``). ``association``: the slug of the association
    it concerns; by default the first part of an instance's address (``amap`` of ``amap/agenda``)."""
    if association is None and "/" in subject and not subject.startswith(NOT_ASSOCIATIONS):
        association = subject.split("/")[0]
    append_events(
        session, [{"kind": kind, "subject": subject, "association": association, "detail": detail, "actor": actor}]
    )


def list_events(
    session: Session, *, subject: str | None = None, kind: str | None = None, association: str | None = None,
    actor: str | None = None, since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
) -> list[Event]:  # fmt: skip
    """Give events in the chain's order (oldest first), filtered: ``kind`` may end with ``*`` (e.g. ``instances.*``),
    ``actor`` matches a part of the actor's name; ``limit`` keeps the newest."""
    query = select(Event).order_by(Event.seq.desc() if limit else Event.seq)
    if subject is not None:
        query = query.where(Event.subject == subject)
    if kind is not None:
        query = query.where(Event.kind.startswith(kind[:-1]) if kind.endswith("*") else Event.kind == kind)
    if association is not None:
        query = query.where(or_(Event.association == association, Event.subject == association))
    if actor is not None:
        query = query.where(Event.actor.contains(actor, autoescape=True))
    if since is not None:
        query = query.where(Event.at >= since)
    if until is not None:
        query = query.where(Event.at <= until)
    if limit:
        return list(reversed(list(session.scalars(query.limit(limit)))))
    return list(session.scalars(query))


def event_as_dict(event: Event) -> dict:
    return {"seq": event.seq, "at": event.at.isoformat(timespec="seconds"), "actor": event.actor, "kind": event.kind,
            "subject": event.subject, "association": event.association, "detail": event.detail, "digest": event.digest}  # fmt: skip
