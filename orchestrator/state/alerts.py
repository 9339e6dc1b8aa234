"""Alerts recorded: a watch's findings opened, seen again or cleared (alerts.decide), listed, acknowledged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.alerts import Decision, Finding, OpenAlert, decide
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.state.events import record_event
from orchestrator.state.models import Alert, as_utc, utc_now

# a cleared alert whose "recovered" notice could not be sent is tried again for this long
CLEAR_RETRY = timedelta(days=1)


@dataclass(frozen=True)
class Notice:
    """An alert to be told: ``event`` is opened, reminder or cleared."""

    event: str
    alert_id: int


def open_alerts(session: Session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.cleared_at.is_(None)).order_by(Alert.id)))


def record_watch(
    session: Session, findings: list[Finding], *, now: datetime, remind_every: timedelta | None,
    unknown: set[tuple[str, str]] = frozenset(),
) -> tuple[Decision, list[Notice], list[int]]:  # fmt: skip
    """Record one watch's findings: new alerts opened, open ones seen again (their evidence refreshed) or
    cleared. Give the decision and the notices due (a new or untold alert, a reminder, a clearing whose
    opening was told), oldest alert first, and the ids of the alerts it opened."""
    current = open_alerts(session)
    by_id = {a.id: a for a in current}
    decision = decide(
        [OpenAlert(a.id, a.kind, a.subject, a.notified_at and as_utc(a.notified_at),
                   a.reminded_at and as_utc(a.reminded_at), a.acked_at is not None) for a in current],
        findings, now=now, remind_every=remind_every, unknown=unknown,
    )  # fmt: skip
    notices = [Notice("opened", i) for i in decision.opening] + [Notice("reminder", i) for i in decision.reminding]
    for alert_id, finding in decision.seen_again.items():
        alert = by_id[alert_id]
        alert.last_seen, alert.summary, alert.values = now, finding.summary[:1000], finding.values
    for alert_id in decision.cleared:
        by_id[alert_id].cleared_at = now
    opened = []
    for finding in decision.opened:
        alert = Alert(kind=finding.kind, subject=finding.subject[:300], association=finding.association,
                      summary=finding.summary[:1000], values=finding.values, first_seen=now, last_seen=now,
                      notify_error="", told={})  # fmt: skip
        session.add(alert)
        session.flush()
        notices.append(Notice("opened", alert.id))
        opened.append(alert.id)
    untold_clearings = session.scalars(
        select(Alert.id).where(Alert.cleared_at.is_not(None), Alert.cleared_at > now - CLEAR_RETRY,
                               Alert.notified_at.is_not(None), Alert.cleared_notified_at.is_(None))
    )  # fmt: skip
    notices += [Notice("cleared", i) for i in untold_clearings]
    return decision, sorted(notices, key=lambda n: n.alert_id), opened


def mark_told(session: Session, notice: Notice, *, at: datetime, delivered: list[str], complete: bool,
              error: str) -> None:  # fmt: skip
    """Record one notice's delivery: the channels that took it (``delivered``, their keys), and, once every channel
    has (``complete``; a reminder: once tried), the notice as told; ``error``: what failed (masked), or ""."""
    alert = session.get(Alert, notice.alert_id)
    if alert is None:
        return
    alert.notify_error = error[:1000]
    if notice.event != "reminder":
        told = dict(alert.told or {})
        told[notice.event] = sorted(set(told.get(notice.event, [])) | set(delivered))
        alert.told = told
    if not complete:
        return
    if notice.event == "opened":
        alert.notified_at = at
    elif notice.event == "reminder":
        alert.reminded_at = at
    else:
        alert.cleared_notified_at = at


def list_alerts(session: Session, *, everything: bool = False, association: str | None = None,
                limit: int = 500) -> list[Alert]:  # fmt: skip
    """Open alerts (``everything``: cleared ones too, newest first), optionally one association's."""
    query = select(Alert)
    if not everything:
        query = query.where(Alert.cleared_at.is_(None))
    if association is not None:
        query = query.where(Alert.association == association)
    return list(session.scalars(query.order_by(Alert.cleared_at.is_not(None), Alert.id.desc()).limit(limit)))


def counts_by_kind(session: Session) -> dict[str, int]:
    """Open alerts by kind."""
    rows = session.execute(select(Alert.kind, func.count()).where(Alert.cleared_at.is_(None)).group_by(Alert.kind))
    return {kind: count for kind, count in rows}


def acknowledge(session: Session, alert_id: int, *, reason: str, by: str) -> Alert:
    """Silence an open alert's reminders (it still clears, and is told when it does), with a reason, in the
    audit trail. Raises NotFound, or InvalidInput when it is cleared or already acknowledged."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}", hint="`ruche alerts --all` lists them")
    if alert.cleared_at is not None:
        raise InvalidInput(f"alert {alert_id} cleared on {alert.cleared_at:%Y-%m-%d %H:%M}: nothing to acknowledge")
    if alert.acked_at is not None:
        raise InvalidInput(f"alert {alert_id} was acknowledged on {alert.acked_at:%Y-%m-%d %H:%M} by {alert.acked_by}")
    alert.acked_at, alert.acked_by, alert.ack_reason = utc_now(), by, reason
    record_event(session, kind="alert.acknowledged", subject=f"{alert.kind} {alert.subject}"[:120],
                 association=alert.association, detail={"alert": alert.id, "reason": reason})  # fmt: skip
    return alert


def alert_as_dict(alert: Alert) -> dict:
    def stamp(value: datetime | None) -> str | None:
        return None if value is None else as_utc(value).isoformat(timespec="seconds")

    return {
        "id": alert.id, "kind": alert.kind, "subject": alert.subject, "association": alert.association,
        "summary": alert.summary, "values": alert.values or {}, "state": "cleared" if alert.cleared_at else ("acknowledged" if alert.acked_at else "open"),
        "first_seen": stamp(alert.first_seen), "last_seen": stamp(alert.last_seen), "cleared_at": stamp(alert.cleared_at),
        "notified_at": stamp(alert.notified_at), "reminded_at": stamp(alert.reminded_at),
        "cleared_notified_at": stamp(alert.cleared_notified_at), "notify_error": alert.notify_error or None,
        "acked_at": stamp(alert.acked_at), "acked_by": alert.acked_by, "ack_reason": alert.ack_reason,
    }  # fmt: skip
