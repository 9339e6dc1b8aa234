"""A bundle's data unpacked on the control machine, one directory per instance, as `ruche-backup load` reads it on
the instance's server (manifest.json, database.sql, volumes.tar), and checked as it streams by: the bundle comes
from another collective, trusted by its key but not to run anything here.

- volumes.tar: only directories, regular files and symbolic links, under ``volumes/VOLUME/`` for a volume the
  catalogue's entry has; no ``.``, ``..`` or empty part, nothing below a symbolic link (a link then a file through
  it), owners inside one ID range (0..65535, the containers' view); set-id bits cleared and extended headers
  dropped in the copy made here (the server extracts that copy, never the bundle's own);
- database.sql: loaded by the engine's client on the server, so no client command may hide in it: outside COPY's
  data, no line starting with a backslash (psql's ``\\!``, ``\\o |cmd``, ``\\copy ... program``) but pg_dump's own
  ``\\restrict``/``\\unrestrict``, no ``COPY ... TO/FROM PROGRAM``; for MariaDB, no ``\\`` line and no ``system``;
- manifest.json: JSON of the shape the comparison after the load reads (volumes' checksums, owners, tables).

Every problem is collected, the whole bundle read (read_members checks each member against the signed manifest),
then given to the caller, which refuses the bundle with all of them: nothing is recorded before.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import BinaryIO

from orchestrator.bundles import BoundedTarInfo, VerifiedBundle, read_members
from orchestrator.idranges import RANGE_SIZE

SET_ID_BITS = 0o6000
BLOCK = 1 << 20
MANIFEST_LIMIT = 64 << 20  # an instance's data manifest: its files' checksums (a large wiki: tens of MiB at most)
ALLOWED_PSQL = (b"\\restrict ", b"\\unrestrict ", b"\\.")  # pg_dump >= 17.6 frames its dumps with these
PROGRAM = re.compile(rb"\b(TO|FROM)\s+PROGRAM\b", re.IGNORECASE)
COPY_FROM_STDIN = re.compile(rb"^COPY\s.*\sFROM\s+stdin;\s*$", re.IGNORECASE)
MARIADB_SYSTEM = re.compile(rb"^\s*system\s", re.IGNORECASE)


def stage_bundle(path: Path, verified: VerifiedBundle, scratch: Path,
                 volumes_of: dict[str, set[str]]) -> tuple[dict[str, Path], list[str]]:  # fmt: skip
    """Write each instance's files under ``scratch/NAME/``; give (each instance's directory, the problems found).

    ``volumes_of``: each instance's volume names in this catalogue. Files of an instance directory that `load` does
    not read are skipped (a later ruche may add some)."""
    directories: dict[str, Path] = {}
    problems: list[str] = []
    engines = {i.name: i.database for i in verified.manifest.instances}
    for name, content in read_members(path, verified):
        _, instance, member = name.split("/", 2)
        directory = directories.setdefault(instance, scratch / instance)
        directory.mkdir(mode=0o700, exist_ok=True)
        if member == "volumes.tar":
            problems += checked_volumes(content, directory / member, instance, volumes_of.get(instance, set()))
        elif member == "database.sql":
            problems += checked_dump(content, directory / member, instance, engines.get(instance))
        elif member == "manifest.json":
            problems += checked_manifest(content, directory / member, instance)
    return directories, problems


def checked_volumes(content: BinaryIO, destination: Path, instance: str, volumes: set[str]) -> list[str]:
    """Copy volumes.tar to ``destination`` member by member, checked (see the module); give the problems."""
    problems: list[str] = []
    links: set[str] = set()
    try:
        with (
            tarfile.open(fileobj=content, mode="r|", tarinfo=BoundedTarInfo) as source,
            tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as checked,
        ):
            for member in source:
                source.members.clear()  # tarfile keeps every member read otherwise, even in a stream
                problem = _volume_member_problem(member, volumes, links)
                if problem:
                    problems.append(f"{instance}: volumes.tar: {member.name!r} {problem}")
                    continue
                if member.issym():
                    links.add(member.name.rstrip("/"))
                member.mode &= ~SET_ID_BITS
                member.pax_headers = {}
                member.uname = member.gname = ""
                checked.addfile(member, source.extractfile(member) if member.isfile() else None)
    except (tarfile.TarError, EOFError, OSError) as error:
        problems.append(f"{instance}: volumes.tar cannot be read as a tar ({error})")
    return problems[:20]


def _volume_member_problem(member: tarfile.TarInfo, volumes: set[str], links: set[str]) -> str | None:
    parts = member.name.rstrip("/").split("/")
    if member.name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "is not a plain relative path"
    if parts[0] != "volumes" or (len(parts) > 1 and parts[1] not in volumes):
        return f"is not under volumes/ and one of the service's volumes ({', '.join(sorted(volumes)) or 'none'})"
    if not (member.isdir() or member.isfile() or member.issym()):
        return "is neither a directory, a regular file nor a symbolic link"
    if any("/".join(parts[:end]) in links for end in range(1, len(parts))):
        return "lies below a symbolic link"
    if not (0 <= member.uid < RANGE_SIZE and 0 <= member.gid < RANGE_SIZE):
        return f"has owner {member.uid}:{member.gid}, outside one ID range (0..{RANGE_SIZE - 1})"
    return None


def checked_dump(content: BinaryIO, destination: Path, instance: str, engine: str | None) -> list[str]:
    """Copy database.sql to ``destination``, each line's start checked for the engine's client commands."""
    problems: list[str] = []
    in_copy, at_start, number = False, True, 0
    with destination.open("wb") as handle:
        while True:
            chunk = content.readline(BLOCK)
            if not chunk:
                break
            handle.write(chunk)
            if at_start:
                number += 1
                problem, in_copy = _dump_line_problem(chunk, engine, in_copy)
                if problem and len(problems) < 5:
                    problems.append(f"{instance}: database.sql line {number}: {problem}")
            at_start = chunk.endswith(b"\n")
    return problems


def _dump_line_problem(line: bytes, engine: str | None, in_copy: bool) -> tuple[str | None, bool]:
    """(What is wrong with a dump line, whether COPY's data follows it)."""
    if engine == "postgresql":
        if in_copy:
            return None, line.rstrip(b"\r\n") != b"\\."
        if line.startswith(b"\\") and not line.startswith(ALLOWED_PSQL):
            return "a psql command (a line starting with a backslash) outside COPY's data", False
        if PROGRAM.search(line):
            return "COPY ... PROGRAM (it would run a command on the database server)", False
        return None, bool(COPY_FROM_STDIN.match(line.rstrip(b"\r\n")))
    if line.startswith(b"\\") or MARIADB_SYSTEM.match(line):
        return "a client command (a line starting with a backslash, or 'system')", False
    return None, False


def checked_manifest(content: BinaryIO, destination: Path, instance: str) -> list[str]:
    """Copy the instance's data manifest, checked to be of the shape the comparison after the load reads."""
    data = content.read(MANIFEST_LIMIT + 1)
    if len(data) > MANIFEST_LIMIT:
        return [f"{instance}: manifest.json is larger than {MANIFEST_LIMIT >> 20} MiB"]
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return [f"{instance}: manifest.json is not JSON"]
    problem = _manifest_shape_problem(document)
    if problem:
        return [f"{instance}: manifest.json: {problem}"]
    destination.write_bytes(data)
    return []


def _manifest_shape_problem(document: object) -> str | None:
    if not isinstance(document, dict):
        return "not a JSON object"
    for key in ("volumes", "owners"):
        value = document.get(key) or {}
        if not isinstance(value, dict) or not all(
            isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
            for files in value.values()
        ):
            return f"'{key}' is not an object of volumes to objects of paths to text"
    database = document.get("database")
    if database is not None:
        tables = database.get("tables") if isinstance(database, dict) else None
        if not isinstance(tables, dict | None) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in (tables or {}).items()
        ):
            return "'database.tables' is not an object of tables to row counts"
    return None
