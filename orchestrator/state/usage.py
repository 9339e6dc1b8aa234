"""Measured use: each instance's latest usage sample (``usage_samples``), for the quota report and the metrics; a
new sample's CPU delta and the time it stands for (``sample_of``); an instance's or an association's totals over
a time range from raw samples and roll-ups together (``usage_totals``).

A sample's figures stand for the time since the instance's previous sample without error (``seconds``, at most
``MAX_GAP_SECONDS``; 0 for the first): memory, disk and database are integrated as a step, the measured value
held over that time (``value * seconds``). Its CPU is the delta of each container's counter since that previous
sample; a container whose counter went down or whose start time changed started again, and counts whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Float, Row, cast, func, select
from sqlalchemy.orm import Session

from orchestrator.state.models import Instance, UsageRollup, UsageSample, as_utc

MAX_GAP_SECONDS = 86400  # a sample after a longer gap (collection stopped, server unreachable) stands for a day
GB = 1000**3
HOURS_PER_MONTH = 730  # 365 * 24 / 12, as hosting providers bill a month
MEASURES = ("memory", "disk", "database")


def latest_samples(session: Session) -> dict[int, Row]:
    """Each measured instance's newest sample, by instance id: plain rows (``instance_id``, ``taken_at``,
    ``disk_bytes``, ``database_bytes``, ``memory_bytes``, ``error``), not ORM objects, as this reads the fleet."""
    newest = (
        select(UsageSample.instance_id, func.max(UsageSample.taken_at).label("taken_at"))
        .group_by(UsageSample.instance_id)
        .subquery()
    )
    query = select(UsageSample.instance_id, UsageSample.taken_at, UsageSample.disk_bytes, UsageSample.database_bytes,
                   UsageSample.memory_bytes, UsageSample.error).join(
        newest, (UsageSample.instance_id == newest.c.instance_id) & (UsageSample.taken_at == newest.c.taken_at)
    )  # fmt: skip
    return {row.instance_id: row for row in session.execute(query)}


@dataclass(frozen=True)
class Previous:
    """An instance's newest sample without error: when, and its containers' CPU counters."""

    taken_at: datetime
    cpu_containers: dict | None


def previous_samples(session: Session, instance_ids: list[int], now: datetime) -> dict[int, Previous]:
    """Each instance's newest sample without error of the last ``MAX_GAP_SECONDS`` before ``now``, by id."""
    since = now - timedelta(seconds=MAX_GAP_SECONDS)
    newest = (
        select(UsageSample.instance_id, func.max(UsageSample.taken_at).label("taken_at"))
        .where(UsageSample.taken_at >= since, UsageSample.taken_at < now, UsageSample.error == "")
        .group_by(UsageSample.instance_id)
        .subquery()
    )
    query = select(UsageSample.instance_id, UsageSample.taken_at, UsageSample.cpu_containers).join(
        newest, (UsageSample.instance_id == newest.c.instance_id) & (UsageSample.taken_at == newest.c.taken_at)
    )
    wanted = set(instance_ids)
    return {row.instance_id: Previous(as_utc(row.taken_at), row.cpu_containers)
            for row in session.execute(query) if row.instance_id in wanted}  # fmt: skip


MAX_COUNTER = 2**63 - 1  # what a BIGINT holds: a figure beyond it (a buggy server) is no figure


def _counter(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNTER else None


def cpu_counters(entry: dict) -> dict[str, list] | None:
    """ruche-usage's ``containers`` of one instance as stored: ``{name: [started_at, usec]}`` of each container,
    usec None when its counter could not be read; None when the server's ruche-usage reports no CPU (an older
    tool)."""
    containers = entry.get("containers")
    if not isinstance(containers, dict):
        return None
    return {str(name)[:200]: [str(c.get("started_at") or "")[:64], _counter(c.get("cpu_usec"))]
            for name, c in containers.items() if isinstance(c, dict)}  # fmt: skip


def cpu_delta(previous: dict | None, current: dict | None) -> int | None:
    """CPU microseconds used between two samples' counters: per container, the growth of its counter, or its whole
    counter when it started again (another start time, or a smaller figure) or is new; None without both, or when
    a counter of either could not be read (a container read once unreadable must not count its whole life)."""
    if previous is None or current is None:
        return None
    total = 0
    for name, (started, usec) in current.items():
        before = previous.get(name)
        if usec is None or (before is not None and before[0] == started and before[1] is None):
            return None
        total += usec - before[1] if before and before[0] == started and usec >= before[1] else usec
    return total


def sample_of(instance_id: int, taken_at: datetime, entry: dict, error: str, previous: Previous | None) -> UsageSample:
    """The sample recording ruche-usage's ``entry`` for an instance (``error``: why it was not measured, or "")
    given its previous sample without error: its CPU delta since and the seconds it stands for."""
    counters = None if error else cpu_counters(entry)
    seconds, delta = 0, None
    if previous is not None and not error:
        seconds = max(0, min(MAX_GAP_SECONDS, round((taken_at - previous.taken_at).total_seconds())))
        delta = cpu_delta(previous.cpu_containers, counters)
    return UsageSample(
        instance_id=instance_id, taken_at=taken_at, disk_bytes=_counter(entry.get("disk_bytes")),
        database_bytes=_counter(entry.get("database_bytes")), memory_bytes=_counter(entry.get("memory_bytes")),
        error=error[:500],
        cpu_usec=None if error else _counter(entry.get("cpu_usec")), cpu_containers=counters, cpu_delta_usec=delta,
        seconds=seconds,
    )  # fmt: skip


def usage_totals(session: Session, start: datetime, end: datetime, *, instance_ids: list[int] | None = None,
                 association_id: int | None = None) -> dict[int, dict]:  # fmt: skip
    """What each instance (of ``instance_ids``, of the association, or all) used in [start, end), by id: raw
    samples taken in it, hourly and daily roll-ups that start in it (a range that cuts a period counts it
    whole where it starts). Gives ``samples``, ``seconds`` (the time the samples stand for: less than the range
    where measures are missing), ``cpu_usec``, ``{memory,disk,database}_byte_seconds``, ``max_*_bytes`` and, for
    people, ``cpu_hours``, ``memory_gb_hours``, ``disk_gb_months``, ``database_gb_months`` (GB: 10^9 bytes, a
    month: 730 hours)."""
    start, end = as_utc(start).astimezone(UTC), as_utc(end).astimezone(UTC)  # SQLite binds no offset
    raw = select(
        UsageSample.instance_id.label("instance_id"),
        func.count().label("samples"),
        func.sum(UsageSample.seconds).label("seconds"),
        func.sum(UsageSample.cpu_delta_usec).label("cpu_usec"),
        *[func.sum(cast(getattr(UsageSample, f"{m}_bytes"), Float) * UsageSample.seconds).label(f"{m}_byte_seconds")
          for m in MEASURES],
        *[func.max(getattr(UsageSample, f"{m}_bytes")).label(f"max_{m}_bytes") for m in MEASURES],
    ).where(UsageSample.taken_at >= start, UsageSample.taken_at < end)  # fmt: skip
    rolled = select(
        UsageRollup.instance_id.label("instance_id"),
        func.sum(UsageRollup.samples).label("samples"),
        func.sum(UsageRollup.seconds).label("seconds"),
        func.sum(UsageRollup.cpu_usec).label("cpu_usec"),
        *[func.sum(getattr(UsageRollup, f"{m}_byte_seconds")).label(f"{m}_byte_seconds") for m in MEASURES],
        *[func.max(getattr(UsageRollup, f"max_{m}_bytes")).label(f"max_{m}_bytes") for m in MEASURES],
    ).where(UsageRollup.period_start >= start, UsageRollup.period_start < end)  # fmt: skip
    if instance_ids is not None:
        raw, rolled = raw.where(UsageSample.instance_id.in_(instance_ids)), rolled.where(
            UsageRollup.instance_id.in_(instance_ids))  # fmt: skip
    if association_id is not None:
        members = select(Instance.id).where(Instance.association_id == association_id)
        raw, rolled = (
            raw.where(UsageSample.instance_id.in_(members)),
            rolled.where(UsageRollup.instance_id.in_(members)),
        )
    totals: dict[int, dict] = {}
    for query, owner in ((raw, UsageSample), (rolled, UsageRollup)):
        for row in session.execute(query.group_by(owner.instance_id)):
            into = totals.setdefault(row.instance_id, empty_totals())
            add_totals(into, row._asdict())
    return {instance_id: with_units(figures) for instance_id, figures in totals.items()}


def empty_totals() -> dict:
    return {"samples": 0, "seconds": 0, "cpu_usec": None, **{f"{m}_byte_seconds": None for m in MEASURES},
            **{f"max_{m}_bytes": None for m in MEASURES}}  # fmt: skip


def add_totals(into: dict, figures: dict) -> dict:
    """Add ``figures`` (another period's or instance's totals) to ``into``: sums, and the larger maxima."""
    for key in into:
        value = figures.get(key)
        if value is None:
            continue
        value = float(value) if key.endswith("_byte_seconds") else int(value)  # PostgreSQL sums bigints as numeric
        if key.startswith("max_"):
            into[key] = value if into[key] is None else max(into[key], value)
        else:
            into[key] = value if into[key] is None else into[key] + value
    return into


def with_units(figures: dict) -> dict:
    """``figures`` with the same in hours and GB: ``cpu_hours``, ``memory_gb_hours``, ``disk_gb_months``..."""

    def per(value, divisor):
        return None if value is None else float(value) / divisor

    return {**figures, "cpu_hours": per(figures["cpu_usec"], 3600 * 10**6),
            "memory_gb_hours": per(figures["memory_byte_seconds"], GB * 3600),
            "disk_gb_months": per(figures["disk_byte_seconds"], GB * 3600 * HOURS_PER_MONTH),
            "database_gb_months": per(figures["database_byte_seconds"], GB * 3600 * HOURS_PER_MONTH)}  # fmt: skip
