"""The server rules of ``ruche audit``: each server compared with its inventory over SSH, read-only.

One command per server (``ruche-applied inspect``, installed by the ``ruche_server`` role) reports
what ruche applied to each instance and what drifted since, the containers, the Caddy sites, whether
the firewall table is loaded and the subordinate ID pool. Only digests are compared, never a file's
content. Rules:

- ``server.reachable``: the server answers over SSH and has ruche's tools (it was applied once);
- ``server.applied``: every instance the inventory lists for it runs what the inventory describes
  (the stamp of its last apply is that of the inventory's fingerprint and ruche's roles);
- ``server.drift``: no unit, env, site or backup file ruche wrote was changed, removed or added by
  hand, and units and backup timers are in the state ruche left them in; the same of the server's base (its
  tools, Caddyfile, mirror drop-in, firewall rules and units, backup units and key: "SERVER: base");
- ``server.image``: every container runs the image its unit names in the inventory;
- ``server.unknown``: no container, site or applied instance the inventory does not list;
- ``server.firewall``: the table ``inet ruche`` is loaded;
- ``server.id-pool``: the instances' subordinate ID pool is registered for ``ruche`` alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from orchestrator.catalog import Catalog
from orchestrator.errors import NotFound
from orchestrator.findings import Finding
from orchestrator.idranges import POOL_SIZE, POOL_START
from orchestrator.inventory import instance_fingerprint
from orchestrator.operations.inventories import deployment_variables, fleet_variables
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.runner import roles_digest
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.servers import list_servers
from orchestrator.workspace import Workspace

APPLIED_TOOL = "/usr/local/sbin/ruche-applied"
APPLIED_DIR = "/var/lib/ruche/applied"
APPLIED_BASE_DIR = "/var/lib/ruche/applied-server"  # the ruche_server role's manifest (ruche_server_applied_dir)
SITES_DIR = "/etc/caddy/sites"
DRIFT_EVIDENCE = {
    "file-changed": "{object} is not the file ruche wrote (sha256 {expected:.12} when applied, {found:.12} now)",
    "file-missing": "{object}, written by ruche, is gone",
    "file-appeared": "{object} exists where ruche removed it",
    "unit-state": "{object} is {found}, ruche left it {expected}",
    "unit-enabled": "{object} is {found}, ruche left it enabled (started at boot)",
}


@dataclass(frozen=True)
class Expected:
    """What the inventory says one instance is on its server."""

    identifier: str
    address: str
    stamp: str
    running: bool
    images: dict[str, str]  # container -> image


def stamp(listed_fingerprint: str, digest: str) -> str:
    """The stamp the role records after applying (see the ruche_instance role's install.yml)."""
    return hashlib.sha256((listed_fingerprint + digest).encode()).hexdigest()


def expected_instances(workspace: Workspace, session: Session, catalog: Catalog) -> dict[str, list[Expected]]:
    """Give, by server name, what the inventory lists on it (the instances' fingerprints as exported)."""
    fleet = fleet_variables(workspace.config)
    digest = roles_digest()
    by_server: dict[str, list[Expected]] = {}
    for instance in list_instances(session):
        if instance.state not in ACTIVE_STATES or instance.desired_state not in ("present", "suspended"):
            continue
        variables = deployment_variables(instance, catalog, workspace.config)
        containers = [variables["app"], *variables["sidecars"]] + (
            [variables["database"]] if variables["database"] else []
        )
        by_server.setdefault(instance.server.name, []).append(Expected(
            identifier=str(variables["identifier"]), address=instance.address,
            stamp=stamp(instance_fingerprint(variables, fleet), digest),
            running=instance.desired_state == "present",
            images={c["container"]: c["image"] for c in containers},
        ))  # fmt: skip
    return by_server


def inspect_server(target: SshTarget) -> dict:
    """Run ``ruche-applied inspect`` on ``target`` (read-only); give its report."""
    return json.loads(
        run_command(target, [APPLIED_TOOL, "inspect", APPLIED_DIR, SITES_DIR, APPLIED_BASE_DIR], timeout=120)
    )


def server_findings(workspace: Workspace, session: Session, catalog: Catalog, *, only: str | None = None,
                    parallel: int = 16) -> tuple[list[Finding], int]:  # fmt: skip
    """Compare every application server (or ``only``) with its inventory; give the findings and how many
    servers were inspected. Raises NotFound for an unknown ``only``."""
    servers = [s for s in list_servers(session) if s.role == "apps" and (only is None or s.name == only)]
    if only is not None and not servers:
        raise NotFound(f"no application server named {only!r} (see `ruche server list`)")
    expected = expected_instances(workspace, session, catalog)
    reports = for_each_server([SshTarget.of(s) for s in servers], inspect_server, parallel=parallel)
    findings: list[Finding] = []
    for server in servers:
        report = reports[server.name]
        if isinstance(report, Exception):
            findings.append(Finding("server.reachable", server.name, str(report),
                                    f"bring the server back or check its SSH access (`ruche server check {server.name}`); "
                                    f"a server never applied gets ruche's tools with `ruche apply --server {server.name}`"))  # fmt: skip
            continue
        findings += compare_server(server.name, expected.get(server.name, []), report)
    return findings, len(servers)


def _same_image(wanted: str, running: str) -> bool:
    def plain(name: str) -> str:
        return name.removeprefix("docker.io/").removeprefix("library/")

    return plain(wanted) == plain(running)


def compare_server(server: str, expected: list[Expected], report: dict) -> list[Finding]:
    """The findings of one server's ``ruche-applied inspect`` report against what its inventory lists."""
    findings: list[Finding] = []
    applied = report.get("instances", {})
    for instance in expected:
        found = applied.get(instance.identifier)
        apply_it = f"`ruche apply --instance {instance.address}`"
        if found is None or found.get("stamp") != instance.stamp:
            evidence = ("never applied on this server" if found is None else
                        f"runs another deployment than the inventory describes (applied {found.get('recorded')})")  # fmt: skip
            findings.append(Finding("server.applied", f"{server}: {instance.address}", evidence,
                                    f"{apply_it}; if it fails, `ruche runs show` tells why"))  # fmt: skip
        for drift in (found or {}).get("drift", []):
            evidence = DRIFT_EVIDENCE.get(drift["kind"], "{object}: {kind}").format(
                **{k: ("" if v is None else v) for k, v in drift.items()})  # fmt: skip
            findings.append(Finding("server.drift", f"{server}: {instance.address}", evidence,
                                    f"{apply_it} puts back what ruche wrote; find who changed it on the server"))  # fmt: skip
    known = {e.identifier for e in expected}
    for identifier in sorted(set(applied) - known):
        findings.append(Finding("server.unknown", f"{server}: instance {identifier}",
                                "applied on this server, but the inventory lists no such instance there",
                                "`ruche apply --server " + server + "` after recording it; or remove it from the server"))  # fmt: skip
    images = {container: image for e in expected for container, image in e.images.items()}
    for container in report.get("containers", []):
        name, image = container["name"], container["image"]
        if name not in images:
            findings.append(Finding("server.unknown", f"{server}: container {name}",
                                    f"a container no instance of the inventory runs ({image}, {container['state']})",
                                    f"find who started it; remove it with `podman rm --force {name}` on {server}"))  # fmt: skip
        elif not _same_image(images[name], image):
            findings.append(Finding("server.image", f"{server}: container {name}", f"runs {image}, the inventory says {images[name]}",
                                    "`ruche apply --server " + server + "` restarts it on the inventory's image"))  # fmt: skip
    sites = {f"{e.identifier}.caddy" for e in expected if e.running}
    for site in sorted(set(report.get("sites", [])) - sites):
        findings.append(Finding("server.unknown", f"{server}: site {SITES_DIR}/{site}", "a Caddy site no running instance of the inventory has",
                                f"remove it on {server} and reload Caddy, or `ruche apply` if it is a suspended instance's"))  # fmt: skip
    for drift in (report.get("base") or {}).get("drift", []):
        if drift["kind"] == "nft-table":
            continue  # server.firewall below says it
        evidence = DRIFT_EVIDENCE.get(drift["kind"], "{object}: {kind}").format(
            **{k: ("" if v is None else v) for k, v in drift.items()})  # fmt: skip
        findings.append(Finding("server.drift", f"{server}: base", evidence,
                                f"`ruche apply --server {server}` puts back what ruche wrote; find who changed it"))  # fmt: skip
    if not report.get("firewall", {}).get("loaded"):
        findings.append(Finding("server.firewall", server, "the nftables table inet ruche is not loaded: the server accepts any inbound connection",
                                f"`ruche apply --server {server}` loads it again (checked by a fresh SSH connection)"))  # fmt: skip
    pool = f"ruche:{POOL_START}:{POOL_SIZE}"
    for name in ("subuid", "subgid"):
        entries = report.get("subid", {}).get(name, [])
        if entries != [pool]:
            findings.append(Finding("server.id-pool", f"{server}: /etc/{name}", f"the instances' pool entry is {entries or 'missing'}, not [{pool}]",
                                    f"`ruche apply --server {server}` registers it; remove any other entry for that range"))  # fmt: skip
    return findings
