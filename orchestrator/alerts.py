"""Alerts: the kinds of trouble the watcher looks for, what it found, and what is to be told of them.

Pure: no database, no network. ``operations/watch.py`` gathers the findings (health through Caddy, the
servers over SSH, the state's backups, usage, runs, queue and certificates), ``state/alerts.py`` records
them as alerts and says which ones are due to be told, ``operations/notify.py`` tells them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Kind:
    name: str
    scope: str  # "instance": an association's own (it may be told); "fleet": the collective's admins only
    description: str  # what opens it, for `ruche alerts --help` and docs/alerts.md


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("instance.down", "instance", "a running instance does not answer its health check through Caddy"),
        Kind("server.unreachable", "fleet", "a server does not answer over SSH"),
        Kind("server.disk", "fleet", "a server's /srv file system is fuller than [alerts] disk_used_percent"),
        Kind("server.memory", "fleet", "a server's memory is more used than [alerts] memory_used_percent"),
        Kind("backup.overdue", "instance", "an instance's last good backup is older than its offer's window"),
        Kind(
            "backup.unverified",
            "instance",
            "an instance's last passed `backup verify` is older than [audit] verify_max_age_days",
        ),  # fmt: skip
        Kind("quota.over", "instance", "an association's measured disk or memory is over its offer"),
        Kind("run.failed", "fleet", "a server's or instance's last run failed (a later good run clears it)"),
        Kind(
            "certificate.expiring",
            "instance",
            "an own domain's certificate is not served, or expires within [domains] certificate_warning_days",
        ),  # fmt: skip
        Kind(
            "queue.stuck",
            "fleet",
            "a queued run waits, or its worker stopped beating, for longer than [alerts] queue_stuck_minutes",
        ),  # fmt: skip
    )
}


@dataclass(frozen=True)
class Finding:
    """One thing found wrong by one watch. ``subject`` names it within its kind (an instance's address, a
    server's name...); ``association``: the slug whose own it is (None: the collective's); ``summary``: the
    evidence in the admins' words; ``values``: what a translated text for the association is filled with."""

    kind: str
    subject: str
    summary: str
    association: str | None = None
    values: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}")

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.subject


@dataclass(frozen=True)
class OpenAlert:
    """What deciding needs of a recorded alert still open."""

    id: int
    kind: str
    subject: str
    notified_at: datetime | None
    reminded_at: datetime | None
    acked: bool


@dataclass
class Decision:
    """What one watch changes: findings to open as new alerts, open alerts seen again (by id), cleared ones,
    and which are due to be told (``opening``: open not yet told, ``reminding``: told long enough ago)."""

    opened: list[Finding] = field(default_factory=list)
    seen_again: dict[int, Finding] = field(default_factory=dict)
    cleared: list[int] = field(default_factory=list)
    opening: list[int] = field(default_factory=list)  # ids of alerts open (before this watch) whose telling failed
    reminding: list[int] = field(default_factory=list)


def decide(
    open_alerts: list[OpenAlert], findings: list[Finding], *, now: datetime, remind_every: timedelta | None,
    unknown: set[tuple[str, str]] = frozenset(),
) -> Decision:  # fmt: skip
    """Compare what is open with what this watch found. An open alert not found again clears, unless this watch
    could not tell (``unknown``: (kind, subject) pairs, e.g. the disk of a server that did not answer). One
    finding per kind and subject counts (the first). An acknowledged alert is not reminded."""
    decision = Decision()
    found: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        found.setdefault(finding.key, finding)
    by_key = {(a.kind, a.subject): a for a in open_alerts}
    for key, finding in found.items():
        alert = by_key.get(key)
        if alert is None:
            decision.opened.append(finding)
            continue
        decision.seen_again[alert.id] = finding
        if alert.notified_at is None:
            decision.opening.append(alert.id)
        elif remind_every is not None and not alert.acked:
            last = alert.reminded_at or alert.notified_at
            if now - last >= remind_every:
                decision.reminding.append(alert.id)
    for key, alert in by_key.items():
        if key not in found and key not in unknown:
            decision.cleared.append(alert.id)
    return decision
