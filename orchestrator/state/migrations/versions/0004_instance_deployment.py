"""instances: desired state, domain, port, vault-encrypted secrets, applied fingerprint, health

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as table:
        table.add_column(sa.Column("desired_state", sa.String(16), nullable=False, server_default="present"))
        table.add_column(sa.Column("domain", sa.String(255), nullable=False, server_default=""))
        table.add_column(sa.Column("http_port", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("secrets", sa.JSON(), nullable=False, server_default="{}"))
        table.add_column(sa.Column("applied_fingerprint", sa.String(64), nullable=True))
        table.add_column(sa.Column("last_run_id", sa.String(40), nullable=True))
        table.add_column(sa.Column("health", sa.String(16), nullable=False, server_default="unknown"))
        table.add_column(sa.Column("health_detail", sa.String(500), nullable=False, server_default=""))
        table.add_column(sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as table:
        for column in (
            "health_checked_at", "health_detail", "health", "last_run_id", "applied_fingerprint", "secrets",
            "http_port", "domain", "desired_state",
        ):  # fmt: skip
            table.drop_column(column)
