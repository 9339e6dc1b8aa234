"""``ruche worker``: take queued runs from the state database and carry them out.

Several workers may run (on one machine or several sharing a PostgreSQL state): each run is
claimed by exactly one, at most one run per server runs at a time, and different servers
proceed in parallel (``concurrency`` runs per worker). A running run's worker beats every few
seconds; a run whose worker stopped beating (killed, machine lost) is queued again by the next
worker that looks, up to its attempts, then marked interrupted. Applying is idempotent, so a run
cut off half-way and retried converges to the same result.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations.converge import converge
from orchestrator.operations.lifecycle import take_final_backup
from orchestrator.operations.member_exports import prepare_export, purge_now
from orchestrator.operations.own_domains import retry_pending
from orchestrator.operations.upgrades import recover_interrupted_upgrades, upgrade_instance
from orchestrator.operations.watch import summary, watch
from orchestrator.processes import WORKER_VARIABLE, is_local, stop_processes_of_worker, worker_is_alive, worker_name
from orchestrator.state.actors import acting_as
from orchestrator.state.events import record_event
from orchestrator.state.instances import get_instance
from orchestrator.state.models import QueuedRun
from orchestrator.state.queue import beat, claim_next, finish, has_open_runs, recover_stale

# (workspace path, the claimed run, a progress callback) -> (succeeded, ansible run id, result summary)
Executor = Callable[[Path | None, QueuedRun, Progress], tuple[bool, str | None, dict]]


def apply_queued(workspace_path: Path | None, run: QueuedRun, progress: Progress) -> tuple[bool, str | None, dict]:
    """Carry out one queued run: ``ruche apply`` (its server, or its one instance), an instance's upgrade, or a
    member's export of their association's data (operations/member_exports.py); the workspace is opened for the run
    (a change to ruche.toml applies from the next run on)."""
    with opened(workspace_path) as (workspace, store):
        if run.kind == "export":
            succeeded, outcome = prepare_export(workspace, store, (run.payload or {}).get("export"), run_id=run.id,
                                                progress=progress)  # fmt: skip
            return succeeded, None, outcome
        if run.kind == "upgrade":
            payload = run.payload or {}
            upgraded = upgrade_instance(workspace, store, run.instance_address, to=payload.get("to"),
                                        fleet=payload.get("fleet"), progress=progress, actor=run.requested_by)  # fmt: skip
            summary = {k: upgraded.get(k) for k in ("id", "status", "from", "to", "step", "safety_snapshot")}
            summary["error"] = (upgraded.get("detail") or {}).get("error")
            return upgraded.get("status") in ("succeeded", "up to date"), None, summary
        recover_interrupted_upgrades(workspace, store, instance=run.instance_address,
                                     server=None if run.instance_address else run.server, by="worker",
                                     progress=progress)  # fmt: skip
        if run.instance_address is not None:
            refused = _final_backup_before_removal(workspace, store, run.instance_address, progress)
            if refused is not None:
                return False, None, refused
            result = converge(workspace, store, instance=run.instance_address, progress=progress)
        else:
            result = converge(workspace, store, server=run.server, progress=progress)
    summary = {"status": result["status"], "changed": result["changed"],
               "instances": [{"address": i["address"], "state": i["state"], "health": i["health"]} for i in result["instances"]]}  # fmt: skip
    return result["succeeded"], result["run_id"], summary


def _final_backup_before_removal(workspace, store, address: str, progress: Progress) -> dict | None:
    """Before a queued run removes an instance that holds data (a manager's delete), take its final backup when
    backups are configured, as `ruche instance delete` does; give None to go on. Refused, nothing removed, when the
    instance is not running (a backup needs it running: resume it first) or the backup fails: the instance is to
    be what it is again (suspended or present), the refusal is recorded and the run's summary says why (given)."""
    with store.session() as session:
        instance = get_instance(session, address)
        state = instance.state
        due = (instance.desired_state in ("absent", "purged") and state not in ("deleted", "planned")
               and workspace.config.backup.repository is not None)  # fmt: skip
    if not due:
        return None
    if state != "running":
        reason, error = "not running", f"it is {state}: a final backup needs it running; resume it, then delete it"
    else:
        backed_up = take_final_backup(workspace, store, address, progress=progress)
        if backed_up["status"] == "success":
            return None
        reason, error = "the final backup failed", (backed_up.get("detail") or {}).get("error")
    with store.session() as session:
        get_instance(session, address).desired_state = "suspended" if state == "suspended" else "present"
        record_event(
            session, kind="instance.removal_refused", subject=address, detail={"reason": reason, "error": error}
        )
    return {"status": "failed", "error": f"{address}: nothing was removed ({reason}): {error}"}


def watch_interval(workspace_path: Path | None) -> int:
    """[alerts] interval_minutes: how often a worker watches when not told."""
    with opened(workspace_path) as (workspace, _store):
        return workspace.config.alerts.interval_minutes


def new_worker_name() -> str:
    """A fresh worker name, ``HOST:PID:START:RANDOM`` (see processes.worker_name)."""
    return worker_name(token=secrets.token_hex(3))


def stop_own_processes(name: str) -> list[int]:
    """For a worker stopping at once: end the processes its runs started (ansible-playbook, SSH); give their PIDs."""
    return stop_processes_of_worker(name, grace_seconds=5)


def release_stale_worker(name: str, progress: Progress = no_progress) -> bool:
    """Before a stale worker's runs are taken back: tell whether they may be, after stopping its leftovers.

    A worker on this machine whose process still runs is only slow (its heartbeats lag): its runs
    stay with it. A dead one's ansible-playbook and SSH processes are stopped first. A worker of
    another machine cannot be checked from here: its heartbeats decide alone.
    """
    if not is_local(name):
        return True
    if worker_is_alive(name):
        progress(f"worker {name} is late but alive: its runs stay with it")
        return False
    stopped = stop_processes_of_worker(name)
    progress(f"worker {name} is gone: {len(stopped)} process(es) it left running stopped, its runs taken back")
    return True


def run_worker(
    workspace_path: Path | None, *, once: bool = False, concurrency: int = 4, poll_seconds: float = 2.0,
    heartbeat_seconds: float = 5.0, stale_after: timedelta = timedelta(seconds=60),
    stop: threading.Event | None = None, execute: Executor = apply_queued, progress: Progress = no_progress,
    name: str | None = None, abandon: threading.Event | None = None, domain_retry: timedelta | None = timedelta(minutes=5),
    watch_every: timedelta | None = None,
) -> dict:  # fmt: skip
    """Work the queue until ``stop`` is set (or, with ``once``, until no run is queued or running).

    Gives ``{"worker", "done": [ids], "failed": [ids], "recovered": [ids]}``. Every process it starts
    carries its ``name`` in RUCHE_WORKER, so that what a killed worker left behind can be found.
    Once ``abandon`` is set (the worker is stopping at once), ending runs are not recorded: they stay
    running until another worker takes them back, instead of failing because their process was ended.
    Every ``domain_retry`` (None: never), in a thread of its own, pending own domains are proven again (a run is
    queued for each instance that got one) and attached ones' certificates looked at (operations/own_domains).
    Every ``watch_every`` (None: never), in a thread of its own, a watch (operations/watch.py: alerts recorded
    and told).
    """
    stop = stop or threading.Event()
    name = name or new_worker_name()
    previous_marker = os.environ.get(WORKER_VARIABLE)
    os.environ[WORKER_VARIABLE] = name
    try:
        return _work(workspace_path, name, once=once, concurrency=concurrency, poll_seconds=poll_seconds,
                     heartbeat_seconds=heartbeat_seconds, stale_after=stale_after, stop=stop, execute=execute,
                     progress=progress, abandon=abandon or threading.Event(), domain_retry=domain_retry,
                     watch_every=watch_every)  # fmt: skip
    finally:
        if previous_marker is None:
            os.environ.pop(WORKER_VARIABLE, None)
        else:
            os.environ[WORKER_VARIABLE] = previous_marker


def _work(workspace_path: Path | None, name: str, *, once: bool, concurrency: int, poll_seconds: float,
          heartbeat_seconds: float, stale_after: timedelta, stop: threading.Event, execute: Executor,
          progress: Progress, abandon: threading.Event, domain_retry: timedelta | None,
          watch_every: timedelta | None = None) -> dict:  # fmt: skip
    outcome: dict = {"worker": name, "done": [], "failed": [], "recovered": []}
    active: dict[int, threading.Thread] = {}
    lock = threading.Lock()
    domains: dict = {"thread": None, "next": time.monotonic()}
    watcher: dict = {"thread": None, "next": time.monotonic()}
    exports_purged = [time.monotonic() - 60]  # when members' expired exports were last deleted (once a minute)
    with opened(workspace_path) as (workspace, store), acting_as(f"worker {name}"):

        def retry_domains() -> None:
            with acting_as(f"worker {name}"):
                try:
                    done = retry_pending(workspace, store, every=domain_retry, actor=f"worker {name}")
                except Exception as error:  # noqa: BLE001 - a failed pass is said; the next one tries again
                    progress(f"[domains] pass failed: {error}")
                    return
            for proof in done["proofs"]:
                progress(
                    f"[domains] {proof['domain']}: {'proven, run queued' if proof['proven'] else 'not proven yet'}"
                )

        def watch_once() -> None:
            with acting_as(f"worker {name}"):
                try:
                    with opened(workspace_path) as (fresh, fresh_store):  # ruche.toml read again: [alerts] changes
                        outcome = watch(fresh, fresh_store, progress=progress)
                except Exception as error:  # noqa: BLE001 - a failed watch is said; the next one tries again
                    progress(f"[watch] failed: {error}")
                    return
            progress(f"[watch] {summary(outcome)}")

        def carry_out(run: QueuedRun) -> None:
            with acting_as(f"worker {name} for {run.requested_by}"):  # the audit trail's actor, in this thread
                carry_out_as_actor(run)

        def carry_out_as_actor(run: QueuedRun) -> None:
            beating = threading.Event()

            def heartbeat() -> None:
                while not beating.wait(heartbeat_seconds):
                    _quietly(beat, store, run.id, name)

            beater = threading.Thread(target=heartbeat, daemon=True)
            beater.start()
            last = [0.0]

            def report(message: str) -> None:
                progress(f"[run {run.id} on {run.server}] {message}")
                if time.monotonic() - last[0] > 1.0:  # the page shows it; no need for every event
                    last[0] = time.monotonic()
                    # the run may hold the state database's write lock (SQLite) right now: progress
                    # is best-effort and must never fail the run it reports on
                    _quietly(beat, store, run.id, name, message)

            try:
                succeeded, run_identifier, result = execute(workspace_path, run, report)
            except Exception as error:  # a failed run is recorded; the worker goes on
                succeeded, run_identifier, result = False, None, {"error": str(error)}
            finally:
                beating.set()
            if abandon.is_set():
                return  # cut off on purpose: the next worker takes it back and runs it again
            finish(store, run.id, name, succeeded=succeeded, run_identifier=run_identifier, result=result)
            with lock:
                outcome["done" if succeeded else "failed"].append(run.id)
                active.pop(run.id, None)
            progress(f"[run {run.id} on {run.server}] {'done' if succeeded else 'failed'}")

        while not stop.is_set():
            outcome["recovered"] += recover_stale(
                store,
                stale_after=stale_after,
                worker=name,
                release=lambda claimer: release_stale_worker(claimer, progress),
            )
            if time.monotonic() - exports_purged[0] >= 60:
                exports_purged[0] = time.monotonic()
                _quietly(purge_now, workspace, store)
            claimed_any = False
            while len(active) < concurrency and not stop.is_set():
                run = claim_next(store, name)
                if run is None:
                    break
                claimed_any = True
                progress(f"[run {run.id} on {run.server}] claimed by {name} (attempt {run.attempts})")
                thread = threading.Thread(target=carry_out, args=(run,), name=f"run-{run.id}")
                with lock:
                    active[run.id] = thread
                thread.start()
            if (
                domain_retry is not None
                and not once
                and time.monotonic() >= domains["next"]
                and not (domains["thread"] and domains["thread"].is_alive())
            ):
                domains["next"] = time.monotonic() + domain_retry.total_seconds()
                domains["thread"] = threading.Thread(target=retry_domains, name="domains", daemon=True)
                domains["thread"].start()
            if (
                watch_every is not None
                and not once
                and time.monotonic() >= watcher["next"]
                and not (watcher["thread"] and watcher["thread"].is_alive())
            ):
                watcher["next"] = time.monotonic() + watch_every.total_seconds()
                watcher["thread"] = threading.Thread(target=watch_once, name="watch", daemon=True)
                watcher["thread"].start()
            if once and not claimed_any and not active and not has_open_runs(store):
                break  # the queue is drained (a run another worker holds counts until it ends or is taken back)
            stop.wait(poll_seconds)
        for thread in list(active.values()) + [t for t in (domains["thread"], watcher["thread"]) if t]:
            thread.join()
    return outcome


def _quietly(function, *arguments) -> None:
    """Call ``function``; a failure (e.g. "database is locked") is skipped, the next beat retries."""
    try:
        function(*arguments)
    except Exception:  # noqa: BLE001 - a missed heartbeat or progress line is not an error of the run
        pass
