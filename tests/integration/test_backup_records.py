"""Backup bookkeeping on SQLite and PostgreSQL: status windows and expiry of deleted instances' backups."""

import json
from datetime import timedelta

import pytest

from orchestrator.config import BackupSettings
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import BackupRun, utc_now
from orchestrator.workspace import open_workspace


@pytest.fixture
def hosted(workspace, ruche):
    w = ["--workspace", str(workspace)]
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings(repository="/srv/backup")}))
    assert ruche(*w, "server", "add", "big", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    assert (
        ruche(
            *w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "decouverte"
        ).exit_code
        == 0
    )
    assert ruche(*w, "instance", "create", "amap", "radicale").exit_code == 0
    set_state(workspace, "amap/radicale", "running")
    return w


def set_state(workspace, address: str, state: str) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            get_instance(session, address).state = state
    finally:
        store.close()


def record_backup(
    workspace, address: str, *, age: timedelta, status: str = "success", reason: str = "scheduled"
) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            instance = get_instance(session, address)
            at = utc_now() - age
            session.add(BackupRun(instance_id=instance.id, instance_address=address, server="big", kind="backup",
                                  reason=reason, status=status, snapshot_id="ab" * 32, started_at=at, finished_at=at,
                                  detail={}))  # fmt: skip
    finally:
        store.close()


def status(ruche, w) -> tuple[int, dict]:
    result = ruche(*w, "backup", "status", "--offline", "--json")
    return result.exit_code, {e["instance"]: e["problem"] for e in json.loads(result.stdout)["instances"]}


def test_status_flags_instances_outside_their_offers_window(hosted, workspace, ruche):
    assert status(ruche, hosted) == (1, {"amap/radicale": "no successful backup"})
    record_backup(workspace, "amap/radicale", age=timedelta(hours=30))
    assert status(ruche, hosted) == (1, {"amap/radicale": "last successful backup older than 26 h"})
    record_backup(workspace, "amap/radicale", age=timedelta(hours=2))
    assert status(ruche, hosted) == (0, {"amap/radicale": None})
    record_backup(workspace, "amap/radicale", age=timedelta(hours=1), status="failed")
    assert status(ruche, hosted) == (1, {"amap/radicale": "the last backup failed"})


def test_a_deleted_instances_final_backup_is_kept_for_its_offers_retention(hosted, workspace, ruche):
    # decouverte keeps 7 daily and 2 weekly snapshots: a deleted instance's backups are kept 14 days
    record_backup(workspace, "amap/radicale", age=timedelta(days=3), reason="final")
    set_state(workspace, "amap/radicale", "deleted")
    result = json.loads(ruche(*hosted, "backup", "expire", "--dry-run", "--json").stdout)
    assert result["expired"] == [] and [k["instance"] for k in result["kept"]] == ["amap/radicale"]
    record_backup(workspace, "amap/radicale", age=timedelta(days=20), reason="final")  # older runs do not matter...
    result = json.loads(ruche(*hosted, "backup", "expire", "--dry-run", "--json").stdout)
    assert result["expired"] == []  # ...the newest good backup (3 days) decides
    store = StateStore(open_workspace(workspace).state_url)
    with store.session() as session:
        for run in session.query(BackupRun).all():
            run.started_at = run.finished_at = utc_now() - timedelta(days=15)
    store.close()
    result = json.loads(ruche(*hosted, "backup", "expire", "--dry-run", "--json").stdout)
    assert [e["instance"] for e in result["expired"]] == ["amap/radicale"] and result["dry_run"] is True


def test_backups_need_a_repository(workspace, ruche):
    result = ruche("--workspace", str(workspace), "backup", "status")
    assert result.exit_code == 6 and "no backup repository is configured" in result.stderr


def test_a_queued_delete_of_an_instance_that_does_not_run_removes_nothing_and_says_why(hosted, workspace, ruche):
    # a manager suspends, then deletes: the worker cannot take the final backup (`ruche instance delete` refuses too)
    from orchestrator.actions.worker import apply_queued
    from orchestrator.state.instance_changes import queue_change

    set_state(workspace, "amap/radicale", "suspended")
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            instance = get_instance(session, "amap/radicale")
            instance.desired_state = "suspended"
            run = queue_change(session, instance, "delete", actor="manager Zoé of amap")
            session.flush()
            session.expunge(run)
        succeeded, run_id, summary = apply_queued(workspace, run, lambda _message: None)
        assert (succeeded, run_id) == (False, None)
        assert "nothing was removed (not running)" in summary["error"] and "resume it" in summary["error"]
        with store.session() as session:
            instance = get_instance(session, "amap/radicale")
            assert (instance.desired_state, instance.state) == ("suspended", "suspended")
    finally:
        store.close()
    (refused,) = json.loads(ruche(*hosted, "events", "--kind", "instance.removal_refused", "--json").stdout)
    assert refused["subject"] == "amap/radicale" and refused["detail"]["reason"] == "not running"
