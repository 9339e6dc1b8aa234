"""The audit trail's two guarantees: every change of state is an event, and the events form a hash chain.

**Every change.** A listener on every state session (``StateStore``) turns each row a flush adds,
changes or deletes into an event ``TABLE.created|changed|deleted`` with its subject (the
association, instance, server, request... it concerns), the association it belongs to, and the
values before and after. Secrets (``REDACTED``) are never copied: an event says that they
changed, never what they are. Measurements that are not decisions (health checks, usage samples,
workers' heartbeats and progress lines) are left out (``IGNORED``). Actions also record events
of their own (``state.events.record_event``: a quota override, an offer change) that say why.

**Who.** The actor is, in order: the session's ``info["actor"]`` (the web app sets the signed-in
member or admin), the ``acting_as`` context (the worker names itself and who queued the run), else
the shell's (``$RUCHE_ACTOR`` or the login name).

**The chain.** Each event has a sequence number, the digest of the event before it and its own:
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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from orchestrator.state.models import Admin, Association, Event, EventChain, utc_now

GENESIS = "0" * 64
# Columns whose values never enter an event (only the fact that they changed).
REDACTED = frozenset({"secrets", "backup_password", "password_hash", "token_hash", "csrf_token"})
# What is measured rather than decided: not recorded (None: the whole table).
IGNORED: dict[str, frozenset[str] | None] = {
    "events": None, "event_chain": None, "usage_samples": None, "health_checks": None, "alembic_version": None,
    "rate_limit_keys": None, "rate_limit_hits": None,
    "instances": frozenset({"health", "health_detail", "health_checked_at"}),
    "queued_runs": frozenset({"heartbeat_at", "progress"}),
    "invites": frozenset({"last_used_at"}),
    "catalog_checks": frozenset({"detail", "steps_passed", "association", "server"}),  # a check's progress
}  # fmt: skip

_ACTOR: ContextVar[str | None] = ContextVar("ruche_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record the state changes made in this block (in this thread) as ``actor``'s."""
    token = _ACTOR.set(actor[:120])
    try:
        yield
    finally:
        _ACTOR.reset(token)


def actor_of(session: Session) -> str:
    return (session.info.get("actor") or acting_actor())[:120]


def acting_actor() -> str:
    """Who acts here outside a web session: the ``acting_as`` context, else the shell's user."""
    from orchestrator.state.events import current_actor

    return (_ACTOR.get() or current_actor())[:120]


# --- the chain ---------------------------------------------------------------------------------


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
        detail = _plain(entry["detail"])
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


# --- every change of state ---------------------------------------------------------------------


def _plain(value):
    """``value`` as JSON keeps it (datetimes as ISO 8601 strings)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _shown(column: str, value):
    return "(secret)" if column in REDACTED and value not in (None, "", {}) else _plain(value)


def _slug_of(session: Session, association_id: int | None) -> str | None:
    if association_id is None:
        return None
    found = session.get(Association, association_id)
    return found.slug if found is not None else None


def _subject(session: Session, table: str, obj) -> tuple[str, str | None]:
    """What a row is about (as `ruche events --subject` names it) and its association's slug."""
    if table == "associations":
        return obj.slug, obj.slug
    if table == "instances":
        slug = _slug_of(session, obj.association_id)
        return f"{slug}/{obj.name}", slug
    if table == "servers":
        return f"server/{obj.name}", None
    if table == "service_requests":
        return f"request/{obj.id}", _slug_of(session, obj.association_id)
    if table in ("backup_runs", "upgrades"):
        return obj.instance_address, obj.instance_address.split("/")[0]
    if table == "queued_runs":
        return f"queued-run/{obj.id}", obj.instance_address.split("/")[0] if obj.instance_address else None
    if table == "runs":
        return f"run/{obj.id}", None
    if table == "admins":
        return f"admin/{obj.name}", None
    if table == "join_applications":
        return f"application/{obj.id}", None
    if table in ("invites", "web_sessions"):
        slug = _slug_of(session, obj.association_id)
        if slug is not None:
            return slug, slug
        admin = session.get(Admin, obj.admin_id) if getattr(obj, "admin_id", None) is not None else None
        return (f"admin/{admin.name}" if admin is not None else table), None
    return f"{table}/{getattr(obj, 'id', '?')}", None


def _changes(obj, ignored: frozenset[str]) -> tuple[dict, dict]:
    before, after = {}, {}
    state = inspect(obj)
    for attribute in state.mapper.column_attrs:
        name = attribute.key
        if name in ignored:
            continue
        history = state.attrs[name].history
        if not history.has_changes():
            continue
        old = history.deleted[0] if history.deleted else None
        new = history.added[0] if history.added else None
        if old == new:
            continue
        before[name], after[name] = _shown(name, old), _shown(name, new)
    return before, after


def _all_columns(obj, ignored: frozenset[str]) -> dict:
    state = inspect(obj)
    # the loaded values only: a deleted row cannot load more
    return {a.key: _shown(a.key, state.dict.get(a.key)) for a in state.mapper.column_attrs if a.key not in ignored}


def record_changes(session: Session, _flush_context) -> None:
    """``after_flush`` listener: one chained event per row the flush added, changed or deleted."""
    entries = []
    for objects, what in ((session.new, "created"), (session.dirty, "changed"), (session.deleted, "deleted")):
        for obj in objects:
            table = getattr(obj, "__tablename__", None)
            if table is None or (table in IGNORED and IGNORED[table] is None):
                continue
            ignored = IGNORED.get(table) or frozenset()
            if what == "changed":
                if not session.is_modified(obj, include_collections=False):
                    continue
                before, after = _changes(obj, ignored)
                if not after:
                    continue
                detail = {"before": before, "after": after}
            elif what == "created":
                detail = {"after": _all_columns(obj, ignored)}
            else:
                detail = {"before": _all_columns(obj, ignored)}
            subject, association = _subject(session, table, obj)
            entries.append(
                {"kind": f"{table}.{what}", "subject": subject, "association": association, "detail": detail}
            )
    entries.sort(key=lambda e: (e["kind"], e["subject"]))  # the same flush gives the same order
    append_events(session, entries)
