"""versions and upgrades: instances record the upstream version they run; upgrades are recorded

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "1+3.5.3" (catalogue revision + upstream version, one version per entry) becomes "3.5.3": entries
    # now list their versions by upstream version (`versions:`), and each instance runs one of them.
    instances = sa.table("instances", sa.column("id", sa.Integer), sa.column("service_version", sa.String))
    connection = op.get_bind()
    for row_id, version in connection.execute(sa.select(instances.c.id, instances.c.service_version)).all():
        if version and "+" in version:
            connection.execute(
                instances.update().where(instances.c.id == row_id).values(service_version=version.split("+", 1)[1])
            )
    op.create_table(
        "upgrades",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instances.id", ondelete="SET NULL"), nullable=True),
        sa.Column("instance_address", sa.String(80), nullable=False),
        sa.Column("service_id", sa.String(32), nullable=False),
        sa.Column("server", sa.String(63), nullable=False),
        sa.Column("from_version", sa.String(64), nullable=False),
        sa.Column("to_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step", sa.String(200), nullable=False, server_default=""),
        sa.Column("requested_by", sa.String(120), nullable=False),
        sa.Column("fleet", sa.String(40), nullable=True),
        sa.Column("safety_snapshot", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_upgrades_instance_address", "upgrades", ["instance_address"])
    op.add_column("queued_runs", sa.Column("kind", sa.String(16), nullable=False, server_default="apply"))
    op.add_column("queued_runs", sa.Column("payload", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queued_runs") as table:
        table.drop_column("payload")
        table.drop_column("kind")
    op.drop_index("ix_upgrades_instance_address", "upgrades")
    op.drop_table("upgrades")
