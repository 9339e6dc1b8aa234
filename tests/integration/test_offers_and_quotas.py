"""Offers bound what an association may create; overrides and offer changes are recorded."""

import json

import pytest

from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import UsageSample
from orchestrator.workspace import open_workspace


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(
            *w,
            "server",
            "add",
            "big",
            "--no-connect",
            "--address",
            "192.0.2.1",
            "--cpu",
            "16",
            "--memory",
            "32G",
            "--disk",
            "1T",
        ).exit_code
        == 0
    )
    added = ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "decouverte")
    assert added.exit_code == 0, added.stderr
    return w


def instance_count(ruche, w) -> int:
    return len(json.loads(ruche(*w, "instance", "list", "--json").stdout))


def test_offers_are_listed_and_shown_with_service_limits(pool, ruche):
    listed = {o["name"]: o for o in json.loads(ruche(*pool, "offer", "list", "--json").stdout)}
    assert set(listed) == {"decouverte", "association"}
    assert listed["decouverte"]["associations"] == 1 and listed["decouverte"]["max_instances"] == 2
    shown = json.loads(ruche(*pool, "offer", "show", "decouverte", "--json").stdout)
    assert shown["service_limits"]["nextcloud"]["user_quota"]["value"] == "1 GB"  # the offer's value
    assert shown["service_limits"]["mattermost"]["max_users_per_team"]["value"] == "50"  # the entry's default
    assert shown["associations"] == [{"slug": "amap", "instances": 0, "memory_mb": 0, "disk_gb": 0}]
    missing = ruche(*pool, "offer", "show", "gold")
    assert missing.exit_code == 4 and "no offer 'gold'" in missing.stderr


def test_an_instance_beyond_the_offer_is_refused_with_the_limit_and_the_excess(pool, ruche):
    # decouverte: 2 instances, 512 MiB, 5 GiB; radicale small = 128 MiB / 1 GiB, nextcloud small = 1024 MiB / 20 GiB
    assert ruche(*pool, "instance", "create", "amap", "radicale").exit_code == 0
    events_before = ruche(*pool, "events", "--json").stdout
    refused = ruche(*pool, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr")
    assert refused.exit_code == 5
    assert "beyond amap's offer 'decouverte'" in refused.stderr
    assert "memory 1152 MiB where the offer allows 512 MiB (640 MiB over)" in refused.stderr
    assert "disk 21 GiB where the offer allows 5 GiB (16 GiB over)" in refused.stderr
    assert "--over-quota" in refused.stderr
    assert instance_count(ruche, pool) == 1  # nothing recorded
    assert ruche(*pool, "events", "--json").stdout == events_before


def test_an_override_creates_it_and_is_recorded_with_who(pool, ruche, monkeypatch):
    monkeypatch.setenv("RUCHE_ACTOR", "camille")
    created = ruche(
        *pool, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr", "--over-quota", "--json"
    )
    assert created.exit_code == 0, created.stderr
    assert json.loads(created.stdout)["quota"]["overridden"] is True
    (event,) = json.loads(ruche(*pool, "events", "--kind", "quota.override", "--json").stdout)
    assert (event["actor"], event["kind"], event["subject"]) == ("camille", "quota.override", "amap/nextcloud")
    assert {e["limit"]: e["over"] for e in event["detail"]["excesses"]} == {"memory": 512, "disk": 15}


def test_the_count_limit_counts_active_instances(pool, ruche):
    assert ruche(*pool, "instance", "create", "amap", "radicale").exit_code == 0
    assert ruche(*pool, "instance", "create", "amap", "radicale", "--name", "agenda").exit_code == 0
    third = ruche(*pool, "instance", "create", "amap", "radicale", "--name", "autre")
    assert third.exit_code == 5 and "instances 3 where the offer allows 2 (1 over)" in third.stderr


def test_set_offer_moves_records_and_refuses_a_smaller_offer_that_is_already_exceeded(pool, ruche):
    assert (
        ruche(
            *pool, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr", "--over-quota"
        ).exit_code
        == 0
    )
    moved = ruche(*pool, "association", "set-offer", "amap", "association", "--json")
    assert moved.exit_code == 0 and json.loads(moved.stdout)["offer"] == "association"
    back = ruche(*pool, "association", "set-offer", "amap", "decouverte")
    assert back.exit_code == 5 and "memory 1024 MiB where the offer allows 512 MiB" in back.stderr
    assert json.loads(ruche(*pool, "association", "show", "amap", "--json").stdout)["offer"] == "association"
    kinds = [e["kind"] for e in json.loads(ruche(*pool, "events", "--json").stdout)]
    assert [k for k in kinds if k in ("offer.set", "quota.override")] == ["offer.set", "quota.override"]  # newest first
    assert "associations.changed" in kinds
    unknown = ruche(*pool, "association", "set-offer", "amap", "gold")
    assert unknown.exit_code == 2 and "offer 'gold' does not exist" in unknown.stderr


def test_an_unknown_offer_is_refused_at_registration(pool, ruche):
    result = ruche(*pool, "association", "add", "chorale", "--name", "C", "--email", "c@c.fr", "--offer", "gold")
    assert result.exit_code == 2 and "offer 'gold' does not exist" in result.stderr
    assert [a["slug"] for a in json.loads(ruche(*pool, "association", "list", "--json").stdout)] == ["amap"]


def record_sample(workspace, address: str, disk_bytes: int) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            session.add(UsageSample(instance=get_instance(session, address), disk_bytes=disk_bytes, memory_bytes=None))
    finally:
        store.close()


def test_the_quota_report_sets_measured_use_against_the_offer_and_the_servers(pool, workspace, ruche):
    assert ruche(*pool, "instance", "create", "amap", "radicale").exit_code == 0
    report = json.loads(ruche(*pool, "quota", "report", "--json").stdout)
    (amap,) = report["associations"]
    assert amap["flags"] == ["not_measured"] and amap["measured"]["disk_bytes"] is None

    record_sample(workspace, "amap/radicale", 6 * 1024**3)  # 6 GiB measured, the offer allows 5
    report = json.loads(ruche(*pool, "quota", "report", "--json").stdout)
    (amap,) = report["associations"]
    assert amap["allocated"] == {"instances": 1, "memory_mb": 128, "disk_gb": 1}
    assert amap["measured"]["disk_bytes"] == 6 * 1024**3 and amap["percent"]["disk_measured"] == 120.0
    assert amap["flags"] == ["over_quota_measured"]
    (big,) = [s for s in report["servers"] if s["server"] == "big"]
    assert big["allocated"]["disk_gb"] == 1 and big["measured"]["disk_bytes"] == 6 * 1024**3 and big["flags"] == []
    csv_text = ruche(*pool, "quota", "report", "--csv").stdout
    assert "association,amap,decouverte,1,2,128,512,1,5,6442450944,,120.0,over_quota_measured" in csv_text
