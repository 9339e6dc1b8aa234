"""``ruche events``: the audit trail (quota overrides, offer changes, ...)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.events import event_as_dict, list_events


def events(workspace_path: Path | None, *, subject: str | None = None, kind: str | None = None) -> list[dict]:
    """Give recorded events, newest first, optionally only about ``subject`` or of ``kind``."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [event_as_dict(e) for e in reversed(list_events(session, subject=subject, kind=kind))]
