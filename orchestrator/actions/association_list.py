"""``ruche association list|show``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.state.associations import association_as_dict, get_association, list_associations
from orchestrator.state.instances import instance_as_dict, list_instances


def associations(workspace_path: Path | None) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return [association_as_dict(a) for a in list_associations(session)]


def association(workspace_path: Path | None, slug: str) -> dict:
    """Give association ``slug`` with its instances; raises NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        entry = association_as_dict(get_association(session, slug))
        entry["instances"] = [instance_as_dict(i) for i in list_instances(session, association=slug)]
        return entry
