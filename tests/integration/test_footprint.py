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
from sqlalchemy import update

from orchestrator.config import FootprintSettings
from orchestrator.state.database import StateStore
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
    for address, server in SERVER_OF.items():
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
        memory = {}
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
        session.commit()
    store.close()
    return w, memory


def expected(memory: dict) -> dict:
    """The figures by hand (docs/footprint.md): PUE 1.5; s1 its own 50/150 W, 800 kg over 5 years, FR 32 g/kWh;
    s2 estimated from 8 vCPUs, 16 GB, 0.2 TB (0.74 W, 3.5 W per vCPU, 0.392 W/GB, 1.2 W/TB), 1000 kg over 4 years,
    DE 311 g/kWh; b1 its own 20/60 W at 50 % use, 300 kg over 5 years, no country: 480 g/kWh."""
    s1_idle = 50 * HOURS / 1000 * 1.5  # 55.8 kWh, halved: the two radicales reserve the same memory
    assert memory["amap/radicale"] == memory["chorale/radicale"]
    s1_embodied = 800 * HOURS / (5 * 8766)
    s2_idle_watts = 0.74 * 8 + 0.392 * 16 + 1.2 * 0.2
    s2_max_watts = 3.5 * 8 + 0.392 * 16 + 1.2 * 0.2
    s2_idle = s2_idle_watts * HOURS / 1000 * 1.5
    s2_dynamic = (s2_max_watts - s2_idle_watts) * 4 * 31 / 8 / 1000 * 1.5
    s2_embodied = 1000 * HOURS / (4 * 8766)
    b1 = (20 + 0.5 * 40) * HOURS / 1000 * 1.5  # all of it chorale/radicale's: the only backups
    b1_embodied = 300 * HOURS / (5 * 8766)
    amap_kwh = s1_idle / 2 + 100 * 62 / 4 / 1000 * 1.5
    chorale_radicale_kwh = s1_idle / 2 + 100 * 31 / 4 / 1000 * 1.5
    return {
        "amap": {"energy_kwh": amap_kwh, "carbon_kg_co2e": amap_kwh * 0.032, "embodied_kg_co2e": s1_embodied / 2,
                 "cpu_hours": 62, "memory_gb_hours": HOURS, "disk_gb_months": 2 * HOURS / 730,
                 "backup_gb_months": 0},
        "chorale": {"energy_kwh": chorale_radicale_kwh + b1 + s2_idle + s2_dynamic,
                    "carbon_kg_co2e": chorale_radicale_kwh * 0.032 + b1 * 0.48 + (s2_idle + s2_dynamic) * 0.311,
                    "embodied_kg_co2e": s1_embodied / 2 + s2_embodied + b1_embodied, "cpu_hours": 31 + 124,
                    "backup_gb_months": (2 * 360 + 4 * 384) / 730, "backup_kwh": b1},
    }  # fmt: skip


def test_the_footprint_of_a_month_equals_the_figures_computed_by_hand(fleet, ruche, monkeypatch):
    w, memory = fleet
    english(monkeypatch)
    result = ruche(*w, "footprint", "--month", "2026-10", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["period"]["hours"] == HOURS and data["period"]["start"].startswith("2026-10-01")
    by_slug = {entry["slug"]: entry for entry in data["associations"]}
    for slug, figures in expected(memory).items():
        for key, value in figures.items():
            assert by_slug[slug][key] == pytest.approx(value), (slug, key)
    assert by_slug["chorale"]["name"] == "Chorale"
    assert {i["address"] for i in by_slug["chorale"]["instances"]} == {"chorale/radicale", "chorale/miniflux"}
    miniflux = next(i for i in by_slug["chorale"]["instances"] if i["address"] == "chorale/miniflux")
    assert miniflux["idle_share"] == pytest.approx(1) and miniflux["cpu_share_of_capacity"] == pytest.approx(
        124 / (8 * HOURS)
    )
    for key in ("energy_kwh", "carbon_kg_co2e", "embodied_kg_co2e", "total_kg_co2e"):
        assert sum(entry[key] for entry in data["associations"]) + data["collective"][key] == pytest.approx(
            data["totals"][key])  # fmt: skip
    assert data["collective"]["energy_kwh"] == 0
    servers = {server["name"]: server for server in data["servers"]}
    assert servers["s2"]["estimated"] == ["idle_watts", "max_watts", "embodied_kg_co2e", "lifetime_years"]
    assert servers["b1"]["intensity_g_per_kwh"] == 480 and servers["s1"]["country"] == "FR"
    assert data["method"]["pue"] == {"value": 1.5, "default": False, "source": data["method"]["pue"]["source"]}
    assert "Uptime Institute" in data["method"]["pue"]["source"]
    assert (
        data["method"]["carbon_intensity"]["value"]["FR"] == 32
        and "RTE" in data["method"]["carbon_intensity"]["source"]
    )
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
    future = ruche(*w, "footprint", "--month", "2999-01")
    assert future.exit_code == 2 and "has not begun" in future.stderr
    unknown = ruche(*w, "footprint", "--association", "nobody")
    assert unknown.exit_code == 4
    assert "no association 'nobody'" in unknown.stderr and "ruche association list" in unknown.stderr
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert "n'est pas un mois" in ruche(*w, "footprint", "--month", "2026-13").stderr
    empty = ruche(*w, "footprint", "--json")
    assert empty.exit_code == 0 and json.loads(empty.stdout)["associations"] == []
