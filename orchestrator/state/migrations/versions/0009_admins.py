"""admins of the web app (password hashed with Argon2id), admin sessions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("web_sessions") as table:
        table.add_column(
            sa.Column(
                "admin_id",
                sa.Integer(),
                sa.ForeignKey("admins.id", ondelete="CASCADE", name="fk_web_sessions_admin"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as table:
        table.drop_column("admin_id")
    op.drop_table("admins")
