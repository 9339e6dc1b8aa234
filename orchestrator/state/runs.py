"""The audit trail of provisioning runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.state.models import Run


def record_run(session: Session, run: dict, *, target: str) -> Run:
    """Store a run as given by ``actions.apply`` (a RunResult as a dict); give the row."""
    hosts = run["hosts"]
    row = Run(
        id=run["run_id"], playbook=run["playbook"], target=target, status=run["status"], rc=run["rc"],
        changed=sum(h["changed"] for h in hosts.values()),
        failed=sum(h["failed"] + h["unreachable"] for h in hosts.values()),
        hosts=hosts, artifacts=run["artifacts"],
        started=datetime.fromisoformat(run["started"]), finished=datetime.fromisoformat(run["finished"]),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def list_runs(session: Session, *, limit: int = 50) -> list[Run]:
    """Give the newest ``limit`` runs, newest first."""
    return list(session.scalars(select(Run).order_by(Run.started.desc(), Run.id.desc()).limit(limit)))


def get_run(session: Session, run_id: str) -> Run:
    """Give run ``run_id``; raises NotFound."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}", hint="`ruche runs list` shows them")
    return run


def run_as_dict(run: Run) -> dict:
    return {
        "id": run.id, "playbook": run.playbook, "target": run.target, "status": run.status, "rc": run.rc,
        "changed": run.changed, "failed": run.failed, "hosts": run.hosts, "artifacts": run.artifacts,
        "started": run.started.isoformat(), "finished": run.finished.isoformat(),
    }  # fmt: skip
