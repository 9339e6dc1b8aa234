"""``ruche domain add ASSOCIATION/NAME DOMAIN``: claim an association's own domain for one of its instances."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations import own_domains


def add_domain(workspace_path: Path | None, address: str, domain: str, *, primary: bool = False) -> dict:
    """Record ``domain`` as pending for ``address`` (or give the claim already made); give ``{"domain", "publish",
    "added"}``: the records the association publishes before `ruche domain verify` (operations/own_domains.py)."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return own_domains.add_claim(workspace, session, address, domain, primary=primary)
