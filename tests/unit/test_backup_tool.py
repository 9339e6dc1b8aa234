"""The server tools' pure pieces: ruche_tools (the module ruche-backup and ruche-db-move share: the room a step needs
and the messages that say it, the dump's copy that stops before the disk is full, why a dump failed, the JSON answer
of a command), each tool's table of commands, and ruche-db-move's data directory put back after a failed move."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.unit.test_idranges import ROLES, load_script

pytestmark = pytest.mark.unit
MIB = 1 << 20
FILES = ROLES / "ruche_server" / "files"


@pytest.fixture(scope="module")
def backup():
    return load_script("ruche-backup")


@pytest.fixture(scope="module")
def move():
    return load_script("ruche-db-move")


@pytest.fixture(scope="module")
def tool(backup, move):
    """ruche_tools, as both tools import it (here: from beside them in the project's files)."""
    shared = sys.modules["ruche_tools"]
    assert os.path.dirname(shared.__file__) == str(FILES)
    assert backup.Failure is move.Failure is shared.Failure and backup.run is move.run is shared.run  # one copy
    return shared


def test_the_room_needed_is_the_estimate_with_a_share_and_a_fixed_margin(tool):
    assert tool.room_needed(0) == 64 * MIB
    assert tool.room_needed(100 * MIB) == 110 * MIB + 64 * MIB
    assert tool.room_needed(100 * MIB, copies=2) == 220 * MIB + 64 * MIB  # a database move: dump and new directory
    assert tool.room_needed(-5) == 64 * MIB


def test_the_room_message_says_what_where_how_much_and_what_to_do(tool):
    message = tool.room_message("the database dump", 74 * MIB + 1, "/srv/ruche/amap/miniflux", 41 * MIB + MIB - 1)
    assert message == (
        "the database dump needs about 75 MiB in /srv/ruche/amap/miniflux, 41 MiB free: free some room or grow the disk"
    )  # needed rounded up, free rounded down


def test_check_room_fails_at_once_with_the_message_or_passes(tool, tmp_path):
    free = tool.free_room(str(tmp_path))
    assert free > 0
    tool.check_room("the restore", free // 2, str(tmp_path))
    with pytest.raises(tool.Failure) as raised:
        tool.check_room("the restore", free + 100 * MIB, str(tmp_path))
    assert str(raised.value).startswith(f"the restore needs about {tool.mib(free + 100 * MIB, up=True)} MiB in ")
    assert str(raised.value).endswith("free some room or grow the disk (nothing was stopped or changed)")


def test_a_failure_carries_fields_for_the_json_answer(tool):
    failure = tool.Failure("it failed", kept_put_back=True)
    assert str(failure) == "it failed" and failure.details == {"kept_put_back": True}
    assert tool.Failure("plain").details == {}


def test_the_dump_is_copied_from_a_real_pipe_until_its_end(tool, tmp_path):
    producer = subprocess.Popen(["head", "-c", str(5 * MIB + 17), "/dev/zero"], stdout=subprocess.PIPE)
    target = tmp_path / "database.sql"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        written, problem = tool.copy_watching(
            lambda: os.read(producer.stdout.fileno(), tool.CHUNK),
            lambda block: tool.write_all(descriptor, block),
            lambda: 10**12,
        )
    finally:
        os.close(descriptor)
        producer.stdout.close()
        producer.wait()
    assert (written, problem) == (5 * MIB + 17, None) and target.stat().st_size == written


def test_the_dump_stops_before_the_free_room_falls_below_the_reserve(tool):
    blocks, kept = [b"x" * MIB] * 10, []
    room = {"free": tool.DUMP_RESERVE + 3 * MIB}

    def write(block: bytes) -> None:
        kept.append(block)
        room["free"] -= len(block)

    written, problem = tool.copy_watching(lambda: blocks.pop() if blocks else b"", write, lambda: room["free"])
    assert (written, problem) == (3 * MIB, "full") and room["free"] == tool.DUMP_RESERVE


def test_a_full_disk_during_the_dump_stops_it_and_other_write_errors_are_raised(tool):
    def full(_block: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def broken(_block: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    assert tool.copy_watching(lambda: b"x", full, lambda: 10**12) == (0, "full")
    with pytest.raises(OSError):
        tool.copy_watching(lambda: b"x", broken, lambda: 10**12)


def test_why_a_dump_failed_names_the_container_or_the_disk(tool):
    running = ("abc", True)
    args = dict(container="ruche-a--b-db", tool="pg_dump", directory="/srv/ruche/a/b/dump", written=96 * MIB,
                free=32 * MIB, error="pg_dump: error: connection lost")  # fmt: skip
    full = tool.dump_failure(code=1, problem="full", before=running, after=running, **args)
    assert full.startswith("the disk holding /srv/ruche/a/b/dump filled up during the database dump (96 MiB written, ")
    assert full.endswith("the dump was stopped and its partial file removed; free some room or grow the disk")
    for after, state in ((None, "is gone"), (("def", True), "was started again"), (("abc", False), "is stopped")):
        stopped = tool.dump_failure(code=137, problem=None, before=running, after=after, **args)
        assert stopped == (
            f"the database container ruche-a--b-db stopped during the dump (pg_dump exited 137; the container {state}):"
            " the partial dump was removed"
        )
    failed = tool.dump_failure(code=1, problem=None, before=running, after=running, **args)
    assert (
        failed == "the dump of the database in ruche-a--b-db failed (pg_dump exited 1): pg_dump: error: connection lost"
    )


def test_a_failed_move_puts_the_kept_directory_back_and_doing_it_again_does_nothing(move, tmp_path):
    kept = tmp_path / move.KEPT_DATABASE
    kept.mkdir()
    (kept / "PG_VERSION").write_text("15\n")
    inode = kept.stat().st_ino
    (tmp_path / "database").mkdir()  # the new, half-initialised directory
    (tmp_path / "database" / "PG_VERSION").write_text("17\n")
    (tmp_path / move.MOVE_DIR).mkdir()
    (tmp_path / move.MOVE_DIR / "database.sql").write_text("-- dump")
    assert move.put_back_kept(str(tmp_path)) is True
    assert (tmp_path / "database" / "PG_VERSION").read_text() == "15\n"
    assert (tmp_path / "database").stat().st_ino == inode  # renamed, not copied: owners and modes as they were
    assert not kept.exists() and not (tmp_path / move.MOVE_DIR).exists()
    assert move.put_back_kept(str(tmp_path)) is False
    assert (tmp_path / "database" / "PG_VERSION").read_text() == "15\n"


def test_disk_usage_counts_the_blocks_of_a_tree(move, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 100_000)
    assert 100_000 <= move.disk_usage(str(tmp_path)) < 200_000
    assert move.disk_usage(str(tmp_path / "missing")) == 0


def test_each_tool_dispatches_its_commands_from_one_table(backup, move):
    assert set(backup.COMMANDS) == {"init", "backup", "snapshots", "restore", "inspect", "manifest", "check", "log",
                                    "forget", "export"}  # fmt: skip
    assert set(move.COMMANDS) == {"move", "back", "done"}


def test_a_command_answers_its_result_or_its_failure_as_json(tool, capsys):
    parser = tool.argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("identifier")
    commands = {"ok": lambda config, arguments: {"status": "success"}}
    assert tool.serve(parser, commands, ["ok", "Not-An-Id"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "status": "failed",
        "error": "not an instance identifier: 'Not-An-Id'",
    }


def run_tool(name: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILES / name), *arguments], capture_output=True, text=True, timeout=60)


def test_the_tools_run_as_programs_and_answer_json_failures_that_say_why():
    for name, argv in (("ruche-db-move", ["back", "jardin--wiki"]), ("ruche-backup", ["snapshots", "jardin--wiki"])):
        ran = run_tool(name, *argv)
        assert ran.returncode == 1, ran.stderr
        assert json.loads(ran.stdout) == {
            "status": "failed",
            "error": "/etc/ruche/backup/jardin--wiki.json: no backup configuration (is the instance deployed with "
            "backups enabled?)",
        }
    refused = run_tool("ruche-db-move", "db-move", "jardin--wiki")  # the old command name: refused, with the choices
    assert refused.returncode == 2 and "invalid choice: 'db-move'" in refused.stderr
    assert "{move,back,done}" in refused.stderr


def test_the_role_installs_the_shared_module_where_the_tools_look_for_it(tool):
    tasks = yaml.safe_load((ROLES / "ruche_server" / "tasks" / "install.yml").read_text())
    copies = {t["ansible.builtin.copy"].get("src"): t for t in tasks if "ansible.builtin.copy" in t}
    assert copies["ruche_tools.py"]["ansible.builtin.copy"]["dest"] == f"{tool.LIBRARY}/ruche_tools.py"
    tools = next(t for t in tasks if t.get("name") == "Install ruche's server tools")
    assert "ruche-db-move" in tools["loop"]
    for name in ("ruche-backup", "ruche-db-move"):
        assert f'else "{tool.LIBRARY}")' in (FILES / name).read_text()
