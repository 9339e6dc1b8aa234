"""rate limits in the state database, shared by every web process

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", "key"),
    )
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_id", sa.Integer(), sa.ForeignKey("rate_limit_keys.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_limit_hits_key_id", "rate_limit_hits", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_rate_limit_hits_key_id", "rate_limit_hits")
    op.drop_table("rate_limit_hits")
    op.drop_table("rate_limit_keys")
