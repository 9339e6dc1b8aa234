"""The persistent run queue on SQLite and PostgreSQL: claims, one run per server, recovery of stopped workers.

The worker loop is driven here with an executor that records what it was asked to run (the real one
is `ruche apply`, shown on the lab); what is tested is the queue's bookkeeping.
"""

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from orchestrator.actions.worker import run_worker
from orchestrator.state.database import StateStore
from orchestrator.state.models import QueuedRun, utc_now
from orchestrator.state.queue import beat, claim_next, enqueue, finish, recover_stale
from orchestrator.workspace import open_workspace


@pytest.fixture
def store(workspace):
    opened = StateStore(open_workspace(workspace).state_url)
    yield opened
    opened.close()


def queue_runs(store, *targets: tuple[str, str | None]) -> list[int]:
    with store.session() as session:
        return [
            enqueue(session, server=server, instance_address=instance, requested_by="test").id
            for server, instance in targets
        ]


def test_a_server_runs_one_run_at_a_time_while_other_servers_proceed(store):
    a1, a2, b1 = queue_runs(store, ("web-1", "amap/cloud"), ("web-1", "chorale/agenda"), ("web-2", None))
    first, second, third = claim_next(store, "w1"), claim_next(store, "w2"), claim_next(store, "w3")
    assert (first.id, second.id, third) == (a1, b1, None)  # web-1 is busy: its second run waits
    assert finish(store, a1, "w1", succeeded=True, run_identifier="r1", result={}) is True
    assert claim_next(store, "w3").id == a2
    assert finish(store, a2, "w1", succeeded=True, run_identifier="r2", result={}) is False  # not w1's run


def test_the_same_waiting_run_is_not_queued_twice(store):
    first, again = queue_runs(store, ("web-1", None), ("web-1", None))
    assert first == again


def test_concurrent_workers_never_take_the_same_run_nor_two_runs_of_a_server(store):
    queue_runs(store, *[(f"web-{n % 3}", f"asso-{n}/app") for n in range(12)])
    taken: list[QueuedRun] = []
    lock = threading.Lock()

    def take(name: str) -> None:
        run = claim_next(store, name)
        if run is not None:
            with lock:
                taken.append(run)

    threads = [threading.Thread(target=take, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 3 and len({r.id for r in taken}) == 3 and len({r.server for r in taken}) == 3


def test_a_run_whose_worker_stopped_beating_is_queued_again_then_given_up(store):
    (run_id,) = queue_runs(store, ("web-1", None))
    with store.session() as session:
        session.execute(update(QueuedRun).where(QueuedRun.id == run_id).values(max_attempts=2))
    for attempt in (1, 2):
        run = claim_next(store, f"killed-{attempt}")
        assert run.id == run_id and run.attempts == attempt
        assert recover_stale(store, stale_after=timedelta(seconds=30)) == []  # it is beating
        with store.session() as session:
            session.execute(
                update(QueuedRun).where(QueuedRun.id == run_id).values(heartbeat_at=utc_now() - timedelta(minutes=5))
            )
        assert recover_stale(store, stale_after=timedelta(seconds=30)) == [run_id]
        assert beat(store, run_id, f"killed-{attempt}") is False  # the stopped worker lost it
    with store.session() as session:
        final = session.get(QueuedRun, run_id)
        assert final.state == "interrupted" and final.running_server is None and "attempts used up" in final.progress


def test_the_worker_carries_out_every_run_once_and_records_the_outcome(workspace, store, ruche):
    queue_runs(store, ("web-1", "amap/cloud"), ("web-1", None), ("web-2", None))
    seen: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def execute(_workspace, run, progress):
        progress("converging")
        with lock:
            seen.append((run.server, run.instance_address))
        return run.server != "web-2", f"run-{run.id}", {"status": "ok" if run.server != "web-2" else "failed"}

    outcome = run_worker(workspace, once=True, concurrency=4, poll_seconds=0.1, execute=execute)
    assert sorted(seen, key=str) == sorted([("web-1", "amap/cloud"), ("web-1", None), ("web-2", None)], key=str)
    assert len(outcome["done"]) == 2 and len(outcome["failed"]) == 1
    listed = {e["id"]: e for e in json.loads(ruche("--workspace", str(workspace), "queue", "list", "--json").stdout)}
    assert sorted(e["state"] for e in listed.values()) == ["done", "done", "failed"]
    assert all(e["run_id"] == f"run-{e['id']}" and e["attempts"] == 1 for e in listed.values())


def test_apply_enqueue_queues_one_run_per_application_server(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for number in (1, 2):
        assert (
            ruche(*w, "server", "add", f"web-{number}", "--no-connect", "--address", f"192.0.2.{number}").exit_code == 0
        )
    assert (
        ruche(*w, "server", "add", "vault", "--no-connect", "--address", "192.0.2.9", "--role", "backup").exit_code == 0
    )
    queued = json.loads(ruche(*w, "apply", "--enqueue", "--json").stdout)
    assert sorted(q["server"] for q in queued) == ["web-1", "web-2"] and all(q["state"] == "queued" for q in queued)
    missing = ruche(*w, "apply", "--enqueue", "--server", "nope")
    assert missing.exit_code == 4


def test_a_worker_never_takes_back_its_own_runs_even_when_its_heartbeats_are_late(store):
    (run_id,) = queue_runs(store, ("web-1", None))
    claim_next(store, "slow")
    with store.session() as session:
        session.execute(
            update(QueuedRun).where(QueuedRun.id == run_id).values(heartbeat_at=utc_now() - timedelta(minutes=5))
        )
    assert recover_stale(store, stale_after=timedelta(seconds=30), worker="slow") == []
    assert recover_stale(store, stale_after=timedelta(seconds=30), worker="other") == [run_id]


def test_a_stale_workers_runs_are_released_only_when_release_says_so_and_it_is_asked_once(store):
    first, second = queue_runs(store, ("web-1", None), ("web-2", None))
    claim_next(store, "lagging"), claim_next(store, "lagging")
    with store.session() as session:
        session.execute(update(QueuedRun).values(heartbeat_at=utc_now() - timedelta(minutes=5)))
    asked: list[str] = []

    def keep(claimer: str) -> bool:
        asked.append(claimer)
        return False  # e.g. its process still runs on this machine

    assert recover_stale(store, stale_after=timedelta(seconds=30), release=keep) == []
    assert asked == ["lagging"]
    with store.session() as session:
        assert {session.get(QueuedRun, i).state for i in (first, second)} == {"running"}
    assert sorted(recover_stale(store, stale_after=timedelta(seconds=30), release=lambda claimer: True)) == [
        first,
        second,
    ]
