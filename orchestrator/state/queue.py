"""The persistent run queue: enqueue, claim (at most one running run per server), heartbeat, finish, recover.

Safe with several workers on SQLite and PostgreSQL alike: a claim is one conditional UPDATE
(``state = 'queued'`` → ``'running'``), and the unique ``running_server`` column refuses a second
running run on the same server, whichever worker tries.

Runs of kind ``upgrade`` belong to a fleet upgrade (``payload``: to, fleet, canary, parallel): a
canary runs alone, the others wait until every canary of their fleet is done, at most ``parallel``
of a fleet run at once, and once one of a fleet failed the fleet's waiting runs are cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.state.database import StateStore
from orchestrator.state.models import QueuedRun, ServiceRequest, as_utc, utc_now
from orchestrator.state.requests import move

OPEN_STATES = ("queued", "running")
FAILED_STATES = ("failed", "interrupted", "cancelled")


def enqueue(session: Session, *, server: str, instance_address: str | None, requested_by: str,
            request_id: int | None = None, kind: str = "apply", payload: dict | None = None) -> QueuedRun:  # fmt: skip
    """Add a run for ``server`` (only ``instance_address`` on it, if given) to the queue; give it.

    An identical apply still waiting is given instead of a second one (applying twice changes nothing).
    An upgrade (``kind="upgrade"``, ``payload``: to, fleet, canary, parallel) is tried once.
    """
    waiting = session.scalars(
        select(QueuedRun).where(
            QueuedRun.state == "queued",
            QueuedRun.server == server,
            QueuedRun.kind == kind,
            QueuedRun.instance_address.is_(None)
            if instance_address is None
            else QueuedRun.instance_address == instance_address,
        )  # fmt: skip
    ).first()
    if waiting is not None and waiting.request_id == request_id and kind == "apply":
        return waiting
    run = QueuedRun(server=server, instance_address=instance_address, state="queued", requested_by=requested_by,
                    request_id=request_id, result={}, created_at=utc_now(), kind=kind, payload=payload,
                    max_attempts=1 if kind == "upgrade" else 3)  # fmt: skip
    session.add(run)
    session.flush()
    return run


def claim_next(store: StateStore, worker: str) -> QueuedRun | None:
    """Take the oldest queued run whose server has no running run; give it (now running) or None.

    Each attempt is its own transaction, so two workers never take the same run, and never two
    runs of one server.
    """
    with store.session() as session:
        candidates = list(session.scalars(
            select(QueuedRun.id).where(QueuedRun.state == "queued").order_by(QueuedRun.created_at, QueuedRun.id)
        ))  # fmt: skip
    for run_id in candidates:
        now = utc_now()
        with store.session() as session:
            if _fleet_gate(session, session.get(QueuedRun, run_id)) != "go":
                continue
        try:
            with store.session() as session:
                server = session.scalar(select(QueuedRun.server).where(QueuedRun.id == run_id))
                claimed = session.execute(
                    update(QueuedRun)
                    .where(QueuedRun.id == run_id, QueuedRun.state == "queued")
                    .values(
                        state="running",
                        running_server=server,
                        claimed_by=worker,
                        started_at=now,
                        heartbeat_at=now,
                        attempts=QueuedRun.attempts + 1,
                        progress="started",
                    )  # fmt: skip
                ).rowcount
                if claimed != 1:
                    continue  # another worker took it
        except IntegrityError:
            continue  # its server is busy with another run
        with store.session() as session:
            return session.get(QueuedRun, run_id)
    return None


def _fleet_gate(session: Session, run: QueuedRun | None) -> str:
    """Say whether ``run`` may start now ("go"), must wait ("wait"), or was cancelled (its fleet stopped)."""
    if run is None or run.state != "queued":
        return "wait"
    if run.kind != "upgrade" or not (run.payload or {}).get("fleet"):
        return "go"
    fleet = run.payload["fleet"]
    siblings = [r for r in session.scalars(select(QueuedRun).where(QueuedRun.kind == "upgrade"))
                if (r.payload or {}).get("fleet") == fleet and r.id != run.id]  # fmt: skip
    if any(r.state in FAILED_STATES for r in siblings):
        run.state, run.finished_at = "cancelled", utc_now()
        run.progress = "not started: the fleet upgrade stopped at its first failure"
        return "cancelled"
    running = [r for r in siblings if r.state == "running"]
    if run.payload.get("canary"):
        return "wait" if running else "go"  # a canary runs alone
    if any((r.payload or {}).get("canary") and r.state != "done" for r in siblings):
        return "wait"  # after every canary succeeded
    return "wait" if len(running) >= int(run.payload.get("parallel") or 1) else "go"


def beat(store: StateStore, run_id: int, worker: str, progress: str | None = None) -> bool:
    """Record that ``worker`` is still running ``run_id`` (and its progress); give False if it lost the run."""
    values: dict = {"heartbeat_at": utc_now()}
    if progress is not None:
        values["progress"] = progress[:500]
    with store.session() as session:
        return session.execute(
            update(QueuedRun).where(QueuedRun.id == run_id, QueuedRun.claimed_by == worker, QueuedRun.state == "running")
            .values(**values)
        ).rowcount == 1  # fmt: skip


def finish(store: StateStore, run_id: int, worker: str, *, succeeded: bool, run_identifier: str | None,
           result: dict) -> bool:  # fmt: skip
    """Mark ``run_id`` done or failed and free its server; give False if ``worker`` no longer held it.

    The run's request, if any, becomes done or failed in the same transaction.
    """
    with store.session() as session:
        finished = session.execute(
            update(QueuedRun).where(QueuedRun.id == run_id, QueuedRun.claimed_by == worker, QueuedRun.state == "running")
            .values(state="done" if succeeded else "failed", running_server=None, finished_at=utc_now(),
                    run_id=run_identifier, result=result, progress="finished" if succeeded else "failed")
        ).rowcount == 1  # fmt: skip
        request_id = session.scalar(select(QueuedRun.request_id).where(QueuedRun.id == run_id))
        if finished and request_id is not None:
            _settle_request(session, request_id, "done" if succeeded else "failed", actor=f"worker {worker}",
                            detail={"run_id": run_identifier})  # fmt: skip
        return finished


def _settle_request(session: Session, request_id: int, state: str, *, actor: str, detail: dict) -> None:
    request = session.get(ServiceRequest, request_id)
    if request is not None and request.state == "provisioning":
        move(session, request, state, actor=actor, detail=detail)


def recover_stale(store: StateStore, *, stale_after: timedelta, worker: str | None = None,
                  release: Callable[[str], bool] | None = None) -> list[int]:  # fmt: skip
    """Requeue running runs whose worker stopped beating for ``stale_after`` (killed, lost); give their ids.

    A run that already had ``max_attempts`` is marked ``interrupted`` instead, for an admin to look at.
    Runs held by ``worker`` (the caller, which knows they are alive) are never taken back.
    ``release(claimer)``, called once per stale worker before any of its runs is touched, may stop
    what that worker left running and says whether its runs may be taken back (False: leave them).
    """
    limit = utc_now() - stale_after
    recovered = []
    released: dict[str, bool] = {}
    with store.session() as session:
        for run in session.scalars(select(QueuedRun).where(QueuedRun.state == "running")).all():
            if as_utc(run.heartbeat_at) >= limit or (worker is not None and run.claimed_by == worker):
                continue
            claimer = run.claimed_by or ""
            if release is not None and claimer not in released:
                released[claimer] = release(claimer)
            if not released.get(claimer, True):
                continue
            final = run.attempts >= run.max_attempts
            run.state = "interrupted" if final else "queued"
            run.running_server = None
            run.progress = (f"interrupted: worker {run.claimed_by} stopped answering"
                            + ("; not retried (attempts used up)" if final else "; queued again"))  # fmt: skip
            run.claimed_by = None
            if final and run.request_id is not None:
                _settle_request(
                    session, run.request_id, "failed", actor="worker recovery", detail={"interrupted": True}
                )
            recovered.append(run.id)
    return recovered


def has_open_runs(store: StateStore) -> bool:
    """Tell whether any run is still queued or running."""
    with store.session() as session:
        return session.scalar(select(QueuedRun.id).where(QueuedRun.state.in_(OPEN_STATES)).limit(1)) is not None


def list_queue(session: Session, *, limit: int = 50) -> list[QueuedRun]:
    """Give the newest ``limit`` queued runs, newest first."""
    return list(
        session.scalars(select(QueuedRun).order_by(QueuedRun.created_at.desc(), QueuedRun.id.desc()).limit(limit))
    )


def runs_of_request(session: Session, request_id: int) -> list[QueuedRun]:
    """The queued runs carrying out request ``request_id``, newest first."""
    return list(
        session.scalars(select(QueuedRun).where(QueuedRun.request_id == request_id).order_by(QueuedRun.id.desc()))
    )


def get_queued(session: Session, run_id: int) -> QueuedRun:
    run = session.get(QueuedRun, run_id)
    if run is None:
        raise NotFound(f"no queued run {run_id}", hint="`ruche queue list` shows them")
    return run


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def queued_as_dict(run: QueuedRun) -> dict:
    return {
        "id": run.id, "kind": run.kind, "payload": run.payload, "server": run.server, "instance": run.instance_address,
        "state": run.state,
        "attempts": run.attempts, "requested_by": run.requested_by, "request_id": run.request_id,
        "claimed_by": run.claimed_by, "run_id": run.run_id, "progress": run.progress, "result": run.result,
        "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
        "heartbeat_at": _iso(run.heartbeat_at), "finished_at": _iso(run.finished_at),
    }  # fmt: skip
