"""ruche-backup's pure pieces (the server's backup tool): the room a step needs and the messages that say it, the
dump's copy that stops before the disk is full, why a dump failed, a data directory put back after a failed move."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from tests.unit.test_idranges import load_script

pytestmark = pytest.mark.unit
MIB = 1 << 20


@pytest.fixture(scope="module")
def tool():
    return load_script("ruche-backup")


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


def test_a_failed_move_puts_the_kept_directory_back_and_doing_it_again_does_nothing(tool, tmp_path):
    kept = tmp_path / tool.KEPT_DATABASE
    kept.mkdir()
    (kept / "PG_VERSION").write_text("15\n")
    inode = kept.stat().st_ino
    (tmp_path / "database").mkdir()  # the new, half-initialised directory
    (tmp_path / "database" / "PG_VERSION").write_text("17\n")
    (tmp_path / tool.MOVE_DIR).mkdir()
    (tmp_path / tool.MOVE_DIR / "database.sql").write_text("-- dump")
    assert tool.put_back_kept(str(tmp_path)) is True
    assert (tmp_path / "database" / "PG_VERSION").read_text() == "15\n"
    assert (tmp_path / "database").stat().st_ino == inode  # renamed, not copied: owners and modes as they were
    assert not kept.exists() and not (tmp_path / tool.MOVE_DIR).exists()
    assert tool.put_back_kept(str(tmp_path)) is False
    assert (tmp_path / "database" / "PG_VERSION").read_text() == "15\n"


def test_disk_usage_counts_the_blocks_of_a_tree(tool, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 100_000)
    assert 100_000 <= tool.disk_usage(str(tmp_path)) < 200_000
    assert tool.disk_usage(str(tmp_path / "missing")) == 0
