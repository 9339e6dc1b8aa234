"""Benchmark: a year of usage samples of the scale fleet, rolled up (operations/usage_rollup). Fills a fresh
PostgreSQL state database with INSTANCES instances holding what a year of hourly measures leaves with the
default [usage] (raw_days 2, hourly_days 35): 2 days of raw samples, 33 days of hourly rows, 330 daily rows; then
gives the tables' sizes on disk (rows, bytes with their indexes), extrapolated to 30,000 instances (rows are all
alike: sizes grow with their number), and times the roll-ups a measure runs: one hour of samples due (one per
instance) with a day of hourly rows, then nothing due. The same year kept raw is given for comparison. Then
times `ruche footprint`'s computation (operations/footprint.footprint) for December 2026 (hourly rows and raw
samples) and for November 2026 (daily and hourly rows), one server holding every instance.

Run: python3 benchmarks/usage_rollup.py [--instances 1000] [--state-url URL]
     (default: a fresh database on scripts/postgresql-for-tests' server)
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.postgresql import fresh_database_url  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.config import UsageSettings  # noqa: E402
from orchestrator.operations.footprint import footprint  # noqa: E402
from orchestrator.operations.usage_rollup import roll_up  # noqa: E402
from orchestrator.state.associations import add_association, validate_association_spec  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.state.models import Instance, UsageRollup, UsageSample  # noqa: E402
from orchestrator.state.servers import add_server, validate_server_spec  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402

FLEET = 30_000
NOW = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)


def fill(store: StateStore, instances: int) -> list[int]:
    with store.session() as session:
        server = add_server(session, validate_server_spec(name="web-001", address="10.0.0.10", cpu=64,
                                                          memory_mb=262144, disk_gb=8000, labels={}))  # fmt: skip
        owner = add_association(session, validate_association_spec(slug="asso", name="Asso", email="c@asso.example"))
        rows = [Instance(association=owner, name=f"i{n}", service_id="radicale", service_version="3", size="small",
                         cpu=0.5, memory_mb=128, disk_gb=1, server=server, parameters={}, state="running",
                         domain=f"i{n}.asso.scale.test", http_port=20000 + n, secrets={}, id_slot=n + 1)
                for n in range(instances)]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def figures(rng: random.Random, seconds: int) -> dict:
    memory, disk, database = rng.randrange(50, 900) * 2**20, rng.randrange(1, 60) * 2**30, rng.randrange(1, 5) * 2**28
    return {"seconds": seconds, "cpu_usec": rng.randrange(10**6, 10**9) * seconds // 3600,
            "memory_byte_seconds": float(memory * seconds), "disk_byte_seconds": float(disk * seconds),
            "database_byte_seconds": float(database * seconds), "max_memory_bytes": memory, "max_disk_bytes": disk,
            "max_database_bytes": database}  # fmt: skip


def a_year(store: StateStore, ids: list[int]) -> None:
    rng = random.Random(1)
    raw_start = NOW.replace(minute=0) - timedelta(days=2)
    hourly_start = (NOW - timedelta(days=36)).replace(hour=0, minute=0)  # its first day is due
    daily_start = NOW.replace(hour=0, minute=0) - timedelta(days=365)
    for instance_id in ids:
        rows = [{"instance_id": instance_id, "period": "day", "period_start": daily_start + timedelta(days=d),
                 "samples": 24, **figures(rng, 86400)}
                for d in range((hourly_start - daily_start).days)]  # fmt: skip
        rows += [{"instance_id": instance_id, "period": "hour", "period_start": hourly_start + timedelta(hours=h),
                  "samples": 1, **figures(rng, 3600)}
                 for h in range(int((raw_start - hourly_start).total_seconds() // 3600))]  # fmt: skip
        samples = [{"instance_id": instance_id, "taken_at": raw_start - timedelta(minutes=50) + timedelta(hours=h),
                    "disk_bytes": rng.randrange(1, 60) * 2**30, "database_bytes": 2**28, "memory_bytes": 2**28,
                    "error": "", "cpu_usec": rng.randrange(10**9), "cpu_delta_usec": rng.randrange(10**8),
                    "seconds": 3600, "cpu_containers": {"ruche-asso--i-app": ["2026-11-30T13:39:15.334245717Z", 1],
                                                        "ruche-asso--i-db": ["2026-11-30T13:39:15.334245717Z", 1]}}
                   for h in range(2 * 24 + 1)]  # fmt: skip
        with store.session() as session:
            session.execute(insert(UsageRollup), rows)
            session.execute(insert(UsageSample), samples)


def size(store: StateStore, table: str) -> tuple[int, int]:
    with store.session() as session:
        rows = session.scalar(text(f"SELECT count(*) FROM {table}"))
        return rows, session.scalar(text(f"SELECT pg_total_relation_size('{table}')"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--state-url", help="the state database (default: a fresh PostgreSQL database)")
    arguments = parser.parse_args()
    state_url = arguments.state_url or fresh_database_url("ruche_usage")
    if state_url is None:
        parser.error("no PostgreSQL server at hand (scripts/postgresql-for-tests failed): give --state-url")
    path = Path(tempfile.mkdtemp(prefix="ruche-usage-")) / "workspace"
    init_workspace(path, collective="Scale", base_domain="scale.ruche.test", state_url=state_url)
    store = StateStore(open_workspace(path).state_url)
    try:
        started = time.perf_counter()
        ids = fill(store, arguments.instances)
        a_year(store, ids)
        print(
            f"{arguments.instances} instances, a year of hourly measures filled in {time.perf_counter() - started:.0f} s"
        )
        scale = FLEET / arguments.instances
        for table in ("usage_rollups", "usage_samples"):
            rows, on_disk = size(store, table)
            print(f"{table:<14} {rows:>10,} rows {on_disk / 2**20:8.1f} MiB ({on_disk / rows:.0f} B/row with indexes);"
                  f" for {FLEET:,} instances: {rows * scale:>13,.0f} rows {on_disk * scale / 2**30:6.2f} GiB")  # fmt: skip
        raw_rows, raw_bytes = size(store, "usage_samples")
        per_row = raw_bytes / raw_rows
        kept_raw = 365 * 24 * FLEET
        print(f"the same year kept raw: {kept_raw:,} rows, about {kept_raw * per_row / 2**30:.1f} GiB")
        for label in ("one hour due (a sample per instance) and a day of hourly rows", "nothing due"):
            started = time.perf_counter()
            with store.session() as session:
                done = roll_up(session, UsageSettings(), now=NOW)
            print(f"roll-up, {label}: {time.perf_counter() - started:.2f} s {done}")
        config = open_workspace(path).config
        for month, start, end in (("December 2026", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
                                  ("November 2026", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))):  # fmt: skip
            started = time.perf_counter()
            with store.session() as session:
                result = footprint(session, config, start=start, end=end)
            instances = sum(len(entry["instances"]) for entry in result["associations"])
            print(f"footprint, {month}: {time.perf_counter() - started:.2f} s ({instances} instances, "
                  f"{result['totals']['energy_kwh']:.1f} kWh)")  # fmt: skip
    finally:
        store.close()


if __name__ == "__main__":
    main()
