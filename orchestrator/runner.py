"""Running playbooks with ansible-runner's Python API: the only module that touches ansible-runner.

Each run gets a fresh private data directory (mode 0700) under the workspace's ``runs/``,
named by its run id and kept as the audit trail (artifacts: events, stdout, status, rc).
Env files are suppressed, so no variable or secret is written there by the runner.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import ansible_runner

PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "playbooks"

# Settings every run uses (also printed by the benchmarks).
ANSIBLE_SETTINGS = {
    "ANSIBLE_ROLES_PATH": str(PLAYBOOKS_DIR / "roles"),
    "ANSIBLE_HOST_KEY_CHECKING": "True",
    "ANSIBLE_PIPELINING": "True",
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
    "ANSIBLE_FORKS": "10",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
    "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
}


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

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts.values())

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and self.rc == 0


def new_run_id() -> str:
    """Give a sortable, unique run id: UTC time and a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _counts(stats: dict | None) -> dict[str, HostCounts]:
    hosts: dict[str, HostCounts] = {}
    if not stats:
        return hosts
    keys = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}
    for stat, attribute in keys.items():
        for host, count in (stats.get(stat) or {}).items():
            setattr(hosts.setdefault(host, HostCounts()), attribute, count)
    return dict(sorted(hosts.items()))


def run_playbook(
    playbook: str,
    *,
    inventory: Path,
    runs_dir: Path,
    limit: str | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> RunResult:
    """Run ``playbooks/PLAYBOOK`` on ``inventory`` and give its result (never raises for a failed run).

    ``on_event`` receives each runner event (a dict) as it happens, for progress displays.
    """
    run_id = new_run_id()
    private_dir = runs_dir / run_id
    runs_dir.mkdir(parents=True, exist_ok=True)
    private_dir.mkdir(mode=0o700)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    environment = dict(ANSIBLE_SETTINGS)
    environment["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"

    def handle(event: dict) -> bool:
        if on_event is not None:
            on_event(event)
        return True

    runner = ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(PLAYBOOKS_DIR),
        playbook=playbook,
        inventory=str(inventory),
        limit=limit,
        envvars=environment,
        ident="run",
        artifact_dir=str(private_dir / "artifacts"),
        suppress_env_files=True,
        quiet=True,
        event_handler=handle,
    )
    return RunResult(
        run_id=run_id,
        playbook=playbook,
        status=runner.status,
        rc=runner.rc,
        hosts=_counts(runner.stats),
        artifacts=str(private_dir / "artifacts" / "run"),
        started=started,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
