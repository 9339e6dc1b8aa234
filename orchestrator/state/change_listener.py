"""Every change of state is an event of the audit trail: the state sessions' ``after_flush`` listener.

A listener on every state session (``StateStore``) turns each row a flush adds,
changes or deletes into an event ``TABLE.created|changed|deleted`` with its subject (the
association, instance, server, request... it concerns), the association it belongs to, and the
values before and after. Secrets (``REDACTED``) are never copied: an event says that they
changed, never what they are. Measurements that are not decisions (health checks, usage samples,
workers' heartbeats and progress lines, the watcher's alerts and lease) are left out (``IGNORED``). Actions also record events
of their own (``state.events.record_event``: a quota override, an offer change) that say why.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from orchestrator.state.event_chain import append_events, plain
from orchestrator.state.models import Admin, Association

# Columns whose values never enter an event (only the fact that they changed).
REDACTED = frozenset({"secrets", "backup_password", "password_hash", "token_hash", "csrf_token"})
# What is measured rather than decided: not recorded (None: the whole table).
IGNORED: dict[str, frozenset[str] | None] = {
    "events": None, "event_chain": None, "usage_samples": None, "usage_rollups": None, "health_checks": None,
    "alembic_version": None,
    # the watcher's findings and its lease: observations, every few minutes (an acknowledgement is an event of its own)
    "alerts": None, "leases": None,
    "rate_limit_keys": None, "rate_limit_hits": None,
    "instances": frozenset({"health", "health_detail", "health_checked_at"}),
    "queued_runs": frozenset({"heartbeat_at", "progress"}),
    "invites": frozenset({"last_used_at"}),
    "catalog_checks": frozenset({"detail", "steps_passed", "association", "server"}),  # a check's progress
    # a domain's checks (operations/own_domains records an event when its proof's problem or its serving changes)
    "domains": frozenset({"checked_at", "problem", "tls_status", "tls_detail", "tls_issuer", "tls_not_after",
                          "tls_checked_at", "proof_lost_at"}),
}  # fmt: skip


def _shown(column: str, value):
    return "(secret)" if column in REDACTED and value not in (None, "", {}) else plain(value)


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
    if table == "member_exports":
        slug = _slug_of(session, obj.association_id)
        return f"export/{obj.id}", slug
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
