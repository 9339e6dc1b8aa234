"""Long server operations as polled transient units (remote.run_detached): reading a unit's state, the polling
of one operation, and reconnecting after a lost connection until the deadline, with fake connections and a fake
clock. The real thing, an SSH cut during a restore, is a lab test (tests/lab/test_backups.py)."""

from __future__ import annotations

import fnmatch
from types import SimpleNamespace

import paramiko
import pytest
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result

from orchestrator.backups import (
    BACKUP_TOOL,
    DB_MOVE_TOOL,
    DETACHED_COMMANDS,
    backup_tool,
    db_move_tool,
    operation_unit,
    operation_units_of,
)
from orchestrator.errors import OperationFailed
from orchestrator.remote import (
    OPS_DIR,
    POLL_TIMEOUT,
    UNIT_NAME,
    DeadlinePassed,
    Reconnecting,
    detached_timed_out,
    follow_unit,
    parse_unit_state,
)

UNIT = "ruche-op-jardin--miniflux_restore_0a1b2c"


def shown(load: str, active: str, sub: str = "", result: str = "success") -> str:
    return f"LoadState={load}\nActiveState={active}\nSubState={sub}\nResult={result}\n"


def test_a_unit_runs_while_loaded_and_active_and_has_ended_once_collected_or_inactive():
    assert parse_unit_state(shown("loaded", "active", "running")).running
    assert parse_unit_state(shown("loaded", "deactivating", "stop-sigterm")).running
    assert not parse_unit_state(shown("not-found", "inactive", "dead")).running  # --collect unloaded it
    assert not parse_unit_state(shown("loaded", "failed", "failed", "exit-code")).running
    assert parse_unit_state(shown("loaded", "failed", "failed", "exit-code")).result == "exit-code"
    for garbage in ("", "Failed to connect to bus: No such file or directory", "LoadState=loaded\n"):
        with pytest.raises(ValueError):
            parse_unit_state(garbage)


def test_operation_units_have_valid_unique_names():
    names = {operation_unit("db-move", "jardin--miniflux") for _ in range(20)}
    assert len(names) == 20 and all(UNIT_NAME.match(n) and n.startswith("ruche-op-jardin--miniflux_db-move_")
                                    for n in names)  # fmt: skip
    # an instance's pattern names its own operations, never those of an instance whose name starts like its own
    assert all(fnmatch.fnmatchcase(n, operation_units_of("jardin--miniflux")) for n in names)
    for other in ("jardin--miniflux-2", "jardin--miniflux-backup"):
        assert not fnmatch.fnmatchcase(operation_unit("backup", other), operation_units_of("jardin--miniflux"))
    assert {"restore", "backup", "export"} <= DETACHED_COMMANDS and "log" not in DETACHED_COMMANDS


def test_the_database_moves_run_detached_as_ruche_db_move_under_the_names_an_upgrade_waits_for(monkeypatch):
    import orchestrator.remote as remote

    calls = []
    monkeypatch.setattr(remote, "run_detached", lambda target, argv, *, unit, timeout: (calls.append((argv, unit))
                        or ('{"status": "success"}\n', "")))  # fmt: skip
    monkeypatch.setattr(remote, "run_tool", lambda target, argv, *, timeout: (calls.append((argv, None))
                        or (0, "[]\n")))  # fmt: skip
    target = SimpleNamespace(name="lab-1")
    assert db_move_tool(target, "move", "jardin--wiki", "--image", "registry.lab/postgres:17") == {"status": "success"}
    db_move_tool(target, "back", "jardin--wiki")
    db_move_tool(target, "done", "jardin--wiki")
    backup_tool(target, "restore", "jardin--wiki", "--snapshot", "latest")
    assert backup_tool(target, "log", "jardin--wiki") == []
    argvs, units = zip(*calls, strict=True)
    assert (
        argvs[:3]
        == (
            [DB_MOVE_TOOL, "move", "jardin--wiki", "--image", "registry.lab/postgres:17"],
            [DB_MOVE_TOOL, "back", "jardin--wiki"],
            [DB_MOVE_TOOL, "done", "jardin--wiki"],
        )
        and DB_MOVE_TOOL == "/usr/local/sbin/ruche-db-move"
    )
    assert [u.rsplit("_", 1)[0] for u in units[:4]] == [
        "ruche-op-jardin--wiki_db-move", "ruche-op-jardin--wiki_db-move-back", "ruche-op-jardin--wiki_db-move-done",
        "ruche-op-jardin--wiki_restore",
    ] and units[4] is None  # fmt: skip
    assert argvs[3][0] == argvs[4][0] == BACKUP_TOOL


def test_a_server_tool_without_a_json_answer_names_the_tool_its_unit_and_the_fix(monkeypatch):
    import orchestrator.remote as remote

    monkeypatch.setattr(remote, "run_detached", lambda target, argv, *, unit, timeout: (None, "No such file"))
    with pytest.raises(OperationFailed) as raised:
        db_move_tool(SimpleNamespace(name="lab-1"), "back", "jardin--wiki")
    assert str(raised.value).startswith("lab-1: ruche-db-move back jardin--wiki ran as unit ruche-op-jardin--wiki_db-")
    assert raised.value.message.endswith("ended without a JSON answer: No such file")
    assert "`ruche apply --server lab-1`" in raised.value.hint


class FakeServer:
    """A session as follow_unit sees it: answers each command by its kind, records commands and pauses."""

    where = "lab-1"

    def __init__(self, states: list[str], *, start=(0, "", ""), answer=(0, '{"status": "success"}\n', ""),
                 rm_deadline: bool = False) -> None:  # fmt: skip
        self.states, self.start, self.answer, self.rm_deadline = states, start, answer, rm_deadline
        self.commands: list[list[str]] = []
        self.pauses: list[float] = []

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        self.commands.append(argv)
        if argv[0] == "sh":
            return self.start
        if argv[0] == "systemctl":
            return 0, self.states.pop(0), ""
        if argv[0] == "cat":
            return self.answer
        if argv[0] == "tail":
            return 0, "a traceback\n", ""
        if self.rm_deadline:
            raise DeadlinePassed("TimeoutError: timed out")
        return 0, "", ""

    def wait(self, seconds: float) -> None:
        self.pauses.append(seconds)


def test_an_operation_is_started_polled_until_it_ends_then_read_and_removed():
    server = FakeServer([shown("loaded", "active")] * 4 + [shown("not-found", "inactive", "dead")])
    argv = ["/usr/local/sbin/ruche-backup", "restore", "jardin--miniflux", "--snapshot", "abcdef12"]
    assert follow_unit(server, UNIT, argv) == ('{"status": "success"}\n', "a traceback\n")
    start = server.commands[0]
    assert start[:2] == ["sh", "-c"] and start[3:] == ["sh", UNIT, OPS_DIR, *argv]  # values as arguments only
    assert server.pauses == [0.5, 1.0, 1.5, 1.5]  # quick at first, then every 1.5 s
    assert server.commands[-1] == ["rm", "-f", "--", f"{OPS_DIR}/{UNIT}.json", f"{OPS_DIR}/{UNIT}.err"]


def test_a_unit_state_that_cannot_be_read_is_asked_again():
    server = FakeServer(["Failed to connect to bus", shown("loaded", "failed", "failed", "exit-code")])
    assert follow_unit(server, UNIT, ["true"])[0] == '{"status": "success"}\n'
    assert len(server.pauses) == 1


def test_a_refused_start_names_the_unit_and_the_servers_words():
    server = FakeServer([], start=(1, "", "Failed to start transient service unit: Unit already exists.\n"))
    with pytest.raises(OperationFailed, match=f"lab-1: cannot start `true` as unit {UNIT}: .*already exists"):
        follow_unit(server, UNIT, ["true"])


def test_no_answer_file_gives_none_and_a_removal_past_the_deadline_is_not_an_error():
    server = FakeServer([shown("not-found", "inactive")], answer=(1, "", "cat: No such file or directory"),
                        rm_deadline=True)  # fmt: skip
    assert follow_unit(server, UNIT, ["true"]) == (None, "a traceback\n")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeConnection:
    """Answers run() from a script: a result (exit code, stdout), or an exception raised after ``cost`` seconds."""

    def __init__(self, clock: Clock, script: list, cost: float = 0.1) -> None:
        self.clock, self.script, self.cost = clock, script, cost
        self.client = SimpleNamespace(close=lambda: None)
        self.timeouts: list[float] = []
        self.closed = False

    def run(self, command: str, **kwargs):
        self.timeouts.append(kwargs["timeout"])
        item = self.script.pop(0)
        if isinstance(item, Exception):
            self.clock.now += kwargs["timeout"] if isinstance(item, CommandTimedOut) else self.cost
            raise item
        self.clock.now += self.cost
        return SimpleNamespace(exited=item[0], stdout=item[1], stderr="")

    def close(self) -> None:
        self.closed = True


def opener(clock: Clock, outcomes: list):
    """open_connection for Reconnecting: each call takes the next outcome (a connection, or an exception raised
    after the connect timeout, as an address that drops packets does)."""
    calls = []

    def open_connection(seconds: float):
        calls.append(seconds)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            clock.now += seconds
            raise outcome
        return outcome

    return open_connection, calls


def test_a_cut_connection_is_opened_again_and_the_command_run_again():
    clock = Clock()
    stalled = FakeConnection(
        clock, [CommandTimedOut(Result(command="systemctl show", hide=("stdout", "stderr")), timeout=POLL_TIMEOUT)]
    )
    fresh = FakeConnection(clock, [(0, "LoadState=not-found\n")])
    open_connection, calls = opener(clock, [TimeoutError("timed out"), TimeoutError("timed out"), fresh])
    session = Reconnecting("lab-1", open_connection, clock() + 3600, clock=clock, sleep=clock.sleep)
    session.connection = stalled
    assert session.run(["systemctl", "show", UNIT]) == (0, "LoadState=not-found\n", "")
    assert stalled.closed and stalled.timeouts == [POLL_TIMEOUT]  # a stalled poll is abandoned after POLL_TIMEOUT
    assert calls == [10.0, 10.0, 10.0] and session.connection is fresh
    assert 50 <= clock.now - 1000 <= 60  # 30 s stalled, two failed connects of 10 s, pauses of 2 s
    assert session.last_error == "TimeoutError: timed out"


def test_a_channel_closed_without_exit_status_counts_as_a_lost_connection():
    clock = Clock()
    first = FakeConnection(clock, [(-1, "")])
    second = FakeConnection(clock, [(0, "done")])
    open_connection, _calls = opener(clock, [second])
    session = Reconnecting("lab-1", open_connection, clock() + 60, clock=clock, sleep=clock.sleep)
    session.connection = first
    assert session.run(["cat", "x"]) == (0, "done", "")
    assert first.closed and "_ConnectionLost" in session.last_error


def test_a_server_gone_for_good_gives_up_at_the_deadline_with_the_last_error():
    clock = Clock()
    broken = FakeConnection(clock, [OSError(113, "No route to host")])
    open_connection, calls = opener(clock, [TimeoutError("timed out")] * 100)
    session = Reconnecting("lab-1", open_connection, clock() + 120, clock=clock, sleep=clock.sleep)
    session.connection = broken
    with pytest.raises(DeadlinePassed) as passed:
        session.run(["systemctl", "show", UNIT])
    assert passed.value.last_error == "TimeoutError: timed out"
    assert 1120 <= clock.now <= 1121 and 5 <= len(calls) <= 10  # no attempt runs past the deadline
    assert all(seconds <= 10 for seconds in calls)
    assert session.remaining() <= 0


def test_commands_near_the_deadline_get_only_the_time_left():
    clock = Clock()
    connection = FakeConnection(clock, [(0, "")])
    session = Reconnecting("lab-1", lambda _s: connection, clock() + 12, clock=clock, sleep=clock.sleep)
    session.run(["true"])
    assert connection.timeouts == [12]


def test_a_refused_key_on_reconnection_is_an_error_at_once():
    clock = Clock()
    open_connection, calls = opener(clock, [paramiko.AuthenticationException("Authentication failed.")])
    session = Reconnecting("lab-1", open_connection, clock() + 3600, clock=clock, sleep=clock.sleep)
    with pytest.raises(OperationFailed, match="lab-1: SSH refused while reconnecting: Authentication failed"):
        session.run(["true"])
    assert len(calls) == 1 and clock.now - 1000 <= 11


def test_the_deadline_error_names_the_unit_says_it_may_still_run_and_how_to_look():
    error = detached_timed_out("lab-1", ["/usr/local/sbin/ruche-backup", "restore", "jardin--miniflux"], UNIT, 3600,
                               "TimeoutError: timed out")  # fmt: skip
    assert error.exit_code == 7
    assert str(error).startswith(f"lab-1: `/usr/local/sbin/ruche-backup restore jardin--miniflux` (transient unit "
                                 f"{UNIT}) gave no result within 3600 s (last SSH error: TimeoutError: timed out); "
                                 "it may still run on the server")  # fmt: skip
    assert f"`journalctl -u {UNIT}`" in error.hint and f"{OPS_DIR}/{UNIT}.json" in error.hint
