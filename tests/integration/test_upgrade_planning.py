"""Versions and upgrade planning through the real CLI, on SQLite and PostgreSQL (no server is reached):
instances created on an older version, `plan` listing them with their path, and the refusals that
come before any server is touched."""

import json
from datetime import UTC

import pytest


@pytest.fixture
def fleet(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(
            *w, "server", "add", "one", "--no-connect", "--address", "192.0.2.1", "--memory", "8G", "--disk", "200G"
        ).exit_code
        == 0
    )
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    return w


def test_an_instance_records_its_version_and_plan_lists_the_path(fleet, ruche):
    w = fleet
    old = json.loads(ruche(*w, "instance", "create", "amap", "radicale", "--version", "3.1.8", "--json").stdout)
    assert old["instance"]["version"] == "3.1.8"
    new = json.loads(ruche(*w, "instance", "create", "amap", "radicale", "--name", "cal2", "--json").stdout)
    assert new["instance"]["version"] == "3.5.3"
    wiki = ruche(
        *w, "instance", "create", "amap", "mediawiki-debian", "--version", "1.39.17", "--param", "admin_email=a@amap.fr"
    )
    assert wiki.exit_code == 0, wiki.stderr
    plan = json.loads(ruche(*w, "plan", "--json").stdout)
    assert [(u["instance"], u["version"], u["path"]) for u in plan["upgrades"]] == [
        ("amap/mediawiki-debian", "1.39.17", ["1.43.9"]),
        ("amap/radicale", "3.1.8", ["3.5.3"]),
    ]
    text = ruche(*w, "plan").stdout
    assert "3.1.8 -> 3.5.3" in text and "2 instance(s) behind" in text
    unknown = ruche(*w, "instance", "create", "amap", "radicale", "--name", "cal3", "--version", "2.0")
    assert unknown.exit_code == 2 and "known: 3.1.8, 3.5.3" in unknown.stderr


def test_upgrades_are_refused_before_anything_changes(fleet, ruche):
    w = fleet
    assert ruche(*w, "instance", "create", "amap", "radicale", "--version", "3.1.8").exit_code == 0
    no_backups = ruche(*w, "instance", "upgrade", "amap/radicale", "--yes")
    assert no_backups.exit_code == 6 and "no backup repository" in no_backups.stderr
    assert ruche(*w, "instance", "upgrade", "amap/nothing", "--yes").exit_code == 6  # backups are checked first
    fleet_preview = json.loads(ruche(*w, "upgrade", "radicale", "--dry-run", "--json").stdout)
    assert fleet_preview["candidates"] == []  # planned, not running: skipped and said so
    assert (
        fleet_preview["skipped"][0]["instance"] == "amap/radicale"
        and "only running" in fleet_preview["skipped"][0]["reason"]
    )
    assert json.loads(ruche(*w, "upgrades", "--json").stdout) == []
    assert json.loads(ruche(*w, "instance", "show", "amap/radicale", "--json").stdout)["version"] == "3.1.8"


def test_a_maintenance_window_spans_midnight():
    from datetime import datetime

    from orchestrator.config import LocalizedText, Offer

    offer = Offer(
        label=LocalizedText(fr="a", en="a"), max_instances=1, memory_mb=1, disk_gb=1, maintenance_window="22:00-06:00"
    )
    at = lambda hour, minute=0: datetime(2026, 11, 24, hour, minute, tzinfo=UTC)  # noqa: E731
    assert offer.in_maintenance_window(at(23)) and offer.in_maintenance_window(at(5, 59))
    assert not offer.in_maintenance_window(at(6)) and not offer.in_maintenance_window(at(12))
    assert Offer(label=offer.label, max_instances=1, memory_mb=1, disk_gb=1).in_maintenance_window(at(12))


def test_a_queued_fleet_upgrade_keeps_the_canary_parallel_and_stop_rules(fleet, workspace, ruche):
    from orchestrator.state.database import StateStore
    from orchestrator.state.instances import list_instances
    from orchestrator.state.queue import claim_next, finish
    from orchestrator.workspace import open_workspace

    w = fleet
    for name in ("two", "three"):
        assert (
            ruche(
                *w,
                "server",
                "add",
                name,
                "--no-connect",
                "--address",
                f"192.0.2.{len(name)}",
                "--memory",
                "8G",
                "--disk",
                "200G",
            ).exit_code
            == 0
        )
    for index, server in enumerate(["one", "two", "three", "one", "two"]):
        assert ruche(*w, "instance", "create", "amap", "radicale", "--name", f"c{index}", "--server", server,
                     "--version", "3.1.8").exit_code == 0  # fmt: skip
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            for instance in list_instances(session):
                instance.state = "running"  # as if applied
        queued = json.loads(ruche(*w, "upgrade", "radicale", "--canary", "1", "--parallel", "2", "--enqueue", "--yes",
                                  "--json").stdout)["queued"]  # fmt: skip
        ids = {q["instance"]: q["id"] for q in queued}
        assert [q["payload"]["canary"] for q in queued] == [True, False, False, False, False]
        canary = claim_next(store, "w1")
        assert canary.instance_address == "amap/c0" and claim_next(store, "w2") is None  # the canary runs alone
        finish(store, canary.id, "w1", succeeded=True, run_identifier=None, result={})
        first, second = claim_next(store, "w1"), claim_next(store, "w2")
        assert {first.instance_address, second.instance_address} == {"amap/c1", "amap/c2"}
        assert claim_next(store, "w3") is None  # --parallel 2 (c3's server is free, but two run already)
        finish(store, first.id, "w1", succeeded=False, run_identifier=None, result={"status": "rolled_back"})
        assert claim_next(store, "w3") is None  # stopped at the first failure: the waiting ones are cancelled
        states = {q["instance"]: q["state"] for q in json.loads(ruche(*w, "queue", "list", "--json").stdout)}
        assert states["amap/c3"] == states["amap/c4"] == "cancelled" and states["amap/c0"] == "done"
        assert ids["amap/c3"] and states[second.instance_address] == "running"  # already running: it finishes
    finally:
        store.close()
