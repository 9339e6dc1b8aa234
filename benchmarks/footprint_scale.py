"""Benchmark: `ruche footprint`'s computation (operations/footprint.footprint) over a year of usage of the scale
fleet, built for real on PostgreSQL (usage_rollup.py measures 1,000 instances and extrapolates).

Fills a fresh state database with PostgreSQL COPY (psycopg's ``cursor.copy()``; minutes where SQLAlchemy inserts
take hours): SERVERS application servers and one backup server, INSTANCES instances spread evenly over them,
owned by ASSOCIATIONS associations (INSTANCES / ASSOCIATIONS each), and what a year of hourly measures leaves with
the default [usage] (raw_days 2, hourly_days 35) up to 2027-01-01 00:30: daily rows from 2026-01-01 to
2026-11-25 (329 per instance), hourly rows from 2026-11-26 to 2026-12-29 (816), raw samples of the last 2 days
(49); plus one successful backup a day per instance (backup_runs with total_bytes) in the two priced months,
December 2026 and June 2026 (with --year-of-backups: every day of 2026, as backup_runs keeps them). Rows are
written in time order (all instances' rows of one period, then the next), as measures leave them; the indexes
and foreign keys of the filled tables are dropped during the fill and made again after it (then VACUUM ANALYZE),
which is faster than keeping them up row by row.

Then gives each table's rows and size on disk (pg_total_relation_size: with its indexes and TOAST), and times
the footprint of December 2026 (the last full month: hourly rows and raw samples) and of June 2026 (daily rows),
for the whole fleet and with ``association_id`` of one association, each in a fresh process (its peak memory,
ru_maxrss, is its own: Python and the imports included, given apart). The database is dropped at the end unless
--keep.

Run: python3 benchmarks/footprint_scale.py [--servers 300] [--instances 30000] [--associations 10000]
         [--daily-instances N (the instances with the daily rows; default: all)] [--year-of-backups]
         [--state-url URL] [--keep]
     (default: a fresh database on scripts/postgresql-for-tests' server)
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from benchmarks.postgresql import fresh_database_url  # noqa: E402

NOW = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)
RAW_START = NOW.replace(minute=0) - timedelta(days=2)  # 2026-12-30 00:00
HOURLY_START = (NOW - timedelta(days=36)).replace(hour=0, minute=0)  # 2026-11-26 00:00
DAILY_START = NOW.replace(hour=0, minute=0) - timedelta(days=365)  # 2026-01-01 00:00
CREATED = datetime(2025, 12, 1, tzinfo=UTC)  # servers, associations, instances: counted the whole year
MONTHS = {"December 2026": (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
          "June 2026": (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))}  # fmt: skip
TABLES = ("servers", "associations", "instances", "usage_rollups", "usage_samples", "backup_runs")
POOL = 1009  # distinct random figure rows per tier, cycled (a prime: instances and periods do not align)
CHUNK = 4 * 2**20


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00")


def figure_pool(rng: random.Random, seconds: int) -> list[str]:
    """Rows of a roll-up's figures (from ``samples`` on), tab-separated, as usage_rollup.py's ``figures``."""
    pool = []
    for _ in range(POOL):
        memory, disk = rng.randrange(50, 900) * 2**20, rng.randrange(1, 60) * 2**30
        database = rng.randrange(1, 5) * 2**28
        cpu = rng.randrange(10**6, 10**9) * seconds // 3600
        pool.append(f"{seconds}\t{cpu}\t{float(memory * seconds)}\t{float(disk * seconds)}\t"
                    f"{float(database * seconds)}\t{memory}\t{disk}\t{database}")  # fmt: skip
    return pool


class Copier:
    """COPY rows (tab-separated lines) into one table, in chunks."""

    def __init__(self, connection: psycopg.Connection, table: str, columns: str) -> None:
        self.cursor = connection.cursor()
        self.context = self.cursor.copy(f"COPY {table} ({columns}) FROM STDIN")
        self.copy = self.context.__enter__()
        self.parts: list[str] = []
        self.size = 0
        self.rows = 0

    def add(self, line: str) -> None:
        self.parts.append(line)
        self.size += len(line)
        self.rows += 1
        if self.size >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.copy.write("".join(self.parts))
        self.parts, self.size = [], 0

    def close(self) -> int:
        self.flush()
        self.context.__exit__(None, None, None)
        self.cursor.close()
        return self.rows


def drop_constraints(connection: psycopg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the tables' secondary indexes and foreign keys; give the statements that make them again."""
    again = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)", (list(tables),))  # fmt: skip
        for table, name, definition in cursor.fetchall():
            again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))", (list(tables),))  # fmt: skip
        for name, definition in cursor.fetchall():
            again.insert(0, definition)
            cursor.execute(f'DROP INDEX "{name}"')
    return again


def fill(url: str, arguments: argparse.Namespace) -> None:
    rng = random.Random(1)
    servers, count, associations = arguments.servers, arguments.instances, arguments.associations
    daily_instances = min(arguments.daily_instances or count, count)
    per_association = -(-count // associations)
    created = ts(CREATED)
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        copier = Copier(connection, "servers", "id, name, address, ssh_user, ssh_port, cpu, memory_mb, disk_gb, "
                        "labels, role, draining, origin, created_at")  # fmt: skip
        for n in range(1, servers + 2):
            role, name = ("apps", f"web-{n:03d}") if n <= servers else ("backup", "backup-001")
            copier.add(f"{n}\t{name}\t10.{n // 250}.{n % 250}.10\troot\t22\t64\t262144\t8000\t{{}}\t{role}\tf\t"
                       f"manual\t{created}\n")  # fmt: skip
        copier.close()
        copier = Copier(connection, "associations", "id, slug, name, email, backup_repository_ready, listed, "
                        "alerts_opt_in, language, created_at")  # fmt: skip
        for n in range(1, associations + 1):
            copier.add(f"{n}\tasso{n}\tAssociation {n}\tcontact@asso{n}.example\tt\tf\tf\tfr\t{created}\n")
        copier.close()
        copier = Copier(connection, "instances", "id, association_id, name, service_id, service_version, size, cpu, "
                        "memory_mb, disk_gb, server_id, parameters, desired_state, state, domain, http_port, "
                        "secrets, health, health_detail, created_at, id_slot, own_domains")  # fmt: skip
        for n in range(count):
            association, server = n // per_association + 1, n % servers + 1
            copier.add(f"{n + 1}\t{association}\ti{n}\tradicale\t3\tsmall\t0.5\t128\t1\t{server}\t{{}}\tpresent\t"
                       f"running\ti{n}.asso{association}.scale.test\t{20000 + n // servers}\t{{}}\tok\t\t{created}\t"
                       f"{n + 1}\t[]\n")  # fmt: skip
        copier.close()
        with connection.cursor() as cursor:
            for table in ("servers", "associations", "instances"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        print(f"{servers} + 1 servers, {associations:,} associations, {count:,} instances: "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip

        again = drop_constraints(connection, ("usage_rollups", "usage_samples", "backup_runs"))
        connection.commit()
        started = time.perf_counter()
        columns = (
            "instance_id, period, period_start, samples, seconds, cpu_usec, memory_byte_seconds, "
            "disk_byte_seconds, database_byte_seconds, max_memory_bytes, max_disk_bytes, max_database_bytes"
        )
        copier = Copier(connection, "usage_rollups", columns)
        daily, hourly = figure_pool(rng, 86400), figure_pool(rng, 3600)
        for d in range((HOURLY_START - DAILY_START).days):
            start = ts(DAILY_START + timedelta(days=d))
            for n in range(1, daily_instances + 1):
                copier.add(f"{n}\tday\t{start}\t24\t{daily[(n * 31 + d) % POOL]}\n")
        days = copier.rows
        for h in range(int((RAW_START - HOURLY_START).total_seconds() // 3600)):
            start = ts(HOURLY_START + timedelta(hours=h))
            for n in range(1, count + 1):
                copier.add(f"{n}\thour\t{start}\t1\t{hourly[(n * 31 + h) % POOL]}\n")
        rows = copier.close()
        connection.commit()
        print(f"usage_rollups: {days:,} daily rows ({daily_instances:,} instances) and {rows - days:,} hourly "
              f"rows: {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip

        started = time.perf_counter()
        copier = Copier(connection, "usage_samples", "instance_id, taken_at, disk_bytes, database_bytes, "
                        "memory_bytes, error, cpu_usec, cpu_delta_usec, seconds, cpu_containers")  # fmt: skip
        containers = json.dumps({"ruche-asso--i-app": ["2026-11-30T13:39:15.334245717Z", 1],
                                 "ruche-asso--i-db": ["2026-11-30T13:39:15.334245717Z", 1]})  # fmt: skip
        for h in range(2 * 24 + 1):
            taken = ts(RAW_START - timedelta(minutes=50) + timedelta(hours=h))
            for n in range(1, count + 1):
                copier.add(f"{n}\t{taken}\t{rng.randrange(1, 60) * 2**30}\t{2**28}\t{2**28}\t\t"
                           f"{rng.randrange(10**9)}\t{rng.randrange(10**8)}\t3600\t{containers}\n")  # fmt: skip
        rows = copier.close()
        connection.commit()
        print(f"usage_samples: {rows:,} rows: {time.perf_counter() - started:.0f} s", flush=True)

        started = time.perf_counter()
        copier = Copier(connection, "backup_runs", "instance_id, instance_address, server, kind, reason, status, "
                        "snapshot_id, started_at, finished_at, duration_seconds, data_added_bytes, total_bytes, "
                        "detail")  # fmt: skip
        periods = (
            [(DAILY_START, NOW.replace(hour=0, minute=0))] if arguments.year_of_backups else sorted(MONTHS.values())
        )
        for start, end in periods:
            for d in range((end - start).days):
                began = start + timedelta(days=d, hours=3)
                at, done = ts(began), ts(began + timedelta(seconds=40))
                for n in range(1, count + 1):
                    copier.add(f"{n}\tasso{n // per_association + 1}/i{n - 1}\tweb-{(n - 1) % servers + 1:03d}\t"
                               f"backup\tscheduled\tsuccess\t{rng.getrandbits(64):016x}\t{at}\t{done}\t40.0\t"
                               f"{rng.randrange(2**20, 2**26)}\t{rng.randrange(1, 60) * 2**30}\t{{}}\n")  # fmt: skip
        rows = copier.close()
        connection.commit()
        which = "the whole year" if arguments.year_of_backups else "June and December"
        print(f"backup_runs: {rows:,} rows (one a day per instance in {which}): "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip

        started = time.perf_counter()
        with connection.cursor() as cursor:
            for statement in again:
                cursor.execute(statement)
        connection.commit()
        print(f"indexes and foreign keys made again ({len(again)}): {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        for table in TABLES:
            connection.execute(f"VACUUM ANALYZE {table}")
    print(f"VACUUM ANALYZE: {time.perf_counter() - started:.0f} s", flush=True)


def measure(workspace: Path, month: str, association_id: int | None) -> None:
    """In its own process: one footprint computation, as JSON on stdout."""
    from orchestrator.operations.footprint import footprint
    from orchestrator.state.database import StateStore
    from orchestrator.workspace import open_workspace

    opened = open_workspace(workspace)
    store = StateStore(opened.state_url)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, end = MONTHS[month]
    try:
        started = time.perf_counter()
        with store.session() as session:
            result = footprint(session, opened.config, start=start, end=end, association_id=association_id)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    listed = sum(len(entry["instances"]) for entry in result["associations"])
    print(json.dumps({"seconds": seconds, "before_kib": before, "peak_kib": resource.getrusage(resource.RUSAGE_SELF)
                      .ru_maxrss, "instances": listed, "kwh": result["totals"]["energy_kwh"],
                      "association_kwh": sum(entry["energy_kwh"] for entry in result["associations"])}))  # fmt: skip


def sizes(url: str) -> None:
    with psycopg.connect(url) as connection:
        total = 0
        for table in TABLES:
            rows, on_disk = connection.execute(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
                                               ).fetchone()  # fmt: skip
            total += on_disk
            print(f"{table:<14} {rows:>12,} rows {on_disk / 2**20:10.1f} MiB"
                  + (f" ({on_disk / rows:.0f} B/row with indexes)" if rows else ""))  # fmt: skip
        database = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(f"these tables: {total / 2**30:.2f} GiB; the whole database: {database / 2**30:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=300)
    parser.add_argument("--instances", type=int, default=30_000)
    parser.add_argument("--associations", type=int, default=10_000)
    parser.add_argument("--daily-instances", type=int, help="instances given the daily rows (default: all)")
    parser.add_argument(
        "--year-of-backups",
        action="store_true",
        help="one backup a day per instance the whole year (default: in the two priced months)",
    )
    parser.add_argument("--state-url", help="the state database (default: a fresh PostgreSQL database, dropped)")
    parser.add_argument("--keep", action="store_true", help="do not drop the fresh database at the end")
    parser.add_argument("--measure", nargs=3, metavar=("WORKSPACE", "MONTH", "ASSOCIATION"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        workspace, month, association = arguments.measure
        measure(Path(workspace), month, int(association) or None)
        return
    state_url = arguments.state_url or fresh_database_url("ruche_footprint")
    if state_url is None:
        parser.error("no PostgreSQL server at hand (scripts/postgresql-for-tests failed): give --state-url")
    from orchestrator.actions.init import init_workspace

    path = Path(tempfile.mkdtemp(prefix="ruche-footprint-")) / "workspace"
    try:
        init_workspace(path, collective="Scale", base_domain="scale.ruche.test", state_url=state_url)
        url = state_url.replace("postgresql+psycopg://", "postgresql://")
        started = time.perf_counter()
        fill(url, arguments)
        print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
        sizes(url)
        for month in MONTHS:
            for association, label in ((0, "whole fleet"), (1, "association_id of one association")):
                done = subprocess.run([sys.executable, __file__, "--measure", str(path), month, str(association)],
                                      capture_output=True, text=True)  # fmt: skip
                if done.returncode:
                    sys.exit(f"footprint of {month} failed:\n{done.stderr}")
                found = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"footprint, {month}, {label}: {found['seconds']:.2f} s, peak memory "
                      f"{found['peak_kib'] / 1024:.0f} MiB ({found['before_kib'] / 1024:.0f} MiB before the call); "
                      f"{found['instances']:,} instances listed, {found['association_kwh']:,.1f} kWh listed, "
                      f"{found['kwh']:,.1f} kWh in all", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
        if not arguments.state_url and not arguments.keep:
            sa_url = state_url.rsplit("/", 1)
            engine = sa.create_engine(sa_url[0] + "/postgres", isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa_url[1]}" WITH (FORCE)'))
            engine.dispose()
            print(f"database {sa_url[1]} dropped")


if __name__ == "__main__":
    main()
