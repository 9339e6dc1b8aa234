"""The lab's record of everything it created, written as soon as each thing exists."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ProcessRecord:
    """A process the lab started, identified by pid and start time (so a recycled pid is never hit)."""

    pid: int
    start_time: int


@dataclass
class MachineRecord:
    name: str
    address: str
    role: str
    rootfs: str
    host_link: str | None = None
    process: ProcessRecord | None = None


@dataclass
class LabRecord:
    subnet: str
    bridge: str | None = None
    machines: dict[str, MachineRecord] = field(default_factory=dict)
    registry: ProcessRecord | None = None
    registry_address: str | None = None
    dns: ProcessRecord | None = None  # the lab DNS (dnsmasq), restarted by each record change (lab/dns.py)
    acme: ProcessRecord | None = None  # the lab ACME server (Pebble, lab/acme.py)

    @classmethod
    def load(cls, path: Path) -> LabRecord | None:
        """Give the record saved at ``path``, or None when there is none."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        machines = {}
        for name, machine in data.get("machines", {}).items():
            process = machine.pop("process", None)
            machines[name] = MachineRecord(**machine, process=ProcessRecord(**process) if process else None)
        # a record written before the lab had a DNS and an ACME server lacks their keys
        registry, dns, acme = data.get("registry"), data.get("dns"), data.get("acme")
        return cls(
            subnet=data["subnet"],
            bridge=data.get("bridge"),
            machines=machines,
            registry=ProcessRecord(**registry) if registry else None,
            registry_address=data.get("registry_address"),
            dns=ProcessRecord(**dns) if dns else None,
            acme=ProcessRecord(**acme) if acme else None,
        )

    def save(self, path: Path) -> None:
        """Write the record atomically (a crash leaves the old or the new one, never half of one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)
