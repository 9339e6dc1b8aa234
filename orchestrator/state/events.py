"""The audit trail: every recorded decision, with who made it and when."""

from __future__ import annotations

import getpass
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.state.models import Event


def current_actor() -> str:
    """Give who is acting from this shell: ``$RUCHE_ACTOR`` if set, else the login name."""
    named = os.environ.get("RUCHE_ACTOR", "").strip()
    if named:
        return named[:120]
    try:
        return getpass.getuser()[:120]
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def record_event(session: Session, *, kind: str, subject: str, detail: dict, actor: str | None = None) -> Event:
    """Add an event to the trail (committed with ``session``) and give it."""
    event = Event(actor=actor or current_actor(), kind=kind, subject=subject, detail=detail)
    session.add(event)
    return event


def list_events(session: Session, *, subject: str | None = None, kind: str | None = None) -> list[Event]:
    """Give events, oldest first, optionally only those about ``subject`` or of ``kind``."""
    query = select(Event).order_by(Event.at, Event.id)
    if subject is not None:
        query = query.where(Event.subject == subject)
    if kind is not None:
        query = query.where(Event.kind == kind)
    return list(session.scalars(query))


def event_as_dict(event: Event) -> dict:
    return {"at": event.at.isoformat(timespec="seconds"), "actor": event.actor, "kind": event.kind,
            "subject": event.subject, "detail": event.detail}  # fmt: skip
