"""health checks kept (availability over a period); associations that agreed to be named publicly

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_address", sa.String(80), nullable=False),
        sa.Column("service_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("health", sa.String(16), nullable=False),
    )
    op.create_index("ix_health_checks_at", "health_checks", ["at"])
    op.add_column("associations", sa.Column("listed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("associations") as table:
        table.drop_column("listed")
    op.drop_index("ix_health_checks_at", "health_checks")
    op.drop_table("health_checks")
