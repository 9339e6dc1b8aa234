"""The inventories: rendered from the state, written to inventories/<environment>/ (whole, atomically), their render
cache and their history; the deployment variables of one instance (what the inventory, the fingerprints and the audit
read)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator import inventory_history
from orchestrator.backups import backup_variables
from orchestrator.catalog import Catalog
from orchestrator.config import LETS_ENCRYPT, LETS_ENCRYPT_STAGING, WorkspaceConfig
from orchestrator.deployment import MailRelay, instance_variables
from orchestrator.errors import ConfigError
from orchestrator.images import deployed_images, lab_only, lab_only_refusal
from orchestrator.inventory import (
    InstanceEntry,
    RenderedInstance,
    Rendering,
    ServerEntry,
    Unsafe,
    host_vars_path,
    render_fleet,
    split_host_vars,
)
from orchestrator.quotas import find_offer, service_limits
from orchestrator.registries import render_mirror_drop_in
from orchestrator.runner import inventory_lock
from orchestrator.state import render_keys
from orchestrator.state.actors import acting_actor
from orchestrator.state.instances import ACTIVE_STATES, deployment_record, list_instances
from orchestrator.state.models import Association, Instance, Server
from orchestrator.state.servers import list_servers
from orchestrator.workspace import Workspace


def write_inventory(workspace: Workspace, session: Session, *, history: str | None = None) -> dict:
    """Write ``inventories/ENVIRONMENT/`` from the state in ``session``; give ``{"directory", "files", "changed", "commit"}``
    (the commit of the inventories' history when something changed).

    The directory is replaced as a whole (written beside it, then swapped), so a reader never
    sees half an inventory; unchanged state gives byte-identical files (and touches none). With
    ``history`` (what writes it), a change is committed to the inventories' history. What did not
    change since the last write is not rendered again (see ``_render``). Raises Conflict, writing nothing,
    when an instance would run an image only the lab's registry serves on another server (``refuse_lab_only``).
    """
    refuse_lab_only(workspace, session)
    target = workspace.inventories_dir / workspace.config.environment
    cache_file = workspace.root / "cache" / f"inventory-{workspace.config.environment}.json"
    with inventory_lock(target):
        cache = read_cache(cache_file)
        rendering, keys, reused = _render(workspace, session, target, cache)
        changed = _replace_directory(target, rendering.files, same={host_vars_path(name) for name in reused})
        write_cache(cache_file, _cache_entries(rendering, keys, cache))
        recorded = record_history(workspace, what=history) if history and changed else None
    return {"directory": str(target), "files": sorted(rendering.files), "changed": changed,
            "commit": recorded["commit"] if recorded else None}  # fmt: skip


def inventory_files(workspace: Workspace, session: Session) -> dict[str, str]:
    """The inventory's files as the state gives them now (every server rendered), by path inside
    inventories/ENVIRONMENT/."""
    return _render(workspace, session, None, {})[0].files


def _render(
    workspace: Workspace, session: Session, target: Path | None, cache: dict
) -> tuple[Rendering, dict, set[str]]:
    """Render the inventory, doing again only what changed since the last write (``cache``, kept in the
    workspace's cache/, and the files in ``target``): a server whose key (state/render_keys.py) and
    file are the ones recorded is reused as it is; in a server's file that changed, an instance whose
    key is the one recorded keeps its text (cut out of the file, see inventory.split_host_vars). At
    30,000 instances rendering everything takes minutes, one changed instance a fraction of a second.
    Give the rendering, the keys (server and instance) and the servers reused whole."""
    context = render_context(workspace)
    instance_keys = render_keys.instance_keys(session, ACTIVE_STATES, context)
    server_keys = render_keys.server_render_keys(session, context, instance_keys)
    current = {k.id: k.key for k in instance_keys}
    reused: dict[str, str] = {}
    kept: dict[str, RenderedInstance] = {}
    for name, key in server_keys.items():
        text = _recorded_text(target, name, cache.get(name) or {})
        if text is None:
            continue
        if cache[name].get("key") == key:
            reused[name] = text
            continue
        recorded = cache[name].get("keys") or {}
        kept.update(
            {
                r.id: r
                for r in _recorded_instances(text, cache[name])
                if r.id in current and current[r.id] == recorded.get(r.id)
            }
        )
    rows = list_servers(session)
    servers = [
        ServerEntry(
            s.name, s.address, s.ssh_user, s.ssh_port, s.role, s.draining, s.ssh_key_path, s.ssh_known_hosts_path
        )
        for s in rows
    ]
    server_names = {s.id: s.name for s in rows}
    pending = [k for k in instance_keys if server_names[k.server_row] not in reused]
    instances = [InstanceEntry(k.association, k.name, server_names[k.server_row], rendered=kept[k.id])
                 for k in pending if k.id in kept]  # fmt: skip
    to_render = {k.row for k in pending if k.id not in kept}
    if to_render:
        catalog = workspace.catalog
        instances += [
            InstanceEntry(i.association.slug, i.name, i.server.name, deployment_variables(i, catalog, workspace.config))
            for i in _load_instances(
                session, to_render, {server_names[k.server_row] for k in pending if k.row in to_render}
            )
        ]
    rendering = render_fleet(servers, instances, fleet_variables(workspace.config), reused=reused)
    return rendering, {"servers": server_keys, "instances": current}, set(reused)


def _load_instances(session: Session, rows: set[int], servers: set[str]) -> list[Instance]:
    """The instances of ``rows`` (on ``servers``), with their association and server."""
    if len(rows) <= 500:
        return list_instances(session, rows=sorted(rows))
    return [i for i in list_instances(session, servers=sorted(servers)) if i.id in rows]


def _recorded_text(target: Path | None, name: str, recorded: dict) -> str | None:
    """The server's file in ``target`` when it is the one the last write recorded (its digest), else None."""
    path = target / host_vars_path(name) if target is not None else None
    if not recorded or path is None or not path.is_file():
        return None
    text = path.read_text()
    return text if _digest(text) == recorded.get("sha256") else None


def _recorded_instances(text: str, recorded: dict) -> list[RenderedInstance]:
    """The instances' texts in a server's file as recorded at its last write (none when it cannot be cut
    as recorded)."""
    parts = split_host_vars(text)
    items, secrets = recorded.get("items"), recorded.get("secrets")
    if parts is None or items is None or secrets is None or "keys" not in recorded:
        return []
    if len(parts.items) != len(items) or len(parts.secrets) != len(secrets):
        return []
    entries = dict(zip(secrets, parts.secrets, strict=False))
    return [
        RenderedInstance(identifier, item, entries.get(identifier, ""))
        for identifier, item in zip(items, parts.items, strict=False)
    ]


def _cache_entries(rendering: Rendering, keys: dict, previous: dict) -> dict:
    """What the next write needs to know of this one, by server: its key, its file's digest, and for a
    server rendered now its instances' ids and keys in the order of the file (``previous``: the cache
    this write started from, whose entries hold for the servers reused)."""
    entries = {}
    for name, key in keys["servers"].items():
        path = host_vars_path(name)
        if name in rendering.layout:
            layout = rendering.layout[name]
            entries[name] = {"key": key, "sha256": _digest(rendering.files[path]), **layout,
                             "keys": {i: keys["instances"][i] for i in layout["items"]}}  # fmt: skip
        elif name in previous and previous[name].get("key") == key:
            entries[name] = previous[name]
        else:
            entries[name] = {"key": key, "sha256": _digest(rendering.files[path])}
    return entries


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
        "ruche_server_registry_mirror_drop_in": Unsafe(render_mirror_drop_in(config.registry, config.images)),
        "ruche_server_tls": config.proxy_tls,
        "ruche_instance_resource_limits": config.resource_limits,
        "ruche_base_domain": config.base_domain,
        "ruche_server_firewall_extra_rules": [
            {"port": r.port, "proto": r.proto, "from": r.from_ or ""} for r in config.firewall.extra_rules
        ],
        "ruche_server_acme_email": Unsafe(config.acme.email or ""),
        "ruche_server_acme_ca": LETS_ENCRYPT_STAGING if config.acme.staging else "",
        # associations' own domains: their certificates' ACME directory, and its HTTPS root when private (a PEM)
        "ruche_own_domain_acme_ca_root_pem": Unsafe(acme_ca_root_pem(config)),
        **backup_variables(config.backup),
    }


def own_domain_acme_directory(config: WorkspaceConfig) -> str:
    """The ACME directory of own domains' certificates: [domains] acme_directory, but Let's Encrypt's staging
    directory instead of its production one while [acme] staging is on (a collective's first tries)."""
    if config.acme.staging and config.domains.acme_directory == LETS_ENCRYPT:
        return LETS_ENCRYPT_STAGING
    return config.domains.acme_directory


OWN_DOMAIN_CA_ROOT_PATH = "/etc/caddy/ruche-acme-root.pem"  # where ruche_server writes [domains] acme_ca_root


def acme_ca_root_pem(config: WorkspaceConfig) -> str:
    """The PEM text of ``[domains] acme_ca_root`` ("" when unset); raises ConfigError when it cannot be read."""
    path = config.domains.acme_ca_root
    if not path:
        return ""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"[domains] acme_ca_root: cannot read {path}: {error}", hint="name a readable PEM file, or unset it"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"[domains] acme_ca_root: {path} holds no PEM certificate")
    return text


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
    variables = instance_variables(record, service, image_registry=config.images.registry)
    if record.own_domains:  # their certificates' ACME directory, in its fingerprint: a change re-renders its site
        variables["own_domain_tls"] = {
            "ca": Unsafe(own_domain_acme_directory(config)),
            "ca_root": OWN_DOMAIN_CA_ROOT_PATH if config.domains.acme_ca_root else "",
        }
    return variables


def refuse_lab_only(workspace: Workspace, session: Session, *, server: str | None = None) -> None:
    """Raise Conflict naming the instances (present or suspended; of ``server`` only, if given) that would run
    an image only the lab's registry serves (``lab.ruche.invalid/...``, [images] registry unset) on a server
    that is not the lab's: no inventory holds them, so they never reach a server that cannot pull them.
    One query of the (service, version) pairs on such servers, so it costs next to nothing at fleet scale."""
    on_other_servers = (
        select(Instance.service_id, Instance.service_version)
        .join(Server, Instance.server)
        .where(Server.origin != "lab", Instance.state.in_(ACTIVE_STATES),
               Instance.desired_state.in_(("present", "suspended")))
    )  # fmt: skip
    if server is not None:
        on_other_servers = on_other_servers.where(Server.name == server)
    pairs = session.execute(on_other_servers.distinct()).all()
    if not pairs:
        return
    catalog = workspace.catalog
    registry = workspace.config.images.registry
    refused: dict[tuple[str, str], list[str]] = {}
    for service_id, version in pairs:
        service = catalog.services.get(service_id)
        if service is not None and any(v.version == version for v in service.versions):
            images = lab_only(deployed_images(service, version, registry))
            if images:
                refused[(service_id, version)] = images
    if not refused:
        return
    offending = [
        (f"{slug}/{name}", server_name, service_id, version)
        for slug, name, server_name, service_id, version in session.execute(
            on_other_servers.with_only_columns(Association.slug, Instance.name, Server.name, Instance.service_id,
                                               Instance.service_version)
            .join(Association, Instance.association)
            .where(Instance.service_id.in_({service_id for service_id, _ in refused}))
            .order_by(Association.slug, Instance.name)
        )
        if (service_id, version) in refused
    ]  # fmt: skip
    address, server_name, service_id, version = offending[0]
    raise lab_only_refusal(f"{address} ({service_id} {version})", server_name, refused[(service_id, version)],
                           others=[o[0] for o in offending[1:]], or_else=f"delete it: `ruche instance delete {address}`")  # fmt: skip


def mail_relay(config: WorkspaceConfig) -> MailRelay | None:
    """Give the collective's mail relay as deployments use it (None when ruche.toml has no [mail])."""
    mail = config.mail
    if mail is None:
        return None
    return MailRelay(host=mail.host, port=mail.port, security=mail.security, sender_domain=mail.sender_domain,
                     username=mail.username, password=mail.password)  # fmt: skip


def _replace_directory(target: Path, files: dict[str, str], *, same: set[str] = frozenset()) -> bool:
    """Make ``target`` hold exactly ``files``; give whether anything changed. ``same``: files known to be
    on disk as given (read from there). The new directory is written beside it and swapped in, with
    unchanged files linked (not copied), so they keep their inode and time (Git sees them unchanged)."""
    on_disk = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} if target.is_dir() else set()
    unchanged = {p for p in files if p in on_disk and (p in same or (target / p).read_text() == files[p])}
    if on_disk == set(files) and unchanged == on_disk:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    for relative, text in files.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative in unchanged:
            os.link(target / relative, path)
        else:
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
