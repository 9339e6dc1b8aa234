"""The server tools' pure pieces: ruche_tools (the module ruche-backup and ruche-db-move share: the room a step needs
and the messages that say it, the dump's copy that stops before the disk is full, why a dump failed, the JSON answer
of a command), each tool's table of commands, ruche-db-move's data directory put back after a failed move, and
ruche-backup's `load` (an instance's data from another collective's bundle): its upload directory, the checks of
volumes.tar before GNU tar extracts it as root, that extraction, and the whole command with systemd and podman faked."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

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
                                    "forget", "export", "load"}  # fmt: skip
    assert set(move.COMMANDS) == {"move", "back", "done"}


def test_an_exclusive_command_waits_for_the_instances_lock_held_by_another(tool, tmp_path, monkeypatch, capsys):
    import fcntl
    import threading

    monkeypatch.setattr(tool, "LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setattr(tool, "load", lambda identifier: {"id": identifier})
    order = []
    parser = tool.argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("identifier")
    commands = {"backup": lambda config, arguments: order.append("backup") or {"status": "success"},
                "log": lambda config, arguments: order.append("log") or {"status": "success"}}  # fmt: skip
    with tool.instance_lock("amap--agenda") as held:  # an export running
        assert os.stat(tool.LOCK_DIR).st_mode & 0o777 == 0o700
        waiting = threading.Thread(target=tool.serve, args=(parser, commands, ["backup", "amap--agenda"]),
                                   kwargs={"exclusive": frozenset({"backup"})})  # fmt: skip
        waiting.start()
        assert tool.serve(parser, commands, ["log", "amap--agenda"], exclusive=frozenset({"backup"})) == 0
        waiting.join(0.5)
        assert waiting.is_alive() and order == ["log"]  # the backup waits; a read-only command does not
        with pytest.raises(BlockingIOError):  # held, not free
            fcntl.flock(open(held.path), fcntl.LOCK_EX | fcntl.LOCK_NB)
    waiting.join(5)
    assert order == ["log", "backup"]
    capsys.readouterr()


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
    written = next(t for t in tasks if t.get("name") == "Write ruche's directories, server tools and settings")
    files = written["ruche_files"]["files"]
    assert f"'path': '{tool.LIBRARY}/ruche_tools.py'" in files and "'ruche_tools.py', rstrip=false" in files
    assert f"{{'path': '{tool.LIBRARY}', 'mode': '0755'}}" in written["ruche_files"]["directories"]
    assert "{% for tool in ruche_server_tools %}" in written["vars"]["_tools"]
    # the reload marker is the module's argument (a variable of the task would leave `pending` always false)
    assert written["ruche_files"]["pending_marker"] == "{{ ruche_server_reload_marker }}"
    assert "pending_marker" not in written["vars"]
    assert (
        "ruche-db-move"
        in yaml.safe_load((ROLES / "ruche_server" / "vars" / "main.yml").read_text())["ruche_server_tools"]
    )
    for name in ("ruche-backup", "ruche-db-move"):
        assert f'else "{tool.LIBRARY}")' in (FILES / name).read_text()


# ruche-backup load: an instance's data from another collective's bundle, uploaded into /var/lib/ruche/import/ID


def tar_of(path, members: list[tuple]) -> str:
    """Write tar ``path`` from members (name, kind[, value][, options]): kind "dir", "file" (value: its bytes), "link"
    or "hard" (value: the target), "fifo"; options {"uid", "gid", "mode", "data"}, owners 0:0 by default."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        for name, kind, *rest in members:
            options = rest.pop() if rest and isinstance(rest[-1], dict) else {}
            value = rest[0] if rest else None
            data = value if kind == "file" and value is not None else options.get("data", b"")
            info = tarfile.TarInfo(name)
            info.uid, info.gid = options.get("uid", 0), options.get("gid", 0)
            info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "link": tarfile.SYMTYPE,
                         "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[kind]  # fmt: skip
            info.mode = options.get("mode", 0o755 if kind == "dir" else 0o644)
            if kind in ("link", "hard"):
                info.linkname = value
            info.size = len(data) if kind == "file" else 0
            archive.addfile(info, BytesIO(data) if kind == "file" else None)
    return str(path)


def test_the_upload_directory_is_named_after_an_identifier_and_never_leaves_roots_import_directory(backup):
    assert backup.upload_dir("amap--agenda") == "/var/lib/ruche/import/amap--agenda"
    for bad in ("../../etc", "amap--agenda/../../root", "amap--a/b", "amap", "Amap--agenda", ""):
        with pytest.raises(backup.Failure, match="not an instance identifier"):
            backup.upload_dir(bad)


def test_the_upload_must_be_a_private_directory_of_root_holding_only_its_three_regular_files(backup, tmp_path):
    upload, me = tmp_path / "ruche-import-amap--agenda", os.getuid()
    with pytest.raises(backup.Failure, match="no upload there"):
        backup.upload_files(str(upload), owner=me)
    upload.mkdir(mode=0o700)
    with pytest.raises(backup.Failure, match="no manifest.json"):
        backup.upload_files(str(upload), owner=me)
    for name in ("manifest.json", "database.sql", "volumes.tar"):
        (upload / name).write_text("x")
    assert backup.upload_files(str(upload), owner=me) == {n: str(upload / n) for n in backup.UPLOAD_FILES}
    with pytest.raises(backup.Failure, match="not a directory of UID"):  # another user's (root's here, as the server)
        backup.upload_files(str(upload), owner=me + 1)
    upload.chmod(0o755)
    with pytest.raises(backup.Failure, match=r"closed to others \(mode 0700\): refused"):
        backup.upload_files(str(upload), owner=me)
    upload.chmod(0o700)
    (tmp_path / "elsewhere").symlink_to(upload)  # /var/tmp is everyone's: a link there is never followed
    with pytest.raises(backup.Failure, match="not a directory of UID"):
        backup.upload_files(str(tmp_path / "elsewhere"), owner=me)
    (upload / "database.sql").unlink()
    (upload / "database.sql").symlink_to("/etc/hostname")
    with pytest.raises(backup.Failure, match="database.sql: not a regular file"):
        backup.upload_files(str(upload), owner=me)
    (upload / "database.sql").unlink()
    (upload / "notes.txt").write_text("x")
    with pytest.raises(backup.Failure, match="notes.txt: not a file of an upload"):
        backup.upload_files(str(upload), owner=me)


def test_an_upload_for_another_service_engine_or_without_its_dump_is_refused(backup):
    config = {"id": "amap--wiki", "service": "mediawiki", "database": {"engine": "mariadb", "container": "db"},
              "ids": {"start": 1 << 30, "size": 65536}}  # fmt: skip
    files = {"manifest.json": "m", "database.sql": "d"}
    manifest = {"service": "mediawiki", "database": {"engine": "mariadb"}, "ids": {"start": 7, "size": 65536}}
    assert backup.upload_problems(config, manifest, files) == []  # the sender's "ids" play no part
    assert backup.upload_problems(
        config, {**manifest, "service": "miniflux", "database": {"engine": "postgresql"}}, {"manifest.json": "m"}
    ) == [  # fmt: skip
        "the upload is of service 'miniflux', amap--wiki runs 'mediawiki'",
        "the upload holds no database.sql, and amap--wiki has a mariadb database",
        "the upload's database is postgresql, amap--wiki's is mariadb",
    ]
    assert backup.upload_problems({**config, "database": None, "ids": None}, {"service": "mediawiki"}, files) == [
        "the upload holds database.sql, and amap--wiki has no database",
        "amap--wiki has no fixed ID range (converge it first: `ruche apply`)",
    ]


def test_volumes_tar_is_checked_member_by_member_before_anything_is_extracted(backup, tmp_path):
    volumes, size = ["data", "config"], 65536
    good = tar_of(tmp_path / "good.tar", [
        ("volumes", "dir"), ("volumes/data", "dir"), ("volumes/data/a.txt", "file", b"hello"),
        ("volumes/data/sub", "dir", {"uid": 101, "gid": 65535, "mode": 0o1777}),
        ("volumes/data/sub/b.bin", "file", {"uid": 101, "gid": 101, "data": b"x" * 1000}),
        ("volumes/data/current", "link", "sub"), ("volumes/config/../config", "link", "/etc/passwd"),
    ])  # fmt: skip
    with pytest.raises(backup.Failure, match=r"member 'volumes/config/\.\./config': not a plain relative name"):
        backup.check_volumes_tar(good, volumes, size)
    good = tar_of(tmp_path / "good.tar", [
        ("volumes", "dir"), ("volumes/data", "dir"), ("volumes/data/a.txt", "file", b"hello"),
        ("volumes/data/sub", "dir", {"uid": 101, "gid": 65535, "mode": 0o1777}),
        ("volumes/data/sub/b.bin", "file", {"uid": 101, "gid": 101, "data": b"x" * 1000}),
        ("volumes/data/current", "link", "sub"), ("volumes/config", "dir"), ("volumes/config/etc", "link", "/etc"),
    ])  # fmt: skip
    assert backup.check_volumes_tar(good, volumes, size) == 1005  # the bytes of its regular files
    refused = {
        "hard": ([("volumes/data/h", "hard", "volumes/data/a")], "not a directory, a regular file or a symbolic link"),
        "fifo": ([("volumes/data/p", "fifo")], "not a directory, a regular file or a symbolic link"),
        "absolute": ([("/volumes/data/x", "file", b"")], "not a plain relative name"),
        "dotdot": ([("volumes/data/../../etc/x", "file", b"")], "not a plain relative name"),
        "outside": ([("etc/cron.d/x", "file", b"")], "not under volumes/"),
        "top file": ([("volumes", "file", b"")], "not under volumes/"),
        "unknown": ([("volumes/secrets/x", "file", b"")], "volume 'secrets' is not one of this instance's (data, config)"),
        "volume link": ([("volumes/data", "link", "/etc")], "a volume must be a directory"),
        "uid": ([("volumes/data/x", "file", {"uid": 65536})], "owner 65536:0 is outside the instance's IDs 0..65535"),
        "gid": ([("volumes/data/x", "file", {"gid": 1 << 30})], f"owner 0:{1 << 30} is outside the instance's IDs"),
        "setuid": ([("volumes/data/x", "file", {"mode": 0o4755})], "set-UID or set-GID bit"),
        "setgid dir": ([("volumes/data/d", "dir", {"mode": 0o2775})], "set-UID or set-GID bit"),
        "below link": ([("volumes/data/l", "link", "sub"), ("volumes/data/l/x", "file", b"")],
                       "below a symbolic link of the archive"),
    }  # fmt: skip
    for case, (members, reason) in refused.items():
        path = tar_of(tmp_path / "bad.tar", [("volumes/data", "dir")] + members)
        with pytest.raises(backup.Failure) as raised:
            backup.check_volumes_tar(path, volumes, size)
        assert f"': {reason}" in str(raised.value) and str(raised.value).endswith("; nothing was changed"), case
    damaged = bytearray(Path(good).read_bytes())  # the second header's checksum: GNU tar would skip it, and go on
    assert damaged[512 + 148 : 512 + 156].strip(b" \0").isdigit()
    damaged[512 + 148 : 512 + 150] = b"99"
    (tmp_path / "damaged.tar").write_bytes(bytes(damaged))
    with pytest.raises(backup.Failure, match=r"volumes.tar: unreadable data after byte 512 \(a damaged header\?\)"):
        backup.check_volumes_tar(str(tmp_path / "damaged.tar"), volumes, size)
    (tmp_path / "short.tar").write_bytes(Path(good).read_bytes()[: 512 * 6 + 100])
    with pytest.raises(backup.Failure, match="volumes.tar is not a readable tar archive: unexpected end of data"):
        backup.check_volumes_tar(str(tmp_path / "short.tar"), volumes, size)
    (tmp_path / "junk.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(backup.Failure, match="volumes.tar is not a readable tar archive"):
        backup.check_volumes_tar(str(tmp_path / "junk.tar"), volumes, size)


GNU_TAR = (
    shutil.which("tar") and "GNU tar" in subprocess.run(["tar", "--version"], capture_output=True, text=True).stdout
)


@pytest.mark.skipif(not GNU_TAR, reason="GNU tar is what the servers run")
def test_gnu_tar_extracts_with_owners_and_modes_and_refuses_a_name_twice_or_a_write_through_a_link(backup, tmp_path):
    mine = {"uid": os.getuid(), "gid": os.getgid()}  # owners this test's user may give (root on the servers)
    archive = tar_of(tmp_path / "v.tar", [
        ("volumes/data", "dir", mine), ("volumes/data/sub", "dir", {**mine, "mode": 0o750}),
        ("volumes/data/sub/f", "file", b"hello", {**mine, "mode": 0o600}),
        ("volumes/data/rel", "link", "sub", mine), ("volumes/data/abs", "link", str(tmp_path / "victim"), mine),
    ])  # fmt: skip
    staging = tmp_path / "staging"
    staging.mkdir(mode=0o700)
    subprocess.run(backup.extract_command(archive, str(staging)), check=True, capture_output=True)
    extracted = staging / "volumes" / "data"
    assert (extracted / "sub" / "f").read_bytes() == b"hello" and (
        extracted / "sub" / "f"
    ).stat().st_mode & 0o777 == 0o600
    assert (extracted / "sub").stat().st_mode & 0o777 == 0o750 and os.readlink(extracted / "rel") == "sub"
    assert os.readlink(extracted / "abs") == str(tmp_path / "victim")  # a link, never followed while extracting
    (tmp_path / "victim").mkdir()
    for name, members in {
        "twice": [("volumes/data", "dir", mine), ("volumes/data/f", "file", b"one", mine),
                  ("volumes/data/f", "link", "/etc/passwd")],
        "through": [("volumes/data", "dir", mine), ("volumes/data/b", "link", str(tmp_path / "victim")),
                    ("volumes/data/b/evil", "file", b"x", mine)],
    }.items():  # fmt: skip
        fresh = tmp_path / f"staging-{name}"
        fresh.mkdir(mode=0o700)
        extraction = subprocess.run(backup.extract_command(tar_of(tmp_path / f"{name}.tar", members), str(fresh)),
                                    capture_output=True, text=True)  # fmt: skip
        assert extraction.returncode != 0, name
    assert list((tmp_path / "victim").iterdir()) == []
    assert (tmp_path / "staging-twice" / "volumes" / "data" / "f").read_bytes() == b"one"


def test_staged_volumes_are_the_configured_directories_the_staging_holds_never_a_link(backup, tmp_path):
    config = {"instance_dir": "/srv/ruche/amap/agenda", "volumes": ["data", "config", "cache"]}
    (tmp_path / "volumes" / "data").mkdir(parents=True)
    (tmp_path / "volumes" / "config").symlink_to("/etc")
    (tmp_path / "volumes" / "extra").mkdir()
    assert backup.staged_volumes(config, str(tmp_path)) == [
        (str(tmp_path / "volumes" / "data"), "/srv/ruche/amap/agenda/volumes/data")
    ]
    assert backup.app_units({"units": ["db", "app", "side"], "database": {"container": "db"}}) == ["app", "side"]
    assert backup.app_units({"units": ["app"], "database": None}) == ["app"]


@pytest.fixture
def loading(backup, tmp_path, monkeypatch):
    """An instance without a database in tmp_path and its upload, with systemd, podman and ruche-idmap faked (GNU tar
    runs): the commands run are recorded, the log entries kept."""
    instance = tmp_path / "srv" / "amap" / "agenda"
    (instance / "volumes" / "data").mkdir(parents=True)
    (instance / "volumes" / "data" / "fresh.txt").write_text("what the new instance wrote")
    upload = tmp_path / "ruche-import-amap--agenda"
    upload.mkdir(mode=0o700)
    me = {"uid": os.getuid(), "gid": os.getgid()}
    (upload / "manifest.json").write_text(json.dumps({"service": "radicale", "ids": {"start": 5, "size": 65536}}))
    tar_of(
        upload / "volumes.tar",
        [
            ("volumes/data", "dir", me),
            ("volumes/data/collections", "dir", me),
            ("volumes/data/collections/event.ics", "file", {**me, "data": b"BEGIN:VCALENDAR"}),
        ],
    )
    config = {"id": "amap--agenda", "service": "radicale", "version": "3.2", "instance_dir": str(instance), "volumes": ["data"],
              "units": ["ruche-amap--agenda-app"], "app": {"container": "ruche-amap--agenda-app"}, "database": None,
              "ids": {"start": 1 << 30, "size": 65536}, "after": [], "after_restore": []}  # fmt: skip
    commands, logged = [], []

    def fake_run(argv, **_options):
        commands.append(argv)
        if argv[0] == "tar":  # GNU tar for real, into the staging directory
            return subprocess.run(argv, check=True, capture_output=True, text=True)
        return subprocess.CompletedProcess(argv, 0, "true\n" if argv[0] == "podman" else "{}", "")

    upload_files, remove_upload = backup.upload_files, backup.remove_upload
    monkeypatch.setattr(backup, "upload_dir", lambda identifier: str(upload))
    monkeypatch.setattr(backup, "upload_files", lambda directory: upload_files(directory, owner=os.getuid()))
    monkeypatch.setattr(backup, "remove_upload", lambda directory: remove_upload(directory, owner=os.getuid()))
    monkeypatch.setattr(backup, "run", fake_run)
    monkeypatch.setattr(backup, "log", lambda config, entry: logged.append(entry))
    return config, instance, upload, commands, logged


@pytest.mark.skipif(not GNU_TAR, reason="GNU tar is what the servers run")
def test_load_stages_the_upload_moves_owners_into_the_range_swaps_the_volume_and_removes_the_upload(backup, loading):
    config, instance, upload, commands, logged = loading
    answer = backup.load_upload(config, inspect_loaded=True)
    assert answer["status"] == "success", answer
    assert answer["kind"] == "import" and answer["manifest"]["service"] == "radicale"
    assert answer["owners_moved"] == f"from range 0 to {1 << 30}"
    assert answer["inspected"]["volumes"]["data"] == {
        "collections/event.ics": hashlib.sha256(b"BEGIN:VCALENDAR").hexdigest()
    }  # the upload's files replaced what the new instance had written
    assert (instance / "volumes" / "data" / "collections" / "event.ics").read_bytes() == b"BEGIN:VCALENDAR"
    assert not (instance / "volumes" / "data" / "fresh.txt").exists()
    tar, shift, *service = commands
    assert tar[:2] == ["tar", "--extract"] and tar[tar.index("--directory") + 1] == str(instance / ".restore")
    assert shift == ["/usr/local/sbin/ruche-idmap", "shift", str(instance / ".restore" / "volumes"), "0",
                     str(1 << 30), "65536"]  # fmt: skip
    assert [c[:2] for c in service if c[0] == "systemctl"] == [["systemctl", "stop"], ["systemctl", "start"]]
    assert not (instance / ".restore").exists() and not upload.exists()
    assert logged == [{k: v for k, v in answer.items() if k not in ("manifest", "inspected")}]


def test_a_refused_upload_stops_nothing_changes_nothing_and_is_removed(backup, loading):
    config, instance, upload, commands, logged = loading
    tar_of(upload / "volumes.tar", [("volumes/data/x", "file", {"mode": 0o4755})])
    answer = backup.load_upload(config)
    assert answer["status"] == "failed" and answer["kind"] == "import"
    assert answer["error"] == "volumes.tar: member 'volumes/data/x': set-UID or set-GID bit; nothing was changed"
    assert [c[:2] for c in commands] == [["systemctl", "start"]]  # started again (a no-op), never stopped
    assert (instance / "volumes" / "data" / "fresh.txt").exists()
    assert not (instance / ".restore").exists() and not upload.exists() and logged[0]["status"] == "failed"


class _Clock:
    """time.monotonic and time.sleep of a fake clock (one bring_back loop: one second)."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _systemd(backup, monkeypatch, units: dict[str, dict]):
    """Fake systemctl and podman for bring_back: each unit {"state", "container", "job"} (container: running,
    stopped, absent or unknown); a start makes it active and running, a kill failed and its container gone (as
    systemd and podman do); gives the commands run, each with the fake clock's second."""
    ran, clock = [], _Clock()
    monkeypatch.setattr(backup, "time", clock)
    monkeypatch.setattr(backup, "pending_jobs", lambda: {u for u, s in units.items() if s.get("job")})
    monkeypatch.setattr(backup, "unit_state", lambda unit: units[unit]["state"])
    monkeypatch.setattr(backup, "container_state", lambda unit: units[unit]["container"])
    monkeypatch.setattr(backup, "journal", lambda unit: f"(last lines of {unit})")

    def systemctl(argv, **_):
        ran.append((round(clock.now), *argv[1:]))
        unit = units[argv[-1].removesuffix(".service")]
        if argv[1] == "start":
            unit.update(state="active", container="running")
        elif argv[1] == "kill":
            unit.update(state="failed", container="absent")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(backup, "run", systemctl)
    return ran


def test_after_a_failure_a_unit_left_active_without_its_container_is_killed_and_started_again(backup, monkeypatch):
    """systemd may miss a container's death (the unit stays active, its container gone): bring_back kills such a
    unit once it has stayed so STALLED_SECONDS (systemd restarts it as after any death, or it is started here), and
    starts at once a unit systemd left failed."""
    units = {"db": {"state": "active", "container": "absent"}, "app": {"state": "failed", "container": "stopped"}}
    ran = _systemd(backup, monkeypatch, units)
    started = backup.bring_back({"units": ["db", "app"]}, {"db": True, "app": True})
    assert sorted(started) == ["app", "db"]
    stalled = backup.STALLED_SECONDS
    assert ran == [
        (0, "reset-failed", "app.service"), (0, "start", "--no-block", "app.service"),
        (stalled, "kill", "--signal=SIGKILL", "db.service"),
        (stalled + 1, "reset-failed", "db.service"), (stalled + 1, "start", "--no-block", "db.service"),
    ]  # fmt: skip


def test_a_unit_whose_container_comes_back_or_whose_state_is_not_known_is_left_to_systemd(backup, monkeypatch):
    """A container stopped for less than STALLED_SECONDS (systemd about to see it), a unit with a job, on its way
    (activating) or whose container podman does not answer about: nothing is started or killed."""
    units = {
        "db": {"state": "active", "container": "stopped"},
        "app": {"state": "active", "container": "running", "job": True},
        "side": {"state": "activating", "container": "unknown"},
        "web": {"state": "active", "container": "unknown"},
    }
    ran = _systemd(backup, monkeypatch, units)
    clock = backup.time

    def sleep(seconds):
        clock.now += seconds
        if clock.now >= backup.STALLED_SECONDS - 2:  # all back just before the db would count as stalled
            for unit in units.values():
                unit.update(state="active", container="running", job=False)

    monkeypatch.setattr(clock, "sleep", sleep)
    assert backup.bring_back({"units": list(units)}, dict.fromkeys(units, True)) == [] and ran == []


def test_a_unit_that_does_not_come_back_is_named_with_what_it_lacks(backup, monkeypatch):
    units = {
        "db": {"state": "active", "container": "running"},
        "app": {"state": "active", "container": "running", "job": True},
    }
    _systemd(backup, monkeypatch, units)
    with pytest.raises(backup.Failure) as failed:
        backup.bring_back({"units": ["db", "app"]}, {"db": True, "app": True}, seconds=10)
    assert str(failed.value).startswith("app.service is active with a job pending 10 s after the failure")
    assert "(last lines of app)" in str(failed.value)
    units = {"db": {"state": "active", "container": "stopped"}}  # systemd never restarts it, podman never runs it
    ran = _systemd(backup, monkeypatch, units)

    def refusing(argv, **_):
        ran.append(argv[1])
        return subprocess.CompletedProcess(argv, 1, "", "Failed to kill unit db.service: Access denied")

    monkeypatch.setattr(backup, "run", refusing)
    with pytest.raises(backup.Failure) as failed:
        backup.bring_back({"units": ["db"]}, {"db": True}, seconds=300)
    assert ran == ["kill"] * backup.START_ATTEMPTS
    assert str(failed.value).startswith(
        "db.service is active but its container is stopped after 3 attempts to start it again (it was active "
        "before) (`systemctl kill` said: Failed to kill unit db.service: Access denied)"
    )


def test_the_wait_for_a_database_goes_on_while_podman_does_not_answer_and_ends_when_its_container_is_gone(
    tool, monkeypatch
):
    """wait_for_database ends at once with the container's last lines when it is stopped or gone, but a podman
    that does not answer (slow, locked) says nothing of the container: the wait goes on to its deadline."""
    clock = _Clock()
    monkeypatch.setattr(tool, "time", clock)
    monkeypatch.setattr(tool, "journal", lambda unit: f"(last lines of {unit})")
    monkeypatch.setattr(tool, "unit_state", lambda unit: "active")
    refused = subprocess.CompletedProcess([], 1, "", "connection refused")
    monkeypatch.setattr(tool, "in_container", lambda *args, **kwargs: refused)
    states = iter(["unknown", "unknown", "absent"])
    monkeypatch.setattr(tool, "container_state", lambda container: next(states))
    with pytest.raises(tool.Failure) as failed:
        tool.wait_for_database({}, "db", "postgresql", 60, unit=True)
    assert str(failed.value) == (
        "the database in db cannot answer: the container db is not running any more; its last lines:\n(last lines "
        "of db)"
    )
    assert clock.now == 4  # two tries of 2 s while podman did not answer, the third saw it gone
    monkeypatch.setattr(tool, "container_state", lambda container: "unknown")
    with pytest.raises(tool.Failure, match="did not answer within 10 s: connection refused"):
        tool.wait_for_database({}, "db", "postgresql", 10, unit=True)
