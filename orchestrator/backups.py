"""Backups: where each association's restic repository is, and what servers need to reach it.

One restic repository per association (``REPOSITORY/ASSOCIATION``), encrypted with the
association's own random password: an association's snapshots can be handed over, moved or
erased without touching anyone else's; restoring onto another server needs nothing from the
old one; retention follows the association's offer. Servers run restic themselves
(``ruche-backup``, installed by the ruche_server role); ruche reads their JSON results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.config import BackupSettings
from orchestrator.inventory import Unsafe

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
