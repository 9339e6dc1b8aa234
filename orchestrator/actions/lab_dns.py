"""``ruche lab dns set|remove|list``: the lab DNS's records, for own-domain tests, docs and the demo."""

from __future__ import annotations

from pathlib import Path

from orchestrator.lab import dns
from orchestrator.lab.host import require_root
from orchestrator.lab.layout import LabLayout
from orchestrator.workspace import open_workspace


def _layout(workspace_path: Path | None) -> LabLayout:
    return LabLayout(open_workspace(workspace_path).lab_dir)


def set_record(workspace_path: Path | None, name: str, rtype: str, value: str, *, append: bool = False) -> dict:
    """Give ``name`` a record of type ``rtype`` with ``value`` (see :func:`orchestrator.lab.dns.set_record`); give
    the record as stored. Raises InvalidInput (bad name, type or value), Conflict (no lab DNS running, a CNAME beside
    other records), MissingPrerequisite (not root: the lab DNS is restarted)."""
    require_root()
    return dns.set_record(_layout(workspace_path), name, rtype, value, append=append)


def remove_records(workspace_path: Path | None, name: str, rtype: str | None = None) -> dict:
    """Remove ``name``'s records (of type ``rtype`` only, when given); give ``{"name", "type", "removed"}``."""
    require_root()
    name = dns.normalize_name(name)
    removed = dns.remove_records(_layout(workspace_path), name, rtype)
    return {"name": name, "type": rtype.upper() if rtype else None, "removed": removed}


def list_records(workspace_path: Path | None) -> list[dict]:
    """Give the lab DNS's records, ``[{"name", "type", "value"}]`` (none when the lab is down)."""
    return dns.records(_layout(workspace_path))
