"""``ruche instance create``: validate a request, place it, record it (or only explain, with --dry-run)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened, parse_key_values
from orchestrator.catalog import resolve_parameters
from orchestrator.operations.instances import plan_instance


def create_instance(
    workspace_path: Path | None,
    *,
    association: str,
    service: str,
    name: str | None,
    size: str,
    parameters: tuple[str, ...],
    server: str | None,
    labels: dict[str, str] | None = None,
    over_quota: bool = False,
    check_quota: bool = True,
    dry_run: bool = False,
    version: str | None = None,
) -> dict:
    """Validate, place and (unless ``dry_run``) record a new instance in state ``planned``.

    The instance gets its domain, a loopback port on its server and its secrets (random,
    stored vault-encrypted); ``ruche apply`` deploys it.

    The association's offer bounds its instances (count, memory, disk); beyond it the request is
    refused with QuotaExceeded, unless ``over_quota``: then the override is recorded in the
    audit trail (event ``quota.override``). ``version``: one of the entry's versions (default: the
    one new instances get), e.g. to reproduce an association's older setup. ``check_quota=False`` is for ruche's own short-lived
    instances (backup verification), which no offer counts.

    Gives ``{"instance": {...}, "placement": [{"server", "eligible", "reason"}...], "quota": {...}, "dry_run": bool}``.
    Raises InvalidInput, NotFound, QuotaExceeded or Conflict (no room, name taken, images only the lab's registry
    serves and no lab server: see orchestrator.images) with the state unchanged.
    """
    with opened(workspace_path) as (workspace, store):
        definition = workspace.catalog.get(service)
        values = resolve_parameters(
            definition, parse_key_values(parameters, option="--param", example="admin_email=contact@asso.fr")
        )
        with store.session() as session:
            return plan_instance(
                workspace, session, definition, association=association, name=name, size=size, values=values,
                server=server, labels=labels, over_quota=over_quota, check_quota=check_quota, dry_run=dry_run,
                version=version,
            )  # fmt: skip
