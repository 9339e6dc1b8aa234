"""instances: a fixed subordinate UID/GID range each (slot), unique fleet-wide

Existing instances that are not deleted get slots in the order they were created; the next
apply moves their files into the new range (see orchestrator/idranges.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN and a unique index: no table copy, which SQLite could not do while
    # other tables' rows (backup runs, requests) refer to instances
    op.add_column("instances", sa.Column("id_slot", sa.Integer(), nullable=True))
    op.create_index("uq_instance_id_slot", "instances", ["id_slot"], unique=True)
    connection = op.get_bind()
    rows = connection.execute(sa.text("select id from instances where state != 'deleted' order by id")).fetchall()
    for slot, (identifier,) in enumerate(rows):
        connection.execute(
            sa.text("update instances set id_slot = :slot where id = :id"), {"slot": slot, "id": identifier}
        )


def downgrade() -> None:
    op.drop_index("uq_instance_id_slot", table_name="instances")
    with op.batch_alter_table("instances") as table:
        table.drop_column("id_slot")
