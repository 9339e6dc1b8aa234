"""`ruche footprint` on SQLite and PostgreSQL: a month (October 2026) of daily usage samples for 2 associations on 2
application servers and a backup server, backups of one instance; the CLI's --json figures equal the ones computed
here by hand, its CSV parses to the same, its text names the constants used; a bad month and an unknown
association are refused with their exit codes and how to fix them."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text, update

from orchestrator.config import FootprintSettings
from orchestrator.footprint import FIGURES
from orchestrator.state.database import StateStore, upgrade_schema
from orchestrator.state.instances import get_instance
from orchestrator.state.models import BackupRun, Server, UsageSample
from orchestrator.workspace import open_workspace

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 31 * 24  # 744
CPU_HOURS_PER_DAY = {"amap/radicale": 2, "chorale/radicale": 1, "chorale/miniflux": 4}
SERVER_OF = {"amap/radicale": "s1", "chorale/radicale": "s1", "chorale/miniflux": "s2"}
GB = 10**9


@pytest.fixture
def fleet(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for number, (name, options) in enumerate({"s1": ["--cpu", "4", "--memory", "8G", "--disk", "100G", "--label", "country=FR"],
                          "s2": ["--cpu", "8", "--memory", "16G", "--disk", "200G", "--label", "country=DE"],
                          "b1": ["--cpu", "2", "--memory", "4G", "--disk", "2000G", "--role", "backup"]}.items(), start=2):  # fmt: skip
        result = ruche(*w, "server", "add", name, "--no-connect", "--address", f"127.0.0.{number}",
                       *options)  # fmt: skip
        assert result.exit_code == 0, result.stderr
    for slug in ("amap", "chorale"):
        assert ruche(*w, "association", "add", slug, "--name", slug.title(), "--email", f"c@{slug}.fr").exit_code == 0
    for address, server in {**SERVER_OF, "amap/miniflux": "s2"}.items():
        slug, service = address.split("/")
        result = ruche(*w, "instance", "create", slug, service, "--server", server)
        assert result.exit_code == 0, result.stderr
    workspace_ = open_workspace(workspace)
    workspace_.edit_config({"footprint": FootprintSettings(
        pue=1.5, servers={"s1": {"idle_watts": 50, "max_watts": 150, "embodied_kg_co2e": 800, "lifetime_years": 5},
                          "b1": {"idle_watts": 20, "max_watts": 60, "embodied_kg_co2e": 300, "lifetime_years": 5}})})  # fmt: skip
    store = StateStore(workspace_.state_url)
    with store.session() as session:
        session.execute(update(Server).values(created_at=datetime(2026, 9, 1, tzinfo=UTC)))
        memory = {server.name: server.memory_mb for server in session.query(Server)}
        for address, per_day in CPU_HOURS_PER_DAY.items():
            instance = get_instance(session, address)
            memory[address] = instance.memory_mb
            for day in range(31):  # one sample a day standing for the day before it
                session.add(UsageSample(instance_id=instance.id, taken_at=OCTOBER + timedelta(days=day, hours=12),
                                        seconds=86400, cpu_delta_usec=per_day * 3600 * 10**6, memory_bytes=GB,
                                        disk_bytes=2 * GB, database_bytes=0, error=""))  # fmt: skip
        radicale = get_instance(session, "chorale/radicale")
        for finished, size, status in ((datetime(2026, 9, 30, 3, tzinfo=UTC), 2 * GB, "success"),
                                       (datetime(2026, 10, 16, tzinfo=UTC), 4 * GB, "success"),
                                       (datetime(2026, 10, 20, tzinfo=UTC), 50 * GB, "failed")):  # fmt: skip
            session.add(BackupRun(instance_id=radicale.id, instance_address="chorale/radicale", server="s1",
                                  kind="backup", reason="scheduled", status=status, started_at=finished,
                                  finished_at=finished, total_bytes=size))  # fmt: skip
        # deleted in 2025, its final backup then: it holds no backup (nor the backup server) in October 2026
        gone = get_instance(session, "amap/miniflux")
        gone.state, gone.desired_state = "deleted", "absent"
        session.add(BackupRun(instance_id=gone.id, instance_address="amap/miniflux", server="s2", kind="backup",
                              reason="final", status="success", started_at=datetime(2025, 3, 1, tzinfo=UTC),
                              finished_at=datetime(2025, 3, 1, tzinfo=UTC), total_bytes=7 * GB))  # fmt: skip
        session.commit()
    store.close()
    return w, memory


def expected(memory: dict) -> dict:
    """The figures by hand (docs/footprint.md): PUE 1.5; s1 its own 50/150 W, 800 kg over 5 years, FR 51.1 g/kWh;
    s2 a vps estimated from 8 vCPUs, 16 GiB, 0.2 TB (0.74 W, 3.5 W per vCPU, 0.392 W/GB, 1.2 W/TB), 1000 kg x 8 / 96
    vCPUs of the reference host over 4 years, DE 311 g/kWh; b1 its own 20/60 W at 50 % use, 300 kg over 5 years, no
    country: 480 g/kWh. Each instance measured the whole month takes its size's memory / its server's of the idle
    power and manufacturing; the rest is the collective's."""
    assert memory["amap/radicale"] == memory["chorale/radicale"]
    radicale_share = memory["amap/radicale"] / memory["s1"]
    miniflux_share = memory["chorale/miniflux"] / memory["s2"]
    s1_idle = 50 * HOURS / 1000 * 1.5  # 55.8 kWh
    s1_embodied = 800 * HOURS / (5 * 8766)
    s2_idle_watts = 0.74 * 8 + 0.392 * 16 + 1.2 * 0.2
    s2_max_watts = 3.5 * 8 + 0.392 * 16 + 1.2 * 0.2
    s2_idle = s2_idle_watts * HOURS / 1000 * 1.5
    s2_dynamic = (s2_max_watts - s2_idle_watts) * 4 * 31 / 8 / 1000 * 1.5
    s2_embodied = 1000 * 8 / 96 * HOURS / (4 * 8766)
    b1_idle, b1_dynamic = 20 * HOURS / 1000 * 1.5, 0.5 * 40 * HOURS / 1000 * 1.5  # all chorale/radicale's
    b1 = b1_idle + b1_dynamic
    b1_embodied = 300 * HOURS / (5 * 8766)
    amap_kwh = s1_idle * radicale_share + 100 * 62 / 4 / 1000 * 1.5
    radicale_kwh = s1_idle * radicale_share + 100 * 31 / 4 / 1000 * 1.5
    miniflux_kwh = s2_idle * miniflux_share + s2_dynamic
    collective_s1, collective_s2 = 1 - 2 * radicale_share, 1 - miniflux_share
    return {
        "amap": {"energy_kwh": amap_kwh, "carbon_kg_co2e": amap_kwh * 0.0511,
                 "embodied_kg_co2e": s1_embodied * radicale_share, "cpu_hours": 62, "memory_gb_hours": HOURS,
                 "disk_gb_months": 2 * HOURS / 730, "backup_gb_months": 0,
                 "reserved_memory_gb_hours": memory["amap/radicale"] * 2**20 / GB * HOURS},
        "chorale": {"energy_kwh": radicale_kwh + b1 + miniflux_kwh,
                    "carbon_kg_co2e": radicale_kwh * 0.0511 + b1 * 0.48 + miniflux_kwh * 0.311,
                    "embodied_kg_co2e": s1_embodied * radicale_share + s2_embodied * miniflux_share + b1_embodied,
                    "cpu_hours": 31 + 124, "backup_gb_months": (2 * 360 + 4 * 384) / 730, "backup_kwh": b1,
                    "idle_kwh": s1_idle * radicale_share + s2_idle * miniflux_share + b1_idle,
                    "dynamic_kwh": 100 * 31 / 4 / 1000 * 1.5 + s2_dynamic + b1_dynamic},
        "(collective)": {"idle_kwh": s1_idle * collective_s1 + s2_idle * collective_s2, "dynamic_kwh": 0,
                         "embodied_kg_co2e": s1_embodied * collective_s1 + s2_embodied * collective_s2,
                         "carbon_kg_co2e": s1_idle * collective_s1 * 0.0511 + s2_idle * collective_s2 * 0.311},
    }  # fmt: skip


def test_the_footprint_of_a_month_equals_the_figures_computed_by_hand(fleet, ruche, monkeypatch):
    w, memory = fleet
    english(monkeypatch)
    result = ruche(*w, "footprint", "--month", "2026-10", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["period"]["hours"] == HOURS and data["period"]["start"].startswith("2026-10-01")
    by_slug = {entry["slug"]: entry for entry in data["associations"]}
    by_slug["(collective)"] = data["collective"]
    for slug, figures in expected(memory).items():
        for key, value in figures.items():
            assert by_slug[slug][key] == pytest.approx(value), (slug, key)
    assert by_slug["chorale"]["name"] == "Chorale"
    assert {i["address"] for i in by_slug["chorale"]["instances"]} == {"chorale/radicale", "chorale/miniflux"}
    miniflux = next(i for i in by_slug["chorale"]["instances"] if i["address"] == "chorale/miniflux")
    assert miniflux["idle_share"] == pytest.approx(memory["chorale/miniflux"] / memory["s2"]) and miniflux[
        "cpu_share_of_capacity"
    ] == pytest.approx(124 / (8 * HOURS))
    for key in FIGURES:
        assert sum(entry[key] for entry in data["associations"]) + data["collective"][key] == pytest.approx(
            data["totals"][key]), key  # fmt: skip
    assert "amap/miniflux" not in {i["address"] for i in by_slug["amap"]["instances"]}
    servers = {server["name"]: server for server in data["servers"]}
    assert servers["s2"]["estimated"] == ["idle_watts", "max_watts", "embodied_kg_co2e", "lifetime_years"]
    assert servers["b1"]["intensity_g_per_kwh"] == 480 and servers["s1"]["country"] == "FR"
    assert data["method"]["pue"]["value"] == 1.5 and data["method"]["pue"]["default"] is False
    assert data["method"]["pue"]["source"] == "set in ruche.toml"
    assert "Uptime Institute" in data["method"]["pue"]["default_source"]
    assert data["method"]["carbon_intensity"]["value"]["FR"] == 51.1
    assert "Cloud Carbon Footprint" in data["method"]["carbon_intensity"]["source"]
    assert data["method"]["servers"]["s1"]["idle_watts"] == 50

    one = ruche(*w, "footprint", "--month", "2026-10", "--association", "amap", "--json")
    assert [entry["slug"] for entry in json.loads(one.stdout)["associations"]] == ["amap"]
    assert json.loads(one.stdout)["associations"][0]["energy_kwh"] == pytest.approx(by_slug["amap"]["energy_kwh"])

    table = ruche(*w, "footprint", "--month", "2026-10")
    assert table.exit_code == 0, table.stderr
    assert "Footprint from 2026-10-01 to 2026-11-01" in table.stdout
    assert "pue = 1.500 (set in ruche.toml)" in table.stdout
    assert "fallback_carbon_intensity = 480.000 (default)" in table.stdout
    assert f"{by_slug['amap']['energy_kwh']:.2f}" in table.stdout

    rows = list(csv.DictReader(io.StringIO(ruche(*w, "footprint", "--month", "2026-10", "--csv").stdout)))
    chorale = next(row for row in rows if row["kind"] == "association" and row["name"] == "chorale")
    assert float(chorale["energy_kwh"]) == pytest.approx(by_slug["chorale"]["energy_kwh"])
    assert {row["name"] for row in rows if row["kind"] == "instance"} == set(SERVER_OF)
    assert next(row for row in rows if row["kind"] == "constant" and row["name"] == "pue")["value"] == "1.5"
    assert rows[0]["kind"] == "period" and rows[0]["name"].startswith("2026-10-01") and rows[0]["value"] == "744.0"
    intensity = next(row for row in rows if row["kind"] == "constant" and row["name"] == "carbon_intensity")
    assert intensity["value"].startswith("FR=51.1;DE=311.0")


def english(monkeypatch) -> None:
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)


def test_a_bad_month_or_an_unknown_association_is_refused_with_its_fix(workspace, ruche, monkeypatch):
    w = ["--workspace", str(workspace)]
    english(monkeypatch)
    bad = ruche(*w, "footprint", "--month", "2026-13")
    assert bad.exit_code == 2
    assert "--month '2026-13' is not a month" in bad.stderr and "YYYY-MM" in bad.stderr
    for month in ("2999-01", "9999-12"):
        future = ruche(*w, "footprint", "--month", month)
        assert future.exit_code == 2 and "has not begun" in future.stderr and "Traceback" not in future.stderr
    unknown = ruche(*w, "footprint", "--association", "nobody")
    assert unknown.exit_code == 4
    assert "no association 'nobody'" in unknown.stderr and "ruche association list" in unknown.stderr
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert "n'est pas un mois" in ruche(*w, "footprint", "--month", "2026-13").stderr
    empty = ruche(*w, "footprint", "--json")
    assert empty.exit_code == 0 and json.loads(empty.stdout)["associations"] == []


def test_migration_0023_indexes_each_instances_backups_by_time(fleet, workspace):
    """The footprint reads backups by (instance_id, finished_at): 0023 adds that index to a state at 0022, and leaves
    one already there alone."""
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_backup_runs_instance_finished"))
            connection.execute(text("UPDATE alembic_version SET version_num = '0022'"))
        upgrade_schema(store.engine)
        indexes = {index["name"]: index["column_names"] for index in inspect(store.engine).get_indexes("backup_runs")}
        assert indexes["ix_backup_runs_instance_finished"] == ["instance_id", "finished_at"]
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0022'"))
        upgrade_schema(store.engine)  # again: the index is there already
    finally:
        store.close()
