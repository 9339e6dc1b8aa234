"""``ruche events``: the audit trail (every change of state, and the decisions that say why), its chain."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput
from orchestrator.state.event_chain import verify_chain
from orchestrator.state.events import event_as_dict, list_events
from orchestrator.state.models import EventChain


def parse_time(value: str | None, option: str) -> datetime | None:
    """``2026-11-27`` or ``2026-11-27T10:00`` (UTC unless it says otherwise) as an aware datetime."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{option} {value!r} is not a date or time", hint="write it as 2026-11-27 or 2026-11-27T10:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def events(
    workspace_path: Path | None, *, subject: str | None = None, kind: str | None = None, association: str | None = None,
    instance: str | None = None, actor: str | None = None, since: str | None = None, until: str | None = None,
    limit: int | None = None,
) -> list[dict]:  # fmt: skip
    """Give recorded events, newest first, filtered (see state.events.list_events)."""
    if instance is not None:
        if subject is not None and subject != instance:
            raise InvalidInput("--instance and --subject name different things", hint="give one of them")
        subject = instance
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        found = list_events(session, subject=subject, kind=kind, association=association, actor=actor,
                            since=parse_time(since, "--since"), until=parse_time(until, "--until"), limit=limit)  # fmt: skip
        return [event_as_dict(e) for e in reversed(found)]


HEAD_PATTERN = re.compile(r"^(\d+):([0-9a-f]{64})$")


def read_head(value: str) -> tuple[int, str]:
    """A head given as ``LENGTH:DIGEST`` or as the path of a file `events head --json` wrote."""
    text = value
    path = Path(value)
    if not HEAD_PATTERN.match(value) and path.is_file():
        try:
            saved = json.loads(path.read_text())
            text = f"{saved['length']}:{saved['digest']}"
        except (ValueError, KeyError, TypeError):
            raise InvalidInput(f"{value}: not a head written by `ruche events head --json`") from None
    matched = HEAD_PATTERN.match(text)
    if matched is None:
        raise InvalidInput(
            f"--head {value!r} is neither LENGTH:DIGEST nor a file written by `ruche events head --json`"
        )
    return int(matched.group(1)), matched.group(2)


def head(workspace_path: Path | None) -> dict:
    """The chain's head: how many events, the last one's digest (keep it outside ruche to check later)."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        chain = session.get(EventChain, 1)
        return {"length": chain.length, "digest": chain.head}


def verify(workspace_path: Path | None, *, expected_head: str | None = None) -> dict:
    """Recompute the chain: ``ok``, its length and head, and the first event found edited, deleted or inserted."""
    wanted = read_head(expected_head) if expected_head is not None else None
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return verify_chain(session, expected_head=wanted).as_dict()
