"""alerts: what the watcher found wrong, told and reminded; an association's opt-in to its incidents' mails;
leases (one watch at a time across workers and machines)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("association", sa.String(32), nullable=True),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notify_error", sa.String(1000), nullable=False),
        sa.Column("told", sa.JSON(), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(120), nullable=True),
        sa.Column("ack_reason", sa.String(500), nullable=True),
    )
    op.create_index("ix_alerts_association", "alerts", ["association"])
    op.create_index("ix_alerts_cleared_at", "alerts", ["cleared_at"])
    still_open = sa.text("cleared_at IS NULL")
    op.create_index("uq_alert_open", "alerts", ["kind", "subject"], unique=True, sqlite_where=still_open,
                    postgresql_where=still_open)  # fmt: skip
    op.create_table(
        "leases",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(120), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("associations") as table:
        table.add_column(sa.Column("alerts_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        table.add_column(sa.Column("language", sa.String(8), nullable=False, server_default="fr"))


def downgrade() -> None:
    with op.batch_alter_table("associations") as table:
        table.drop_column("language")
        table.drop_column("alerts_opt_in")
    op.drop_table("leases")
    op.drop_table("alerts")
