"""ruche_tools: the code ruche's server tools share (installed by ruche in /usr/local/lib/ruche).

ruche-backup (backups, restores, exports) and ruche-db-move (an upgrade's move to another major of the database
engine) import it: each finds it through a sys.path entry (LIBRARY), or beside itself when run from the project's
files (the tests). Here: an instance's settings (/etc/ruche/backup/ID.json, written by ruche's instance role),
commands run on the server and in the instance's containers, the database's dump, load, size, row counts and waits,
the room a step needs, units' states and journals, and a tool's command line: one function per command, given the
instance's settings, whose answer is printed as one JSON document (exit 0, or 1 when its "status" is "failed").
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

LIBRARY = "/usr/local/lib/ruche"  # where the ruche_server role installs this module
CONFIG_DIR = "/etc/ruche/backup"
IDENTIFIER = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*--[a-z0-9]+(-[a-z0-9]+)*$")

MIB = 1 << 20
ROOM_MARGIN = 64 * MIB  # beyond an estimate of the room a step needs: what the service itself writes meanwhile
ROOM_SHARE = 10  # percent of the estimate added to it (a dump may come out larger than the engine's figure)
DUMP_RESERVE = 32 * MIB  # a dump stops before the free room falls below this: the service keeps room to write
CHUNK = MIB  # a dump is copied to its file in blocks of this size, the free room read before each
DATABASE_WAIT_SECONDS = 180  # for a database to answer
JOURNAL_LINES = 15  # of a unit that failed, in a failure's message
DUMP_PID = "/tmp/ruche-dump.pid"  # in the database container: the running dump's process (to stop it)


class Failure(Exception):
    """A step failed; the message says which and why. ``details``: fields added to the JSON answer."""

    def __init__(self, message: str, **details) -> None:
        super().__init__(message)
        self.details = details


def load(identifier: str) -> dict:
    if not IDENTIFIER.match(identifier):
        raise Failure(f"not an instance identifier: {identifier!r}")
    path = os.path.join(CONFIG_DIR, identifier + ".json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise Failure(f"{path}: no backup configuration (is the instance deployed with backups enabled?)") from None


def run(
    argv: list[str],
    *,
    env: dict | None = None,
    stdin=None,
    stdout=None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            argv,
            env=env,
            stdin=stdin,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=stdout is None,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        if check:
            raise Failure(f"`{' '.join(argv[:4])} ...` did not end within {timeout:.0f} s") from None
        return subprocess.CompletedProcess(argv, 124, "" if stdout is None else b"", f"timed out after {timeout:.0f} s")
    if check and result.returncode != 0:
        error = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
        raise Failure(f"`{' '.join(argv[:4])} ...` exited {result.returncode}: {error.strip()[-1500:]}")
    return result


def in_container(config: dict, container: str, argv: list[str], *, user: str | None = None, **kwargs):
    prefix = ["podman", "exec", "-i"] + (["--user", user] if user else []) + [container]
    return run(prefix + argv, **kwargs)


def database_shell(engine: str, sql: str) -> list[str]:
    """A command run inside the database container, with the credentials of its own environment."""
    if engine == "postgresql":
        return [
            "sh",
            "-c",
            'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
            '-v ON_ERROR_STOP=1 -At -F "\t" -c "$0"',
            sql,
        ]
    return [
        "sh",
        "-c",
        'MYSQL_PWD="$MARIADB_PASSWORD" exec mariadb -u "$MARIADB_USER" -D "$MARIADB_DATABASE" -N -B -e "$0"',
        sql,
    ]


ROW_COUNTS = {
    "postgresql": (
        "select table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml(format("
        "'select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text "
        "from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') "
        "and table_type = 'BASE TABLE' order by 1"
    ),
}


def row_counts(config: dict) -> dict[str, int]:
    database = config["database"]
    if database["engine"] == "postgresql":
        output = in_container(
            config, database["container"], database_shell("postgresql", ROW_COUNTS["postgresql"])
        ).stdout
        return {table: int(count) for table, count in (line.split("\t") for line in output.splitlines() if line)}
    tables = in_container(
        config, database["container"], database_shell("mariadb", "show full tables where Table_type = 'BASE TABLE'")
    ).stdout
    counts = {}
    for line in tables.splitlines():
        table = line.split("\t")[0]
        if re.match(r"^[A-Za-z0-9_$]+$", table):
            counts[table] = int(
                in_container(
                    config, database["container"], database_shell("mariadb", f"select count(*) from `{table}`")
                ).stdout.strip()
            )
    return counts


def mib(size: int, *, up: bool = False) -> int:
    """``size`` bytes in MiB, rounded down (free room), or up (room needed)."""
    return -(-size // MIB) if up else size // MIB


def room_needed(size: int, copies: int = 1) -> int:
    """The room for ``copies`` times ``size`` bytes with a margin: ROOM_SHARE percent of it, plus ROOM_MARGIN."""
    wanted = copies * max(0, size)
    return wanted + wanted * ROOM_SHARE // 100 + ROOM_MARGIN


def room_message(what: str, needed: int, directory: str, free: int) -> str:
    return (
        f"{what} needs about {mib(needed, up=True)} MiB in {directory}, {mib(free)} MiB free: "
        "free some room or grow the disk"
    )


def free_room(path: str) -> int:
    """The bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    status = os.statvfs(path)
    return status.f_bavail * status.f_frsize


def check_room(what: str, needed: int, directory: str) -> None:
    """Raise Failure (nothing done yet) unless the filesystem of ``directory`` has ``needed`` bytes free."""
    free = free_room(directory)
    if free < needed:
        raise Failure(room_message(what, needed, directory, free) + " (nothing was stopped or changed)")


DATABASE_SIZE = {
    "postgresql": "select pg_database_size(current_database())",
    "mariadb": "select coalesce(sum(data_length + index_length), 0) from information_schema.tables "
    "where table_schema = database()",
}


def database_size(config: dict, container: str | None = None) -> int:
    """The instance's database's size in bytes, as its engine reports it (it must answer)."""
    engine = config["database"]["engine"]
    container = container or config["database"]["container"]
    answer = in_container(config, container, database_shell(engine, DATABASE_SIZE[engine]), timeout=60)
    text = answer.stdout.strip().split(".")[0]
    if not text.isdigit():
        raise Failure(f"the database in {container} gave no size: {answer.stdout.strip()[:200]!r}")
    return int(text)


def dump_command(engine: str, *, clean: bool) -> str:
    """The shell command that writes the engine's dump of the instance's database on standard output (run
    inside the database container, with the credentials of its own environment; ``clean``: with the DROP
    statements a restore into the existing database needs)."""
    if engine == "postgresql":
        return (
            'PGPASSWORD="$POSTGRES_PASSWORD" exec pg_dump -h 127.0.0.1 -U "$POSTGRES_USER" '
            + ("--clean --if-exists " if clean else "")
            + '--no-owner --no-privileges "$POSTGRES_DB"'
        )
    return 'MYSQL_PWD="$MARIADB_PASSWORD" exec mariadb-dump -u "$MARIADB_USER" --single-transaction "$MARIADB_DATABASE"'


def container_identity(container: str) -> tuple[str, bool] | None:
    """(id, running) of ``container``; None if there is none of that name."""
    found = run(
        ["podman", "container", "inspect", "--format", "{{.Id}} {{.State.Running}}", container],
        check=False,
        timeout=30,
    )
    fields = found.stdout.split() if found.returncode == 0 else []
    return (fields[0], fields[1] == "true") if len(fields) == 2 else None


def container_state(container: str) -> str:
    """ "running", "stopped" (it exists, not running), "absent" (no container of that name) or "unknown" (podman
    failed or did not answer: slow or locked, which says nothing of the container)."""
    found = run(
        ["podman", "container", "inspect", "--format", "{{.State.Running}}", container], check=False, timeout=30
    )
    if found.returncode == 0:
        return "running" if found.stdout.strip() == "true" else "stopped"
    return "absent" if "no such container" in (found.stderr or "").lower() else "unknown"


def copy_watching(read, write, free, reserve: int = DUMP_RESERVE) -> tuple[int, str | None]:
    """Copy blocks from ``read()`` (b"" at the end) with ``write(block)`` while ``free()`` (the room left) stays above
    ``reserve`` once the block is written; give (bytes written, None) at the end, or (bytes written, "full") as soon
    as the next block would leave less than ``reserve`` free, or the disk is full (ENOSPC)."""
    written = 0
    while True:
        block = read()
        if not block:
            return written, None
        if free() - len(block) < reserve:
            return written, "full"
        try:
            write(block)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                return written, "full"
            raise
        written += len(block)


def write_all(descriptor: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(descriptor, view) :]


def dump_failure(
    container: str,
    tool: str,
    code: int,
    problem: str | None,
    before: tuple[str, bool] | None,
    after: tuple[str, bool] | None,
    directory: str,
    written: int,
    free: int,
    error: str,
) -> str:
    """Why a dump failed, and what to do: the disk filled (``problem`` "full"), the database container stopped
    (``after``, its (id, running) now, is not ``before``'s running container), or the tool failed."""
    if problem == "full":
        return (
            f"the disk holding {directory} filled up during the database dump ({mib(written)} MiB written, "
            f"{mib(free)} MiB left): the dump was stopped and its partial file removed; free some room or grow the disk"
        )
    if before is not None and before[1] and (after is None or not after[1] or after[0] != before[0]):
        state = "is gone" if after is None else "was started again" if after[1] else "is stopped"
        return (
            f"the database container {container} stopped during the dump ({tool} exited {code}; the container "
            f"{state}): the partial dump was removed"
        )
    return f"the dump of the database in {container} failed ({tool} exited {code}): {error.strip()[-1500:]}"


def dump_database(config: dict, path: str, *, container: str | None = None, clean: bool = True) -> int:
    """Write the engine's dump of the instance's database into ``path``; give its size. The dump is copied to its
    file here, the free room read before each block: it stops before leaving less than DUMP_RESERVE free (the
    service keeps room to write). On any failure the partial file is removed at once and Failure says why (the
    disk filled, the database container stopped during the dump, or the tool's own error)."""
    engine = config["database"]["engine"]
    container = container or config["database"]["container"]
    tool = "pg_dump" if engine == "postgresql" else "mariadb-dump"
    directory = os.path.dirname(path)
    before = container_identity(container)
    script = "{ echo $$ > " + DUMP_PID + "; } 2>/dev/null; " + dump_command(engine, clean=clean)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written, problem, code = 0, None, None
    try:
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(
                ["podman", "exec", "-i", container, "sh", "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            try:
                source = process.stdout.fileno()
                written, problem = copy_watching(
                    lambda: os.read(source, CHUNK),
                    lambda block: write_all(descriptor, block),
                    lambda: free_room(directory),
                )
                if problem:  # stop the dump itself, not only this end of it
                    run(["podman", "exec", container, "sh", "-c", f'kill "$(cat {DUMP_PID})"'], check=False, timeout=30)
            finally:
                process.stdout.close()
                try:
                    code = process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    code = process.wait()
            errors.seek(0)
            error = errors.read().decode(errors="replace")
        os.close(descriptor)
        descriptor = None
        if problem or code != 0:
            free = free_room(directory)
            os.unlink(path)
            after = container_identity(container)
            raise Failure(dump_failure(container, tool, code, problem, before, after, directory, written, free, error))
    except BaseException:
        if descriptor is not None:
            os.close(descriptor)
        if os.path.exists(path):
            os.unlink(path)
        raise
    return written


def unit_state(unit: str) -> str:
    """The ActiveState of ``unit``.service (active, activating, deactivating, failed, inactive...)."""
    return run(["systemctl", "show", "-P", "ActiveState", unit + ".service"], check=False, timeout=30).stdout.strip()


def journal(unit: str) -> str:
    """The last JOURNAL_LINES lines of ``unit``.service (without the empty ones)."""
    output = run(
        ["journalctl", "-u", unit + ".service", "-n", str(JOURNAL_LINES), "--no-pager", "-o", "cat"],
        check=False,
        timeout=30,
    ).stdout
    return "\n".join(line for line in output.splitlines() if line.strip())


def wait_for_database(
    config: dict, container: str, engine: str, seconds: float = DATABASE_WAIT_SECONDS, *, unit: bool = False
) -> None:
    """Wait until the database in ``container`` answers, at most ``seconds`` (a wall-clock deadline, each try's own
    time included). The container is watched meanwhile (with ``unit``: it is its own systemd unit, watched too): a
    unit that failed, or a container that is not running any more, ends the wait at once with its last lines."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        probe = in_container(
            config, container, database_shell(engine, "select 1"), check=False, timeout=max(2.0, min(15.0, left))
        )
        if probe.returncode == 0:
            return
        stopped = None
        if unit and unit_state(container) == "failed":
            stopped = f"its unit {container}.service failed"
        elif container_state(container) in ("stopped", "absent"):  # "unknown" (podman slow) says nothing: wait on
            stopped = f"the container {container} is not running any more"
        if stopped:
            if unit:
                lines = journal(container)
            else:
                logs = run(["podman", "logs", "--tail", str(JOURNAL_LINES), container], check=False, timeout=30)
                lines = logs.stdout + logs.stderr
            raise Failure(f"the database in {container} cannot answer: {stopped}; its last lines:\n{lines.strip()}")
        if time.monotonic() >= deadline:
            raise Failure(
                f"the database in {container} did not answer within {seconds:.0f} s: {probe.stderr.strip()[-500:]}"
            )
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def load_command(engine: str) -> str:
    """The shell command that loads a dump given on its standard input into the instance's database (run inside the
    database container, with the credentials of its own environment; it stops at the first error)."""
    if engine == "postgresql":
        return (
            'PGPASSWORD="$POSTGRES_PASSWORD" exec psql -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
            "-v ON_ERROR_STOP=1"
        )
    return 'MYSQL_PWD="$MARIADB_PASSWORD" exec mariadb -u "$MARIADB_USER" "$MARIADB_DATABASE"'


def load_dump(config: dict, container: str, engine: str, dump: str) -> None:
    """Load the dump file ``dump`` into the database of ``container`` (Failure with the client's error)."""
    with open(dump, "rb") as handle:
        in_container(config, container, ["sh", "-c", load_command(engine)], stdin=handle, stdout=subprocess.DEVNULL)


Command = Callable[[dict, argparse.Namespace], object]


def tool_parser(prog: str, doc: str, commands: dict[str, Command]) -> argparse.ArgumentParser:
    """A tool's command line: COMMAND (one of ``commands``) and the instance's ID; the tool adds its options."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("command", choices=list(commands))
    parser.add_argument("identifier")
    return parser


LOCK_DIR = "/run/ruche"


class instance_lock:  # noqa: N801 - used as a context manager, like open()
    """The instance's exclusive lock, waited for (another command on the instance finishes first)."""

    def __init__(self, identifier: str) -> None:
        if not IDENTIFIER.match(identifier):
            raise Failure(f"not an instance identifier: {identifier!r}")
        self.path = os.path.join(LOCK_DIR, f"{identifier}.lock")

    def __enter__(self) -> instance_lock:
        import fcntl

        os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
        self.handle = open(self.path, "a")  # noqa: SIM115 - held until __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc) -> None:
        self.handle.close()  # releases the lock


def serve(parser: argparse.ArgumentParser, commands: dict[str, Command], argv: list[str] | None = None, *,
          exclusive: frozenset[str] = frozenset()) -> int:  # fmt: skip
    """Run the command the command line names: its function in ``commands``, given the instance's settings and the
    parsed arguments; print its answer (or a Failure's: ``{"status": "failed", "error": ...}`` and its details) as one
    JSON document; give the exit code: 1 when the answer's status is "failed", else 0.

    A command of ``exclusive`` (one that quiesces, dumps, stops or fills the instance: backup, export, restore,
    load, a database move) holds the instance's lock (flock on /run/ruche/ID.lock) while it runs: a member's export
    and the nightly backup, or a retried export and the first one still running, take turns instead of writing one
    dump directory at once."""
    arguments = parser.parse_args(argv)
    try:
        config = load(arguments.identifier)
        if arguments.command in exclusive:
            with instance_lock(arguments.identifier):
                result = commands[arguments.command](config, arguments)
        else:
            result = commands[arguments.command](config, arguments)
    except Failure as error:
        result = {**error.details, "status": "failed", "error": str(error)}
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if isinstance(result, dict) and result.get("status") == "failed" else 0
