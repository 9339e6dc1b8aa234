"""``ruche inventory export``: write inventories/<environment>/ from the state."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from orchestrator import inventory_history
from orchestrator.actions.common import opened
from orchestrator.catalog import Catalog, load_catalog
from orchestrator.config import WorkspaceConfig
from orchestrator.deployment import MailRelay, instance_variables
from orchestrator.inventory import InstanceEntry, ServerEntry, Unsafe, render_inventory
from orchestrator.backups import backup_variables
from orchestrator.quotas import find_offer, service_limits
from orchestrator.registries import render_mirror_drop_in
from orchestrator.runner import inventory_lock
from orchestrator.state.audit import acting_actor
from orchestrator.state.instances import ACTIVE_STATES, deployment_record, list_instances
from orchestrator.state.models import Instance
from orchestrator.state.servers import list_servers
from orchestrator.workspace import Workspace


def export_inventory(workspace_path: Path | None) -> dict:
    """Write the inventory of the whole fleet and give ``{"directory", "files", "changed", "commit"}``
    (the commit of the inventories' history when something changed)."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return write_inventory(workspace, session, history="inventory export")


def write_inventory(workspace: Workspace, session: Session, *, history: str | None = None) -> dict:
    """Write ``inventories/ENVIRONMENT/`` from the state in ``session``; give what ``export_inventory`` gives.

    The directory is replaced as a whole (written beside it, then swapped), so a reader never
    sees half an inventory; unchanged state gives byte-identical files (and touches none). With
    ``history`` (what writes it), a change is committed to the inventories' history.
    """
    target = workspace.inventories_dir / workspace.config.environment
    files = inventory_files(workspace, session)
    with inventory_lock(target):
        changed = _replace_directory(target, files)
        recorded = record_history(workspace, what=history) if history and changed else None
    return {"directory": str(target), "files": sorted(files), "changed": changed,
            "commit": recorded["commit"] if recorded else None}  # fmt: skip


def inventory_files(workspace: Workspace, session: Session) -> dict[str, str]:
    """The inventory's files as the state gives them now, by path inside inventories/ENVIRONMENT/."""
    servers = [
        ServerEntry(s.name, s.address, s.ssh_user, s.ssh_port, s.role, s.draining, s.ssh_key_path, s.ssh_known_hosts_path)
        for s in list_servers(session)
    ]
    catalog = load_catalog(workspace.catalog_dir)
    instances = [
        InstanceEntry(i.association.slug, i.name, i.server.name, deployment_variables(i, catalog, workspace.config))
        for i in list_instances(session)
        if i.state in ACTIVE_STATES
    ]
    return render_inventory(servers, instances, fleet_variables(workspace.config))


def fleet_variables(config: WorkspaceConfig) -> dict:
    """The collective's settings every server and instance gets (``group_vars/all.yml``; no secret)."""
    return {
        "ruche_server_registry_mirror_drop_in": Unsafe(render_mirror_drop_in(config.registry)),
        "ruche_server_tls": config.proxy_tls,
        "ruche_instance_resource_limits": config.resource_limits,
        "ruche_base_domain": config.base_domain,
        **backup_variables(config.backup),
    }


def record_history(workspace: Workspace, *, what: str, run_id: str | None = None, always: bool = False) -> dict | None:
    """Commit the inventories to their history (call it holding the inventory's lock); see inventory_history."""
    return inventory_history.record(workspace.inventories_dir, workspace.config.environment, what=what,
                                    actor=acting_actor(), run_id=run_id, always=always)  # fmt: skip


def deployment_variables(instance: Instance, catalog: Catalog, config: WorkspaceConfig) -> dict:
    """Give the role variables of ``instance`` from the current catalogue and configuration (offers, backups).

    Raises NotFound for a service gone from the catalogue, ConfigError for an offer gone from ruche.toml.
    """
    service = catalog.get(instance.service_id)
    offer_name = instance.association.offer
    offer = find_offer(config.offers, offer_name)
    limits = service_limits(service, offer, offer_name)
    retention = offer.backup_retention.model_dump() if offer is not None else None
    record = deployment_record(instance, limits, retention, with_backups=config.backup.repository is not None,
                               mail=mail_relay(config))  # fmt: skip
    return instance_variables(record, service)


def mail_relay(config: WorkspaceConfig) -> MailRelay | None:
    """Give the collective's mail relay as deployments use it (None when ruche.toml has no [mail])."""
    mail = config.mail
    if mail is None:
        return None
    return MailRelay(host=mail.host, port=mail.port, security=mail.security, sender_domain=mail.sender_domain,
                     username=mail.username, password=mail.password)  # fmt: skip


def _replace_directory(target: Path, files: dict[str, str]) -> bool:
    if inventory_history.read_tree(target) == files:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    for relative, text in files.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chmod(staging, 0o755)
    if target.exists():
        retired = target.with_name(f".{target.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired)
    else:
        staging.rename(target)
    return True
