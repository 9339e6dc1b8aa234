"""association managers: a member's invite may make them their association's manager, with a name for the trail

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invites", sa.Column("name", sa.String(80), nullable=False, server_default=""))
    op.add_column("invites", sa.Column("manager", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("invites") as table:
        table.drop_column("manager")
        table.drop_column("name")
