"""Measured use: each instance's latest usage sample (``usage_samples``), for the quota report and the metrics."""

from __future__ import annotations

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from orchestrator.state.models import UsageSample


def latest_samples(session: Session) -> dict[int, Row]:
    """Each measured instance's newest sample, by instance id: plain rows (``instance_id``, ``taken_at``,
    ``disk_bytes``, ``database_bytes``, ``memory_bytes``, ``error``), not ORM objects, as this reads the fleet."""
    newest = (
        select(UsageSample.instance_id, func.max(UsageSample.taken_at).label("taken_at"))
        .group_by(UsageSample.instance_id)
        .subquery()
    )
    query = select(UsageSample.instance_id, UsageSample.taken_at, UsageSample.disk_bytes, UsageSample.database_bytes,
                   UsageSample.memory_bytes, UsageSample.error).join(
        newest, (UsageSample.instance_id == newest.c.instance_id) & (UsageSample.taken_at == newest.c.taken_at)
    )  # fmt: skip
    return {row.instance_id: row for row in session.execute(query)}
