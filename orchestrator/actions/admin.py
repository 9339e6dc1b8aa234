"""``ruche admin add|list|remove``: the web app's admins."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.access import add_admin, list_admins, remove_admin
from orchestrator.state.events import record_event


def add(workspace_path: Path | None, name: str, password: str) -> dict:
    """Register admin ``name`` (password hashed with Argon2id); raises InvalidInput or Conflict."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        admin = add_admin(session, name, password)
        record_event(session, kind="admin.added", subject=f"admin/{name}", detail={})
        return {"name": admin.name, "created_at": admin.created_at.isoformat(timespec="seconds")}


def admins(workspace_path: Path | None) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [
            {"name": a.name, "created_at": a.created_at.isoformat(timespec="seconds")} for a in list_admins(session)
        ]


def remove(workspace_path: Path | None, name: str) -> None:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        remove_admin(session, name)
        record_event(session, kind="admin.removed", subject=f"admin/{name}", detail={})
