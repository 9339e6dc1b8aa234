"""The audit trail's hash chain: its events cannot be edited, deleted or inserted unseen.

Each event has a sequence number, the digest of the event before it and its own:
``sha256(previous digest + canonical content)``. Appending takes the one row of ``event_chain``
first (a row lock on PostgreSQL, the write lock on SQLite), so concurrent writers never fork
the chain. ``verify_chain`` recomputes it and names the first event edited, deleted or inserted;
the head (length and last digest), kept outside ruche, proves later that history up to it was
not rewritten (an attacker who can write the database can recompute a whole chain, but not make
it end at a head already published). The definition of the canonical content is frozen: changing
it breaks every recorded chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orchestrator.state.actors import actor_of
from orchestrator.state.models import Event, EventChain, utc_now

GENESIS = "0" * 64


def plain(value):
    """``value`` as JSON keeps it (datetimes as ISO 8601 strings)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _timestamp(at: datetime) -> str:
    """``at`` as the chain writes it: UTC, naive, to the microsecond (SQLite gives back naive datetimes)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def canonical(
    seq: int, at: datetime, actor: str, kind: str, subject: str, association: str | None, detail: dict
) -> str:
    """An event's content as its digest covers it (frozen: see the module's doc)."""
    return json.dumps([seq, _timestamp(at), actor, kind, subject, association, detail],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # fmt: skip


def chain_digest(previous: str, content: str) -> str:
    return hashlib.sha256(f"{previous}\n{content}".encode()).hexdigest()


def append_events(session: Session, entries: list[dict]) -> None:
    """Add ``entries`` (kind, subject, association, detail, and optionally actor) to the chain, in order.

    Written with the session's connection, in its transaction: they commit or roll back with it."""
    if not entries:
        return
    connection = session.connection()
    chain = EventChain.__table__
    connection.execute(update(chain).where(chain.c.id == 1).values(length=chain.c.length))  # take the chain first
    length, head = connection.execute(select(chain.c.length, chain.c.head).where(chain.c.id == 1)).one()
    rows = []
    for entry in entries:
        length += 1
        at, actor = utc_now(), (entry.get("actor") or actor_of(session))[:120]
        detail = plain(entry["detail"])
        digest = chain_digest(
            head, canonical(length, at, actor, entry["kind"], entry["subject"], entry["association"], detail)
        )
        rows.append({"seq": length, "at": at, "actor": actor, "kind": entry["kind"], "subject": entry["subject"][:120],
                     "association": entry["association"], "detail": detail, "previous_digest": head, "digest": digest})  # fmt: skip
        head = digest
    connection.execute(Event.__table__.insert(), rows)
    connection.execute(update(chain).where(chain.c.id == 1).values(length=length, head=head))


@dataclass
class ChainCheck:
    length: int
    head: str
    problem: str | None  # the first event found edited, deleted or inserted, in words
    first_bad_seq: int | None = None

    def as_dict(self) -> dict:
        return {"ok": self.problem is None, "length": self.length, "head": self.head, "problem": self.problem,
                "first_bad_seq": self.first_bad_seq}  # fmt: skip


def verify_chain(session: Session, *, expected_head: tuple[int, str] | None = None) -> ChainCheck:
    """Recompute the chain from the first event; stop at the first that does not hold.

    ``expected_head`` (length, digest), exported earlier, must still be the chain's event at that length."""
    events = Event.__table__
    previous, expected_seq = GENESIS, 1
    unchained = session.execute(select(events.c.id, events.c.kind).where(events.c.seq.is_(None)).limit(1)).first()
    if unchained is not None:
        return ChainCheck(0, GENESIS, f"event id {unchained.id} ({unchained.kind}) is outside the chain: it was inserted "
                                      "without ruche", None)  # fmt: skip
    digests: dict[int, str] = {}
    for row in session.execute(select(events).order_by(events.c.seq)).mappings():
        label = f"event {row['seq']} ({row['kind']} on {row['subject']}, {_timestamp(row['at'])})"
        if row["seq"] != expected_seq:
            missing = f"{expected_seq}" if row["seq"] == expected_seq + 1 else f"{expected_seq} to {row['seq'] - 1}"
            return ChainCheck(expected_seq - 1, previous, f"event {missing} deleted: the chain goes from "
                                                          f"{expected_seq - 1} to {row['seq']}", expected_seq)  # fmt: skip
        if row["previous_digest"] != previous:
            return ChainCheck(expected_seq - 1, previous, f"{label} does not follow event {expected_seq - 1}: one was "
                                                          "inserted, deleted or rewritten between them", row["seq"])  # fmt: skip
        content = canonical(
            row["seq"], row["at"], row["actor"], row["kind"], row["subject"], row["association"], row["detail"]
        )
        if chain_digest(previous, content) != row["digest"]:
            return ChainCheck(expected_seq - 1, previous, f"{label} was edited: its content no longer matches its digest",
                              row["seq"])  # fmt: skip
        previous, expected_seq = row["digest"], expected_seq + 1
        digests[row["seq"]] = row["digest"]
    length = expected_seq - 1
    recorded = session.execute(select(EventChain.length, EventChain.head).where(EventChain.id == 1)).one()
    if (recorded.length, recorded.head) != (length, previous):
        return ChainCheck(length, previous, f"the chain ends at event {length} but ruche appended up to event "
                                            f"{recorded.length}: the last events were deleted", length + 1)  # fmt: skip
    if expected_head is not None:
        at, digest = expected_head
        if digests.get(at) != digest:
            return ChainCheck(length, previous, f"event {at} is not the one of the head kept outside ruche: history up "
                                                "to it was rewritten" if at <= length else
                                                f"the head kept outside ruche has {at} events, the chain {length}: "
                                                "events were deleted", min(at, length + 1))  # fmt: skip
    return ChainCheck(length, previous, None)
