"""usage samples taken before 0021 get the seconds they stand for (the time since the instance's previous sample
without error, when it is at most a day old: the rule of state/usage.sample_of), so that footprints and roll-ups
over those months count them instead of 0; their CPU stays unknown (no counters were kept)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

MAX_GAP_SECONDS = 86400  # state/usage.MAX_GAP_SECONDS when this was written (a migration keeps its own copy)
BATCH = 5000

samples = sa.table(
    "usage_samples",
    sa.column("id", sa.Integer),
    sa.column("instance_id", sa.Integer),
    sa.column("taken_at", sa.DateTime(timezone=True)),
    sa.column("error", sa.String),
    sa.column("cpu_containers", sa.JSON),
    sa.column("seconds", sa.Integer),
)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def upgrade() -> None:
    connection = op.get_bind()
    # Only instances with a sample recorded before 0021 (no CPU counters and no seconds) are read, in time order,
    # streamed: a year of samples of a large fleet is never held in memory.
    to_fill = (
        sa.select(samples.c.instance_id)
        .where(samples.c.seconds == 0, samples.c.error == "", samples.c.cpu_containers.is_(None))
        .distinct()
        .scalar_subquery()
    )
    rows = connection.execute(
        sa.select(samples.c.id, samples.c.instance_id, samples.c.taken_at, samples.c.error, samples.c.seconds,
                  samples.c.cpu_containers)
        .where(samples.c.instance_id.in_(to_fill))
        .order_by(samples.c.instance_id, samples.c.taken_at, samples.c.id)
        .execution_options(yield_per=BATCH)
    )  # fmt: skip
    updates: list[dict] = []
    instance, previous = None, None
    for row in rows:
        if row.instance_id != instance:
            instance, previous = row.instance_id, None
        taken_at = _utc(row.taken_at)
        if row.error == "" and row.seconds == 0 and row.cpu_containers is None and previous is not None:
            gap = round((taken_at - previous).total_seconds())
            if 0 < gap <= MAX_GAP_SECONDS:
                updates.append({"row_id": row.id, "filled": gap})
        if row.error == "":
            previous = taken_at
        if len(updates) >= BATCH:
            _write(updates)
            updates = []
    if updates:
        _write(updates)


def _write(updates: list[dict]) -> None:
    op.get_bind().execute(
        samples.update().where(samples.c.id == sa.bindparam("row_id")).values(seconds=sa.bindparam("filled")),
        updates,
    )


def downgrade() -> None:
    pass  # the seconds filled in are what 0021's samples would have recorded; nothing to undo
