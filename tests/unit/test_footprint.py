"""The footprint's arithmetic (orchestrator/footprint.py) against figures computed by hand, and the month's range."""

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.actions.footprint import month_range
from orchestrator.config import FootprintSettings
from orchestrator.errors import InvalidInput
from orchestrator.footprint import InstanceUse, backup_gb_months, compute, server_facts
from orchestrator.i18n import Translator

pytestmark = pytest.mark.unit

HOURS = 720  # a 30-day month
SETTINGS = FootprintSettings(
    pue=1.5,
    servers={"s1": {"idle_watts": 40, "max_watts": 140, "embodied_kg_co2e": 1000, "lifetime_years": 5},
             "b1": {"idle_watts": 20, "max_watts": 60, "embodied_kg_co2e": 500, "lifetime_years": 5}},
)  # fmt: skip


def fleet(*, empty_server: bool = False):
    servers = [server_facts("s1", "apps", 4, 8192, 100, {"country": "FR"}, HOURS, SETTINGS),
               server_facts("b1", "backup", 2, 4096, 2000, {}, HOURS, SETTINGS)]  # fmt: skip
    if empty_server:
        servers.append(server_facts("e1", "apps", 8, 16384, 1000, {"country": "DE"}, HOURS, SETTINGS))
    instances = [
        InstanceUse(id=1, address="a/cloud", association="a", server="s1", reserved_memory_mb=2048, hours=720,
                    cpu_hours=72, memory_gb_hours=500, disk_gb_months=2, database_gb_months=1, backup_gb_months=1),
        InstanceUse(id=2, address="b/wiki", association="b", server="s1", reserved_memory_mb=1024, hours=360,
                    cpu_hours=18, memory_gb_hours=100, disk_gb_months=4, backup_gb_months=3),
    ]  # fmt: skip
    return compute(servers, instances, SETTINGS)


def test_an_instance_takes_idle_power_by_reserved_memory_and_dynamic_power_by_its_cpu_hours():
    result = fleet()
    one = result["instances"][1]
    # s1: idle 40 W x 720 h x PUE 1.5 = 43.2 kWh; reserved GB-hours 2 x 720 = 1440 and 1 x 360 = 360: shares 0.8, 0.2
    assert one["idle_share"] == pytest.approx(0.8)
    assert one["idle_kwh"] == pytest.approx(34.56)
    # dynamic: (140 - 40) W x 72 CPU-h / 4 vCPUs x 1.5 = 2.7 kWh
    assert one["dynamic_kwh"] == pytest.approx(2.7)
    # backup server: (20 W + 0.5 x 40 W) x 720 h x 1.5 = 43.2 kWh, a quarter by backup GB-months (1 of 4)
    assert one["backup_kwh"] == pytest.approx(10.8)
    assert one["energy_kwh"] == pytest.approx(34.56 + 2.7 + 10.8)
    # carbon: s1 in FR (32 g/kWh), b1 without a country: the fallback 480 g/kWh
    assert one["carbon_kg_co2e"] == pytest.approx((34.56 + 2.7) * 0.032 + 10.8 * 0.48)
    # manufacturing: 1000 kg x 720 h / (5 x 8766 h) x 0.8, and 500 kg x 720 / (5 x 8766) x 0.25
    assert one["embodied_kg_co2e"] == pytest.approx(1000 * 720 / 43830 * 0.8 + 500 * 720 / 43830 * 0.25)
    assert one["total_kg_co2e"] == pytest.approx(one["carbon_kg_co2e"] + one["embodied_kg_co2e"])
    # shares of s1: 72 of its 90 CPU-hours used, of its 4 x 720 capacity; 1440 of its 8 x 720 GB-hours of memory
    assert one["cpu_share_of_used"] == pytest.approx(0.8)
    assert one["cpu_share_of_capacity"] == pytest.approx(0.025)
    assert one["memory_share"] == pytest.approx(0.25)
    two = result["instances"][2]
    assert two["idle_kwh"] == pytest.approx(8.64)
    assert two["dynamic_kwh"] == pytest.approx(0.675)
    assert two["backup_kwh"] == pytest.approx(32.4)
    assert result["associations"]["b"]["disk_gb_months"] == 4
    assert result["associations"]["a"]["reserved_memory_gb_hours"] == pytest.approx(1440)


def test_the_associations_and_the_collective_add_up_to_the_servers():
    result = fleet(empty_server=True)
    e1 = result["servers"]["e1"]
    assert e1["to_collective"] and e1["country"] == "DE"
    # e1 estimated: idle 0.74 x 8 + 0.392 x 16 GB + 1.2 x 1 TB = 13.392 W, x 720 h x 1.5
    assert e1["idle_watts"] == pytest.approx(13.392)
    assert e1["max_watts"] == pytest.approx(3.5 * 8 + 6.272 + 1.2)
    assert result["collective"]["energy_kwh"] == pytest.approx(13.392 * 720 / 1000 * 1.5)
    assert result["collective"]["carbon_kg_co2e"] == pytest.approx(13.392 * 720 / 1000 * 1.5 * 0.311)
    assert result["collective"]["embodied_kg_co2e"] == pytest.approx(1000 * 720 / (4 * 8766))
    for key in ("energy_kwh", "carbon_kg_co2e", "embodied_kg_co2e", "total_kg_co2e"):
        associations = sum(figures[key] for figures in result["associations"].values())
        assert associations + result["collective"][key] == pytest.approx(result["totals"][key])
        assert result["totals"][key] == pytest.approx(sum(s[key] for s in result["servers"].values()))
    assert result["totals"]["energy_kwh"] == pytest.approx(43.2 + 3.375 + 43.2 + 13.392 * 720 / 1000 * 1.5)


def test_a_backup_server_with_nothing_to_carry_is_the_collectives():
    servers = [server_facts("b1", "backup", 2, 4096, 2000, {}, HOURS, SETTINGS)]
    result = compute(servers, [], SETTINGS)
    assert result["servers"]["b1"]["to_collective"]
    assert result["collective"]["energy_kwh"] == pytest.approx(43.2)
    assert result["totals"]["energy_kwh"] == pytest.approx(43.2)


def test_a_servers_facts_are_its_own_else_estimated_and_its_country_else_the_fallback():
    own = server_facts("s1", "apps", 4, 8192, 100, {"country": "fr"}, HOURS, SETTINGS)
    assert (own.idle_watts, own.max_watts, own.country, own.intensity_g_per_kwh) == (40, 140, "FR", 32)
    assert own.estimated == ()
    guessed = server_facts("x", "apps", 8, 16384, 1000, {}, HOURS, FootprintSettings())
    assert guessed.intensity_g_per_kwh == 480 and guessed.country is None
    assert guessed.embodied_kg_co2e == 1000 and guessed.lifetime_years == 4
    assert set(guessed.estimated) == {"idle_watts", "max_watts", "embodied_kg_co2e", "lifetime_years",
                                      "intensity_g_per_kwh"}  # fmt: skip


def test_backup_gb_months_hold_each_snapshot_until_the_next():
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = start + timedelta(hours=HOURS)
    backups = [(start - timedelta(days=1), 10 * 10**9), (start + timedelta(days=10), 20 * 10**9),
               (end + timedelta(days=1), 99 * 10**9)]  # fmt: skip
    # 10 GB for the first 240 h, 20 GB for the other 480 h: 12,000 GB-hours, a month of 730 h
    assert backup_gb_months(backups, start, end) == pytest.approx(12000 / 730)
    assert backup_gb_months([], start, end) == 0


def test_the_month_is_the_last_full_one_by_default_and_a_bad_one_is_refused():
    _ = Translator("en")
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert month_range(None, now, _) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert month_range("2025-02", now, _) == (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    assert month_range("2026-01", now, _) == (datetime(2026, 1, 1, tzinfo=UTC), now)
    for bad in ("2025-13", "25-01", "janvier", "2025-1"):
        with pytest.raises(InvalidInput, match="is not a month") as refused:
            month_range(bad, now, _)
        assert "YYYY-MM" in refused.value.hint
    with pytest.raises(InvalidInput, match="has not begun"):
        month_range("2026-02", now, _)
    with pytest.raises(InvalidInput, match="n'est pas un mois"):
        month_range("2025-13", now, Translator("fr"))
