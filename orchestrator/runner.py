"""Running playbooks with ansible-runner's Python API: the only module that touches ansible-runner.

Each run gets a fresh private data directory (mode 0700) under the workspace's ``runs/``,
named by its run id and kept as the audit trail (artifacts: events, stdout, status, rc).
Env files are suppressed, so no variable or secret is written there by the runner; the
environment ansible-runner copies into ``artifacts/.../command`` is cut down to Ansible's own
settings after the run, and the vault password reaches Ansible only through a password file
(the admin's own, or a 0600 file in the private directory removed when the run ends).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.secrets import PASSWORD_ENV, VaultPasswordSource

PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "playbooks"

# Settings every run uses (also printed by the benchmarks).
ANSIBLE_SETTINGS = {
    "ANSIBLE_ROLES_PATH": str(PLAYBOOKS_DIR / "roles"),
    "ANSIBLE_HOST_KEY_CHECKING": "True",
    "ANSIBLE_PIPELINING": "True",
    # ServerAlive*: a server that goes away mid-run is reported unreachable within ~15 s, not hung on.
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=5 -o ServerAliveCountMax=3",
    "ANSIBLE_FORKS": "10",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    # ruche servers run Debian 13 or later (ruche_server's validate.yml), whose python3 is /usr/bin/python3:
    # named, it spares each run a discovery round trip per server
    "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
}


def roles_digest() -> str:
    """Give a digest of ruche's roles (every file): each run passes it as ``ruche_roles_digest``, and
    an instance applied by other roles (another ruche) is converged again, not skipped."""
    hashed = hashlib.sha256()
    roles = PLAYBOOKS_DIR / "roles"
    for path in sorted(p for p in roles.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        hashed.update(str(path.relative_to(roles)).encode() + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class RunResult:
    """What a run gives: its id, status (successful/failed/...), rc, per-host counts, artifacts."""

    run_id: str
    playbook: str
    status: str
    rc: int
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    artifacts: str = ""
    started: str = ""
    finished: str = ""
    # set_stats data of the run, e.g. {"ruche_converged": [...], "ruche_failed": [...]}
    custom_stats: dict = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and self.rc == 0


def new_run_id() -> str:
    """Give a sortable, unique run id: UTC time and a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _counts(stats: dict | None) -> dict[str, HostCounts]:
    hosts: dict[str, HostCounts] = {}
    if not stats:
        return hosts
    keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}
    for stat, attribute in keys.items():
        for host, count in (stats.get(stat) or {}).items():
            setattr(hosts.setdefault(host, HostCounts()), attribute, count)
    return dict(sorted(hosts.items()))


@contextmanager
def _without_environment_variable(name: str):
    """Hide ``name`` from the environment ansible-runner copies for the run (restored after)."""
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def _scrub_command_file(artifacts: Path) -> None:
    """Keep only Ansible's settings of the environment ansible-runner wrote beside the command."""
    command_file = artifacts / "command"
    if not command_file.is_file():
        return
    recorded = json.loads(command_file.read_text(encoding="utf-8"))
    recorded["env"] = {k: v for k, v in (recorded.get("env") or {}).items() if k in ANSIBLE_SETTINGS}
    command_file.write_text(json.dumps(recorded, ensure_ascii=False), encoding="utf-8")


@contextmanager
def inventory_lock(directory: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the lock of the inventory ``directory``: exclusive to replace it, shared to read it whole.

    Several ruche processes (workers, parallel upgrades) write the one inventory; the writer swaps
    the directory, so a reader takes a copy under the shared lock (see orchestrator.runner).
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_playbook(
    playbook: str,
    *,
    inventory: Path,
    runs_dir: Path,
    limit: str | None = None,
    extravars: dict[str, str] | None = None,
    vault_password: VaultPasswordSource | None = None,
    on_event: Callable[[dict], None] | None = None,
    strategy: str | None = None,
) -> RunResult:
    """Run ``playbooks/PLAYBOOK`` on ``inventory`` and give its result (never raises for a failed run).

    ``on_event`` receives each runner event (a dict) as it happens, for progress displays. ``strategy``: Ansible's
    strategy for plays that name none (ANSIBLE_STRATEGY; default linear).
    ``extravars`` must hold only values ruche validated (identifiers), never free user text.
    """
    run_id = new_run_id()
    private_dir = runs_dir / run_id
    runs_dir.mkdir(parents=True, exist_ok=True)
    private_dir.mkdir(mode=0o700)
    # the run reads its own copy: another ruche process may replace the inventory meanwhile
    copy = private_dir / "inventory"
    with inventory_lock(inventory, shared=True):
        shutil.copytree(inventory, copy)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    environment = dict(ANSIBLE_SETTINGS) | ({"ANSIBLE_STRATEGY": strategy} if strategy else {})
    environment["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    password_file = None
    if vault_password is not None:
        if vault_password.file is not None:
            environment["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password.file)
        else:
            password_file = private_dir / "vault-password"
            descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(vault_password.password + b"\n")
            environment["ANSIBLE_VAULT_PASSWORD_FILE"] = str(password_file)
    custom_stats: dict = {}

    def handle(event: dict) -> bool:
        if event.get("event") == "playbook_on_stats":
            custom_stats.update(event.get("event_data", {}).get("artifact_data") or {})
        if on_event is not None:
            on_event(event)
        return True

    try:
        with _without_environment_variable(PASSWORD_ENV):
            import ansible_runner  # loaded by runs only: every other command starts faster

            runner = ansible_runner.run(
                private_data_dir=str(private_dir),
                project_dir=str(PLAYBOOKS_DIR),
                playbook=playbook,
                inventory=str(copy),
                limit=limit,
                extravars={"ruche_roles_digest": roles_digest(), **(extravars or {})},
                envvars=environment,
                ident="run",
                artifact_dir=str(private_dir / "artifacts"),
                suppress_env_files=True,
                quiet=True,
                event_handler=handle,
            )
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        if password_file is not None:
            password_file.unlink(missing_ok=True)
        _scrub_command_file(private_dir / "artifacts" / "run")
    return RunResult(
        run_id=run_id,
        playbook=playbook,
        status=runner.status,
        rc=runner.rc,
        hosts=_counts(runner.stats),
        artifacts=str(private_dir / "artifacts" / "run"),
        started=started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        custom_stats=custom_stats,
    )
