"""Where the lab keeps its files inside a workspace, and the names of its servers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.lab.network import BACKUP_HOST_INDEX, FIRST_APP_HOST_INDEX

BACKUP_SERVER_NAME = "lab-backup"


@dataclass(frozen=True)
class LabServerPlan:
    """A lab server to create: its name, role and place on the lab network."""

    name: str
    role: str
    host_index: int


def plan_servers(app_servers: int) -> list[LabServerPlan]:
    """Give the servers of a lab with ``app_servers`` application servers and one backup server."""
    plans = [
        LabServerPlan(f"lab-{number}", "apps", FIRST_APP_HOST_INDEX + number - 1)
        for number in range(1, app_servers + 1)
    ]
    plans.append(LabServerPlan(BACKUP_SERVER_NAME, "backup", BACKUP_HOST_INDEX))
    return plans


@dataclass(frozen=True)
class LabLayout:
    """Paths of one workspace's lab."""

    root: Path

    @property
    def record_path(self) -> Path:
        return self.root / "lab.json"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def machines_dir(self) -> Path:
        return self.root / "machines"

    def rootfs(self, name: str) -> Path:
        return self.machines_dir / name / "rootfs"

    def console_log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.console.log"

    @property
    def registry_config(self) -> Path:
        return self.root / "registry" / "config.yml"

    @property
    def registry_log(self) -> Path:
        return self.root / "logs" / "registry.log"

    @property
    def dns_dir(self) -> Path:
        """The lab DNS's records (records.json), its dnsmasq.conf and pid file (lab/dns.py)."""
        return self.root / "dns"

    @property
    def dns_log(self) -> Path:
        return self.root / "logs" / "dns.log"

    @property
    def acme_dir(self) -> Path:
        """The lab ACME server's configuration, its HTTPS certificate and the lab CA that signs it (lab/acme.py)."""
        return self.root / "acme"

    @property
    def acme_ca_root(self) -> Path:
        """The lab CA's certificate (PEM): what `[domains] acme_ca_root` names while the lab is up."""
        return self.acme_dir / "lab-ca.pem"

    @property
    def acme_log(self) -> Path:
        return self.root / "logs" / "acme.log"

    def owns(self, path: Path) -> bool:
        """Tell whether ``path`` lies inside this lab's directory (nothing else is ever deleted)."""
        return path.resolve().is_relative_to(self.root.resolve()) and path.resolve() != self.root.resolve()
