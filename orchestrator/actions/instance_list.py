"""``ruche instance list|show``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import NotFound
from orchestrator.state.instances import get_instance, instance_as_dict, instance_views


def instances(workspace_path: Path | None, association: str | None = None) -> list[dict]:
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return instance_views(session, association=association)


def instance(workspace_path: Path | None, address: str) -> dict:
    """Give the instance at ASSOCIATION/NAME; raises InvalidInput or NotFound."""
    with opened(workspace_path) as (_workspace, store), store.session() as session:
        return instance_as_dict(get_instance(session, address))


def instance_secrets(workspace_path: Path | None, address: str, names: tuple[str, ...] = ()) -> dict[str, str]:
    """Give the decrypted secrets of ASSOCIATION/NAME (all, or ``names``), e.g. to hand over an admin password.

    Raises NotFound for an unknown instance or secret name, MissingPrerequisite or ConfigError
    when the vault password is missing or wrong.
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        recorded = dict(get_instance(session, address).secrets)
        unknown = [n for n in names if n not in recorded]
        if unknown:
            raise NotFound(
                f"{address} has no secret {', '.join(unknown)} (it has: {', '.join(sorted(recorded)) or 'none'})"
            )
        vault = workspace.vault()
        return {name: vault.decrypt(recorded[name]) for name in sorted(names or recorded)}
