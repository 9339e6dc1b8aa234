"""catalog checks: each run of `ruche catalog check` and the steps it passed

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("service_id", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("server", sa.String(63), nullable=False),
        sa.Column("association", sa.String(32), nullable=False),
        sa.Column("ruche_version", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("steps_passed", sa.Integer(), nullable=False),
        sa.Column("steps_total", sa.Integer(), nullable=False),
        sa.Column("failed_step", sa.String(60), nullable=True),
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_catalog_checks_service_id", "catalog_checks", ["service_id"])


def downgrade() -> None:
    op.drop_index("ix_catalog_checks_service_id", "catalog_checks")
    op.drop_table("catalog_checks")
