"""`ruche association remove` on SQLite and PostgreSQL: refused while an instance is not deleted, otherwise the
association, its instances' records and their history leave the registry and the transparency report, each
row as an event; its backups on the managed backup server are erased (over SSH: faked here, the lab does it)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from orchestrator.catalog import load_catalog
from orchestrator.config import BackupSettings
from orchestrator.errors import OperationFailed
from orchestrator.reports.transparency import gather
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import (
    Association,
    BackupRun,
    Event,
    HealthCheck,
    Instance,
    Invite,
    QueuedRun,
    Run,
    ServiceRequest,
    Upgrade,
    UsageSample,
    WebSession,
    utc_now,
)
from orchestrator.workspace import open_workspace

TABLES = (Association, Instance, HealthCheck, BackupRun, Upgrade, Run, UsageSample, Invite, WebSession, ServiceRequest)


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G", "--disk", "200G"),
        ("server", "add", "vault", "--no-connect", "--address", "192.0.2.9", "--role", "backup"),
        ("association", "add", "amap", "--name", "AMAP du coin", "--email", "c@amap.fr", "--offer", "association"),
        ("association", "add", "chorale", "--name", "La chorale", "--email", "c@chorale.fr"),
        ("association", "listing", "amap", "agreed"),
        ("instance", "create", "amap", "radicale"),
        ("instance", "create", "amap", "radicale", "--name", "copy"),
        ("instance", "create", "chorale", "radicale"),
        ("association", "invite", "amap", "--email", "m@amap.fr"),
    ):  # fmt: skip
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
    with state(workspace) as session:
        now = utc_now()
        for address in ("amap/radicale", "amap/copy", "chorale/radicale"):
            instance = get_instance(session, address)
            instance.state = "running"
            session.add_all([
                HealthCheck(instance_address=address, service_id="radicale", at=now - timedelta(hours=1), health="healthy"),
                BackupRun(instance_id=instance.id, instance_address=address, server="web-1", kind="backup", reason="final",
                          status="success", started_at=now - timedelta(hours=2)),
                BackupRun(instance_id=instance.id, instance_address=address, server="web-1", kind="restore", reason="manual",
                          status="success", started_at=now - timedelta(hours=3)),
                Upgrade(instance_id=instance.id, instance_address=address, service_id="radicale", server="web-1",
                        from_version="3.1.8", to_version="3.5.3", status="rolled_back", requested_by="camille",
                        started_at=now - timedelta(hours=4)),
                Run(id=f"r-{address.replace('/', '-')}", playbook="site.yml", target=address, status="failed", rc=2,
                    changed=0, failed=1, hosts={}, artifacts="", started=now - timedelta(hours=5),
                    finished=now - timedelta(hours=5)),
                UsageSample(instance_id=instance.id, disk_bytes=1),
            ])  # fmt: skip
        session.add(Run(id="r-all", playbook="site.yml", target="all", status="failed", rc=2, changed=0, failed=1,
                        hosts={}, artifacts="", started=now, finished=now))  # fmt: skip
        amap = session.query(Association).filter_by(slug="amap").one()
        session.add(ServiceRequest(association_id=amap.id, service_id="radicale", name="agenda", size="small",
                                   requested_by="m@amap.fr"))  # fmt: skip
        invite = session.query(Invite).one()
        session.add(WebSession(token_hash="t" * 64, invite_id=invite.id, association_id=amap.id, csrf_token="c" * 64,
                               expires_at=now + timedelta(days=1)))  # fmt: skip
    return w


class state:
    """``with state(workspace) as session``: a committed session of the workspace's state."""

    def __init__(self, workspace) -> None:
        self.store = StateStore(open_workspace(workspace).state_url)
        self.sessions = self.store.session()

    def __enter__(self):
        return self.sessions.__enter__()

    def __exit__(self, *error):
        try:
            return self.sessions.__exit__(*error)
        finally:
            self.store.close()


def delete_instances(workspace, *addresses: str, desired: str = "purged") -> None:
    """What `ruche instance delete ADDRESS [--purge]` leaves once converged (apply frees the ID range)."""
    with state(workspace) as session:
        for address in addresses:
            instance = get_instance(session, address)
            instance.state, instance.desired_state, instance.id_slot = "deleted", desired, None


def snapshot(workspace) -> dict:
    """Every row of the tables a removal touches, and the audit trail's length."""
    with state(workspace) as session:
        rows = {model.__tablename__: sorted(repr(sorted((k, str(v)) for k, v in vars(row).items() if not k.startswith("_")))
                                            for row in session.query(model)) for model in TABLES}  # fmt: skip
        rows["events"] = session.query(Event).count()
        return rows


def counted_in_report(workspace) -> dict:
    opened = open_workspace(workspace)
    with state(workspace) as session:
        report = gather(session, opened.config, load_catalog(opened.catalog_dir), days=30, language="en")
        return {"checks": report.checks, "backups": report.backups["backups"], "incidents": len(report.incidents)}


def configure_backups(workspace, **settings) -> None:
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings(**settings)}))


def test_refused_while_an_instance_is_not_deleted_and_nothing_changes(pool, workspace, ruche):
    delete_instances(workspace, "amap/copy")
    before = snapshot(workspace)
    refused = ruche(*pool, "association", "remove", "amap", "--yes")
    assert refused.exit_code == 5, refused.stderr
    assert "amap/radicale" in refused.stderr and "amap/copy" not in refused.stderr
    assert "ruche instance delete ADDRESS" in refused.stderr and "Traceback" not in refused.stderr
    assert ruche(*pool, "association", "remove", "amap", "--dry-run").exit_code == 5  # refused before a prompt, too
    assert snapshot(workspace) == before
    unknown = ruche(*pool, "association", "remove", "nobody", "--yes")
    assert unknown.exit_code == 4 and "no association 'nobody'" in unknown.stderr


def test_refused_while_a_run_of_one_of_its_instances_is_queued(pool, workspace, ruche):
    delete_instances(workspace, "amap/radicale", "amap/copy")
    with state(workspace) as session:
        session.add(QueuedRun(server="web-1", instance_address="amap/copy", state="queued", requested_by="camille"))
    before = snapshot(workspace)
    refused = ruche(*pool, "association", "remove", "amap", "--yes")
    assert refused.exit_code == 5 and "runs of amap/copy are still queued" in refused.stderr
    assert snapshot(workspace) == before


def test_dry_run_says_what_would_go_and_changes_nothing(pool, workspace, ruche):
    delete_instances(workspace, "amap/radicale", "amap/copy")
    before = snapshot(workspace)
    shown = ruche(*pool, "association", "remove", "amap", "--dry-run")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("would remove association amap from the registry, with the records of its 2 deleted")
    assert "no backup repository is configured" in shown.stdout
    result = json.loads(ruche(*pool, "association", "remove", "amap", "--dry-run", "--json").stdout)
    assert result["dry_run"] is True and result["instances"] == ["amap/copy", "amap/radicale"]
    assert result["removed"] == {"instances": 2, "health_checks": 2, "backup_runs": 4, "upgrades": 2, "runs": 2,
                                 "service_requests": 1, "invites": 1, "web_sessions": 1, "domains": 0}  # fmt: skip
    assert snapshot(workspace) == before


def test_aborting_the_prompt_changes_nothing(pool, workspace, ruche, monkeypatch):
    delete_instances(workspace, "amap/radicale", "amap/copy")
    before = snapshot(workspace)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    aborted = ruche(*pool, "association", "remove", "amap")
    assert aborted.exit_code != 0 and "This will remove association amap" in aborted.stderr
    assert snapshot(workspace) == before


def test_removal_takes_it_out_of_the_registry_and_the_report_and_records_every_row(pool, workspace, ruche):
    delete_instances(workspace, "amap/radicale")
    delete_instances(workspace, "amap/copy", desired="absent")  # deleted without --purge
    assert counted_in_report(workspace) == {"checks": 3, "backups": 3, "incidents": 10}
    shown = ruche(*pool, "association", "remove", "amap", "--dry-run").stdout
    assert "; amap/copy deleted without --purge: data may remain in their server's trash" in shown
    done = ruche(*pool, "association", "remove", "amap", "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dry_run"] is False and result["association"]["slug"] == "amap"
    assert result["instances"] == ["amap/copy", "amap/radicale"] and result["trash"] == ["amap/copy"]
    assert result["removed"] == {"instances": 2, "health_checks": 2, "backup_runs": 4, "upgrades": 2, "runs": 2,
                                 "service_requests": 1, "invites": 1, "web_sessions": 1, "domains": 0}  # fmt: skip
    assert result["backups"] == {"repository": None, "server": None, "directory": None, "erased": False,
                                 "left": "no backup repository is configured"}  # fmt: skip

    listed = json.loads(ruche(*pool, "association", "list", "--json").stdout)
    assert [a["slug"] for a in listed] == ["chorale"]
    assert [i["address"] for i in json.loads(ruche(*pool, "instance", "list", "--json").stdout)] == ["chorale/radicale"]
    assert ruche(*pool, "association", "show", "amap").exit_code == 4
    # only chorale's history is left, in the state and the report (failed runs: chorale's and the fleet's)
    assert counted_in_report(workspace) == {"checks": 1, "backups": 1, "incidents": 4}
    with state(workspace) as session:
        assert {r.instance_address for r in session.query(BackupRun)} == {"chorale/radicale"}
        assert sorted(r.id for r in session.query(Run)) == ["r-all", "r-chorale-radicale"]
        assert session.query(UsageSample).count() == 1
        assert session.query(Invite).count() == session.query(WebSession).count() == 0

    (removed,) = json.loads(ruche(*pool, "events", "--kind", "association.removed", "--json").stdout)
    assert (removed["subject"], removed["association"]) == ("amap", "amap")
    assert removed["detail"] == {"instances": ["amap/copy", "amap/radicale"], "backups_erased": False,
                                 "backup_repository": None, "removed": result["removed"], "trash": ["amap/copy"]}  # fmt: skip
    events = json.loads(ruche(*pool, "events", "--association", "amap", "--json").stdout)
    deleted = sorted((e["kind"], e["subject"]) for e in events if e["kind"].endswith(".deleted"))
    assert ("associations.deleted", "amap") in deleted and ("instances.deleted", "amap/copy") in deleted
    for kind in ("backup_runs", "upgrades", "service_requests", "invites", "web_sessions"):
        assert any(k == f"{kind}.deleted" for k, _ in deleted), kind
    verified = ruche(*pool, "events", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True
    text = ruche(*pool, "association", "remove", "chorale", "--dry-run")
    assert text.exit_code == 5  # chorale's instance is running


def test_the_slug_can_be_registered_again(pool, workspace, ruche):
    delete_instances(workspace, "amap/radicale", "amap/copy")
    done = ruche(*pool, "association", "remove", "amap", "--yes")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("association amap removed with 2 deleted instance(s); backups: no backup repository")
    assert ruche(*pool, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    created = json.loads(ruche(*pool, "instance", "create", "amap", "radicale", "--json").stdout)
    assert created["instance"]["address"] == "amap/radicale"


@pytest.fixture
def erased(monkeypatch):
    """The repositories erased, instead of SSH to the backup server."""
    calls = []
    monkeypatch.setattr("orchestrator.actions.association_remove.erase_repository",
                        lambda target, directory: calls.append((target.name, target.address, directory)))  # fmt: skip
    return calls


def test_backups_on_the_managed_server_are_erased_unless_kept(pool, workspace, ruche, erased):
    configure_backups(workspace, repository="sftp:restic@192.0.2.9:/srv/restic", managed_server="vault")
    with state(workspace) as session:
        session.query(Association).filter_by(slug="amap").one().backup_password = "(vault ciphertext)"
    delete_instances(workspace, "amap/radicale", "amap/copy")
    shown = ruche(*pool, "association", "remove", "amap", "--dry-run")
    assert "ERASE every snapshot of its backups (/srv/restic/amap on backup server vault)" in shown.stdout
    kept = json.loads(ruche(*pool, "association", "remove", "amap", "--keep-backups", "--dry-run", "--json").stdout)
    assert kept["backups"]["erased"] is False and kept["backups"]["left"].startswith(
        "kept (--keep-backups) at sftp:restic@192.0.2.9:/srv/restic/amap"
    )
    assert erased == []

    result = json.loads(ruche(*pool, "association", "remove", "amap", "--yes", "--json").stdout)
    assert erased == [("vault", "192.0.2.9", "/srv/restic/amap")]
    assert result["backups"] == {"repository": "sftp:restic@192.0.2.9:/srv/restic/amap", "server": "vault",
                                 "directory": "/srv/restic/amap", "erased": True, "left": None}  # fmt: skip
    (event,) = json.loads(ruche(*pool, "events", "--kind", "association.removed", "--json").stdout)
    assert event["detail"]["backups_erased"] is True


def test_a_failed_erase_changes_nothing(pool, workspace, ruche, monkeypatch):
    configure_backups(workspace, repository="sftp:restic@192.0.2.9:/srv/restic", managed_server="vault")
    with state(workspace) as session:
        session.query(Association).filter_by(slug="amap").one().backup_password = "(vault ciphertext)"
    delete_instances(workspace, "amap/radicale", "amap/copy")
    before = snapshot(workspace)

    def unreachable(target, directory):
        raise OperationFailed(f"cannot reach {target.name} (192.0.2.9:22) over SSH: timed out")

    monkeypatch.setattr("orchestrator.actions.association_remove.erase_repository", unreachable)
    failed = ruche(*pool, "association", "remove", "amap", "--yes")
    assert failed.exit_code == 1 and "cannot reach vault" in failed.stderr
    assert snapshot(workspace) == before


def test_backups_elsewhere_are_left_and_said_where(pool, workspace, ruche, erased):
    configure_backups(workspace, repository="s3:https://s3.example.org/ruche")
    delete_instances(workspace, "amap/radicale", "amap/copy")
    result = json.loads(ruche(*pool, "association", "remove", "amap", "--yes", "--json").stdout)
    assert erased == [] and result["backups"]["erased"] is False
    assert result["backups"]["repository"] == "s3:https://s3.example.org/ruche/amap"
    assert result["backups"]["left"].startswith("left at s3:https://s3.example.org/ruche/amap: ruche erases")


def test_erasing_runs_one_rm_as_an_argument_list(monkeypatch):
    from orchestrator.actions import association_remove
    from orchestrator.remote import SshTarget

    commands = []
    monkeypatch.setattr("orchestrator.remote.run_command", lambda target, argv, timeout: commands.append(argv) or "")
    association_remove.erase_repository(SshTarget("vault", "192.0.2.9"), "/srv/restic/amap")
    assert commands == [["rm", "-rf", "--one-file-system", "--", "/srv/restic/amap"]]
