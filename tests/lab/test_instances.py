"""Instances on the lab: converge, health through Caddy, isolation, hostile values, delete, lost server (suspend
and resume are steps of `ruche catalog check`, test_catalog_check_mediawiki.py). Failures of a backup on the server: the
database container killed during the dump, the disk of the instance's directory full (a small tmpfs in its place).

One module-wide deployment: chorale (radicale on lab-1, radicale "agenda" placed by ruche) and amap
(miniflux with its PostgreSQL, on lab-1 beside chorale's radicale).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from orchestrator.actions.apply import apply
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.operations.inventories import deployment_variables
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.workspace import open_workspace
from tests.helpers import CATALOG
from tests.lab.servers import on
from tests.lab.test_backups import http
from tests.role_templates import render_instance_files

MODULE_INSTANCES = {"amap/miniflux", "chorale/agenda", "chorale/radicale"}
MARKER = f"/tmp/ruche-pwned-{secrets.token_hex(4)}"
HOSTILE = "{{ lookup('pipe','touch " + MARKER + "') }}"


def status_of(ruche, lab: Path) -> dict[str, dict]:
    result = ruche("--workspace", str(lab), "status", "--json")
    return {entry["address"]: entry for entry in json.loads(result.stdout)}


def decrypted_secrets(lab: Path, address: str) -> dict[str, str]:
    workspace = open_workspace(lab)
    store = StateStore(workspace.state_url)
    try:
        with store.session() as session:
            ciphertexts = dict(get_instance(session, address).secrets)
    finally:
        store.close()
    return {name: workspace.vault().decrypt(text) for name, text in ciphertexts.items()}


@pytest.fixture(scope="module")
def deployed(lab, ruche_module):
    """The lab with three instances of two associations converged; gives the first apply's result."""
    w = ["--workspace", str(lab)]
    for slug, name in (("chorale", "La chorale"), ("amap", "AMAP du coin")):
        assert (
            ruche_module(*w, "association", "add", slug, "--name", name, "--email", f"contact@{slug}.example").exit_code
            == 0
        )
    created = [
        ruche_module(
            *w, "instance", "create", "chorale", "radicale", "--server", "lab-1", "--param", f"admin_user={HOSTILE}"
        ),
        ruche_module(*w, "instance", "create", "amap", "miniflux", "--server", "lab-1"),
        ruche_module(*w, "instance", "create", "chorale", "radicale", "--name", "agenda"),
    ]
    assert all(r.exit_code == 0 for r in created), [r.stderr for r in created]
    result = ruche_module(*w, "apply", "--json")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


def test_three_instances_converge_healthy_through_caddy_and_a_second_apply_changes_nothing(lab, deployed, ruche):
    assert deployed["succeeded"]
    # (other lab modules' instances may share the lab: only this module's are looked at)
    placed = {i["address"]: i["server"] for i in deployed["instances"] if i["address"] in MODULE_INSTANCES}
    assert placed == {"amap/miniflux": "lab-1", "chorale/agenda": "lab-2", "chorale/radicale": "lab-1"}
    assert {i["address"]: (i["state"], i["health"]) for i in deployed["instances"] if i["address"] in placed} == {
        a: ("running", "healthy") for a in placed
    }
    health = status_of(ruche, lab)
    assert all(
        health[a]["health"] == "healthy" and health[a]["health_detail"].startswith("HTTP 200") for a in MODULE_INSTANCES
    )

    second = json.loads(ruche("--workspace", str(lab), "apply", "--json").stdout)
    assert second["succeeded"] and second["changed"] == 0, second["hosts"]
    plan = json.loads(ruche("--workspace", str(lab), "plan", "--json").stdout)
    assert plan["changes"] == 0, plan


def test_files_on_the_server_are_the_reviewed_renderings_and_env_files_are_private(lab, deployed):
    workspace = open_workspace(lab)
    host_vars = (workspace.inventories_dir / "production" / "host_vars" / "lab-1.yml").read_text()
    assert "!vault |" in host_vars
    store = StateStore(workspace.state_url)
    with store.session() as session:
        variables = deployment_variables(get_instance(session, "amap/miniflux"), CATALOG, workspace.config)
    store.close()
    # the lab's servers have no cgroup controllers: the lab's settings turn resource_limits off
    expected = render_instance_files(variables, decrypted_secrets(lab, "amap/miniflux"), resource_limits=False)
    unit = "ruche-amap--miniflux-app.container"
    assert on(lab, "lab-1", "cat", f"/etc/containers/systemd/{unit}") == expected[unit]
    for env_file in ("app.env", "db.env"):
        path = f"/srv/ruche/amap/miniflux/env/{env_file}"
        assert on(lab, "lab-1", "stat", "-c", "%a %U %G", path).strip() == "600 root root"
        assert on(lab, "lab-1", "cat", path) == expected[env_file]
    assert on(lab, "lab-1", "stat", "-c", "%a", "/srv/ruche/amap/miniflux").strip() == "700"


def test_secrets_never_appear_in_clear_on_the_control_machine(lab, deployed):
    plaintexts = [v.encode() for a in ("amap/miniflux", "chorale/radicale") for v in decrypted_secrets(lab, a).values()]
    workspace = open_workspace(lab)
    for directory in (workspace.inventories_dir, workspace.root / "runs"):
        for path in directory.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert not any(p in content for p in plaintexts), f"a secret in clear in {path}"
    assert (workspace.root / "ruche.db").is_file()
    assert not any(p in (workspace.root / "ruche.db").read_bytes() for p in plaintexts)


def test_a_template_in_a_parameter_arrives_literally_and_runs_nowhere(lab, deployed):
    env = on(lab, "lab-1", "cat", "/srv/ruche/chorale/radicale/env/app.env")
    assert f"RADICALE_ADMIN_USER={HOSTILE}\n" in env
    assert not Path(MARKER).exists()
    assert not _exists_on(lab, "lab-1", MARKER)


def _exists_on(lab: Path, server: str, path: str) -> bool:
    return on(lab, server, "sh", "-c", f"test -e {path} && echo yes || echo no").strip() == "yes"


def _mapping(lab: Path, container: str) -> tuple[int, int]:
    pid = on(lab, "lab-1", "podman", "inspect", "--format", "{{.State.Pid}}", container).strip()
    inside, outside, size = on(lab, "lab-1", "cat", f"/proc/{pid}/uid_map").split()[:3]
    return int(outside), int(size)


def test_instances_run_under_distinct_user_namespaces(lab, deployed):
    radicale, miniflux, miniflux_db = (_mapping(lab, c) for c in ("ruche-chorale--radicale-app", "ruche-amap--miniflux-app",
                                                                   "ruche-amap--miniflux-db"))  # fmt: skip
    assert all(start > 65535 for start, _ in (radicale, miniflux))  # never the host's own users
    assert miniflux_db == miniflux  # one instance's containers share its fixed range (its files stay theirs)
    spans = sorted((start, start + size) for start, size in (radicale, miniflux))
    assert spans[0][1] <= spans[1][0], spans  # two instances: disjoint ranges


def test_one_associations_container_cannot_reach_anothers_database_or_read_its_files(lab, deployed):
    database_ip = on(
        lab, "lab-1", "podman", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "ruche-amap--miniflux-db",
    ).strip()  # fmt: skip
    # prints "connected" only on success (the word is split so a traceback quoting the code never holds it)
    probe = f"import socket; socket.create_connection(('{database_ip}', 5432), 3); print('conn' + 'ected')"
    from_chorale = on(
        lab, "lab-1", "sh", "-c", f'podman exec ruche-chorale--radicale-app python3 -c "{probe}" 2>&1; true'
    )
    assert "connected" not in from_chorale and (
        "timed out" in from_chorale or "refused" in from_chorale or "unreachable" in from_chorale
    )
    # control: the same probe from a container on amap's own network connects
    from_amap = on(
        lab, "lab-1", "podman", "run", "--rm", "--network", "ruche-amap--miniflux", "lab.ruche.invalid/radicale:trixie",
        "python3", "-c", probe,
    )  # fmt: skip
    assert "connected" in from_amap

    chorale_uid = _mapping(lab, "ruche-chorale--radicale-app")[0] + int(
        on(lab, "lab-1", "podman", "exec", "ruche-chorale--radicale-app", "id", "-u").strip()
    )
    denied = on(
        lab, "lab-1", "sh", "-c",
        f"setpriv --reuid={chorale_uid} --regid={chorale_uid} --clear-groups ls /srv/ruche/amap/miniflux/database 2>&1; true",
    )  # fmt: skip
    assert "Permission denied" in denied


def test_a_server_that_goes_away_mid_run_fails_its_instances_only_and_the_next_apply_recovers(lab, deployed, ruche):
    workspace = open_workspace(lab)
    record = LabRecord.load(LabLayout(workspace.lab_dir).record_path)
    link = record.machines["lab-2"].host_link
    w = ["--workspace", str(lab)]
    cut = []

    def cut_lab_2(message: str) -> None:
        if not cut and "Converge each instance" in message:
            subprocess.run(["ip", "link", "set", link, "down"], check=True)
            cut.append(message)

    try:
        result = apply(lab, progress=cut_lab_2, full=True)  # every instance converged: both servers have work to do
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
    assert cut and not result["succeeded"]
    outcome = {i["address"]: (i["state"], i["last_run_id"]) for i in result["instances"]}
    assert outcome["chorale/agenda"] == ("failed", result["run_id"])
    assert outcome["amap/miniflux"][0] == "running" and outcome["chorale/radicale"][0] == "running"
    assert result["hosts"]["lab-2"]["unreachable"] > 0 and result["hosts"]["lab-1"]["failed"] == 0
    shown = json.loads(ruche(*w, "instance", "show", "chorale/agenda", "--json").stdout)
    assert shown["state"] == "failed" and shown["last_run_id"] == result["run_id"]

    recovered = json.loads(ruche(*w, "apply", "--server", "lab-2", "--json").stdout)
    assert recovered["succeeded"], recovered["hosts"]
    assert [(i["state"], i["health"]) for i in recovered["instances"] if i["address"] == "chorale/agenda"] == [
        ("running", "healthy")
    ]


def test_delete_removes_the_instance_from_its_server_and_the_inventory(lab, deployed, ruche):
    w = ["--workspace", str(lab)]
    refused = subprocess.run(
        [sys.executable, "-m", "orchestrator", *w, "instance", "delete", "chorale/agenda"],
        input="n\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode != 0 and "Continue?" in refused.stderr
    assert "chorale--agenda" in on(lab, "lab-2", "ls", "/etc/containers/systemd")
    dry = ruche(*w, "instance", "delete", "chorale/agenda", "--dry-run")
    assert dry.exit_code == 0 and "trash" in dry.stdout
    deleted = ruche(*w, "instance", "delete", "chorale/agenda", "--yes", "--json")
    assert deleted.exit_code == 0, deleted.stderr[-2000:]
    assert json.loads(deleted.stdout)["instance"]["state"] == "deleted"
    assert "chorale--agenda" not in on(lab, "lab-2", "ls", "/etc/containers/systemd")
    assert "chorale--agenda" not in on(lab, "lab-2", "podman", "network", "ls", "--format", "{{.Name}}")
    assert not _exists_on(lab, "lab-2", "/srv/ruche/chorale/agenda")
    assert "chorale--agenda" in on(lab, "lab-2", "ls", "/srv/ruche/trash")
    assert not _exists_on(lab, "lab-2", "/etc/caddy/sites/chorale--agenda.caddy")
    inventory = (open_workspace(lab).inventories_dir / "production" / "host_vars" / "lab-2.yml").read_text()
    assert "chorale--agenda" not in inventory  # (other modules' instances named agenda may be placed there)
    assert "chorale/agenda" not in status_of(ruche, lab)

    # Its data stays in lab-2's trash for its offer's retention, then `trash empty` erases it (issue 29)
    started = time.monotonic()
    assert ruche(*w, "association", "set-offer", "chorale", "decouverte").exit_code == 0
    listed = ruche(*w, "trash", "list", "--server", "lab-2", "--json")
    assert listed.exit_code == 0, listed.stderr
    [entry] = [e for e in json.loads(listed.stdout)["entries"] if e["address"] == "chorale/agenda"]
    assert [entry[k] for k in ("association", "offer", "retention_days", "due")] == ["chorale", "decouverte", 30, False]
    assert entry["entry"].endswith("Z-chorale--agenda") and entry["bytes"] > 0
    config_path = open_workspace(lab).config_path
    original = config_path.read_bytes()
    settings = tomllib.loads(original.decode())
    settings["offers"]["decouverte"]["trash_retention_days"] = 0  # erased at the next emptying
    try:
        config_path.write_text(tomli_w.dumps(settings))
        emptied = ruche(*w, "trash", "empty", "--server", "lab-2", "--yes", "--json")
    finally:
        config_path.write_bytes(original)
    assert emptied.exit_code == 0, emptied.stderr
    assert entry["entry"] in [e["entry"] for e in json.loads(emptied.stdout)["erased"]]
    assert "chorale--agenda" not in on(lab, "lab-2", "ls", "/srv/ruche/trash")
    erased = json.loads(ruche(*w, "events", "--kind", "trash.erased", "--instance", "chorale/agenda", "--json").stdout)
    assert [(e["detail"]["server"], e["detail"]["entry"]) for e in erased] == [("lab-2", entry["entry"])]
    print(f"trash list and empty: {time.monotonic() - started:.1f} s")


# The backup faults below: amap's Miniflux, its PostgreSQL in ruche-amap--miniflux-db, on lab-1.
MINIFLUX, MINIFLUX_ID = "amap/miniflux", "amap--miniflux"
MINIFLUX_DIR = "/srv/ruche/amap/miniflux"
MINIFLUX_UNITS = ("ruche-amap--miniflux-db", "ruche-amap--miniflux-app")
PSQL = 'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At -c "$0"'

# Runs on the server for the test: as soon as pg_dump runs there, kills the database container (podman kill) and
# records what it saw; gives up after 120 s.
KILL_SCRIPT = r"""
for _ in $(seq 1200); do pgrep -x pg_dump >/dev/null && break; sleep 0.1; done
pgrep -ax pg_dump >/run/ruche-test-kill.seen || exit 1
podman kill "$1" >/dev/null
"""

# Puts the instance's directory on a tmpfs of its files' size plus $2 MiB, mounted in its place (the original stays
# underneath, untouched, and comes back at the unmount); its units stopped meanwhile. `undo` unmounts it.
ROOM_SCRIPT = r"""
set -e
dir=$1 units="$3 $4"
case "$2" in
  undo) systemctl stop $4 $3; umount "$dir" || umount --lazy "$dir"; systemctl start $units; exit 0 ;;
esac
systemctl stop $4 $3
used=$(du -s -B1M "$dir" | cut -f1)
cd "$dir"
mount -t tmpfs -o "size=$((used + $2))m,mode=0700" ruche-test-room "$dir"
cp -a . "$dir"/
cd /
systemctl start $units
"""


def miniflux_client(ruche, lab: Path) -> dict:
    shown = json.loads(ruche("--workspace", str(lab), "instance", "show", MINIFLUX, "--json").stdout)
    password = json.loads(
        ruche("--workspace", str(lab), "instance", "secrets", MINIFLUX, "admin_password", "--json").stdout
    )["admin_password"]
    return {"server": shown["server"], "domain": shown["domain"], "user": "admin", "password": password}


def miniflux_categories(lab: Path, client: dict, attempts: int = 30) -> list[str]:
    """The categories' titles, read through lab-1's Caddy (asked again while the service is not back)."""
    for _ in range(attempts):
        code, text = http(lab, client["server"], client["domain"], "GET", "/v1/categories", user=client["user"],
                          password=client["password"])  # fmt: skip
        if code == 200:
            return [c["title"] for c in json.loads(text)]
        time.sleep(2)
    raise AssertionError(f"Miniflux does not answer through Caddy: HTTP {code} {text[:300]}")


def add_category(lab: Path, client: dict, title: str) -> None:
    code, text = http(lab, client["server"], client["domain"], "POST", "/v1/categories", user=client["user"],
                      password=client["password"], body=json.dumps({"title": title}), content_type="application/json")  # fmt: skip
    assert code == 201, text


def sql(lab: Path, statement: str) -> str:
    return on(lab, "lab-1", "podman", "exec", MINIFLUX_UNITS[0], "sh", "-c", PSQL, statement).strip()


def back_up_miniflux(ruche, lab: Path) -> tuple[int, dict]:
    result = ruche("--workspace", str(lab), "backup", "run", MINIFLUX, "--json")
    (answer,) = json.loads(result.stdout)["results"]
    return result.exit_code, answer


def snapshot_ids(lab: Path) -> set[str]:
    return {s["id"] for s in json.loads(on(lab, "lab-1", "/usr/local/sbin/ruche-backup", "snapshots", MINIFLUX_ID))}


def container_ids(lab: Path) -> list[str]:
    return on(lab, "lab-1", "podman", "inspect", "--format", "{{.Id}}", *MINIFLUX_UNITS).split()


def units_active(lab: Path) -> list[str]:
    return on(lab, "lab-1", "sh", "-c", f"systemctl is-active {' '.join(MINIFLUX_UNITS)}; true").split()


def free_mib(lab: Path) -> int:
    return int(on(lab, "lab-1", "df", "--output=avail", "-B1M", MINIFLUX_DIR).split()[-1])


def test_a_database_killed_during_a_backups_dump_fails_it_clearly_and_the_instance_answers_again(lab, deployed, ruche):
    """Fault: `podman kill` of the database container while pg_dump runs. The backup fails at once, naming the
    container; no partial dump is left or backed up; the units are active again and Miniflux answers through Caddy
    with its data; the next backup succeeds. (A session holding a test table locked keeps pg_dump waiting on it,
    as pg_dump locks every table before it writes: the kill comes during the dump whatever the machine's speed.)"""
    client = miniflux_client(ruche, lab)
    title = f"Avant-panne-{secrets.token_hex(3)}"
    miniflux_categories(lab, client)  # answering (a test before may have restarted it)
    add_category(lab, client, title)
    snapshots = snapshot_ids(lab)
    sql(lab, "create table public.ruche_test_lock (id int)")
    try:
        seconds = killed_during_the_dump(lab, ruche, client, title, snapshots)
    finally:
        on(lab, "lab-1", "sh", "-c", f"podman exec {MINIFLUX_UNITS[0]} sh -c '{PSQL}' "
           "'drop table if exists public.ruche_test_lock'; true")  # fmt: skip
    started = time.monotonic()
    code, again = back_up_miniflux(ruche, lab)
    assert code == 0 and again["status"] == "success", again
    assert again["detail"]["tables"]["public.categories"] >= 2 and snapshot_ids(lab) - snapshots == {
        again["snapshot_id"]
    }
    print(f"backup with its database killed during the dump: {seconds:.1f} s; the next one: "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip


def killed_during_the_dump(lab: Path, ruche, client: dict, title: str, snapshots: set[str]) -> float:
    on(lab, "lab-1", "systemd-run", "--unit=ruche-test-lock", "--collect", "--quiet", "--", "podman", "exec",
       MINIFLUX_UNITS[0], "sh", "-c", PSQL, "begin; lock table public.ruche_test_lock; select pg_sleep(180)")  # fmt: skip
    locked = "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'ruche_test_lock'"
    for _ in range(50):
        if sql(lab, locked + " and l.granted and l.mode = 'AccessExclusiveLock'") == "1":
            break
        time.sleep(0.2)
    before = container_ids(lab)
    on(lab, "lab-1", "systemd-run", "--unit=ruche-test-kill", "--collect", "--quiet", "--", "sh", "-c", KILL_SCRIPT,
       "sh", MINIFLUX_UNITS[0])  # fmt: skip
    started = time.monotonic()
    try:
        code, failed = back_up_miniflux(ruche, lab)
    finally:
        seconds = time.monotonic() - started
        seen = on(lab, "lab-1", "sh", "-c", "cat /run/ruche-test-kill.seen; rm -f /run/ruche-test-kill.seen; "
                  "systemctl stop ruche-test-kill ruche-test-lock 2>/dev/null; true")  # fmt: skip
    assert "pg_dump" in seen, "the kill did not come while pg_dump ran"
    error = failed["detail"].get("error", "")
    assert code == 1 and failed["status"] == "failed" and failed["snapshot_id"] is None, failed
    assert "the database container ruche-amap--miniflux-db stopped during the dump" in error, error
    assert "the partial dump was removed" in error and "nothing was backed up" in error, error
    assert "units are active again" in error, error
    assert seconds < 120
    # no partial dump left on the server, nor in a snapshot; the units active again (the database's a new container)
    assert not _exists_on(lab, "lab-1", f"{MINIFLUX_DIR}/dump")
    assert snapshot_ids(lab) == snapshots
    assert units_active(lab) == ["active", "active"]
    assert container_ids(lab)[0] != before[0]  # the database runs in a new container
    assert title in miniflux_categories(lab, client)
    return seconds


def test_a_full_disk_fails_a_backup_before_it_stops_anything_and_a_dump_that_fills_it_is_removed(lab, deployed, ruche):
    """Fault: the disk of the instance's directory full (a small tmpfs in its place). With too little room for the
    dump, the backup (and a restore) fails at once with what it needs, nothing stopped or restarted; with enough
    room by the engine's figure but a dump larger than that (well compressed rows), the dump stops before the disk
    is full and is removed at once. Miniflux answers through Caddy with its data throughout (a backup that succeeds
    after a failed dump is the test above's)."""
    client = miniflux_client(ruche, lab)
    title = f"Disque-plein-{secrets.token_hex(3)}"
    miniflux_categories(lab, client)  # answering (a test before may have restarted it)
    add_category(lab, client, title)
    if not snapshot_ids(lab):  # (run alone) a snapshot for the restore to refuse
        assert back_up_miniflux(ruche, lab)[0] == 0
    started, timings = time.monotonic(), {}
    on(lab, "lab-1", "sh", "-c", ROOM_SCRIPT, "sh", MINIFLUX_DIR, "40", *MINIFLUX_UNITS)
    try:
        assert title in miniflux_categories(lab, client)
        assert on(lab, "lab-1", "findmnt", "-n", "-o", "SOURCE", MINIFLUX_DIR).strip() == "ruche-test-room"
        timings["onto a tmpfs"] = time.monotonic() - started
        before = container_ids(lab)
        code, refused = back_up_miniflux(ruche, lab)
        error = refused["detail"].get("error", "")
        assert code == 1 and refused["status"] == "failed", refused
        assert "the database dump needs about" in error and f"MiB in {MINIFLUX_DIR}, " in error, error
        assert "MiB free: free some room or grow the disk (nothing was stopped or changed)" in error, error
        assert refused["duration_seconds"] < 10, refused
        restore = on(lab, "lab-1", "sh", "-c", f"/usr/local/sbin/ruche-backup restore {MINIFLUX_ID}; true")
        restore_error = json.loads(restore)["error"]
        assert "needs about" in restore_error and "free some room or grow the disk" in restore_error, restore_error
        assert container_ids(lab) == before  # nothing stopped, restarted or quiesced
        timings["backup and restore refused"] = refused["duration_seconds"] + json.loads(restore)["duration_seconds"]

        # room enough by PostgreSQL's figure, but 200 rows of 1 MiB that compress to almost nothing on its disk
        used = int(on(lab, "lab-1", "du", "-s", "-B1M", MINIFLUX_DIR).split()[0])
        on(lab, "lab-1", "mount", "-o", f"remount,size={used + 130}m", MINIFLUX_DIR)
        sql(lab, "create table public.ruche_test_room (id int, filler text); insert into public.ruche_test_room "
                 "select i, repeat('0123456789abcdef', 65536) from generate_series(1, 200) i")  # fmt: skip
        free = free_mib(lab)
        started = time.monotonic()
        code, filled = back_up_miniflux(ruche, lab)
        timings["backup whose dump fills the disk"] = time.monotonic() - started
        error = filled["detail"].get("error", "")
        assert code == 1 and filled["status"] == "failed", filled
        assert "filled up during the database dump" in error and "its partial file removed" in error, error
        assert "free some room or grow the disk" in error and "nothing was backed up" in error, error
        assert free_mib(lab) >= free - 5  # the partial dump is gone: the service has its room back
        assert not _exists_on(lab, "lab-1", f"{MINIFLUX_DIR}/dump")
        assert units_active(lab) == ["active", "active"] and container_ids(lab) == before
        assert title in miniflux_categories(lab, client)
    finally:
        started = time.monotonic()
        on(lab, "lab-1", "sh", "-c", ROOM_SCRIPT, "sh", MINIFLUX_DIR, "undo", *MINIFLUX_UNITS)
    assert title in miniflux_categories(lab, client)  # the directory's own copy, written before the tmpfs
    timings["tmpfs undone"] = time.monotonic() - started
    print("full disk faults: " + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in timings.items()))
