"""``ruche domain list [--association A] [--check]``: every own domain, its state and its certificate."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations import own_domains
from orchestrator.state.associations import get_association
from orchestrator.state.domains import domain_as_dict, domains_of


def list_domains(workspace_path: Path | None, *, association: str | None = None, check: bool = False) -> list[dict]:
    """Give each domain (of ``association`` only, if given) as `domain_as_dict`; with ``check``, a TLS handshake on
    each attached one first (its certificate's issuer and expiry as served now)."""
    with opened(workspace_path) as (workspace, store):
        with store.session() as session:
            owner = get_association(session, association).id if association is not None else None
            ids = [d.id for d in domains_of(session, association_id=owner)]
        if check:
            own_domains.check_served(workspace, store, ids)
        with store.session() as session:
            return [domain_as_dict(d) for d in domains_of(session, association_id=owner)]
