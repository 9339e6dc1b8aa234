"""``ruche inventory export``: write inventories/<environment>/ from the state."""

from __future__ import annotations

import hashlib
import json
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
from orchestrator.inventory import InstanceEntry, ServerEntry, Unsafe, host_vars_path, render_inventory
from orchestrator.backups import backup_variables
from orchestrator.quotas import find_offer, service_limits
from orchestrator.registries import render_mirror_drop_in
from orchestrator.runner import inventory_lock
from orchestrator.state.audit import acting_actor
from orchestrator.state.instances import ACTIVE_STATES, deployment_record, list_instances
from orchestrator.state.render_keys import server_render_keys
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
    ``history`` (what writes it), a change is committed to the inventories' history. A server whose
    inputs did not change since the last write, and whose file is still the one written, is not
    rendered again (see state/render_keys.py; the cache of keys lives in the workspace's cache/).
    """
    target = workspace.inventories_dir / workspace.config.environment
    cache_file = workspace.root / "cache" / f"inventory-{workspace.config.environment}.json"
    with inventory_lock(target):
        files, keys = _render(workspace, session, target, read_cache(cache_file))
        changed = _replace_directory(target, files)
        write_cache(cache_file, {name: {"key": key, "sha256": _digest(files[host_vars_path(name)])} for name, key in keys.items()})
        recorded = record_history(workspace, what=history) if history and changed else None
    return {"directory": str(target), "files": sorted(files), "changed": changed,
            "commit": recorded["commit"] if recorded else None}  # fmt: skip


def inventory_files(workspace: Workspace, session: Session) -> dict[str, str]:
    """The inventory's files as the state gives them now (every server rendered), by path inside
    inventories/ENVIRONMENT/."""
    return _render(workspace, session, None, {})[0]


def _render(workspace: Workspace, session: Session, target: Path | None, cache: dict) -> tuple[dict[str, str], dict[str, str]]:
    """Render the inventory, reusing from ``target`` the host_vars of servers whose key ``cache`` holds
    and whose file there has the digest it records; give the files and every server's key."""
    keys = server_render_keys(session, ACTIVE_STATES, render_context(workspace))
    reused = {}
    for name, key in keys.items():
        known = cache.get(name) or {}
        path = target / host_vars_path(name) if target is not None else None
        if known.get("key") == key and path is not None and path.is_file():
            text = path.read_text()
            if _digest(text) == known.get("sha256"):
                reused[name] = text
    servers = [
        ServerEntry(s.name, s.address, s.ssh_user, s.ssh_port, s.role, s.draining, s.ssh_key_path, s.ssh_known_hosts_path)
        for s in list_servers(session)
    ]
    catalog = load_catalog(workspace.catalog_dir)
    instances = [
        InstanceEntry(i.association.slug, i.name, i.server.name, deployment_variables(i, catalog, workspace.config))
        for i in list_instances(session, servers=[s.name for s in servers if s.name not in reused])
        if i.state in ACTIVE_STATES
    ]
    return render_inventory(servers, instances, fleet_variables(workspace.config), reused=reused), keys


def render_context(workspace: Workspace) -> str:
    """What every server's file also depends on: ruche's code, the catalogue, the configuration."""
    hashed = hashlib.sha256()
    for root in (Path(__file__).resolve().parent.parent, workspace.catalog_dir):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".yml")):
            hashed.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    hashed.update(workspace.config.model_dump_json().encode())
    return hashed.hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(json.dumps(cache, sort_keys=True))
    os.replace(staging, path)


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
