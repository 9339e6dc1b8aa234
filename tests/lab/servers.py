"""Reaching the lab's servers from tests: SSH targets and commands, by server name."""

from __future__ import annotations

from pathlib import Path

from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.remote import SshTarget, run_command
from orchestrator.workspace import open_workspace


def target(lab: Path, server: str) -> SshTarget:
    """The SSH target of lab server ``server`` in workspace ``lab``."""
    workspace = open_workspace(lab)
    record = LabRecord.load(LabLayout(workspace.lab_dir).record_path)
    machine = record.machines[server]
    return SshTarget(
        name=server, address=machine.address, key_path=str(workspace.lab_dir / "ssh" / "id_ed25519"),
        known_hosts_path=str(workspace.lab_dir / "ssh" / "known_hosts"),
    )  # fmt: skip


def address_of(lab: Path, server: str) -> str:
    """The IPv4 address of lab server ``server``."""
    return target(lab, server).address


def on(lab: Path, server: str, *argv: str) -> str:
    """Run ``argv`` on lab server ``server``; give its output (raises OperationFailed if it fails)."""
    return run_command(target(lab, server), list(argv))
