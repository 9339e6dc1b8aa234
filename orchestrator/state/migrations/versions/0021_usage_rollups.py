"""usage over time: each sample's CPU time (counters, per-container start, delta since the previous sample) and
the time it stands for; usage_rollups (an instance's samples of an hour or a UTC day, rolled up)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_samples") as table:
        table.add_column(sa.Column("cpu_usec", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("cpu_containers", sa.JSON(), nullable=True))
        table.add_column(sa.Column("cpu_delta_usec", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("seconds", sa.Integer(), nullable=False, server_default="0"))
    # the roll-up's "anything due?" and the watcher's newest sample read it by time alone
    op.create_index("ix_usage_samples_taken_at", "usage_samples", ["taken_at"])
    op.create_table(
        "usage_rollups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("cpu_usec", sa.BigInteger(), nullable=True),
        sa.Column("memory_byte_seconds", sa.Float(), nullable=True),
        sa.Column("disk_byte_seconds", sa.Float(), nullable=True),
        sa.Column("database_byte_seconds", sa.Float(), nullable=True),
        sa.Column("max_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_disk_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_database_bytes", sa.BigInteger(), nullable=True),
    )
    op.create_index("uq_usage_rollup", "usage_rollups", ["instance_id", "period", "period_start"], unique=True)
    op.create_index("ix_usage_rollups_period_start", "usage_rollups", ["period", "period_start"])


def downgrade() -> None:
    op.drop_table("usage_rollups")
    op.drop_index("ix_usage_samples_taken_at", "usage_samples")
    with op.batch_alter_table("usage_samples") as table:
        table.drop_column("seconds")
        table.drop_column("cpu_delta_usec")
        table.drop_column("cpu_containers")
        table.drop_column("cpu_usec")
