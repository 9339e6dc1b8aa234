"""index backup_runs on (instance_id, finished_at): the footprint reads each instance's backups in time order

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


INDEX = "ix_backup_runs_instance_finished"


def upgrade() -> None:
    # created only where missing: a state brought back to an older revision and upgraded again keeps it
    if INDEX not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("backup_runs")}:
        op.create_index(INDEX, "backup_runs", ["instance_id", "finished_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="backup_runs")
