"""queued runs: the persistent queue the worker takes provisioning runs from

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queued_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("server", sa.String(63), nullable=False),
        sa.Column("instance_address", sa.String(80), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        # equals `server` while the run is running, NULL otherwise: its unique index lets at most one
        # run per server run at a time, whatever the number of workers (NULLs never collide)
        sa.Column("running_server", sa.String(63), nullable=True, unique=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="3"),
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("claimed_by", sa.String(120), nullable=True),
        sa.Column("run_id", sa.String(40), nullable=True),
        sa.Column("progress", sa.String(500), nullable=False, server_default=""),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_queued_runs_state_created", "queued_runs", ["state", "created_at"])


def downgrade() -> None:
    op.drop_table("queued_runs")
