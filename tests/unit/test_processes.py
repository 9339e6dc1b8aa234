"""A dead worker's leftovers are found by the RUCHE_WORKER mark in their environment and stopped; a
live worker on this machine keeps its runs even when its heartbeats lag."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from orchestrator.actions.worker import release_stale_worker
from orchestrator.processes import (
    WORKER_VARIABLE,
    is_local,
    is_same_process,
    process_start_time,
    processes_of_worker,
    stop_processes_of_worker,
    worker_is_alive,
    worker_name,
)


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid  # reaped: nothing runs under this PID now (unless reused within the test)


def test_a_dead_workers_processes_and_their_children_are_stopped_and_its_runs_released(tmp_path):
    name = worker_name(pid=dead_pid(), token="dead01")
    # like ansible-playbook in its own session, with an SSH child: both outlive the worker
    leftover = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], env={**os.environ, WORKER_VARIABLE: name},
                                start_new_session=True)  # fmt: skip
    time.sleep(0.3)
    marked = processes_of_worker(name)
    assert leftover.pid in marked and len(marked) == 2  # the shell and its sleep
    other = subprocess.Popen(
        ["sleep", "300"], env={**os.environ, WORKER_VARIABLE: worker_name(pid=dead_pid(), token="other")}
    )
    try:
        assert is_local(name) and not worker_is_alive(name)
        assert release_stale_worker(name) is True
        leftover.wait(timeout=20)
        assert processes_of_worker(name) == []
        assert other.poll() is None  # another worker's processes are left alone
    finally:
        for process in (leftover, other):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_live_local_worker_keeps_its_runs_and_other_machines_workers_are_left_to_their_heartbeats():
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "orchestrator", "worker"])
    try:
        time.sleep(0.2)
        name = worker_name(pid=alive.pid, token="slow01")
        assert worker_is_alive(name) and release_stale_worker(name) is False
        assert alive.poll() is None
        host, pid, start, token = name.split(":")
        recycled = f"{host}:{pid}:{int(start) - 1}:{token}"  # the same PID, another process: not that worker
        assert not worker_is_alive(recycled)
    finally:
        alive.kill()
        alive.wait()
    assert release_stale_worker("another-machine:1234:abcdef") is True
    assert not worker_is_alive(worker_name(pid=os.getpid(), token="pytest"))  # a PID that is not a worker


def test_what_ignores_sigterm_is_killed_after_the_grace_time():
    name = worker_name(pid=dead_pid(), token="stubborn")
    stubborn = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 300 & wait"], env={**os.environ, WORKER_VARIABLE: name}
    )
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert len(stop_processes_of_worker(name, grace_seconds=1)) == 2
        assert stubborn.wait(timeout=10) == -9 and time.monotonic() - started >= 1
        deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: the orphaned sleep may take a moment
        while processes_of_worker(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_of_worker(name) == []
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait()


def test_a_process_is_identified_by_pid_and_start_time():
    start = process_start_time(os.getpid())
    assert start is not None and is_same_process(os.getpid(), start)
    assert not is_same_process(os.getpid(), start + 1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_start_time(child.pid) is None
