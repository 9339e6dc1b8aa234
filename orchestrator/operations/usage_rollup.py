"""Old usage samples rolled up so that a year of a large fleet stays small: raw samples older than [usage]
raw_days become one ``usage_rollups`` row per instance and UTC hour, hourly rows older than [usage] hourly_days
one row per instance and UTC day, kept for good; what was rolled up is deleted in the same transaction.

Only whole periods are rolled (the cut-offs are rounded down to the hour and the day), each sample counts in the
hour its ``taken_at`` falls in, and its figures are already self-contained (its CPU delta, its value times the
seconds it stands for: state/usage), so the roll-up is plain sums and maxima: totals over any range of whole
periods are the same before and after it. A period that already has a row (a sample recorded late) is added to
it. Running it again changes nothing; when nothing is due it costs two indexed queries. What is due is rolled a UTC day at a time (a first roll-up
of a long history holds a day of the fleet in memory at most). ``measure_usage`` runs it
after each measure (`ruche usage collect`, the watcher).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from orchestrator.config import UsageSettings
from orchestrator.state.models import UsageRollup, UsageSample, as_utc, utc_now
from orchestrator.state.usage import MEASURES, add_totals, empty_totals

ROLLED = ("samples", "seconds", "cpu_usec", *[f"{m}_byte_seconds" for m in MEASURES],
          *[f"max_{m}_bytes" for m in MEASURES])  # fmt: skip


def hour_of(moment: datetime) -> datetime:
    return as_utc(moment).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The UTC day of ``moment`` (PostgreSQL gives times back in its session's time zone)."""
    return as_utc(moment).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def roll_up(session: Session, settings: UsageSettings, *, now: datetime | None = None) -> dict:
    """Roll up what is due (see the module) in ``session`` (the caller commits). Gives ``{"samples": raw samples
    rolled, "hours": hourly rows rolled into days, "hour_rows": hourly rows written, "day_rows": daily rows
    written}``."""
    now = as_utc(now or utc_now())
    raw_cutoff = hour_of(now - timedelta(days=settings.raw_days))
    hourly_cutoff = day_of(now - timedelta(days=settings.hourly_days))
    samples, hour_rows = _roll_samples(session, raw_cutoff)
    hours, day_rows = _roll_hours(session, hourly_cutoff)
    return {"samples": samples, "hours": hours, "hour_rows": hour_rows, "day_rows": day_rows}


def _days(oldest: datetime, cutoff: datetime):
    """``[start, end)`` ranges of one UTC day from ``oldest``'s day up to ``cutoff`` (on an hour or a day): what is
    due is rolled a day at a time, so that the first roll-up of a long history (a deployment that kept every sample
    before roll-ups existed) never holds more than a day of the fleet in memory."""
    start = day_of(oldest)
    while start < cutoff:
        end = min(start + timedelta(days=1), cutoff)
        yield start, end
        start = end


def _roll_samples(session: Session, cutoff: datetime) -> tuple[int, int]:
    oldest = session.scalar(select(func.min(UsageSample.taken_at)).where(UsageSample.taken_at < cutoff))
    if oldest is None:
        return 0, 0
    count = written = 0
    for start, end in _days(oldest, cutoff):
        in_range = (UsageSample.taken_at >= start) & (UsageSample.taken_at < end)
        query = select(UsageSample.instance_id, UsageSample.taken_at, UsageSample.seconds, UsageSample.cpu_delta_usec,
                       *[getattr(UsageSample, f"{m}_bytes") for m in MEASURES]).where(in_range)  # fmt: skip
        periods: dict[tuple[int, datetime], dict] = {}
        for row in session.execute(query).yield_per(10_000):
            count += 1
            figures = {"samples": 1, "seconds": row.seconds or 0, "cpu_usec": row.cpu_delta_usec}
            for measure in MEASURES:
                value = getattr(row, f"{measure}_bytes")
                figures[f"max_{measure}_bytes"] = value
                figures[f"{measure}_byte_seconds"] = None if value is None else float(value) * (row.seconds or 0)
            add_totals(periods.setdefault((row.instance_id, hour_of(row.taken_at)), empty_totals()), figures)
        written += _merge(session, "hour", periods)
        session.execute(delete(UsageSample).where(in_range))
    return count, written


def _roll_hours(session: Session, cutoff: datetime) -> tuple[int, int]:
    hourly = UsageRollup.period == "hour"
    oldest = session.scalar(select(func.min(UsageRollup.period_start)).where(hourly, UsageRollup.period_start < cutoff))
    if oldest is None:
        return 0, 0
    count = written = 0
    for start, end in _days(oldest, cutoff):
        due = hourly & (UsageRollup.period_start >= start) & (UsageRollup.period_start < end)
        periods: dict[tuple[int, datetime], dict] = {}
        for row in session.execute(select(UsageRollup.instance_id, UsageRollup.period_start,
                                          *[getattr(UsageRollup, key) for key in ROLLED]).where(due)).yield_per(10_000):  # fmt: skip
            count += 1
            add_totals(periods.setdefault((row.instance_id, day_of(row.period_start)), empty_totals()), row._asdict())
        written += _merge(session, "day", periods)
        session.execute(delete(UsageRollup).where(due))
    return count, written


def _merge(session: Session, period: str, periods: dict[tuple[int, datetime], dict]) -> int:
    """Write each ``(instance_id, period_start): totals`` as a ``period`` row, added to the row already there."""
    if not periods:
        return 0
    starts = [start for _, start in periods]
    existing = {
        (row.instance_id, as_utc(row.period_start)): row
        for row in session.scalars(select(UsageRollup).where(
            UsageRollup.period == period, UsageRollup.period_start >= min(starts),
            UsageRollup.period_start <= max(starts)))
    }  # fmt: skip
    new = []
    for (instance_id, start), figures in periods.items():
        row = existing.get((instance_id, start))
        if row is None:
            new.append({"instance_id": instance_id, "period": period, "period_start": start, **figures})
            continue
        merged = add_totals({key: getattr(row, key) for key in ROLLED}, figures)
        for key, value in merged.items():
            setattr(row, key, value)
    session.flush()
    if new:
        session.execute(insert(UsageRollup), new)  # one statement for a fleet's hour (executemany)
    return len(periods)
