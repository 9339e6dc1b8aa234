"""associations: whether ruche has seen (or created) their restic repository

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN: no table copy (instances refer to associations)
    op.add_column(
        "associations", sa.Column("backup_repository_ready", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("associations") as table:
        table.drop_column("backup_repository_ready")
