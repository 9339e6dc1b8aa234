"""``ruche lab status``: each lab server, its address, whether SSH answers, its systemd state."""

from __future__ import annotations

from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import OperationFailed
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.lab.registry import is_answering
from orchestrator.processes import is_same_process
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.state.servers import list_servers


def _probe(target: SshTarget) -> dict:
    output = run_command(target, ["sh", "-c", "hostname; systemctl is-system-running || true"], timeout=20).split()
    return {"hostname": output[0] if output else None, "systemd": output[1] if len(output) > 1 else None}


def inspect(workspace_path: Path | None) -> dict:
    """Give the lab's state: ``{"up": bool, "registry": {...}, "servers": [...]}``.

    ``up`` is true when the registry and every server answer.  Never raises for a server that
    does not answer: that is reported in its entry.
    """
    with opened(workspace_path) as (workspace, store):
        record = LabRecord.load(LabLayout(workspace.lab_dir).record_path)
        with store.session() as session:
            servers = list_servers(session, origin="lab")
            targets = [SshTarget.of(server) for server in servers]
            rows = {s.name: {"name": s.name, "role": s.role, "address": s.address} for s in servers}
    if record is None:
        return {"up": False, "subnet": None, "registry": None, "servers": list(rows.values())}
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
    return {"up": up, "subnet": record.subnet, "registry": registry, "servers": server_rows}
