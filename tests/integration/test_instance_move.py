"""`ruche instance move` through the real CLI, on SQLite and PostgreSQL (no server is reached): the refusals that
come before anything changes, each saying why, and a dry run that says what would happen and changes nothing.
The move itself, with its data read back through the service, is a lab test (tests/lab/test_backups.py)."""

import json

import pytest

from orchestrator.config import BackupSettings
from orchestrator.state.database import StateStore
from orchestrator.state.events import list_events
from orchestrator.state.instances import get_instance
from orchestrator.workspace import open_workspace
from tests.helpers import serve_lab_images_from


def set_state(workspace, address: str, state: str) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            get_instance(session, address).state = state
    finally:
        store.close()


def event_count(workspace) -> int:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            return len(list_events(session))
    finally:
        store.close()


@pytest.fixture
def fleet(workspace, ruche):
    """Servers one and two (apps), small (apps, 256 MiB), vault (backup); amap/radicale running on one."""
    w = ["--workspace", str(workspace)]
    for name, address, extra in (("one", "192.0.2.1", ()), ("two", "192.0.2.2", ()),
                                 ("small", "192.0.2.3", ("--memory", "256M")),
                                 ("vault", "192.0.2.4", ("--role", "backup"))):  # fmt: skip
        added = ruche(*w, "server", "add", name, "--no-connect", "--address", address, *extra)
        assert added.exit_code == 0, added.stderr
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    assert ruche(*w, "instance", "create", "amap", "radicale", "--server", "one", "--size", "large").exit_code == 0
    set_state(workspace, "amap/radicale", "running")
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings(repository="/srv/backup")}))
    return w


def test_a_move_is_refused_before_anything_changes_saying_why(fleet, workspace, ruche):
    w = fleet
    before = ruche(*w, "instance", "list", "--json").stdout
    events = event_count(workspace)

    def refused(*args: str) -> tuple[int, str]:
        result = ruche(*w, "instance", "move", *args, "--yes")
        return result.exit_code, result.stderr

    code, said = refused("amap/radicale", "--to", "one")
    assert code == 5 and "amap/radicale is already on one" in said
    code, said = refused("amap/radicale", "--to", "nowhere")
    assert code == 4 and "no server named 'nowhere'" in said and "known: one, small, two, vault" in said
    code, said = refused("amap/nothing", "--to", "two")
    assert code == 4 and "no instance amap/nothing" in said
    code, said = refused("amap/radicale", "--to", "vault")
    assert code == 5 and "cannot move to vault: role is backup, not apps" in said
    code, said = refused("amap/radicale", "--to", "small")
    assert code == 5 and "cannot move to small: not enough memory" in said and "512 MiB would exceed 256 MiB" in said
    assert ruche(*w, "server", "drain", "two").exit_code == 0
    code, said = refused("amap/radicale", "--to", "two")
    assert code == 5 and "cannot move to two: draining" in said
    assert ruche(*w, "server", "undrain", "two").exit_code == 0
    serve_lab_images_from(workspace, None)  # Radicale's image: only the lab's registry serves it now
    code, said = refused("amap/radicale", "--to", "two")
    assert code == 5 and "two: not a lab server" in said and "ruche images build --push" in said
    serve_lab_images_from(workspace)
    set_state(workspace, "amap/radicale", "suspended")
    code, said = refused("amap/radicale", "--to", "two")
    assert code == 5 and "only a running instance is moved" in said
    set_state(workspace, "amap/radicale", "running")
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings()}))
    code, said = refused("amap/radicale", "--to", "two")
    assert code == 6 and "no backup repository is configured" in said

    assert ruche(*w, "instance", "list", "--json").stdout == before
    # the drain, the undrain and the test's own two changes of state; nothing of the refused moves
    assert event_count(workspace) == events + 4


def test_a_dry_run_says_what_would_happen_and_changes_nothing(fleet, workspace, ruche):
    w = fleet
    before = ruche(*w, "instance", "list", "--json").stdout
    events = event_count(workspace)
    store = StateStore(open_workspace(workspace).state_url)
    try:  # the association's own domain, attached (shown on the lab)
        with store.session() as session:
            get_instance(session, "amap/radicale").own_domains = ["agenda.amap-du-coin.test"]
    finally:
        store.close()
    events = event_count(workspace)
    plan = json.loads(ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--dry-run", "--json").stdout)
    assert (plan["from"], plan["to"], plan["dry_run"], plan["cleanup_only"]) == ("one", "two", True, False)
    assert plan["own_domains_dns"] == ["agenda.amap-du-coin.test. 3600 IN A 192.0.2.2"]
    assert plan["placement"]["eligible"] and plan["placement"]["reason"].startswith("fits")
    assert plan["dns"] == "radicale.amap.test.example.org. 3600 IN A 192.0.2.2"
    assert [s.split(" ")[0] for s in plan["steps"]] == ["stop", "take", "stop", "restore", "check", "remove"]
    text = ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--dry-run")
    assert text.exit_code == 0
    assert "amap/radicale (radicale): one -> two" in text.stdout and "6. remove its copy from one" in text.stdout
    assert ruche(*w, "instance", "list", "--json").stdout == before
    assert event_count(workspace) == events


class FakeServers:
    """Stands in for what the move does on servers (SSH commands, backups, runs), recording each call."""

    def __init__(self, monkeypatch, *, restore: str = "success", removal_on: tuple[str, ...] = ("one", "two")):
        import orchestrator.actions.instance_move as move
        from orchestrator.runner import RunResult

        self.calls: list[tuple] = []

        def run_command(target, argv, timeout=0):
            self.calls.append(("ssh", target.name, *argv))
            return ""

        def run_tool(target, argv, timeout=0):
            self.calls.append(("ssh", target.name, *argv))
            return 0, ""

        def back_up(_workspace, _session, addresses, *, reason, progress):
            self.calls.append(("backup", reason, *addresses))
            return [{"status": "success", "snapshot_id": "5" * 64, "detail": {}}]

        def converge(_workspace, _store, *, instance, restoring=False, **_options):
            self.calls.append(("apply", instance, restoring))
            return {"run_id": "run-deploy", "succeeded": True}

        def backup_tool(target, command, identifier, *options, timeout=0):
            self.calls.append(("ruche-backup", target.name, command, identifier, *options))
            if restore == "success":
                return {"status": "success", "started_at": "2026-11-30T10:00:00+00:00"}
            return {"status": "failed", "error": restore, "started_at": "2026-11-30T10:00:00+00:00"}

        def run_playbook(playbook, *, limit, extravars, **_options):
            self.calls.append(("playbook", playbook, limit, extravars["ruche_copy"]))
            removed = limit in removal_on
            return RunResult(run_id=f"run-remove-{limit}-{len(self.calls)}", playbook=playbook, status="successful" if removed else "failed",
                             rc=0 if removed else 2, started="2026-11-30T10:00:00+00:00",
                             finished="2026-11-30T10:00:10+00:00",
                             custom_stats={"ruche_converged": [extravars["ruche_copy"]["identifier"]]} if removed else {})  # fmt: skip

        for name, fake in (("run_command", run_command), ("run_tool", run_tool), ("back_up", back_up), ("converge", converge),
                           ("backup_tool", backup_tool), ("run_playbook", run_playbook)):  # fmt: skip
            monkeypatch.setattr(move, name, fake)
        monkeypatch.setattr(move, "_wait_until_healthy", lambda *_args: ("healthy", "HTTP 200 in 0.01 s"))
        monkeypatch.setattr(
            move, "_wait_until_answering_on", lambda _workspace, _store, _address, _move: ("healthy", "HTTP 200")
        )


def shown(ruche, w) -> dict:
    return json.loads(ruche(*w, "instance", "show", "amap/radicale", "--json").stdout)


def moves(workspace) -> list[tuple[str, dict]]:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            return [(e.kind, e.detail) for e in list_events(session, kind="instance.move*")]
    finally:
        store.close()


def test_a_failed_restore_undoes_the_move(fleet, workspace, ruche, monkeypatch):
    w = fleet
    before = shown(ruche, w)
    servers = FakeServers(monkeypatch, restore="restic: wrong password")
    failed = ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--yes", "--quiet")
    assert failed.exit_code == 1
    assert "moving amap/radicale to two failed (restore)" in failed.stderr and "restic: wrong password" in failed.stderr
    assert "undone: recorded on one again, started again on one (healthy" in failed.stderr
    assert (
        "two's copy removed" in failed.stderr and "`ruche instance move amap/radicale --to two` again" in failed.stderr
    )
    after = shown(ruche, w)
    checked = ("health", "health_detail", "health_checked_at", "last_run_id")
    assert {k: v for k, v in after.items() if k not in checked} == {k: v for k, v in before.items() if k not in checked}
    assert (after["server"], after["state"]) == ("one", "running")
    steps = [c[:3] for c in servers.calls]
    assert steps == [
        ("ssh", "one", "systemctl"),  # the backup timer
        ("ssh", "one", "systemctl"),  # the application
        ("backup", "safety", "amap/radicale"),
        ("apply", "amap/radicale", True),
        ("ruche-backup", "two", "restore"),
        ("ssh", "one", "systemctl"),  # started again
        ("ssh", "one", "systemctl"),  # its timer too
        ("playbook", "remove-copy.yml", "two"),
    ]
    assert servers.calls[1] == ("ssh", "one", "systemctl", "stop", "--", "ruche-amap--radicale-app.service")
    assert servers.calls[4][3:] == ("amap--radicale", "--snapshot", "5" * 64)
    assert servers.calls[5] == ("ssh", "one", "systemctl", "start", "--", "ruche-amap--radicale-app.service")
    assert servers.calls[-1][3] == {"identifier": "amap--radicale", "association": "amap", "name": "radicale", "state": "absent",
                                    "app": {"container": "ruche-amap--radicale-app"}, "database": None,
                                    "sidecars": []}  # fmt: skip
    ((kind, detail),) = moves(workspace)
    assert kind == "instance.move_failed" and detail["step"] == "restore" and detail["left"] == []
    assert detail["snapshot"] == "5" * 64 and (detail["from"], detail["to"]) == ("one", "two")


def test_a_move_whose_old_copy_stays_is_complete_and_the_same_command_removes_that_copy(fleet, workspace, ruche,
                                                                                       monkeypatch):  # fmt: skip
    w = fleet
    port = shown(ruche, w)
    FakeServers(monkeypatch, removal_on=("two",))  # one does not let its copy go
    moved = ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--yes", "--json")
    assert moved.exit_code == 1 and "its copy on one could not be removed" in moved.stderr
    result = json.loads(moved.stdout)
    assert (result["from"], result["to"], result["old_copy_removed"]) == ("one", "two", False)
    assert result["health"] == "healthy" and result["dns"] == "radicale.amap.test.example.org. 3600 IN A 192.0.2.2"
    assert shown(ruche, w)["server"] == "two" and port["server"] == "one"
    plan = json.loads(ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--dry-run", "--json").stdout)
    assert plan["cleanup_only"] and plan["from"] == "one" and "remove the copy" in plan["steps"][0]
    servers = FakeServers(monkeypatch)
    cleaned = ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--yes")
    assert cleaned.exit_code == 0, cleaned.stderr
    assert "its copy on one is removed" in cleaned.stdout
    assert [c[:3] for c in servers.calls] == [("playbook", "remove-copy.yml", "one")]
    assert [kind for kind, _detail in moves(workspace)] == ["instance.moved", "instance.move_cleaned"]
    again = ruche(*w, "instance", "move", "amap/radicale", "--to", "two", "--yes")
    assert again.exit_code == 5 and "already on two" in again.stderr
