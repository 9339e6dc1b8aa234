"""The control plane's backup and its restore onto a new control machine, on SQLite and on PostgreSQL.

The state's portable dump: every table (each holding rows of every kind of value) dumped, loaded into a new SQLite
database and, when RUCHE_TEST_POSTGRESQL_URL is set, a new PostgreSQL one, and dumped again the same; the audit
trail's chain holds and new rows get new ids. `ruche backup control-plane` and `ruche backup restore-control-plane`
through the real CLI: the new workspace audits clean, its SSH keys and host keys are back (keys moved where their
path is taken, rows and inventory following), the state may move to another engine; the refusals (a directory not
empty, no repository, no or a wrong vault password) leave nothing; neither the vault password nor the repository's
password is ever in an output or in the snapshot."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.actions.control_plane_backup import TAG, Restic, repository_password
from orchestrator.errors import Conflict
from orchestrator.state.database import StateStore, make_engine
from orchestrator.state.dump import dump_state, load_state
from orchestrator.state.event_chain import verify_chain
from orchestrator.state.models import (
    Admin,
    Alert,
    Association,
    BackupRun,
    Base,
    CatalogCheck,
    Domain,
    HealthCheck,
    Instance,
    Invite,
    JoinApplication,
    Lease,
    MemberExport,
    QueuedRun,
    RateLimitHit,
    RateLimitKey,
    Run,
    Server,
    ServiceRequest,
    Upgrade,
    UsageRollup,
    UsageSample,
    WebSession,
    as_utc,
)
from orchestrator.workspace import open_workspace
from tests.conftest import _drop_database, _postgresql_admin_url

MOMENT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def new_databases(tmp_path):
    """Give a function making new empty databases: a SQLite file, and a PostgreSQL database when one is at hand."""
    made: list[str] = []
    admin_url = _postgresql_admin_url()
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT") if admin_url else None

    def new(engine: str) -> str | None:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
        if admin is None:
            return None
        name = f"ruche_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    yield new
    for name in made:
        _drop_database(admin, name)
    if admin is not None:
        admin.dispose()


def fill_every_table(url: str) -> None:
    """Rows in every table of the state, with every kind of value its columns hold."""
    store = StateStore(url)
    try:
        with store.session() as session:
            server = Server(name="web-1", address="192.0.2.1", ssh_key_path="/root/.ssh/ruche", cpu=8, memory_mb=8192,
                            disk_gb=500, labels={"region": "lyon", "hoster": "Été"}, created_at=MOMENT)  # fmt: skip
            association = Association(slug="amap", name="AMAP « du coin »", email="c@amap.fr", offer="association",
                                      backup_password="$ANSIBLE_VAULT;1.1;AES256\n6162", listed=True)  # fmt: skip
            session.add_all([server, association])
            session.flush()
            instance = Instance(association_id=association.id, name="agenda", service_id="radicale",
                                service_version="3.5.3", size="small", cpu=0.25, memory_mb=128, disk_gb=1,
                                server_id=server.id, parameters={"admin_email": "a@amap.fr"}, domain="agenda.amap.x.org",
                                http_port=20001, secrets={"admin_password": "$ANSIBLE_VAULT;1.1;AES256\n6364"},
                                health_checked_at=MOMENT, id_slot=3)  # fmt: skip
            admin = Admin(name="camille", password_hash="$argon2id$v=19$...")
            session.add_all([instance, admin])
            session.flush()
            invite = Invite(association_id=association.id, token_hash="a" * 64, created_by="camille",
                            expires_at=MOMENT + timedelta(days=30))  # fmt: skip
            session.add(invite)
            session.flush()
            key = RateLimitKey(name="sign-in", key="192.0.2.9")
            session.add(key)
            session.flush()
            session.add_all([
                Run(id="20260301-123015-abcd", playbook="site.yml", target="all", status="successful", rc=0, changed=3,
                    failed=0, hosts={"web-1": {"ok": 10}}, artifacts="/ws/runs/x", started=MOMENT, finished=MOMENT),
                RateLimitHit(key_id=key.id, at=MOMENT),
                HealthCheck(instance_address="amap/agenda", service_id="radicale", at=MOMENT, health="healthy"),
                UsageSample(instance_id=instance.id, disk_bytes=2**41 + 7, database_bytes=None, memory_bytes=123,
                            cpu_usec=2**40 + 1, cpu_containers={"ruche-amap--agenda-app": ["2026-03-01T12:00:00Z", 5]},
                            cpu_delta_usec=5, seconds=300),
                UsageRollup(instance_id=instance.id, period="hour", period_start=MOMENT.replace(minute=0, second=0,
                            microsecond=0), samples=12, seconds=3600, cpu_usec=2**42 + 3,
                            memory_byte_seconds=123.5 * 3600, disk_byte_seconds=None, database_byte_seconds=2.0**60,
                            max_memory_bytes=2**33, max_disk_bytes=None, max_database_bytes=2**40),
                BackupRun(instance_id=instance.id, instance_address="amap/agenda", server="web-1", kind="backup",
                          reason="manual", status="success", snapshot_id="f" * 64, started_at=MOMENT,
                          duration_seconds=1.5, data_added_bytes=2**33, detail={"files": [1, 2.5, None, True]}),
                Upgrade(instance_id=instance.id, instance_address="amap/agenda", service_id="radicale", server="web-1",
                        from_version="3.1.8", to_version="3.5.3", status="succeeded", requested_by="camille",
                        detail={"steps": []}),
                CatalogCheck(service_id="radicale", version="3.5.3", server="web-1", association="check-1",
                             ruche_version="0.1.0", status="passed", requested_by="camille"),
                QueuedRun(server="web-1", requested_by="camille", payload={"to": "3.5.3"}),
                QueuedRun(server="web-1", requested_by="camille", payload=None),  # JSON null
                ServiceRequest(association_id=association.id, service_id="radicale", name="cal", size="small",
                               requested_by="member", parameters={}),
                WebSession(token_hash="b" * 64, invite_id=invite.id, association_id=association.id, csrf_token="c" * 32,
                           expires_at=MOMENT),
                JoinApplication(slug="chorale", name="Chorale", email="c@chorale.fr", message="Bonjour\nà vous"),
                Alert(kind="quota.over", subject="amap", association="amap", summary="amap: disk 6 GiB « measured »",
                      values={"used": "6.00 GiB", "percent": 91}, first_seen=MOMENT, last_seen=MOMENT, notify_error="",
                      told={"opened": ["0123456789abcdef"]}, notified_at=MOMENT),
                Lease(name="watch", holder="host:1:2", until=MOMENT),
                MemberExport(association_id=association.id, requested_by="member of amap (invite 1)", status="ready",
                             path="exports/" + "0" * 32 + ".tar.gz", size=2**33 + 5, sha256="e" * 64,
                             token_hash="d" * 64, created_at=MOMENT, ready_at=MOMENT, expires_at=MOMENT, error=""),
                Domain(name="agenda.xn--amap-du-ct-k7a4k.test", association_id=association.id, instance_id=instance.id,
                       token="ruche-domain-verification=x", status="attached", problem="", tls_status="ok",
                       tls_detail="valid", tls_issuer="Pebble Intermediate CA", tls_not_after=MOMENT),
            ])  # fmt: skip
        with store.engine.begin() as connection:  # SQL NULL beside JSON null, as rows written without the column hold
            connection.execute(sa.text("INSERT INTO queued_runs (server, state, attempts, max_attempts, requested_by, "
                                       "progress, result, kind, created_at) VALUES ('web-1', 'queued', 0, 3, 'x', '', "
                                       "'{}', 'apply', '2026-03-01 12:00:00')"))  # fmt: skip
    finally:
        store.close()


def test_a_dump_holds_every_table_and_loads_into_sqlite_and_postgresql_alike(state_url, new_databases):
    fill_every_table(state_url)
    source = make_engine(state_url)
    dumped = dump_state(source)
    source.dispose()
    assert set(dumped["tables"]) == set(Base.metadata.tables)
    assert all(dumped["tables"][name]["rows"] for name in Base.metadata.tables), "a table without a row"
    payloads = [row[dumped["tables"]["queued_runs"]["columns"].index("payload")]
                for row in dumped["tables"]["queued_runs"]["rows"]]  # fmt: skip
    assert sorted(payloads, key=str) == sorted(['{"to": "3.5.3"}', "null", None], key=str)
    targets = [new_databases("sqlite"), new_databases("postgresql")]
    for url in filter(None, targets):
        engine = make_engine(url)
        try:
            rows = load_state(engine, dumped)
            assert rows == {name: len(table["rows"]) for name, table in dumped["tables"].items()}
            again = dump_state(engine)
            assert {**again, "dialect": None} == {**dumped, "dialect": None}, url
            with pytest.raises(Conflict):  # a database that is not empty is refused
                load_state(engine, dumped)
        finally:
            engine.dispose()
        store = StateStore(url)
        try:
            with store.session() as session:
                assert verify_chain(session).problem is None
                session.add(Server(name="web-2", address="192.0.2.2", cpu=1, memory_mb=512, disk_gb=1))
            with store.session() as session:  # new ids past the loaded ones; the chain goes on
                assert [s.id for s in session.query(Server).order_by(Server.id)] == [1, 2]
                assert verify_chain(session).problem is None
                assert as_utc(session.get(Server, 1).created_at) == MOMENT
        finally:
            store.close()


# --- the control plane, through the CLI --------------------------------------------------------------------------


def vault_password_file(workspace: Path) -> Path:
    return Path(open_workspace(workspace).config.secrets.vault_password_file)


@pytest.fixture
def fleet(workspace, ruche, tmp_path):
    """A workspace with two servers (a key outside it; host keys in a file the admin keeps and in
    known_hosts/web-2), an association with its backup password and an instance, the inventory exported."""
    w = ["--workspace", str(workspace)]
    key = tmp_path / "admin" / "ruche_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = tmp_path / "admin" / "known_hosts"
    known.write_text("192.0.2.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    for command in (
        ("server", "add", "web-1", "--address", "192.0.2.1", "--memory", "8G", "--ssh-key", str(key),
         "--known-hosts", str(known)),
        ("server", "add", "web-2", "--no-connect", "--address", "192.0.2.2", "--ssh-key", str(key)),
        ("association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "association"),
        ("instance", "create", "amap", "radicale", "--server", "web-1"),
    ):  # fmt: skip
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
    opened = open_workspace(workspace)
    own = opened.known_hosts_dir / "web-2"
    own.parent.mkdir(exist_ok=True)
    own.write_text("192.0.2.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ8hOxm9wzzWvSWq9vQ7Yk8t1C+VAfHhQQ2EP+Yuq4lN\n")
    store = StateStore(opened.state_url)
    try:
        with store.session() as session:
            session.query(Server).filter_by(name="web-2").one().ssh_known_hosts_path = str(own)
            session.query(Association).filter_by(slug="amap").one().backup_password = opened.vault().encrypt("r" * 32)
    finally:
        store.close()
    assert ruche(*w, "inventory", "export").exit_code == 0
    for kept_out in ("runs/r-1/artifacts/stdout", "checks/1-radicale/create.log", "lab/notes.txt", "cache/x.json"):
        (workspace / kept_out).parent.mkdir(parents=True, exist_ok=True)
        (workspace / kept_out).write_text("not for the backup\n")
    return {"w": w, "key": key, "known": known, "own_known": own}


def audit_findings(ruche, workspace: Path) -> list[dict]:
    answer = ruche("--workspace", str(workspace), "audit", "--no-servers", "--json")
    return json.loads(answer.stdout)["findings"]


def servers_of(workspace: Path) -> dict[str, Server]:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            return {s.name: s for s in session.query(Server)}
    finally:
        store.close()


def test_a_control_plane_restored_on_a_new_machine_audits_clean_with_its_keys_back(
    fleet, workspace, ruche, tmp_path, monkeypatch, new_databases
):
    w, repository = fleet["w"], tmp_path / "offsite" / "control-plane"
    password_file = vault_password_file(workspace)
    vault_password = password_file.read_bytes().strip().decode()
    restic_password = repository_password(vault_password.encode())

    made = ruche(*w, "backup", "control-plane", "--to", str(repository), "--json")
    assert made.exit_code == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["repository_created"] and result["snapshot_id"] and result["bytes"] > 0
    holds = result["holds"]
    assert holds["ssh_keys"] == 1 and holds["known_hosts_files"] == 2 and holds["inventory_commits"] >= 1
    assert holds["state_rows"]["servers"] == 2 and holds["state_rows"]["instances"] == 1
    again = ruche(*w, "backup", "control-plane", "--to", str(repository))  # into the repository it made
    assert again.exit_code == 0 and "repository created" not in again.stdout, again.stderr
    assert "2 server(s)" in again.stdout and "1 SSH key(s)" in again.stdout
    events = json.loads(ruche(*w, "events", "--kind", "control-plane.backup", "--json").stdout)
    assert len(events) == 2 and result["snapshot_id"] in {e["detail"]["snapshot_id"] for e in events}

    # what the snapshot holds, and never the vault password nor the repository's
    restic = Restic(str(repository), restic_password)
    listing = restic.run("ls", "latest").stdout
    old = str(workspace.resolve())
    assert f"{old}/inventories/.git/HEAD" in listing and f"{old}/known_hosts/web-2" in listing
    for kept_out in ("runs", "checks", "lab", "cache", "ruche.db"):
        assert f"{old}/{kept_out}" not in listing, kept_out
    raw = tmp_path / "raw"
    restic.restore("latest", raw)
    everything = b"".join(p.read_bytes() for p in raw.rglob("*") if p.is_file())
    assert vault_password.encode() not in everything and restic_password.encode() not in everything
    assert fleet["key"].read_bytes() in everything  # the SSH key is kept (0600 in the snapshot)
    assert {json.loads(m.read_text())["format"] for m in raw.rglob("manifest.json")} == {"ruche-control-plane"}

    # the new machine: the admin's key path is taken by another key, the admin's known_hosts file is gone
    fleet["key"].rename(tmp_path / "admin" / "old-key")
    fleet["key"].write_text("another key\n")
    fleet["known"].unlink()
    new = tmp_path / "new-machine" / "workspace"
    # the state moves: from SQLite to PostgreSQL (when at hand), from PostgreSQL to SQLite
    moved_to = new_databases("postgresql") or new_databases("sqlite")
    if open_workspace(workspace).state_url.startswith("postgresql"):
        moved_to = new_databases("sqlite")
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD_FILE", str(password_file))
    options = ["--state-url", moved_to]
    restored = ruche("backup", "restore-control-plane", "--from", str(repository), str(new), *options, "--json")
    assert restored.exit_code == 0, restored.stderr
    answer = json.loads(restored.stdout)
    for text in (made.stdout, made.stderr, again.stdout, again.stderr, restored.stdout, restored.stderr):
        assert vault_password not in text and restic_password not in text
    assert answer["secrets_checked"] >= 2 and answer["snapshot_id"].startswith(again.stdout.split()[1])

    servers = servers_of(new)
    key_path = Path(servers["web-1"].ssh_key_path)
    assert (
        key_path != fleet["key"] and not key_path.is_relative_to(new) and servers["web-2"].ssh_key_path == str(key_path)
    )
    assert key_path.read_bytes() == (tmp_path / "admin" / "old-key").read_bytes()
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert servers["web-1"].ssh_known_hosts_path == str(fleet["known"])  # put back where it was: free
    assert fleet["known"].read_text().startswith("192.0.2.1 ")
    assert servers["web-2"].ssh_known_hosts_path == str(new / "known_hosts" / "web-2")
    assert {c["server"] for c in answer["servers_changed"]} == {"web-1", "web-2"} and answer["inventory_commit"]
    host_vars = (new / "inventories" / "production" / "host_vars" / "web-1.yml").read_text()
    assert str(key_path) in host_vars
    web_2 = (new / "inventories" / "production" / "host_vars" / "web-2.yml").read_text()
    assert str(new / "known_hosts" / "web-2") in web_2 and str(workspace) not in web_2
    assert open_workspace(new).config.state_url == moved_to
    assert answer["state_url"].split(":")[0] == moved_to.split(":")[0]
    assert not (new / "runs").exists() and not (new / "lab").exists()
    # the bundles' signing key is back: the same public key, its private part still opening with the vault
    assert ruche("--workspace", str(new), "key", "show").stdout == ruche(*w, "key", "show").stdout
    assert (new / "signing" / "key.vault").read_bytes() == (workspace / "signing" / "key.vault").read_bytes()

    # the same fleet: nothing to find, the same instances, secrets open, history and audit trail kept
    assert audit_findings(ruche, new) == []
    w_new = ["--workspace", str(new)]
    assert ruche(*w_new, "instance", "list", "--json").stdout == ruche(*w, "instance", "list", "--json").stdout
    secret = ruche(*w_new, "instance", "secrets", "amap/radicale", "--json")
    assert secret.exit_code == 0 and secret.stdout == ruche(*w, "instance", "secrets", "amap/radicale", "--json").stdout
    assert ruche(*w_new, "events", "verify").exit_code == 0
    kinds = [e["kind"] for e in sorted(json.loads(ruche(*w_new, "events", "--json").stdout), key=lambda e: e["seq"])]
    assert kinds[-1] == "control-plane.restored" and kinds.count("servers.changed") >= 2
    log = subprocess.run(["git", "-C", str(new / "inventories"), "log", "--format=%s"], capture_output=True, text=True)
    assert "control-plane restore" in log.stdout.splitlines()[0] and len(log.stdout.splitlines()) >= 2
    assert ruche(*w_new, "plan", "--json").exit_code == 0


def test_refusals_leave_nothing_behind(fleet, workspace, ruche, tmp_path, monkeypatch):
    w, repository = fleet["w"], tmp_path / "repository"
    nothing = ruche(*w, "backup", "control-plane")
    assert nothing.exit_code == 2 and "no repository" in nothing.stderr and "control_plane_repository" in nothing.stderr
    workspace_config = open_workspace(workspace)
    workspace_config.edit_config(
        {"backup": workspace_config.file_config.backup.model_copy(update={"control_plane_repository": str(repository)})}
    )
    assert ruche(*w, "backup", "control-plane", "-q").exit_code == 0  # the setting names it

    new = tmp_path / "new"
    monkeypatch.delenv("RUCHE_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("RUCHE_VAULT_PASSWORD", raising=False)
    missing = ruche("backup", "restore-control-plane", "--from", str(repository), str(new))
    assert missing.exit_code == 6 and "RUCHE_VAULT_PASSWORD_FILE" in missing.stderr and not new.exists()

    monkeypatch.setenv("RUCHE_VAULT_PASSWORD", "not the vault password")
    wrong = ruche("backup", "restore-control-plane", "--from", str(repository), str(new))
    assert wrong.exit_code == 3 and "does not open" in wrong.stderr and not new.exists(), wrong.stderr
    assert "not the vault password" not in wrong.stdout + wrong.stderr
    wrong_to = ruche(*w, "backup", "control-plane", "--to", str(repository))  # another vault's repository
    assert wrong_to.exit_code == 3 and "does not open" in wrong_to.stderr

    monkeypatch.setenv("RUCHE_VAULT_PASSWORD_FILE", str(vault_password_file(workspace)))
    monkeypatch.delenv("RUCHE_VAULT_PASSWORD")
    new.mkdir()
    (new / "notes.txt").write_text("mine\n")
    taken = ruche("backup", "restore-control-plane", "--from", str(repository), str(new))
    assert taken.exit_code == 5 and "not an empty directory" in taken.stderr
    assert [p.name for p in new.iterdir()] == ["notes.txt"]
    unknown = ruche("backup", "restore-control-plane", "--from", str(tmp_path / "nowhere"), str(tmp_path / "other"))
    assert unknown.exit_code == 4 and not (tmp_path / "other").exists()

    # the state's database is not empty: refused after the files were fetched, and they are removed again
    (new / "notes.txt").unlink()
    used = tmp_path / "used.db"
    StateStore(f"sqlite:///{used}").close()
    clash = ruche("backup", "restore-control-plane", "--from", str(repository), str(new), "--state-url",
                  f"sqlite:///{used}")  # fmt: skip
    assert clash.exit_code == 5 and "not empty" in clash.stderr, clash.stderr
    assert new.is_dir() and list(new.iterdir()) == [] and used.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".new.restore")) == []
    snapshots = Restic(str(repository), repository_password(vault_password_file(workspace).read_bytes().strip()))
    assert [s["tags"] for s in snapshots.snapshots()] == [[TAG]]
