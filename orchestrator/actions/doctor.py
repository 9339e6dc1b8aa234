"""``ruche doctor``: is everything `ruche apply` relies on in place? Read-only; each check says how to fix it.

For each server (or ``--server``): SSH with its recorded key and a verified host key; then in one
command there, Debian 13, Podman and systemd versions, cgroup v2 controllers and free disk; for
application servers also ports 80 and 443 reached from here, the mail relay answering and the backup
target writable (both from the server, where mail and backups leave). For the workspace: the state
database, the vault password (it opens the recorded secrets), each instance's DNS name leading to its
server (missing records given as zone-file lines).

Statuses: ``ok``; ``warning`` (works, but not as production should, or not checked yet); ``error``
(`apply`, a backup or a mail would fail); ``skipped`` (a check that needs a failed one). The result's
``ok`` is false when any check is an error.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.backups import BACKUP_CONFIG_DIR, backup_variables, sftp_target
from orchestrator.config import WorkspaceConfig
from orchestrator.errors import InvalidInput, RucheError
from orchestrator.remote import SshTarget, for_each_server, probe_ssh, run_tool
from orchestrator.resolver import expected_addresses, lookup, make_resolver, parse_resolver, zone_line
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.models import Association, Server
from orchestrator.state.servers import get_server, list_servers
from orchestrator.workspace import Workspace

DEBIAN_RELEASE = 13
MIN_PODMAN = (4, 4)  # Quadlet units
MIN_SYSTEMD = 252
CONTROLLERS = ("cpu", "memory", "io", "pids")  # what the instances' resource limits use
DISK_WARNING_FREE = 0.10
DISK_ERROR_FREE = 0.03

# One command per server: the facts the checks read (each line KEY=VALUE; nothing is changed)
FACTS_SCRIPT = r"""
. /etc/os-release 2>/dev/null; echo "os=${ID:-unknown} ${VERSION_ID:-unknown}"
echo "podman=$(podman --version 2>/dev/null | awk '{print $3}')"
echo "systemd=$(systemctl --version 2>/dev/null | awk 'NR==1 {print $2}')"
echo "controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
where=/; [ -d /srv/ruche ] && where=/srv/ruche
echo "disk=$where $(df -P -k "$where" | awk 'NR==2 {print $2, $4}')"
echo "applied=$([ -x /usr/local/sbin/ruche-applied ] && echo yes || echo no)"
echo "backup_key=$([ -f /etc/ruche/backup/id_ed25519 ] && echo yes || echo no)"
"""
# $1 host, $2 port: the relay's first line (its 220 greeting), or nothing
MAIL_SCRIPT = r"""timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -c 3 <&3' _ "$1" "$2" 2>&1"""
# $1 user@host, $2 directory, then sftp's options: make and remove a directory where the repositories go
SFTP_SCRIPT = r"""target=$1 dir=$2; shift 2; probe="$dir/.ruche-doctor-$$"
printf 'mkdir "%s"\nrmdir "%s"\n' "$probe" "$probe" | timeout 30 sftp -b - "$@" "$target" 2>&1"""
# $1 directory: make and remove a directory where the repositories go
LOCAL_SCRIPT = r"""mkdir -p -- "$1" && probe=$(mktemp -d -- "$1/.ruche-doctor-XXXXXX") && rmdir -- "$probe" 2>&1"""
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")


@dataclass
class Check:
    check: str  # e.g. server.ssh
    object: str  # a server, an instance's address, or "workspace"
    status: str  # ok | warning | error | skipped
    detail: str
    fix: str = ""


def doctor(
    workspace_path: Path | None,
    *,
    server: str | None = None,
    resolvers: list[str] | None = None,
    progress: Progress = no_progress,
) -> dict:
    """Run every check (only ``server``'s and its instances' with ``server``); give ``{"ok", "checks",
    "counts", "zone"}``; ``zone`` holds the zone-file lines of the missing or wrong DNS records.

    Raises InvalidInput for a resolver that is not ``ADDRESS[:PORT]``, NotFound for an unknown ``server``."""
    for text in resolvers or []:
        try:
            parse_resolver(text)
        except ValueError as error:
            raise InvalidInput(f"--resolver {error}") from None
    with opened(workspace_path) as (workspace, store):
        checks: list[Check] = []
        try:
            with store.session() as session:
                servers = [get_server(session, server)] if server else list_servers(session)
                rows = [_ServerRow.of(s) for s in servers]
                instances = [(i.address, i.domain, i.server.name, i.server.address)
                             for i in list_instances(session) if i.state in ACTIVE_STATES
                             and i.desired_state != "absent" and (server is None or i.server.name == server)]  # fmt: skip
                ciphertexts = _some_ciphertexts(session, workspace.config)
            checks.append(Check("workspace.state", "workspace", "ok", f"the state database answers ({len(rows)} "
                                f"server(s), {len(instances)} instance(s) checked)"))  # fmt: skip
        except RucheError:
            raise  # --server naming no server: the usual NotFound
        except Exception as error:  # the database itself: what doctor is for
            checks.append(Check("workspace.state", "workspace", "error", f"the state database fails: {error}",
                                "check state_url in ruche.toml and that the database server runs"))  # fmt: skip
            rows, instances, ciphertexts = [], [], []
        if make_url(workspace.config.state_url).password:
            checks.append(Check("workspace.state-password", "workspace", "warning", "state_url in ruche.toml holds the "
                                "database password in clear", "remove it from state_url and put it in a pgpass file "
                                "that libpq reads (`HOST:5432:DB:USER:PASSWORD`, mode 600; PGPASSFILE=/etc/ruche/pgpass "
                                "in the environment of ruche and of its units)"))  # fmt: skip
        checks.append(_vault_check(workspace, ciphertexts))
        progress(f"checking {len(rows)} server(s) over SSH")
        rows_by = {r.target.name: r for r in rows}
        outcomes = for_each_server(
            [r.target for r in rows], lambda t: _server_checks(workspace.config, rows_by[t.name])
        )
        for row in rows:
            outcome = outcomes[row.target.name]
            if isinstance(outcome, Exception):
                checks.append(Check("server.ssh", row.target.name, "error", f"the checks failed: {outcome}"))
            else:
                checks += outcome
        progress(f"resolving {len(instances)} instance name(s)")
        dns_checks, zone = _dns_checks(instances, resolvers)
        checks += dns_checks
    counts = {status: sum(1 for c in checks if c.status == status) for status in ("ok", "warning", "error", "skipped")}
    return {"ok": counts["error"] == 0, "checks": [asdict(c) for c in checks], "counts": counts, "zone": zone}


@dataclass(frozen=True)
class _ServerRow:
    target: SshTarget
    role: str
    origin: str

    @classmethod
    def of(cls, server: Server) -> _ServerRow:
        return cls(SshTarget.of(server), server.role, server.origin)


def _some_ciphertexts(session, config: WorkspaceConfig) -> list[str]:
    """A few secrets the vault encrypted (the mail relay's password, backup passwords, instance secrets)."""
    found = [config.mail.password] if config.mail is not None and config.mail.password else []
    for association in session.query(Association).filter(Association.backup_password.isnot(None)).limit(2):
        found.append(association.backup_password)
    for instance in list_instances(session)[:2]:
        found += list(instance.secrets.values())[:1]
    return found


def _vault_check(workspace: Workspace, ciphertexts: list[str]) -> Check:
    try:
        source = workspace.vault_password()
        vault = workspace.vault()
        for ciphertext in ciphertexts:
            vault.decrypt(ciphertext)
    except RucheError as error:
        return Check("workspace.vault", "workspace", "error", error.message, error.hint or "")
    opened_ = f"it opens {len(ciphertexts)} recorded secret(s)" if ciphertexts else "no secret recorded yet"
    detail = f"vault password from {source.description}: {opened_}"
    if source.file is not None and source.file.is_relative_to(Path.home()):
        return Check("workspace.vault", "workspace", "warning", detail + f"; it lies under {Path.home()}",
                     "services run as units (ruche serve, ruche worker) read /etc/ruche/vault.password: move it there "
                     "(root, mode 600), set [secrets] vault_password_file, and keep a copy off this machine")  # fmt: skip
    return Check("workspace.vault", "workspace", "ok", detail)


def _server_checks(config: WorkspaceConfig, row: _ServerRow) -> list[Check]:
    name, target = row.target.name, row.target
    key_problem = _key_file_problem(target)
    if key_problem is not None:
        return [Check("server.ssh", name, "error", key_problem[0], key_problem[1]), _skipped(name, "server.system")]
    probe = probe_ssh(target)
    known = target.known_hosts_path or "~/.ssh/known_hosts"
    if probe.outcome != "ok":
        fixes = {
            "unknown-host-key": f"check that {probe.host_key} is the server's key (on it: `ssh-keygen -lf "
            f"/etc/ssh/ssh_host_ed25519_key.pub`), then add it to {known} (`ssh-keyscan -p {target.port} "
            f"{target.address} >> {known}`)",
            "changed-host-key": f"if the server was reinstalled, replace its line in {known}; otherwise do not "
            "connect: someone may stand between this machine and the server",
            "refused-key": f"add the public key of {target.key_path or 'your SSH key'} to "
            f"~{target.user}/.ssh/authorized_keys on the server, or `ruche server set {name} --ssh-key FILE`",
            "unreachable": f"check that {target.address} port {target.port} is the server and that it runs sshd "
            f"(`ruche server set {name} --address ... --ssh-port ...` if it moved)",
        }
        return [Check("server.ssh", name, "error", f"{target.user}@{target.address}:{target.port}: {probe.detail}",
                      fixes[probe.outcome]), _skipped(name, "server.system")]  # fmt: skip
    checks = [Check("server.ssh", name, "ok", f"{target.user}@{target.address}:{target.port} with "
                    f"{target.key_path or 'the default keys'}, host key {probe.host_key} verified")]  # fmt: skip
    code, output = run_tool(target, ["sh", "-c", FACTS_SCRIPT], timeout=60)
    facts = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    checks += _system_checks(name, facts, row.origin)
    if row.role != "apps":
        return checks
    applied = facts.get("applied") == "yes"
    checks += [_port_check(name, target.address, port, applied) for port in (80, 443)]
    if config.mail is not None:
        checks.append(_mail_check(name, target, config.mail.host, config.mail.port, config.mail.security))
    checks.append(_backup_check(name, target, config, facts.get("backup_key") == "yes", applied))
    return checks


def _skipped(name: str, check: str) -> Check:
    return Check(check, name, "skipped", "not checked: SSH failed")


def _key_file_problem(target: SshTarget) -> tuple[str, str] | None:
    for label, path in (("key", target.key_path), ("known_hosts", target.known_hosts_path)):
        if path is None:
            continue
        if not os.path.isfile(path):
            fix = (f"`ruche server set {target.name} --ssh-key FILE` naming an existing private key" if label == "key"
                   else f"create it with the server's host key (`ssh-keyscan {target.address} > {path}`, then check "
                   "the fingerprint on the server)")  # fmt: skip
            return f"the SSH {label} file {path} does not exist", fix
        if label == "key" and os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return f"the SSH key {path} can be read by others (ssh and Ansible refuse it)", f"chmod 600 {path}"
    return None


def _system_checks(name: str, facts: dict[str, str], origin: str) -> list[Check]:
    checks = []
    system, _, release = facts.get("os", "unknown unknown").partition(" ")
    major = int(release.split(".")[0]) if release.split(".")[0].isdigit() else 0
    if system == "debian" and major >= DEBIAN_RELEASE:
        checks.append(Check("server.os", name, "ok", f"Debian {release}"))
    else:
        checks.append(Check("server.os", name, "error", f"{system} {release}: ruche's servers run Debian "
                            f"{DEBIAN_RELEASE} (trixie) or later", "install Debian 13 on it (the ruche_server role "
                            "refuses others)"))  # fmt: skip
    podman = facts.get("podman", "")
    version = tuple(int(part) for part in re.findall(r"\d+", podman)[:2])
    if not podman:
        checks.append(Check("server.podman", name, "warning", "Podman is not installed yet",
                            "`ruche apply` installs it (Debian's podman package)"))  # fmt: skip
    elif version < MIN_PODMAN:
        checks.append(Check("server.podman", name, "error", f"Podman {podman}: Quadlet units need "
                            f"{'.'.join(map(str, MIN_PODMAN))} or later", "upgrade the server to Debian 13"))  # fmt: skip
    else:
        checks.append(Check("server.podman", name, "ok", f"Podman {podman}"))
    systemd = facts.get("systemd", "")
    if systemd.isdigit() and int(systemd) >= MIN_SYSTEMD:
        checks.append(Check("server.systemd", name, "ok", f"systemd {systemd}"))
    else:
        checks.append(Check("server.systemd", name, "error", f"systemd {systemd or 'not found'}: {MIN_SYSTEMD} or "
                            "later is needed", "upgrade the server to Debian 13"))  # fmt: skip
    present = set(facts.get("controllers", "").split())
    missing = [c for c in CONTROLLERS if c not in present]
    if not missing:
        checks.append(Check("server.cgroups", name, "ok", f"cgroup v2 with {', '.join(CONTROLLERS)}"))
    else:
        effect = ("a lab server (nspawn): the lab runs without limits" if origin == "lab"
                  else f"instances' limits on {', '.join(missing)} cannot apply")  # fmt: skip
        checks.append(Check("server.cgroups", name, "warning", f"cgroup v2 controllers missing: {', '.join(missing)}; "
                            f"{effect}", "" if origin == "lab" else "boot with the unified cgroup hierarchy (Debian 13's "
                            "default) and let systemd delegate the controllers"))  # fmt: skip
    checks.append(_disk_check(name, facts.get("disk", "")))
    return checks


def _disk_check(name: str, fact: str) -> Check:
    parts = fact.split()
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or int(parts[1]) == 0:
        return Check("server.disk", name, "warning", f"free disk unknown ({fact!r})", "check `df -h /srv` on it")
    where, size, free = parts[0], int(parts[1]), int(parts[2])
    share = free / size
    detail = f"{free / 1024**2:.1f} GiB free of {size / 1024**2:.1f} GiB on {where} ({share:.0%})"
    if share < DISK_ERROR_FREE:
        return Check("server.disk", name, "error", detail, "free room or grow the disk: backups and upgrades need it")
    if share < DISK_WARNING_FREE:
        return Check("server.disk", name, "warning", detail, "free room or grow the disk before it fills")
    return Check("server.disk", name, "ok", detail)


def _port_check(name: str, address: str, port: int, applied: bool) -> Check:
    try:
        with socket.create_connection((address, port), timeout=5):
            return Check(f"server.port-{port}", name, "ok", f"{address}:{port} answers from here")
    except OSError as error:
        detail = f"{address}:{port} does not answer from here ({type(error).__name__})"
    if not applied:
        return Check(f"server.port-{port}", name, "warning", detail + "; the server was never applied, so Caddy "
                     "does not listen yet", "run `ruche apply`, then `ruche doctor` again")  # fmt: skip
    return Check(f"server.port-{port}", name, "error", detail, f"open TCP {port} in the firewalls in front of the "
                 "server (the provider's, the router's); on the server `ss -ltnp` shows whether Caddy listens")  # fmt: skip


def _mail_check(name: str, target: SshTarget, host: str, port: int, security: str) -> Check:
    code, output = run_tool(target, ["bash", "-c", MAIL_SCRIPT, "_", host, str(port)], timeout=30)
    where = f"the mail relay {host}:{port}"
    fix = "check [mail] host and port in ruche.toml (`ruche mail show`) and that the relay accepts this server"
    if code != 0:
        return Check("server.mail", name, "error", f"{where} cannot be reached from {name}", fix)
    if security != "tls" and not output.startswith("220"):
        return Check("server.mail", name, "error", f"{where} answers {output[:40]!r}, not an SMTP greeting", fix)
    return Check("server.mail", name, "ok", f"{where} answers from {name}")


def _backup_check(name: str, target: SshTarget, config: WorkspaceConfig, has_key: bool, applied: bool) -> Check:
    settings = config.backup
    if settings.repository is None:
        return Check("server.backup", name, "warning", "no backup target: instances are not backed up",
                     "set [backup] repository in ruche.toml")  # fmt: skip
    sftp = sftp_target(settings)
    if settings.repository.startswith("s3:"):
        return Check("server.backup", name, "warning", f"{settings.repository}: S3 targets are not checked by doctor",
                     "`ruche backup run` then `ruche backup verify` on one instance proves it")  # fmt: skip
    path = settings.repository if sftp is None else sftp.path
    if not SAFE_PATH.match(path):
        return Check("server.backup", name, "warning", f"{path!r}: not checked (characters other than letters, "
                     "digits, '._/-')")  # fmt: skip
    if sftp is None:  # a path on the server
        code, output = run_tool(target, ["sh", "-c", LOCAL_SCRIPT, "_", path], timeout=30)
    else:
        if not has_key:
            status = "warning" if not applied else "error"
            return Check("server.backup", name, status, f"{name} has no backup key yet ({BACKUP_CONFIG_DIR})",
                         "run `ruche apply` (it makes the key and, for a managed target, lets it in)")  # fmt: skip
        options = shlex.split(backup_variables(settings)["ruche_backup_sftp_args"])
        code, output = run_tool(target, ["sh", "-c", SFTP_SCRIPT, "_", f"{sftp.user}@{sftp.host}", path, *options],
                                timeout=60)  # fmt: skip
    if code != 0:
        last = output.strip().splitlines()[-1:] or ["no output"]
        return Check("server.backup", name, "error", f"{name} cannot write to {settings.repository}: {last[0]}",
                     "check [backup] repository, that the target answers (SSH for sftp:) and accepts this server's "
                     f"key ({BACKUP_CONFIG_DIR}/id_ed25519.pub), and that it has room")  # fmt: skip
    return Check("server.backup", name, "ok", f"{name} can write to {settings.repository}")


def _dns_checks(instances: list[tuple[str, str, str, str]], resolvers: list[str] | None) -> tuple[list[Check], list]:
    if not instances:
        return [], []
    resolver = make_resolver(resolvers)
    checks, zone = [], []
    servers: dict[str, tuple[str, ...]] = {}
    for address, domain, server_name, server_address in sorted(instances):
        if server_address not in servers:
            servers[server_address] = expected_addresses(resolver, server_address)
        expected = servers[server_address]
        found = lookup(resolver, domain)
        if found.addresses and set(found.addresses) & set(expected):
            checks.append(
                Check("instance.dns", address, "ok", f"{domain} -> {', '.join(found.addresses)} ({server_name})")
            )
            continue
        what = found.problem or f"it resolves to {', '.join(found.addresses)}"
        checks.append(Check("instance.dns", address, "error", f"{domain}: {what}, not to {server_name} "
                            f"({', '.join(expected) or server_address})", f"publish `{zone_line(domain, server_address)}`"
                            " (or a wildcard for the association's names); every record is in the zone lines printed "
                            "at the end"))  # fmt: skip
        zone.append(zone_line(domain, server_address))
    return checks, zone
