"""own domains: an association's domains claimed for its instances, their proof and certificate checks

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("association_id", sa.Integer(), sa.ForeignKey("associations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("wants_primary", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem", sa.String(1000), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tls_status", sa.String(16), nullable=False),
        sa.Column("tls_detail", sa.String(1000), nullable=False),
        sa.Column("tls_issuer", sa.String(500), nullable=False),
        sa.Column("tls_not_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tls_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proof_lost_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("association_id", "name", name="uq_domain_association_name"),
    )
    op.create_index("ix_domains_name", "domains", ["name"])
    attached = sa.text("status = 'attached'")
    op.create_index("uq_domain_attached_name", "domains", ["name"], unique=True, sqlite_where=attached,
                    postgresql_where=attached)  # fmt: skip
    op.add_column("instances", sa.Column("own_domains", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("instances", sa.Column("primary_domain", sa.String(253), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as table:
        table.drop_column("primary_domain")
        table.drop_column("own_domains")
    op.drop_index("uq_domain_attached_name", "domains")
    op.drop_index("ix_domains_name", "domains")
    op.drop_table("domains")
