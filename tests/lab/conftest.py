"""The lab tier: one real lab for the whole session, brought up once and torn down at the end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.actions.init import init_workspace
from orchestrator.actions.lab_down import tear_down
from orchestrator.actions.lab_up import bring_up
from orchestrator.config import LabSettings
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.processes import is_same_process
from orchestrator.workspace import open_workspace

SESSION_SUBNET = "10.213.49.0/24"  # short-lived labs of test_lab.py use .50 and .51


def session_subnet() -> str:
    """The session lab's subnet: .49 for the first (or only) pytest process, .53, .54... for the other
    pytest-xdist workers, each of which brings up a lab of its own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    return SESSION_SUBNET if index == 0 else f"10.213.{52 + index}.0/24"


def make_lab_workspace(path: Path, subnet: str) -> Path:
    """Create a workspace whose lab uses ``subnet`` (tests keep off the default one)."""
    init_workspace(path, collective="Lab tests", base_domain="lab.ruche.test", state_url=None)
    workspace = open_workspace(path)
    workspace.save_config(workspace.config.model_copy(update={"lab": LabSettings(subnet=subnet)}))
    return path


def leftovers(record: LabRecord) -> list[str]:
    """Give what of ``record`` still exists on this machine (processes, links)."""
    found = []
    processes = [m.process for m in record.machines.values()] + [record.registry, record.dns, record.acme]
    found += [f"process {p.pid}" for p in processes if p and is_same_process(p.pid, p.start_time)]
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, check=True).stdout)
    names = {link["ifname"] for link in links}
    wanted = {record.bridge} | {m.host_link for m in record.machines.values()}
    found += [f"link {name}" for name in sorted(names & {w for w in wanted if w})]
    return found


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Path:
    """The path of a workspace whose lab (2 application servers, 1 backup server) is up."""
    if os.geteuid() != 0:
        pytest.fail("the lab tier needs root: run scripts/test as root (or select -m 'not lab')")
    path = make_lab_workspace(tmp_path_factory.mktemp("lab") / "workspace", session_subnet())
    layout = LabLayout(open_workspace(path).lab_dir)
    try:
        bring_up(path, app_servers=2, progress=lambda message: print(f"lab up: {message}", flush=True))
        yield path
    finally:
        record = LabRecord.load(layout.record_path)
        tear_down(path)
        if record is not None:
            assert leftovers(record) == [], "lab down left things behind"
        assert not layout.root.exists()
