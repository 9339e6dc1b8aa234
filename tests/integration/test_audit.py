"""`ruche audit` (SQLite and PostgreSQL states), read-only: it passes on a fleet kept by ruche, and each
change made behind ruche's back — an inventory edited by hand, a secret written in clear, an association
put over its offer without a recorded override, an instance on a version the catalogue does not list,
an event rewritten, backups missing — makes it fail with the matching finding, until the fix it names."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from orchestrator.config import BackupSettings
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import BackupRun, utc_now
from orchestrator.workspace import open_workspace


@pytest.fixture
def kept(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G"),
        ("association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "association"),
        ("instance", "create", "amap", "radicale"),
        ("instance", "create", "amap", "radicale", "--name", "agenda"),
        ("inventory", "export"),
    ):
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
    return w


def audited(ruche, w) -> tuple[int, list[dict]]:
    answer = ruche(*w, "audit", "--no-servers", "--json")
    return answer.exit_code, json.loads(answer.stdout)["findings"]


def rules(findings) -> set[tuple[str, str]]:
    return {(f["rule"], f["object"]) for f in findings}


def change_state(workspace, change) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            change(session)
    finally:
        store.close()


def test_a_kept_fleet_passes_and_an_inventory_edited_by_hand_is_found_until_exported_again(kept, workspace, ruche):
    assert audited(ruche, kept) == (0, [])
    host_vars = open_workspace(workspace).inventories_dir / "production" / "host_vars" / "web-1.yml"
    host_vars.write_text(host_vars.read_text().replace("ansible_port: 22", "ansible_port: 2222"))
    code, findings = audited(ruche, kept)
    assert code == 1 and rules(findings) == {("inventory.matches-state", "inventories/production/host_vars/web-1.yml")}
    assert "ansible_port: 2222" in findings[0]["evidence"] and "ruche inventory export" in findings[0]["fix"]
    text = ruche(*kept, "audit", "--no-servers")
    assert text.exit_code == 1 and "1 finding(s)" in text.stdout
    assert ruche(*kept, "inventory", "export").exit_code == 0
    assert audited(ruche, kept) == (0, [])


def test_a_secret_in_clear_in_a_run_artifact_is_found_without_being_shown(kept, workspace, ruche):
    secret = json.loads(ruche(*kept, "instance", "secrets", "amap/agenda", "--json").stdout)["admin_password"]
    leaked = workspace / "runs" / "r-1" / "artifacts" / "job_events" / "1.json"
    leaked.parent.mkdir(parents=True)
    leaked.write_text(json.dumps({"stdout": f"password={secret}"}))
    answer = ruche(*kept, "audit", "--no-servers", "--json")
    findings = json.loads(answer.stdout)["findings"]
    assert answer.exit_code == 1 and rules(findings) == {
        ("secrets.never-in-clear", "runs/r-1/artifacts/job_events/1.json")
    }
    assert "amap/agenda's admin_password appears in clear" == findings[0]["evidence"] and secret not in answer.stdout
    leaked.unlink()
    assert audited(ruche, kept)[0] == 0


def test_over_quota_without_override_an_unlisted_version_and_a_rewritten_event_are_found(kept, workspace, ruche):
    def behind_rucheS_back(session):
        session.execute(sa.text("UPDATE associations SET offer = 'decouverte' WHERE slug = 'amap'"))
        session.execute(sa.text("UPDATE instances SET service_version = '2.0.0' WHERE name = 'agenda'"))

    assert (
        ruche(*kept, "instance", "create", "amap", "radicale", "--name", "third").exit_code == 0
    )  # decouverte allows 2
    change_state(workspace, behind_rucheS_back)
    code, findings = audited(ruche, kept)
    assert code == 1 and rules(findings) == {("quota.within-offer", "amap"), ("versions.supported", "amap/agenda"),
                                             ("inventory.matches-state", "inventories/production")}  # fmt: skip
    by_rule = {f["rule"]: f for f in findings}
    assert "no override recorded" in by_rule["quota.within-offer"]["evidence"]
    assert "radicale 2.0.0 is not a version the catalogue lists" in by_rule["versions.supported"]["evidence"]
    assert ruche(*kept, "association", "set-offer", "amap", "association").exit_code == 0
    engine = sa.create_engine(open_workspace(workspace).state_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE instances SET service_version = '3.5.3' WHERE name = 'agenda'"))
        connection.execute(sa.text("UPDATE events SET actor = 'nobody' WHERE seq = 3"))
    engine.dispose()
    assert ruche(*kept, "inventory", "export").exit_code == 0
    code, findings = audited(ruche, kept)
    assert rules(findings) == {("audit-trail.intact", "event 3")}


def test_running_instances_need_a_recent_backup_and_a_recent_verification(kept, workspace, ruche, tmp_path):
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings(repository="/srv/backup")}))
    assert ruche(*kept, "inventory", "export").exit_code == 0

    def running(session):
        for address in ("amap/radicale", "amap/agenda"):
            get_instance(session, address).state = "running"

    change_state(workspace, running)
    code, findings = audited(ruche, kept)
    assert code == 1 and rules(findings) == {(rule, address) for rule in ("backups.inside-window", "backups.verified")
                                             for address in ("amap/radicale", "amap/agenda")}  # fmt: skip
    now = utc_now()

    def backed_up(session):
        for address in ("amap/radicale", "amap/agenda"):
            session.add(BackupRun(instance_address=address, server="web-1", kind="backup", reason="manual", status="success",
                                  started_at=now - timedelta(hours=1), finished_at=now))  # fmt: skip
            session.add(BackupRun(instance_address=address, server="web-1", kind="verify", reason="manual",
                                  status="success" if address == "amap/radicale" else "failed",
                                  started_at=now - timedelta(hours=1), finished_at=now))  # fmt: skip

    change_state(workspace, backed_up)
    code, findings = audited(ruche, kept)
    assert rules(findings) == {("backups.verified", "amap/agenda")}  # its only check failed
    report = tmp_path / "audit.html"
    written = ruche(*kept, "audit", "--no-servers", "--format", "html", "-o", str(report))
    assert written.exit_code == 1 and "<td>backups.verified</td><td>amap/agenda</td>" in report.read_text()
    assert ruche(*kept, "audit", "--format", "md").exit_code == 2  # -o is needed


def test_servers_are_inspected_by_default_and_one_that_does_not_answer_is_a_finding(kept, ruche):
    answer = ruche(*kept, "audit", "--json")
    assert answer.exit_code == 1
    result = json.loads(answer.stdout)
    assert rules(result["findings"]) == {("server.reachable", "web-1")} and result["checked"]["servers"] == 1
    assert "ruche server check web-1" in result["findings"][0]["fix"]
    assert ruche(*kept, "audit", "--server", "nowhere").exit_code != 0
    assert ruche(*kept, "audit", "--server", "web-1", "--no-servers").exit_code == 2
