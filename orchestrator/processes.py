"""Finding and stopping a killed worker's leftover processes on this machine.

ansible-runner starts ansible-playbook in its own pty session with SIGHUP ignored, so when a
worker is killed (SIGKILL, OOM) the playbook and its SSH connections go on converging a server
with nobody listening. Every process a worker starts inherits the ``RUCHE_WORKER`` environment
variable naming it; a worker taking back a dead worker's runs first stops what still carries
that name, so two runs never converge one server at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

WORKER_VARIABLE = "RUCHE_WORKER"
PROC = Path("/proc")


def worker_name(pid: int | None = None, token: str = "") -> str:
    """A worker's name: ``HOST:PID:START:TOKEN`` (host, process and its start time tell where to look for it)."""
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start_time(pid) or 0}:{token}"


def is_local(name: str) -> bool:
    """Tell whether worker ``name`` ran on this machine."""
    return name.split(":", 1)[0] == socket.gethostname()


def worker_is_alive(name: str) -> bool:
    """Tell whether local worker ``name``'s process still runs (the same process: PID and start time, a ruche worker)."""
    try:
        _host, pid, start, _token = name.split(":")
        if not is_same_process(int(pid), int(start)):
            return False
        command = (PROC / pid / "cmdline").read_bytes().split(b"\0")
    except (ValueError, OSError):
        return False
    return b"worker" in command and any(b"orchestrator" in part or part.endswith(b"ruche") for part in command)


def processes_of_worker(name: str) -> list[int]:
    """Give the PIDs of this machine's processes started by worker ``name`` (marked in their environment)."""
    marker = f"{WORKER_VARIABLE}={name}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def stop_processes_of_worker(name: str, *, grace_seconds: float = 10.0) -> list[int]:
    """Stop (SIGTERM, then SIGKILL after ``grace_seconds``) what worker ``name`` left running here; give their PIDs."""
    pids = processes_of_worker(name)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    return pids


def process_start_time(pid: int) -> int | None:
    """Give the start time (clock ticks since boot) of process ``pid``, or None if it is gone (or a zombie).

    Paired with the pid it identifies one process for good: a recycled pid has another start time.
    """
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces; the fields after its closing parenthesis do not
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def is_same_process(pid: int, start_time: int) -> bool:
    """Tell whether process ``pid`` is still the one that started at ``start_time``."""
    return process_start_time(pid) == start_time


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    return process_start_time(pid) is not None  # a zombie has stopped; only its parent's wait() is missing
