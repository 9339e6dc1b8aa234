"""Usage over time on SQLite and PostgreSQL: a synthetic series (3 days every 5 minutes, 3 instances, CPU counters
that start again, an hour the server did not answer, a measure the server cannot take) recorded as `usage collect`
records ruche-usage's answers (state/usage.sample_of), then rolled up into hours and days; the totals over the
range, and over a day of it, match the sums the test computes itself from the series (CPU exactly, the integrals
to a part in 10^9, float rounding), before and after; a second roll-up changes nothing; rolled rows are gone.
`ruche usage collect` itself rolls up what is due, even when its servers do not answer. CPU counters read on
real servers are in tests/lab/test_backups.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, null, select, text

from orchestrator.config import UsageSettings
from orchestrator.operations.usage_rollup import roll_up
from orchestrator.state.database import StateStore, upgrade_schema
from orchestrator.state.instances import get_instance
from orchestrator.state.models import UsageRollup, UsageSample, as_utc
from orchestrator.state.usage import MAX_GAP_SECONDS, Previous, sample_of, usage_totals
from orchestrator.workspace import open_workspace

START = datetime(2026, 3, 1, 0, 2, 30, tzinfo=UTC)  # not on an hour: samples every 5 minutes from here
STEP = timedelta(minutes=5)
STEPS = 3 * 24 * 12
ADDRESSES = ("amap/radicale", "amap/miniflux", "chorale/radicale")
UNREACHABLE = range(100, 112)  # instance 1's server did not answer for an hour


@pytest.fixture
def instances(workspace, ruche):
    w = ["--workspace", str(workspace)]
    # a server that refuses SSH at once (nothing listens on port 1)
    assert ruche(*w, "server", "add", "big", "--no-connect", "--address", "127.0.0.2", "--ssh-port", "1", "--cpu",
                 "16", "--memory", "32G", "--disk", "1T").exit_code == 0  # fmt: skip
    for slug in ("amap", "chorale"):
        assert ruche(*w, "association", "add", slug, "--name", slug, "--email", f"c@{slug}.fr").exit_code == 0
    for address in ADDRESSES:
        slug, service = address.split("/")
        assert ruche(*w, "instance", "create", slug, service, "--server", "big").exit_code == 0, address
    store = StateStore(open_workspace(workspace).state_url)
    with store.session() as session:
        ids = [get_instance(session, address).id for address in ADDRESSES]
    yield store, ids
    store.close()


def at(step: int) -> datetime:
    return START + step * STEP


def synthetic_series(ids: list[int]) -> tuple[list[UsageSample], dict]:
    """Every sample of the series, as ruche-usage's answers recorded, and what the test expects of them, by
    (instance, step): the CPU its containers used during the step (their counters' increments; a restarted
    container's whole new counter), each measure's step integral (value * seconds since the previous sample
    without error, at most a day)."""
    samples, expected = [], {"cpu": {}, "memory": {}, "disk": {}, "database": {}}
    for index, instance_id in enumerate(ids):
        counters = {"app": ["2026-02-28T10:00:00Z", 5_000_000], "db": ["2026-02-28T10:00:00Z", 9_000_000]}
        if index == 1:
            del counters["db"]
        previous = None
        for step in range(STEPS):
            used = 0
            for name, counter in counters.items():
                increment = 2_000_000 + 1000 * index + 37_000 * (step % 7) + (500_000 if name == "db" else 0)
                if index == 0 and name == "app" and step == 400:  # restarted: a new counter, smaller
                    counter[:] = ["2026-03-02T09:22:10Z", increment]
                    used += increment
                elif index == 2 and name == "app" and step == 600:  # restarted, its new counter already larger
                    counter[:] = ["2026-03-03T02:01:00Z", counter[1] + 5]
                    used += counter[1]
                else:
                    counter[1] += increment
                    used += increment
            if step > 0:  # the first sample is the counters' baseline
                expected["cpu"][(instance_id, step)] = used
            unreachable = index == 1 and step in UNREACHABLE
            entry = {} if unreachable else {
                "id": f"i{index}", "disk_bytes": 10**9 + 4096 * step + index,
                "database_bytes": None if index == 1 else 50 * 10**6 + 1000 * step,
                "memory_bytes": None if index == 2 else 100 * 2**20 + 2**20 * (step % 11),
                "cpu_usec": sum(c[1] for c in counters.values()),
                "containers": {f"ruche-i{index}-{name}": {"cpu_usec": usec, "started_at": started}
                               for name, (started, usec) in counters.items()},
            }  # fmt: skip
            sample = sample_of(instance_id, at(step), entry, "server unreachable" if unreachable else "", previous)
            samples.append(sample)
            if unreachable:
                continue  # what it used meanwhile, the next sample counts against the last good one
            if previous is not None:
                seconds = min(MAX_GAP_SECONDS, (at(step) - previous.taken_at).total_seconds())
                for measure in ("memory", "disk", "database"):
                    if entry[f"{measure}_bytes"] is not None:
                        expected[measure][(instance_id, step)] = entry[f"{measure}_bytes"] * seconds
            previous = Previous(at(step), sample.cpu_containers)
    return samples, expected


def check_totals(session, ids: list[int], expected: dict, start: datetime, end: datetime) -> dict:
    """usage_totals over [start, end) against the test's own sums of the steps taken in it."""
    got = usage_totals(session, start, end, instance_ids=ids)
    for instance_id in ids:
        mine = {kind: sum(value for (i, step), value in figures.items() if i == instance_id and start <= at(step) < end)
                for kind, figures in expected.items()}  # fmt: skip
        assert got[instance_id]["cpu_usec"] == mine["cpu"], (instance_id, start, end)
        assert got[instance_id]["cpu_hours"] == pytest.approx(mine["cpu"] / 3.6e9)
        for measure in ("memory", "disk", "database"):
            figure = got[instance_id][f"{measure}_byte_seconds"]
            if mine[measure] == 0:
                assert figure is None, (instance_id, measure)
            else:  # float sums: to a part in 10^9
                assert abs(figure - mine[measure]) <= 1e-9 * mine[measure], (instance_id, measure, start, end)
    return got


def rollup_rows(session) -> list[tuple]:
    return sorted((r.instance_id, r.period, as_utc(r.period_start), r.samples, r.seconds, r.cpu_usec,
                   r.memory_byte_seconds, r.disk_byte_seconds, r.max_disk_bytes) for r in session.scalars(select(UsageRollup)))  # fmt: skip


def test_a_rolled_up_series_keeps_its_totals_and_a_second_roll_up_changes_nothing(instances):
    store, ids = instances
    samples, expected = synthetic_series(ids)
    with store.session() as session:
        session.add_all(samples)
    with store.session() as session:  # after the hour its server did not answer: the gap's seconds
        assert session.scalar(select(UsageSample.seconds).where(UsageSample.instance_id == ids[1],
                                                                UsageSample.taken_at == at(112))) == 13 * 300  # fmt: skip
    whole = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, 1, tzinfo=UTC))
    day_two = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))  # CPU counters restart in it
    with store.session() as session:
        before = check_totals(session, ids, expected, *whole)
        check_totals(session, ids, expected, *day_two)

    now = START + timedelta(
        days=3
    )  # 2026-03-04 00:02:30: raw before 03-03 00:00 into hours, hours before 03-02 into days
    settings = UsageSettings(raw_days=1, hourly_days=2)
    with store.session() as session:
        done = roll_up(session, settings, now=now)
    assert done == {"samples": 3 * 2 * 288, "hour_rows": 3 * 48, "hours": 3 * 24, "day_rows": 3}
    with store.session() as session:
        assert as_utc(session.scalar(select(func.min(UsageSample.taken_at)))) == datetime(
            2026, 3, 3, 0, 2, 30, tzinfo=UTC
        )
        hours = [
            as_utc(h) for h in session.scalars(select(UsageRollup.period_start).where(UsageRollup.period == "hour"))
        ]
        assert min(hours) == day_two[0] and max(hours) == datetime(2026, 3, 2, 23, tzinfo=UTC) and len(hours) == 3 * 24
        days = session.scalars(select(UsageRollup.period_start).where(UsageRollup.period == "day")).all()
        assert [as_utc(d) for d in days] == [datetime(2026, 3, 1, tzinfo=UTC)] * 3
        after = check_totals(session, ids, expected, *whole)  # raw, hourly and daily rows together
        check_totals(session, ids, expected, *day_two)  # hourly rows alone
        check_totals(session, ids, expected, datetime(2026, 3, 1, tzinfo=UTC), day_two[0])  # daily rows alone
        for instance_id in ids:
            for key, value in before[instance_id].items():  # the same figures, floats to their rounding
                assert after[instance_id][key] == (value if value is None else pytest.approx(value, rel=1e-12)), key
            assert after[instance_id]["samples"] == STEPS
        # an association's totals: its own instances'
        amap = get_instance(session, "amap/radicale").association_id
        assert set(usage_totals(session, *whole, association_id=amap)) == {ids[0], ids[1]}
        rows = rollup_rows(session)

    with store.session() as session:
        assert roll_up(session, settings, now=now) == {"samples": 0, "hours": 0, "hour_rows": 0, "day_rows": 0}
    with store.session() as session:
        assert rollup_rows(session) == rows

    # a sample recorded late, in an hour already rolled up, is added to that hour's row
    with store.session() as session:
        session.add(sample_of(ids[2], datetime(2026, 3, 2, 5, 30, tzinfo=UTC), {"disk_bytes": 7, "containers": {}},
                              "", Previous(datetime(2026, 3, 2, 5, 29, tzinfo=UTC), {})))  # fmt: skip
    with store.session() as session:
        assert roll_up(session, settings, now=now)["samples"] == 1
    with store.session() as session:
        hour = datetime(2026, 3, 2, 5, tzinfo=UTC)
        late = session.scalars(select(UsageRollup).where(UsageRollup.instance_id == ids[2],
                                                         UsageRollup.period_start == hour)).one()  # fmt: skip
        assert (late.period, late.samples, late.seconds) == ("hour", 13, 12 * 300 + 60)


def test_usage_collect_records_unanswered_servers_and_rolls_up_what_is_due(instances, workspace, ruche):
    store, ids = instances
    old = datetime.now(UTC) - timedelta(days=5)
    with store.session() as session:
        session.add(sample_of(ids[0], old, {"disk_bytes": 10**9, "memory_bytes": 2**27, "cpu_usec": 5,
                                            "containers": {}}, "", Previous(old - timedelta(minutes=5), {})))  # fmt: skip
    collected = ruche("--workspace", str(workspace), "usage", "collect", "--json")
    assert collected.exit_code == 1  # its server refused SSH: said, and every instance gets a sample holding it
    result = json.loads(collected.stdout)
    assert {s["instance"] for s in result["samples"]} == set(ADDRESSES)
    assert all(s["error"] and s["cpu_usec"] is None and s["cpu_delta_usec"] is None for s in result["samples"])
    assert result["rolled_up"] == {"samples": 1, "hour_rows": 1, "hours": 0, "day_rows": 0}
    with store.session() as session:
        (row,) = session.scalars(select(UsageRollup)).all()
        assert (row.instance_id, row.period, row.samples, row.seconds) == (ids[0], "hour", 1, 300)
        assert row.memory_byte_seconds == 2**27 * 300 and row.max_disk_bytes == 10**9
        assert session.scalar(select(func.count()).select_from(UsageSample)) == 3


def test_samples_recorded_before_0021_get_the_seconds_they_stand_for_at_the_upgrade(instances):
    """Migration 0022: a sample recorded before 0021 (no counters: SQL NULL, the column added; 0 seconds) stands for the time since the
    instance's previous sample without error, at most a day (sample_of's rule); one after a longer gap, an error,
    the first of an instance and one recorded since 0021 keep their 0."""
    store, ids = instances
    first, second = ids[0], ids[1]
    series = [  # (instance, minutes from START, error, counters): what each should hold after
        (first, 0, "", None, 0), (first, 5, "", None, 300), (first, 10, "unreachable", None, 0),
        (first, 15, "", None, 600), (first, 15 + 3 * 24 * 60, "", None, 0), (first, 15 + 3 * 24 * 60 + 7, "", None, 420),
        (second, 0, "", None, 0), (second, 60, "", None, 3600), (second, 65, "", {"app": ["t", 5]}, 0),
    ]  # fmt: skip
    with store.session() as session:
        rows = [UsageSample(instance_id=i, taken_at=START + timedelta(minutes=m), error=e, cpu_containers=null() if c is None else c,
                            seconds=0,
                            disk_bytes=1, database_bytes=None, memory_bytes=1) for i, m, e, c, _ in series]  # fmt: skip
        session.add_all(rows)
        session.flush()
        row_ids = [row.id for row in rows]
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0021'"))
    upgrade_schema(store.engine)
    with store.session() as session:
        got = {row.id: row.seconds for row in session.scalars(select(UsageSample).where(UsageSample.id.in_(row_ids)))}
    assert [got[row_id] for row_id in row_ids] == [expected for *_, expected in series]
