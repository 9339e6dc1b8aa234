"""member exports: an association's data prepared by the worker for its members to download once (issue 27)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # made only where missing: a state brought back to an older revision and upgraded again keeps it (and its rows)
    if sa.inspect(op.get_bind()).has_table("member_exports"):
        return
    op.create_table(
        "member_exports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "association_id", sa.Integer(), sa.ForeignKey("associations.id", ondelete="CASCADE"), nullable=False
        ),  # fmt: skip
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("queued_run_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(1000), nullable=False),
    )
    op.create_index("ix_member_exports_association_id", "member_exports", ["association_id"])
    op.create_index("ix_member_exports_created_at", "member_exports", ["created_at"])
    # one export queued or ready per association: a second request at the same moment is refused by the database
    still_open = sa.text("status IN ('queued', 'ready')")
    op.create_index("uq_member_export_open", "member_exports", ["association_id"], unique=True,
                    sqlite_where=still_open, postgresql_where=still_open)  # fmt: skip


def downgrade() -> None:
    op.drop_table("member_exports")
