"""``ruche lab up``: boot the lab's servers, its registry, DNS, ACME server and images; register the servers."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import update

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.config import DomainSettings, MailSettings, RegistrySettings
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.lab import acme, dns, images, machine, network, registry, rootfs
from orchestrator.lab.host import cache_lock, require_programs, require_root, run
from orchestrator.lab.layout import BACKUP_HOST_INDEX, BACKUP_SERVER_NAME, LabLayout, plan_servers
from orchestrator.lab.record import LabRecord, MachineRecord
from orchestrator.operations.lab import lab_state, remove_lab
from orchestrator.processes import is_same_process
from orchestrator.registries import MIRROR_DROP_IN_PATH, render_mirror_drop_in
from orchestrator.remote import SshTarget, for_each_server
from orchestrator.state.models import Association
from orchestrator.state.servers import add_server, list_servers, validate_server_spec

MAX_APP_SERVERS = 8
LAB_SERVER_MEMORY_MB = 4096
LAB_SERVER_DISK_GB = 20


def lab_is_up(record: LabRecord | None, app_servers: int) -> bool:
    """Tell whether ``record`` describes a complete, running lab of ``app_servers`` servers."""
    if record is None or record.registry is None:
        return False
    expected = {plan.name for plan in plan_servers(app_servers)}
    if set(record.machines) != expected:
        return False
    processes = [record.registry] + [m.process for m in record.machines.values()]
    processes += [p for p in (record.dns, record.acme) if p is not None]  # when this lab has them
    return all(p is not None and is_same_process(p.pid, p.start_time) for p in processes) and all(
        m.host_link for m in record.machines.values()
    )


def bring_up(
    workspace_path: Path | None,
    *,
    app_servers: int = 2,
    cache_dir: Path | None = None,
    services: tuple[str, ...] = (),
    progress: Progress = no_progress,
) -> dict:
    """Bring the lab up (a no-op when it already is); give what ``lab status`` gives.

    Its registry gets every lab image, or with ``services`` those their current versions run (a fresh machine
    builds each image once: the demo builds three of seven); InvalidInput for a service whose images the lab does
    not build. On a lab already up, the images its registry lacks are added.

    Raises MissingPrerequisite (not root, programs or disk missing), Conflict (servers registered by an
    admin in the workspace, subnet in use, a lab of another size running), TimedOut (a server never
    answers SSH).  Whatever was created before a failure is in the lab record, so ``ruche lab down``
    removes it.  The lab's settings go in a file of its own (``Workspace.lab_settings_path``).
    """
    if not 1 <= app_servers <= MAX_APP_SERVERS:
        raise InvalidInput(f"--servers must be between 1 and {MAX_APP_SERVERS} (got {app_servers})")
    refuse_beside_real_servers(workspace_path)
    require_root()
    require_programs()
    cache_dir = cache_dir or rootfs.default_cache_dir()
    with opened(workspace_path) as (workspace, store):
        selected = images.LAB_IMAGES
        if services:
            selected, elsewhere = images.images_for(workspace.catalog, services)
            if elsewhere:
                raise InvalidInput(
                    "--service: "
                    + "; ".join(f"{service} runs {', '.join(refs)}" for service, refs in elsewhere.items())
                    + ", which the lab does not build (it reaches no public registry)",
                    hint="give services whose images are the lab's (lab.ruche.invalid/...): `ruche catalog list`",
                )
        layout = LabLayout(workspace.lab_dir)
        record = LabRecord.load(layout.record_path)
        if lab_is_up(record, app_servers):
            progress("the lab is already up")
            # images its registry lacks (a lab brought up with --service) are added; the others cost one request each
            for reference in _push_images(record.registry_address, cache_dir, selected):
                progress(f"image ready: {reference}")
        else:
            if record is not None:
                running_size = len(record.machines) - 1  # every lab has one backup server
                if running_size >= 1 and lab_is_up(record, running_size):
                    raise Conflict(
                        f"a lab with {running_size} application server(s) is already up",
                        hint="run `ruche lab down` first to change its size",
                    )
                progress("a previous `lab up` did not finish: cleaning it up first")
                remove_lab(workspace, store, progress=progress)
            _create(workspace, store, layout, app_servers, cache_dir, selected, progress)
        return lab_state(workspace, store)


def refuse_beside_real_servers(workspace_path: Path | None) -> None:
    """Raise Conflict when the workspace holds servers an admin registered: the lab's settings (its registry, no
    resource limits, internal certificates, its backup target and mail sink) would apply to them too."""
    with opened(workspace_path) as (_, store), store.session() as session:
        names = [server.name for server in list_servers(session, origin="manual")]
    if names:
        raise Conflict(
            f"this workspace holds servers registered by an admin ({', '.join(names)}): the lab does not run beside "
            "them, its settings would apply to their instances too",
            hint="bring the lab up in a workspace of its own: `ruche init lab-workspace --domain lab.ruche.test`, "
            "then `ruche -w lab-workspace lab up`",
        )


def _create(
    workspace, store, layout: LabLayout, app_servers: int, cache_dir: Path, selected: tuple, progress: Progress
) -> None:
    lab_network = network.LabNetwork.parse(workspace.config.lab.subnet)
    network.ensure_subnet_free(lab_network)
    record = LabRecord(subnet=str(lab_network.subnet))
    layout.root.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.root, 0o700)
    record.save(layout.record_path)

    progress(f"creating bridge {lab_network.bridge} ({lab_network.gateway}/{lab_network.prefix_length})")
    record.bridge = lab_network.bridge
    record.save(layout.record_path)
    network.create_bridge(lab_network)

    progress(f"starting the lab registry on {lab_network.registry_address}")
    registry.write_config(
        layout.registry_config, address=lab_network.registry_address, storage_dir=cache_dir / "registry"
    )
    layout.registry_log.parent.mkdir(parents=True, exist_ok=True)
    record.registry = registry.start(layout.registry_config, layout.registry_log)
    record.registry_address = lab_network.registry_address
    record.save(layout.record_path)
    registry.wait_until_answering(lab_network.registry_address, record.registry, layout.registry_log)
    own = workspace.file_config  # the lab's settings start from ruche.toml's own, never from an earlier lab's
    domains = _start_domain_services(layout, record, lab_network, own.domains, progress)
    mirror = RegistrySettings(
        mirror=lab_network.registry_address, insecure=True, mirrored_registries=own.registry.mirrored_registries
    )

    with ThreadPoolExecutor(max_workers=1) as image_builder:
        progress("building service images in the background (cached after the first time)")
        pushed: Future = image_builder.submit(_push_images, lab_network.registry_address, cache_dir, selected)
        progress("preparing the server base root file system (cached after the first time)")
        with cache_lock(cache_dir, "server-base"):
            base = rootfs.server_base(cache_dir)
        _boot_servers(layout, record, lab_network, base, app_servers, render_mirror_drop_in(mirror), progress)
        progress("waiting for the images")
        for reference in pushed.result():
            progress(f"image ready: {reference}")

    backup = own.backup.model_copy(update={  # the instances' target is lab-backup; the rest (schedule...) is kept
        "repository": f"sftp:restic@{lab_network.address(BACKUP_HOST_INDEX)}:/srv/restic",
        "managed_server": BACKUP_SERVER_NAME, "s3_credentials_file": None,
    })  # fmt: skip
    # the services' mail goes to the SMTP sink on the backup server (a Maildir in /var/mail/ruche-sink)
    mail = MailSettings(host=lab_network.address(BACKUP_HOST_INDEX), port=25, security="none",
                        sender_domain=own.base_domain)  # fmt: skip
    # in a file of the lab's own, laid over ruche.toml's until `lab down` removes the lab's directory
    settings = {"registry": mirror, "proxy_tls": "internal", "resource_limits": False, "backup": backup, "mail": mail}
    if domains is not None:  # own domains' certificates from the lab's Pebble, checked with the lab's DNS
        settings["domains"] = domains
    workspace.write_lab_settings(settings)
    progress(
        f"registry mirror, backup target (SFTP on {BACKUP_SERVER_NAME}), mail relay (its SMTP sink)"
        f"{', own domains (lab DNS and ACME server)' if domains is not None else ''} "
        f"set in the lab's settings ({workspace.lab_settings_path}); {workspace.config_path.name} is left as it is"
    )

    with store.session() as session:
        # a new lab-backup holds no repository yet, whatever an earlier lab had
        session.execute(update(Association).values(backup_repository_ready=False))
        for server in list_servers(session, origin="lab"):
            session.delete(server)
        session.flush()
        for machine_record in sorted(record.machines.values(), key=lambda m: m.name):
            spec = validate_server_spec(
                name=machine_record.name,
                address=machine_record.address,
                ssh_key_path=str(layout.ssh_key),
                ssh_known_hosts_path=str(layout.known_hosts),
                cpu=os.cpu_count() or 1,
                memory_mb=LAB_SERVER_MEMORY_MB,
                disk_gb=LAB_SERVER_DISK_GB,
                labels={"lab": "true"},
                role=machine_record.role,
                origin="lab",
            )
            add_server(session, spec)
    progress("lab servers registered")


def _start_domain_services(
    layout: LabLayout, record: LabRecord, lab_network: network.LabNetwork, own: DomainSettings, progress: Progress
) -> DomainSettings | None:
    """Start the lab DNS and the lab ACME server on the gateway; give the [domains] settings naming them (the rest
    of ruche.toml's own kept), or None when dnsmasq or Pebble is not installed (ruche still works; only own-domain
    certificates cannot be tested in this lab)."""
    missing = {p: package for p, package in ((dns.PROGRAM, dns.PACKAGE), (acme.PROGRAM, acme.PACKAGE))
               if shutil.which(p) is None}  # fmt: skip
    if missing:
        progress(
            f"no lab DNS and ACME server: {', '.join(missing)} not installed (apt-get install "
            f"{' '.join(sorted(set(missing.values())))}); own domains' certificates cannot be tested in this lab, "
            "[domains] stays as ruche.toml has it"
        )
        return None
    gateway = lab_network.gateway
    progress(f"starting the lab DNS on {gateway}:{dns.PORT} (dnsmasq, the lab's test names only)")
    record.dns = dns.start(layout, gateway)
    record.save(layout.record_path)
    progress(f"starting the lab ACME server at {acme.directory_url(gateway)} (Pebble, HTTP-01 on port 80)")
    record.acme = acme.start(layout, gateway)
    record.save(layout.record_path)
    return own.model_copy(
        update={"acme_directory": acme.directory_url(gateway), "acme_ca_root": str(layout.acme_ca_root),
                "resolvers": [gateway]}
    )  # fmt: skip


IMAGE_BUILDERS = 2  # images built at once: one's package downloads overlap another's installs and import


def _push_images(registry_address: str, cache_dir: Path, selected: tuple) -> list[str]:
    """Build and push the ``selected`` lab images, IMAGE_BUILDERS at a time, once the container base of each Debian
    release to build from is there (those built at once first; none for images the registry or this machine already
    holds); give their references, in ``selected``'s order."""
    if not selected:
        return []

    def build(image) -> str:
        return images.build_and_push(image, registry_address=registry_address, cache_dir=cache_dir)

    with cache_lock(cache_dir, "images"):
        to_build = [i for i in selected if not images.is_in_registry(registry_address, i) and not images.is_built(i)]
        suites = sorted({image.suite for image in to_build})
        if suites:
            with ThreadPoolExecutor(max_workers=len(suites), thread_name_prefix="lab-bases") as bases:
                list(bases.map(lambda suite: images.container_base(cache_dir, suite), suites))
        with ThreadPoolExecutor(max_workers=IMAGE_BUILDERS, thread_name_prefix="lab-images") as builders:
            return list(builders.map(build, selected))


def _ensure_ssh_key(layout: LabLayout) -> str:
    layout.ssh_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not layout.ssh_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ruche-lab", "-f", layout.ssh_key])
    return layout.ssh_key.with_suffix(".pub").read_text()


def _boot_servers(layout, record, lab_network, base, app_servers, mirror_drop_in: str, progress) -> None:
    public_key = _ensure_ssh_key(layout)
    known_hosts: list[str] = []
    targets: list[tuple[SshTarget, Path]] = []
    for index, plan in enumerate(plan_servers(app_servers)):
        address = lab_network.address(plan.host_index)
        target_root = layout.rootfs(plan.name)
        machine_record = MachineRecord(name=plan.name, address=address, role=plan.role, rootfs=str(target_root))
        record.machines[plan.name] = machine_record
        record.save(layout.record_path)
        progress(f"{plan.name}: copying the base root file system")
        host_key = rootfs.clone_server(base, target_root, hostname=plan.name, authorized_key=public_key)
        drop_in = target_root / MIRROR_DROP_IN_PATH.lstrip("/")
        drop_in.parent.mkdir(parents=True, exist_ok=True)
        drop_in.write_text(mirror_drop_in)
        if plan.role == "backup":
            rootfs.install_unit(target_root, "ruche-lab-mail-sink.service")
        known_hosts.append(f"{address} {host_key}")
        console_log = layout.console_log(plan.name)
        progress(f"{plan.name}: booting at {address}")
        machine_record.process = machine.boot(plan.name, target_root, console_log)
        record.save(layout.record_path)
        leader = machine.leader_pid(machine_record.process, name=plan.name, console_log=console_log)
        host_link = lab_network.host_link(index)
        machine_record.host_link = host_link
        record.save(layout.record_path)
        network.attach_server(lab_network, host_link, leader, address)
        targets.append(
            (SshTarget(name=plan.name, address=address, key_path=str(layout.ssh_key),
                       known_hosts_path=str(layout.known_hosts)), console_log)
        )  # fmt: skip
    layout.known_hosts.write_text("\n".join(known_hosts) + "\n")
    progress("waiting for SSH on every server")
    logs = {target.name: log for target, log in targets}
    outcomes = for_each_server(
        [target for target, _ in targets], lambda target: machine.wait_for_ssh(target, console_log=logs[target.name])
    )
    failures = [error for error in outcomes.values() if isinstance(error, Exception)]
    if failures:
        raise failures[0]
    progress("every server answers SSH")
