"""``ruche instance list|show``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.instances import get_instance, instance_as_dict, list_instances


def instances(workspace_path: Path | None, association: str | None = None) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [instance_as_dict(i) for i in list_instances(session, association=association)]


def instance(workspace_path: Path | None, address: str) -> dict:
    """Give the instance at ASSOCIATION/NAME; raises InvalidInput or NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return instance_as_dict(get_instance(session, address))
