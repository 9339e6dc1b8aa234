"""Booting and stopping lab servers with systemd-nspawn."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from orchestrator.errors import OperationFailed, TimedOut
from orchestrator.lab.host import start_detached
from orchestrator.lab.record import ProcessRecord
from orchestrator.processes import is_same_process
from orchestrator.remote import SshTarget, run_command


def boot(name: str, rootfs: Path, console_log: Path) -> ProcessRecord:
    """Boot ``rootfs`` as server ``name`` in its own network namespace; give its nspawn process.

    The guest gets a unified (v2) cgroup tree so that Podman quadlets work, and no network link
    (the caller attaches one).  Its console goes to ``console_log``.
    """
    argv = [
        "systemd-nspawn", "--quiet", f"--directory={rootfs}", f"--machine={name}",
        f"--hostname={name}", "--register=no", "--keep-unit", "--boot", "--private-network",
        "--capability=all", "--system-call-filter=@keyring @mount @privileged",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no",
    ]  # fmt: skip
    return start_detached(argv, console_log, what=f"systemd-nspawn for {name}",
                          env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1", "SYSTEMD_LOG_COLOR": "0"})  # fmt: skip


def _in_own_namespaces(pid: int) -> bool:
    try:
        return all(
            os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}") for kind in ("pid", "net")
        )
    except OSError:  # gone meanwhile
        return False


def leader_pid(process: ProcessRecord, *, name: str, console_log: Path, timeout: float = 30) -> int:
    """Give the pid of the guest's init (the nspawn process's child); raises OperationFailed if none comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(process.pid, process.start_time):
            raise OperationFailed(f"server {name} stopped while booting; see its console log {console_log}")
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        for child in children:
            # nspawn's first child is a short-lived helper in the host's namespaces; the guest's init
            # is the one already in its own PID and network namespaces.
            if _in_own_namespaces(int(child)):
                return int(child)
        time.sleep(0.1)
    raise TimedOut(f"server {name} has no init process after {timeout:.0f} s; see its console log {console_log}")


def wait_for_ssh(target: SshTarget, *, console_log: Path, timeout: float = 120) -> None:
    """Return once ``target`` runs a command over SSH; raises TimedOut naming the server and its log."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            run_command(target, ["true"], timeout=10)
            return
        except OperationFailed as error:
            last_error = error.message
            time.sleep(1)
    raise TimedOut(
        f"server {target.name} ({target.address}) did not answer SSH within {timeout:.0f} s: {last_error}",
        hint=f"read its console log {console_log}; `ruche lab down` cleans up",
    )


def stop(process: ProcessRecord, *, timeout: float = 60) -> None:
    """Power the server off in order (SIGTERM to nspawn), SIGKILL after ``timeout``; no-op if it is gone.

    Only the recorded process is signalled, and only if its start time still matches.
    """
    if not is_same_process(process.pid, process.start_time):
        return
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(process.pid, process.start_time):
            return
        _reap(process.pid)
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    while is_same_process(process.pid, process.start_time):
        _reap(process.pid)
        time.sleep(0.1)


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child (so it does not linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def remove_root(root: Path, *, attempts: int = 30) -> None:
    """Delete a stopped server's directory. A server killed after its power-off timed out may leave
    processes (a container, its conmon) that still write into its root file system for a moment:
    those are killed, and the removal is tried again until nothing is left."""
    for _attempt in range(attempts - 1):
        kill_processes_inside(root)
        try:
            shutil.rmtree(root)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(1)
    shutil.rmtree(root)


def kill_processes_inside(root: Path) -> list[int]:
    """SIGKILL every process whose root directory lies under ``root``; give their PIDs."""
    inside = str(root.resolve())
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            process_root = os.readlink(entry / "root")
        except OSError:
            continue
        if process_root == inside or process_root.startswith(inside + "/"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed
