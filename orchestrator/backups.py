"""Backups: where each association's restic repository is, and what servers need to reach it.

One restic repository per association (``REPOSITORY/ASSOCIATION``), encrypted with the
association's own random password: an association's snapshots can be handed over, moved or
erased without touching anyone else's; restoring onto another server needs nothing from the
old one; retention follows the association's offer. Servers run restic themselves
(``ruche-backup``, installed by the ruche_server role, as is ``ruche-db-move`` for an upgrade's database
moves); ruche reads their JSON results.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.config import BackupSettings
from orchestrator.errors import OperationFailed
from orchestrator.inventory import Unsafe

if TYPE_CHECKING:  # Fabric and paramiko load only when a backup tool runs (not for an inventory export)
    from orchestrator.remote import SshTarget

SFTP = re.compile(r"^sftp:(?P<user>[^@]+)@(?P<host>[^:]+):(?P<path>/.*)$")
BACKUP_CONFIG_DIR = "/etc/ruche/backup"


@dataclass(frozen=True)
class SftpTarget:
    user: str
    host: str
    path: str


def sftp_target(settings: BackupSettings) -> SftpTarget | None:
    """Give the SFTP account of the repository setting, or None for a local path or S3."""
    match = SFTP.match(settings.repository or "")
    return SftpTarget(**match.groupdict()) if match else None


def repository_of(settings: BackupSettings, association: str) -> str:
    """Give the restic repository of ``association``; raises ValueError when backups are not configured."""
    if settings.repository is None:
        raise ValueError("no backup repository configured")
    return f"{settings.repository}/{association}"


def backup_variables(settings: BackupSettings) -> dict:
    """Give the fleet variables of the roles for ``settings`` (empty repository: backups off)."""
    target = sftp_target(settings)
    managed = settings.managed_server if target is not None else None
    sftp_args = ""
    if target is not None:
        checking = "yes" if managed else "accept-new"  # a managed target's host key is pinned by the role
        sftp_args = (
            f"-i {BACKUP_CONFIG_DIR}/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile={BACKUP_CONFIG_DIR}/known_hosts "
            f"-o StrictHostKeyChecking={checking} -o BatchMode=yes -o ServerAliveInterval=15"
        )
    return {
        "ruche_backup_repository": Unsafe(settings.repository or ""),
        "ruche_backup_sftp_user": Unsafe(target.user if target else ""),
        "ruche_backup_sftp_host": Unsafe(target.host if target else ""),
        "ruche_backup_sftp_path": Unsafe(target.path if target else ""),
        "ruche_backup_sftp_args": Unsafe(sftp_args),
        "ruche_backup_managed_server": Unsafe(managed or ""),
        "ruche_backup_schedule": Unsafe(settings.schedule),
        "ruche_backup_s3_credentials_file": Unsafe(settings.s3_credentials_file or ""),
    }


BACKUP_TOOL = "/usr/local/sbin/ruche-backup"
DB_MOVE_TOOL = "/usr/local/sbin/ruche-db-move"  # an upgrade's database moves: move, back, done (all detached)
# Commands that change an instance or its repository, or may take long: they run as a transient systemd unit,
# polled (remote.run_detached), so that a lost SSH connection neither stops them half-way nor loses their answer.
# The others (init, snapshots, log, inspect, manifest) are short and read-only or idempotent: one SSH command.
DETACHED_COMMANDS = frozenset({"backup", "restore", "export", "forget", "check", "load"})


def operation_unit(command: str, identifier: str) -> str:
    """Give the name of a new transient unit running ``command`` for instance ``identifier``:
    ``ruche-op-IDENTIFIER_COMMAND_RANDOM``. Identifiers and commands hold no ``_`` (a-z, 0-9, dashes), so
    ``ruche-op-IDENTIFIER_*`` (:data:`OPERATION_UNITS_OF`) names this instance's operations and no other's
    (``amap--agenda-2``'s units do not start with ``ruche-op-amap--agenda_``)."""
    identifier, command = (re.sub(r"[^a-z0-9-]+", "-", part.lower()) for part in (identifier, command))
    return f"ruche-op-{identifier}_{command}_{secrets.token_hex(3)}"


def operation_units_of(identifier: str) -> str:
    """The systemd unit pattern of instance ``identifier``'s server operations (see :func:`operation_unit`)."""
    return f"ruche-op-{re.sub(r'[^a-z0-9-]+', '-', identifier.lower())}_*"


def backup_tool(target: SshTarget, command: str, identifier: str, *options: str, timeout: float = 3600):
    """Run ``ruche-backup COMMAND IDENTIFIER OPTIONS`` on ``target``; give its JSON answer.

    The tool answers JSON even when it fails (``{"status": "failed", "error": ...}``). DETACHED_COMMANDS run as a
    transient unit that survives a cut of the SSH connection (``remote.run_detached``). Raises OperationFailed
    when the server cannot be reached or the answer is not JSON, TimedOut past ``timeout`` seconds.
    """
    unit = command if command in DETACHED_COMMANDS else None
    return _server_tool(target, BACKUP_TOOL, command, identifier, options, unit=unit, timeout=timeout)


def db_move_tool(target: SshTarget, command: str, identifier: str, *options: str, timeout: float = 3600):
    """Run ``ruche-db-move COMMAND IDENTIFIER OPTIONS`` on ``target`` (``move --image IMAGE``, ``back``, ``done``);
    give its JSON answer, as ``backup_tool`` does. Every command runs detached, as unit ``ruche-op-ID_db-move_...``
    (``move``), ``..._db-move-back_...`` or ``..._db-move-done_...``: an upgrade's recovery waits for ``ruche-op-ID_*``."""
    unit = "db-move" if command == "move" else f"db-move-{command}"
    return _server_tool(target, DB_MOVE_TOOL, command, identifier, options, unit=unit, timeout=timeout)


def _server_tool(
    target: SshTarget, tool: str, command: str, identifier: str, options: tuple, *, unit: str | None, timeout: float
):
    """Run server tool ``tool`` (a path) with ``command identifier options``; detached as a transient unit named
    after ``unit`` (see ``operation_unit``), or as one SSH command when ``unit`` is None; give its JSON answer."""
    from orchestrator.remote import run_detached, run_tool

    argv = [tool, command, identifier, *options]
    name = tool.rsplit("/", 1)[-1]
    converge = f"is the server converged with backups configured? (`ruche apply --server {target.name}`)"
    if unit is not None:
        unit = operation_unit(unit, identifier)
        output, errors = run_detached(target, argv, unit=unit, timeout=timeout)
        ended = f"ran as unit {unit} and ended without a JSON answer" + (
            f": {errors.strip()[-1500:]}" if errors.strip() else ""
        )
        hint = f"`journalctl -u {unit}` on {target.name} says how it ended; {converge}"
    else:
        code, output = run_tool(target, argv, timeout=timeout)
        ended, hint = f"exited {code} without a JSON answer", converge
    try:
        return json.loads((output or "").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise OperationFailed(f"{target.name}: {name} {command} {identifier} {ended}", hint=hint) from None


def compare_with_manifest(manifest: dict, current: dict, volatile_tables: tuple[str, ...] = ()) -> list[str]:
    """Give the differences between a snapshot's manifest and what a restored instance holds (empty: equal).

    ``volatile_tables``: tables the service fills by itself (caches, job queues), whose row counts are not compared.
    """
    problems = []
    for volume, files in (manifest.get("volumes") or {}).items():
        restored = (current.get("volumes") or {}).get(volume, {})
        missing = sorted(set(files) - set(restored))
        changed = sorted(path for path in set(files) & set(restored) if files[path] != restored[path])
        extra = sorted(set(restored) - set(files))
        problems += [f"{volume}/{path}: missing" for path in missing[:20]]
        problems += [f"{volume}/{path}: checksum differs" for path in changed[:20]]
        problems += [f"{volume}/{path}: not in the snapshot" for path in extra[:20]]
    for volume, expected in (manifest.get("owners") or {}).items():  # as the containers see them (UID:GID in the range)
        restored = ((current.get("owners") or {}).get(volume)) or {}
        moved = sorted(path for path in set(expected) & set(restored) if expected[path] != restored[path])
        problems += [
            f"{volume}/{path}: owner {restored[path]}, {expected[path]} in the snapshot" for path in moved[:20]
        ]
    expected_tables = ((manifest.get("database") or {}).get("tables")) or {}
    restored_tables = ((current.get("database") or {}).get("tables")) or {}
    for table in sorted((set(expected_tables) | set(restored_tables)) - set(volatile_tables)):
        if expected_tables.get(table) != restored_tables.get(table):
            problems.append(
                f"table {table}: {expected_tables.get(table)} rows in the snapshot, {restored_tables.get(table)} restored"
            )
    return problems
