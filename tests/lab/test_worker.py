"""The worker on the lab: a request approved from the CLI is provisioned by `ruche worker`; a worker
killed in the middle of the run is taken over by another, and the request ends done exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.actions.request_submit import submit_request
from orchestrator.processes import processes_of_worker

W = "--workspace"


def ruche_process(lab: Path, *arguments: str, log: Path | None = None, **options):
    argv = [sys.executable, "-m", "orchestrator", W, str(lab), *arguments]
    if log is None:
        return subprocess.run(argv, capture_output=True, text=True, timeout=900, **options)
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, **options)


def queued(ruche, lab: Path) -> list[dict]:
    return json.loads(ruche(W, str(lab), "queue", "list", "--json").stdout)


def wait_until_converging(ruche, lab: Path, run_id: int, worker: subprocess.Popen, log: Path) -> dict:
    """Wait until ``worker`` runs ``run_id`` and ansible is in its tasks; give the queued run."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = next(r for r in queued(ruche, lab) if r["id"] == run_id)
        if run["state"] == "running" and "task:" in run["progress"]:
            return run
        assert worker.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError("the worker never started the run")


def test_a_worker_killed_mid_run_is_taken_over_and_the_request_ends_done_once(lab, ruche, tmp_path):
    w = [W, str(lab)]
    assert (
        ruche(*w, "association", "add", "verger", "--name", "Le verger", "--email", "contact@verger.example").exit_code
        == 0
    )
    request = submit_request(lab, association="verger", service="radicale", name="agenda", size="small",
                             parameters={"admin_user": "pomme"}, requested_by="membre@verger.example")  # fmt: skip
    approved = ruche(*w, "request", "approve", str(request["id"]), "--server", "lab-1", "--json")
    assert approved.exit_code == 0, approved.stderr
    run_id = json.loads(approved.stdout)["queued_run"]

    log = tmp_path / "first-worker.log"
    first = ruche_process(lab, "worker", "--stale-after", "30", "--poll", "0.5", "--watch", "0", log=log)
    first_name = wait_until_converging(ruche, lab, run_id, first, log)["claimed_by"]  # cut the worker off now
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    # ansible-playbook runs in its own pty session: it outlives the worker, still converging lab-1
    assert processes_of_worker(first_name), "no leftover of the killed worker (the test no longer shows the takeover)"

    # it takes the run back once the killed worker's heartbeat (every 5 s) is --stale-after old: the least, 10 s
    second = ruche_process(lab, "worker", "--once", "--stale-after", "10", "--poll", "1")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "1 taken back from stopped workers" in second.stdout
    assert f"worker {first_name} is gone" in second.stderr  # its leftovers were stopped before the run was retried
    assert processes_of_worker(first_name) == []

    run = next(r for r in queued(ruche, lab) if r["id"] == run_id)
    assert (run["state"], run["attempts"]) == ("done", 2)
    shown = json.loads(ruche(*w, "request", "show", str(request["id"]), "--json").stdout)
    kinds = [e["kind"] for e in shown["history"]]
    assert shown["state"] == "done" and kinds.count("request.done") == 1 and "request.failed" not in kinds
    status = {e["address"]: e for e in json.loads(ruche(*w, "status", "--json").stdout)}
    assert (status["verger/agenda"]["state"], status["verger/agenda"]["health"]) == ("running", "healthy")


def test_a_worker_told_twice_to_stop_ends_its_runs_processes_and_the_run_is_retried(lab, ruche, tmp_path):
    w = [W, str(lab)]
    assert (
        ruche(*w, "association", "add", "ruche-test", "--name", "Deux signaux", "--email", "c@deux.example").exit_code
        == 0
    )
    request = submit_request(lab, association="ruche-test", service="radicale", name="carnet", size="small",
                             parameters={}, requested_by="membre@deux.example")  # fmt: skip
    approved = ruche(*w, "request", "approve", str(request["id"]), "--server", "lab-2", "--json")
    assert approved.exit_code == 0, approved.stderr
    run_id = json.loads(approved.stdout)["queued_run"]

    log = tmp_path / "worker.log"
    first = ruche_process(lab, "worker", "--poll", "0.5", "--watch", "0", log=log)
    name = wait_until_converging(ruche, lab, run_id, first, log)["claimed_by"]
    assert processes_of_worker(name)
    first.send_signal(signal.SIGTERM)  # the first asks it to finish its run; the second, to stop now
    time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 1
    assert "stopped at once" in log.read_text()
    assert processes_of_worker(name) == []  # no playbook left converging lab-2 behind its back

    second = ruche_process(lab, "worker", "--once", "--stale-after", "10", "--poll", "1")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    run = next(r for r in queued(ruche, lab) if r["id"] == run_id)
    assert (run["state"], run["attempts"]) == ("done", 2)
    assert json.loads(ruche(*w, "request", "show", str(request["id"]), "--json").stdout)["state"] == "done"
