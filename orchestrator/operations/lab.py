"""The local lab's state and its removal (``lab up`` cleans a half-made lab with the same removal as ``lab down``)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator.errors import OperationFailed
from orchestrator.lab import acme, dns, machine, network
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.lab.registry import is_answering
from orchestrator.operations.context import Progress, no_progress
from orchestrator.processes import is_same_process
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.state.database import StateStore
from orchestrator.state.servers import list_servers, remove_server
from orchestrator.workspace import Workspace


def remove_lab(workspace: Workspace, store: StateStore, *, progress: Progress = no_progress) -> dict:
    """Remove the lab of ``workspace``: its settings, servers, links, bridge, registry, root file systems, registry
    entries; give counts of what was removed. Safe on a half-created lab or no lab at all. (Root is required.)
    """
    workspace.lab_settings_path.unlink(missing_ok=True)
    workspace.forget_settings()  # ruche.toml's settings alone from now on
    removed = {"servers": 0, "links": 0, "registry": 0, "registered": 0, "instances": 0}
    layout = LabLayout(workspace.lab_dir)
    record = LabRecord.load(layout.record_path)
    if record is not None:
        running = [m for m in record.machines.values() if m.process is not None]
        if running:
            progress(f"powering off {len(running)} server(s)")
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
                list(pool.map(lambda m: machine.stop(m.process), running))
            removed["servers"] = len(running)
            for machine_record in record.machines.values():
                if machine_record.host_link and network.link_exists(machine_record.host_link):
                    network.delete_link(machine_record.host_link)
                    removed["links"] += 1
                root = Path(machine_record.rootfs).parent
                if root.exists() and layout.owns(root):
                    machine.remove_root(root)
        finally:
            # whatever failed above, the registry, DNS and ACME server never outlive the lab (they hold its addresses)
            if record.registry is not None:
                progress("stopping the lab registry")
                machine.stop(record.registry, timeout=10)
                removed["registry"] = 1
            for process, what in ((record.acme, "ACME server (Pebble)"), (record.dns, "DNS (dnsmasq)")):
                if process is not None:
                    progress(f"stopping the lab {what}")
                    machine.stop(process, timeout=10)
        if record.bridge and network.link_exists(record.bridge):
            network.delete_link(record.bridge)
            removed["links"] += 1
    with store.session() as session:
        for server in list_servers(session, origin="lab"):
            removed["instances"] += remove_server(session, server.name, with_instances=True)
            removed["registered"] += 1
    if layout.root.exists():
        shutil.rmtree(layout.root)
    progress("the lab is down")
    return removed


def _probe(target: SshTarget) -> dict:
    output = run_command(target, ["sh", "-c", "hostname; systemctl is-system-running || true"], timeout=20).split()
    return {"hostname": output[0] if output else None, "systemd": output[1] if len(output) > 1 else None}


def lab_state(workspace: Workspace, store: StateStore) -> dict:
    """Give the lab's state: ``{"up": bool, "registry": {...}, "servers": [...]}``.

    ``up`` is true when the registry and every server answer.  Never raises for a server that
    does not answer: that is reported in its entry.
    """
    record = LabRecord.load(LabLayout(workspace.lab_dir).record_path)
    with store.session() as session:
        servers = list_servers(session, origin="lab")
        targets = [SshTarget.of(server) for server in servers]
        rows = {s.name: {"name": s.name, "role": s.role, "address": s.address} for s in servers}
    if record is None:
        return {
            "up": False,
            "subnet": None,
            "registry": None,
            "servers": list(rows.values()),
            "dns": None,
            "acme": None,
        }
    probes = for_each_server(targets, _probe)
    for name, row in rows.items():
        machine = record.machines.get(name)
        row["running"] = bool(
            machine and machine.process and is_same_process(machine.process.pid, machine.process.start_time)
        )
        outcome = probes.get(name)
        if isinstance(outcome, Exception):
            message = outcome.message if isinstance(outcome, OperationFailed) else str(outcome)
            row.update(ssh_reachable=False, hostname=None, systemd=None, error=message)
        else:
            row.update(ssh_reachable=True, **outcome)
    registry = {
        "address": record.registry_address,
        "answering": bool(record.registry_address and is_answering(record.registry_address)),
    }
    server_rows = sorted(rows.values(), key=lambda row: row["name"])
    up = registry["answering"] and bool(server_rows) and all(row["ssh_reachable"] for row in server_rows)
    gateway = network.LabNetwork.parse(record.subnet).gateway
    layout = LabLayout(workspace.lab_dir)
    domain_services = {  # None: this lab has none (dnsmasq or Pebble was not installed when it came up)
        "dns": record.dns and {"address": f"{gateway}:{dns.PORT}", "answering": dns.is_answering(gateway)},
        "acme": record.acme and {"directory": acme.directory_url(gateway), "ca_root": str(layout.acme_ca_root),
                                 "answering": acme.is_answering(layout, gateway)},
    }  # fmt: skip
    return {"up": up, "subnet": record.subnet, "registry": registry, "servers": server_rows, **domain_services}
