"""An upgrade still recorded as running is interrupted when the process that ran it is gone (killed, rebooted)."""

from __future__ import annotations

import socket
import subprocess

from orchestrator.processes import worker_name
from orchestrator.state.models import Upgrade
from orchestrator.state.upgrades import is_interrupted


def record(process: str | None) -> Upgrade:
    return Upgrade(status="running", detail={"steps": [], "journal": [], **({"process": process} if process else {})})


def test_an_upgrade_whose_process_runs_is_not_interrupted():
    assert not is_interrupted(record(worker_name(token="upgrade")))


def test_an_upgrade_whose_process_ended_is_interrupted():
    child = subprocess.Popen(["sleep", "30"])
    name = worker_name(child.pid, token="upgrade")
    assert not is_interrupted(record(name))
    child.kill()
    child.wait()
    assert is_interrupted(record(name))


def test_a_pid_taken_by_another_process_since_is_not_the_upgrade():
    host, pid, start, token = worker_name(token="upgrade").split(":")
    assert is_interrupted(record(f"{host}:{pid}:{int(start) + 1}:{token}"))


def test_an_upgrade_run_from_another_machine_is_never_taken_for_interrupted():
    assert not is_interrupted(record(f"not-{socket.gethostname()}:1:1:upgrade"))


def test_an_upgrade_recorded_without_its_process_is_interrupted():
    assert is_interrupted(record(None))
    assert is_interrupted(record(f"{socket.gethostname()}:garbled"))
