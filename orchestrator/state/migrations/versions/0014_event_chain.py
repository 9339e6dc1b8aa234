"""events: a hash chain (sequence, previous digest, digest), their association, and the chain's head

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from orchestrator.state.event_chain import GENESIS, canonical, chain_digest

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE ADD COLUMN (no table copy); uniqueness and lookups through indexes
    op.add_column("events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("association", sa.String(32), nullable=True))
    op.add_column("events", sa.Column("previous_digest", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("digest", sa.String(64), nullable=True))
    op.create_index("ix_events_seq", "events", ["seq"], unique=True)
    op.create_index("ix_events_association", "events", ["association"])
    chain = op.create_table(
        "event_chain",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
    )
    # the events recorded so far start the chain, oldest first; their association from their subject
    events = sa.table("events", sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("at", sa.DateTime),
                      sa.column("actor", sa.String), sa.column("kind", sa.String), sa.column("subject", sa.String),
                      sa.column("association", sa.String), sa.column("detail", sa.JSON),
                      sa.column("previous_digest", sa.String), sa.column("digest", sa.String))  # fmt: skip
    connection = op.get_bind()
    head, length = GENESIS, 0
    for row in connection.execute(sa.select(events).order_by(events.c.at, events.c.id)).mappings().all():
        length += 1
        association = _association_of(row["kind"], row["subject"], row["detail"])
        digest = chain_digest(head, canonical(length, row["at"], row["actor"], row["kind"], row["subject"], association,
                                              row["detail"]))  # fmt: skip
        connection.execute(
            events.update()
            .where(events.c.id == row["id"])
            .values(seq=length, association=association, previous_digest=head, digest=digest)
        )
        head = digest
    op.bulk_insert(chain, [{"id": 1, "length": length, "head": head}])


def _association_of(kind: str, subject: str, detail) -> str | None:
    """What the events recorded before this revision say of their association."""
    if kind.startswith("request."):
        return (detail or {}).get("association")
    if kind.startswith(("offer.", "invite.")):
        return subject
    if "/" in subject and not subject.startswith(("request/", "server/", "admin/", "application/")):
        return subject.split("/")[0]
    return None


def downgrade() -> None:
    op.drop_table("event_chain")
    op.drop_index("ix_events_association", "events")
    op.drop_index("ix_events_seq", "events")
    with op.batch_alter_table("events") as table:
        for column in ("digest", "previous_digest", "association", "seq"):
            table.drop_column(column)
