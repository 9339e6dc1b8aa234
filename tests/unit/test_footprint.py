"""The footprint's arithmetic (orchestrator/footprint.py) against figures computed by hand, and the month's range."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from orchestrator.actions.footprint import month_range
from orchestrator.cli.footprint import as_csv_text, as_text
from orchestrator.config import FootprintSettings
from orchestrator.errors import InvalidInput
from orchestrator.footprint import FIGURES, InstanceUse, backup_gb_months, compute, server_facts
from orchestrator.i18n import Translator
from orchestrator.operations.footprint import method

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


def test_an_instance_takes_idle_power_by_its_share_of_the_servers_memory_and_dynamic_power_by_its_cpu_hours():
    result = fleet()
    one = result["instances"][1]
    # s1: idle 40 W x 720 h x PUE 1.5 = 43.2 kWh; its memory 8192 MiB x 720 h; reserved 2048 MiB x 720 h (0.25) and
    # 1024 MiB x 360 h (0.0625); the other 0.6875 no instance reserved: the collective's own
    assert one["idle_share"] == pytest.approx(0.25) and result["instances"][2]["idle_share"] == pytest.approx(0.0625)
    # dynamic: (140 - 40) W x 90 CPU-h / 4 vCPUs x 1.5 = 3.375 kWh, 72 of the 90 CPU-hours: 2.7 kWh
    # backup server: 20 W idle + 0.5 x 40 W x 720 h x 1.5 = 21.6 + 21.6 kWh, a quarter by backup GB-months (1 of 4)
    assert one["backup_kwh"] == pytest.approx(10.8)
    assert one["idle_kwh"] == pytest.approx(43.2 * 0.25 + 5.4)
    assert one["dynamic_kwh"] == pytest.approx(2.7 + 5.4)
    assert one["energy_kwh"] == pytest.approx(10.8 + 2.7 + 10.8)
    # carbon: s1 in FR (51.1 g/kWh), b1 without a country: the fallback 480 g/kWh
    assert one["carbon_kg_co2e"] == pytest.approx((10.8 + 2.7) * 0.0511 + 10.8 * 0.48)
    # manufacturing: 1000 kg x 720 h / (5 x 8766 h) x 0.25, and 500 kg x 720 / (5 x 8766) x 0.25
    assert one["embodied_kg_co2e"] == pytest.approx(1000 * 720 / 43830 * 0.25 + 500 * 720 / 43830 * 0.25)
    assert one["total_kg_co2e"] == pytest.approx(one["carbon_kg_co2e"] + one["embodied_kg_co2e"])
    # shares of s1: 72 of its 90 CPU-hours used, of its 4 x 720 capacity; 0.25 of its memory x 720 h
    assert one["cpu_share_of_used"] == pytest.approx(0.8)
    assert one["cpu_share_of_capacity"] == pytest.approx(0.025)
    assert one["memory_share"] == pytest.approx(0.25)
    # reserved memory in GB of 10^9 bytes, as measured memory: 2048 MiB = 2.147483648 GB
    assert one["reserved_memory_gb_hours"] == pytest.approx(2.147483648 * 720)
    two = result["instances"][2]
    assert two["idle_kwh"] == pytest.approx(2.7 + 16.2)
    assert two["dynamic_kwh"] == pytest.approx(0.675 + 16.2)
    assert two["backup_kwh"] == pytest.approx(32.4)
    assert result["associations"]["b"]["disk_gb_months"] == 4
    # s1's unreserved idle energy and manufacturing are the collective's
    assert result["collective"]["idle_kwh"] == pytest.approx(43.2 * 0.6875)
    assert result["collective"]["embodied_kg_co2e"] == pytest.approx(1000 * 720 / 43830 * 0.6875)


def test_an_instance_present_an_hour_on_an_empty_server_carries_an_hour_of_its_memory_not_the_server():
    hours = 744
    server = server_facts("big", "apps", 4, 16384, 0, {"country": "FR"}, hours, SETTINGS)
    lone = InstanceUse(id=1, address="a/x", association="a", server="big", reserved_memory_mb=1024, hours=1)
    result = compute([server], [lone], SETTINGS)
    share = 1024 * 1 / (16384 * 744)
    idle = result["servers"]["big"]["idle_kwh"]
    assert result["instances"][1]["idle_share"] == pytest.approx(share)
    assert result["instances"][1]["idle_kwh"] == pytest.approx(idle * share)
    assert result["instances"][1]["embodied_kg_co2e"] == pytest.approx(result["servers"]["big"]["embodied_kg_co2e"]
                                                                        * share)  # fmt: skip
    assert result["collective"]["idle_kwh"] == pytest.approx(idle * (1 - share))


def test_a_servers_dynamic_energy_is_capped_at_its_capacity_and_shared_by_cpu_hours():
    # 2917 % of s1's 4 x 720 CPU-hours (an instance moved to it during the month, counted there whole)
    moved = InstanceUse(id=1, address="a/x", association="a", server="s1", reserved_memory_mb=1024, hours=720,
                        cpu_hours=0.75 * 29.17 * 2880)  # fmt: skip
    other = InstanceUse(id=2, address="b/y", association="b", server="s1", reserved_memory_mb=1024, hours=720,
                        cpu_hours=0.25 * 29.17 * 2880)  # fmt: skip
    server = server_facts("s1", "apps", 4, 8192, 100, {}, HOURS, SETTINGS)
    result = compute([server], [moved, other], SETTINGS)
    # at most (140 - 40) W x 720 h x 1.5 = 108 kWh, shared 3:1
    assert result["servers"]["s1"]["dynamic_kwh"] == pytest.approx(108)
    assert result["servers"]["s1"]["cpu_utilisation"] == 1 and result["servers"]["s1"]["cpu_capped"]
    assert result["instances"][1]["dynamic_kwh"] == pytest.approx(81)
    assert result["instances"][2]["dynamic_kwh"] == pytest.approx(27)


def test_every_figure_of_the_associations_and_the_collective_adds_up_to_the_totals():
    result = fleet(empty_server=True)
    e1 = result["servers"]["e1"]
    assert e1["to_collective"] and e1["country"] == "DE"
    # e1 estimated (a vps): idle 0.74 x 8 + 0.392 x 16 GiB + 1.2 x 1 TB = 13.392 W, x 720 h x 1.5; manufacturing
    # 1000 kg x 8 / 96 vCPUs of the reference host
    assert e1["idle_watts"] == pytest.approx(13.392)
    assert e1["max_watts"] == pytest.approx(3.5 * 8 + 6.272 + 1.2)
    assert e1["embodied_kg_co2e_total"] == pytest.approx(1000 * 8 / 96)
    e1_kwh = 13.392 * 720 / 1000 * 1.5
    assert result["collective"]["energy_kwh"] == pytest.approx(e1_kwh + 43.2 * 0.6875)
    assert result["collective"]["carbon_kg_co2e"] == pytest.approx(e1_kwh * 0.311 + 43.2 * 0.6875 * 0.0511)
    for key in FIGURES:
        associations = sum(figures[key] for figures in result["associations"].values())
        assert associations + result["collective"][key] == pytest.approx(result["totals"][key]), key
    for key in ("idle_kwh", "dynamic_kwh", "backup_kwh", "energy_kwh", "carbon_kg_co2e", "embodied_kg_co2e"):
        assert result["totals"][key] == pytest.approx(sum(s[key] for s in result["servers"].values())), key
    assert result["totals"]["energy_kwh"] == pytest.approx(43.2 + 3.375 + 43.2 + e1_kwh)
    assert result["totals"]["backup_kwh"] == pytest.approx(43.2)


def test_a_backup_server_with_nothing_to_carry_is_the_collectives():
    servers = [server_facts("b1", "backup", 2, 4096, 2000, {}, HOURS, SETTINGS)]
    result = compute(servers, [], SETTINGS)
    assert result["servers"]["b1"]["to_collective"]
    assert result["collective"]["energy_kwh"] == pytest.approx(43.2)
    assert result["collective"]["backup_kwh"] == pytest.approx(43.2)
    assert result["totals"]["energy_kwh"] == pytest.approx(43.2)


def test_a_servers_facts_are_its_own_else_its_kinds_and_its_country_else_the_fallback():
    own = server_facts("s1", "apps", 4, 8192, 100, {"country": "fr"}, HOURS, SETTINGS)
    assert (own.idle_watts, own.max_watts, own.country, own.intensity_g_per_kwh) == (40, 140, "FR", 51.1)
    assert own.estimated == ()
    guessed = server_facts("x", "apps", 8, 16384, 1000, {}, HOURS, FootprintSettings())
    assert guessed.intensity_g_per_kwh == 480 and guessed.country is None and guessed.kind == "vps"
    assert guessed.embodied_kg_co2e == pytest.approx(1000 * 8 / 96) and guessed.lifetime_years == 4
    assert set(guessed.estimated) == {"idle_watts", "max_watts", "embodied_kg_co2e", "lifetime_years",
                                      "intensity_g_per_kwh"}  # fmt: skip
    whole = server_facts("d", "apps", 8, 16384, 1000, {"footprint_kind": "dedicated"}, HOURS, FootprintSettings())
    assert (whole.kind, whole.idle_watts, whole.max_watts, whole.embodied_kg_co2e) == ("dedicated", 50, 150, 1000)
    dedicated = FootprintSettings(default_kind="dedicated", dedicated_idle_watts=30, dedicated_max_watts=70)
    assert server_facts("d", "apps", 8, 16384, 1000, {}, HOURS, dedicated).max_watts == 70
    with pytest.raises(ValueError, match="server odd: footprint_kind 'tower' is not vps or dedicated"):
        server_facts("odd", "apps", 8, 16384, 1000, {"footprint_kind": "tower"}, HOURS, FootprintSettings())


def test_a_servers_idle_power_alone_gets_its_kinds_span_and_a_max_below_idle_is_refused():
    settings = FootprintSettings(servers={"v": {"idle_watts": 20}, "d": {"idle_watts": 45}, "m": {"max_watts": 5}})
    vps = server_facts("v", "apps", 4, 0, 0, {}, HOURS, settings)
    assert (vps.idle_watts, vps.max_watts) == (20, pytest.approx(20 + (3.5 - 0.74) * 4))
    assert "max_watts" in vps.estimated and "idle_watts" not in vps.estimated
    dedicated = server_facts("d", "apps", 4, 0, 0, {"footprint_kind": "dedicated"}, HOURS, settings)
    assert (dedicated.idle_watts, dedicated.max_watts) == (45, 145)
    assert server_facts("m", "apps", 4, 0, 0, {}, HOURS, settings).idle_watts == 0
    with pytest.raises(ValidationError, match=r"\[footprint.servers.web-1\]: max_watts 40.0 is below idle_watts 50.0"):
        FootprintSettings(servers={"web-1": {"idle_watts": 50, "max_watts": 40}})
    with pytest.raises(ValidationError, match="dedicated_max_watts 10.0 is below dedicated_idle_watts 50.0"):
        FootprintSettings(dedicated_max_watts=10)


def test_countries_set_are_merged_over_the_default_intensities_and_marked_set():
    settings = FootprintSettings(carbon_intensity={"BE": 150, "DE": 300})
    assert settings.carbon_intensity["FR"] == 51.1 and settings.carbon_intensity["BE"] == 150
    constants = method(settings)
    assert constants["carbon_intensity"]["set"] == ["BE", "DE"]
    assert "set in ruche.toml for BE, DE" in constants["carbon_intensity"]["source"]
    assert "Cloud Carbon Footprint" in constants["carbon_intensity"]["default_source"]
    assert method(FootprintSettings())["carbon_intensity"]["set"] == []
    pue = method(FootprintSettings(pue=1.2))["pue"]
    assert pue["source"] == "set in ruche.toml" and "Uptime Institute" in pue["default_source"]
    assert "Uptime Institute" in method(FootprintSettings())["pue"]["source"]


def test_the_csv_has_a_period_row_and_countries_as_key_value_pairs():
    settings = FootprintSettings(carbon_intensity={"BE": 150})
    result = {"period": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-01T00:00:00+00:00", "hours": 744},
              "method": method(settings), "associations": [], "servers": [],
              "collective": dict.fromkeys(FIGURES, 0.0), "totals": dict.fromkeys(FIGURES, 0.0)}  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(as_csv_text(result))))
    assert rows[0]["kind"] == "period" and rows[0]["name"] == "2026-10-01T00:00:00+00:00/2026-11-01T00:00:00+00:00"
    assert rows[0]["value"] == "744"
    intensity = next(row for row in rows if row["name"] == "carbon_intensity")["value"]
    assert intensity == "FR=51.1;DE=311.0;GB=225.0;IT=213.4;IE=278.6;BE=150.0"
    text = as_text(result, Translator("en"))
    assert "carbon_intensity = FR 51.1 (default)" in text and "BE 150.0 (set in ruche.toml)" in text


def test_backup_gb_months_hold_each_snapshot_until_the_next():
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = start + timedelta(hours=HOURS)
    backups = [(start - timedelta(days=1), 10 * 10**9), (start + timedelta(days=10), 20 * 10**9),
               (end + timedelta(days=1), 99 * 10**9)]  # fmt: skip
    # 10 GB for the first 240 h, 20 GB for the other 480 h: 12,000 GB-hours, a month of 730 h
    assert backup_gb_months(backups, start, end) == pytest.approx(12000 / 730)
    assert backup_gb_months([], start, end) == 0
    # deleted 10 days in (its final backup then): 10 GB for 240 h, nothing after; deleted before: nothing
    final = backups[:2]
    assert backup_gb_months(final, start, end, deleted=True) == pytest.approx(2400 / 730)
    assert backup_gb_months([(start - timedelta(days=300), 10**9)], start, end, deleted=True) == 0


def test_the_month_is_the_last_full_one_by_default_and_a_bad_one_is_refused():
    _ = Translator("en")
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert month_range(None, now, _) == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert month_range("2025-02", now, _) == (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    assert month_range("2026-01", now, _) == (datetime(2026, 1, 1, tzinfo=UTC), now)
    for bad in (
        "2025-13",
        "25-01",
        "janvier",
        "2025-1",
        "2026-01\n",
        "\uff12\uff10\uff12\uff15-01",
        "\u0662\u0660\u0662\u0665-01",
    ):
        with pytest.raises(InvalidInput, match="is not a month") as refused:
            month_range(bad, now, _)
        assert "YYYY-MM" in refused.value.hint
    for future in ("2026-02", "9999-12"):
        with pytest.raises(InvalidInput, match="has not begun"):
            month_range(future, now, _)
    with pytest.raises(InvalidInput, match="n'est pas un mois"):
        month_range("2025-13", now, Translator("fr"))
