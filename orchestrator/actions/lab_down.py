"""``ruche lab down``: stop and remove everything the lab created, by the ids it recorded."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.lab import machine, network
from orchestrator.lab.host import require_root
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.state.servers import list_servers, remove_server
from orchestrator.workspace import open_workspace


def tear_down(workspace_path: Path | None, *, progress: Progress = no_progress) -> dict:
    """Remove the lab of the workspace: its settings, servers, links, bridge, registry, root file systems, registry
    entries; give counts of what was removed.  Safe to run on a half-created lab or no lab at all.
    """
    require_root()
    removed = {"servers": 0, "links": 0, "registry": 0, "registered": 0, "instances": 0}
    # the lab's settings go first (with the lab's directory at the end, again): ruche.toml's alone apply from now
    # on, and a damaged settings file cannot stop the lab from being taken down
    open_workspace(workspace_path).lab_settings_path.unlink(missing_ok=True)
    with opened(workspace_path) as (workspace, store):
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
            finally:  # whatever failed above, the registry never outlives the lab (it would hold its address)
                if record.registry is not None:
                    progress("stopping the lab registry")
                    machine.stop(record.registry, timeout=10)
                    removed["registry"] = 1
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
