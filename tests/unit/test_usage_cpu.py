"""CPU time over time: ruche-usage's reading of a cgroup's counter (this machine's own, cgroup v2's cpu.stat or
v1's cpuacct.usage), and the control plane's delta between two samples' counters when containers start again;
the time a sample stands for. The series rolled up on real databases is tests/integration/test_usage_rollup.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from orchestrator.state.usage import MAX_GAP_SECONDS, Previous, cpu_counters, cpu_delta, sample_of
from tests.unit.test_idranges import load_script

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_a_cgroup_counter_is_read_in_microseconds_and_grows_with_work():
    usage = load_script("ruche-usage")
    first = usage.cgroup_cpu_usec("/")  # the root cgroup: every process of this machine
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert first is not None and usage.cgroup_cpu_usec("/") >= first + 40_000
    assert usage.cgroup_cpu_usec("/no-such-cgroup.scope") is None


def test_the_delta_counts_growth_and_a_container_started_again_whole():
    before = {"app": ["t1", 1_000], "db": ["t1", 5_000], "cron": ["t1", 300]}
    assert cpu_delta(before, {"app": ["t1", 1_500], "db": ["t1", 5_000], "cron": ["t1", 350]}) == 550
    assert cpu_delta(before, {"app": ["t1", 200]}) == 200  # went down: started again; stopped ones count nothing
    assert cpu_delta(before, {"app": ["t2", 9_000]}) == 9_000  # another start time, even with a larger figure
    assert cpu_delta(before, {"app": ["t1", 1_000], "new": ["t3", 70]}) == 70
    assert cpu_delta(None, {"app": ["t1", 1]}) is None and cpu_delta(before, None) is None


def test_counters_are_kept_as_reported_and_an_older_tool_gives_none():
    entry = {"containers": {"ruche-a--b-app": {"cpu_usec": 12, "started_at": "t"},
                            "ruche-a--b-db": {"cpu_usec": None, "started_at": "t"},
                            "ruche-a--b-x": {"cpu_usec": "12", "started_at": "t"},
                            "ruche-a--b-y": {"cpu_usec": 2**64, "started_at": "t"}}}  # fmt: skip
    assert cpu_counters(entry) == {
        "ruche-a--b-app": ["t", 12],
        "ruche-a--b-db": ["t", None],
        "ruche-a--b-x": ["t", None],
        "ruche-a--b-y": ["t", None],
    }  # a figure that is none (a buggy server) is kept as none
    assert cpu_counters({"disk_bytes": 1}) is None


def test_a_container_unreadable_once_does_not_count_its_whole_life_when_readable_again():
    readable, unreadable = {"app": ["t", 50], "db": ["t", 9 * 10**9]}, {"app": ["t", 60], "db": ["t", None]}
    assert cpu_delta(readable, unreadable) is None  # unknown, not 10
    assert cpu_delta(unreadable, {"app": ["t", 70], "db": ["t", 9 * 10**9 + 1]}) is None  # not 9e9 from nowhere
    assert (
        cpu_delta({"app": ["t", 70], "db": ["t", 9 * 10**9 + 1]}, {"app": ["t", 80], "db": ["t", 9 * 10**9 + 5]}) == 14
    )


def test_a_sample_stands_for_the_time_since_the_previous_good_one_at_most_a_day():
    entry = {"disk_bytes": 10, "cpu_usec": 7, "containers": {"app": {"cpu_usec": 7, "started_at": "t"}}}
    first = sample_of(1, T0, entry, "", None)
    assert (first.seconds, first.cpu_delta_usec, first.cpu_containers) == (0, None, {"app": ["t", 7]})
    later = sample_of(1, T0 + timedelta(minutes=5), entry, "", Previous(T0, {"app": ["t", 2]}))
    assert (later.seconds, later.cpu_delta_usec) == (300, 5)
    after_a_week = sample_of(1, T0 + timedelta(days=7), entry, "", Previous(T0, {"app": ["t", 2]}))
    assert after_a_week.seconds == MAX_GAP_SECONDS
    failed = sample_of(1, T0 + timedelta(minutes=5), {}, "lab-1: connection refused", Previous(T0, {}))
    assert (failed.seconds, failed.cpu_delta_usec, failed.cpu_usec, failed.error) == (
        0, None, None, "lab-1: connection refused")  # fmt: skip


def test_periods_are_utc_hours_and_days_whatever_zone_a_time_comes_back_in():
    from datetime import timezone

    from orchestrator.operations.usage_rollup import day_of, hour_of

    paris = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=1)))  # 2026-03-01 23:30 UTC
    assert day_of(paris) == datetime(2026, 3, 1, tzinfo=UTC) and hour_of(paris) == datetime(2026, 3, 1, 23, tzinfo=UTC)
    assert day_of(datetime(2026, 3, 1, 23, 59)) == datetime(2026, 3, 1, tzinfo=UTC)  # SQLite's: naive, UTC
