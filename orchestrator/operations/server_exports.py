"""An instance's export fetched from its server: ``ruche-backup export`` quiesces the service, writes one tar (its
database dump, data manifest and volumes) under the server's /var/tmp and answers its path, size and SHA-256; the
tar is copied here, removed there (also when the copy fails: an association's data never stays behind), and its
SHA-256 compared with the server's. Used by the plain data export (`ruche export`) and by the signed bundle
(`ruche association export`, a member's download)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from orchestrator.backups import backup_tool
from orchestrator.errors import OperationFailed, RucheError
from orchestrator.remote import SshTarget, get_file, run_command

BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_export(target: SshTarget, identifier: str, local: Path, *, what: str) -> dict:
    """Export instance ``identifier`` on ``target`` and copy the archive to ``local``; give the server's answer
    (path, size, sha256, manifest). ``what`` names the instance in errors. Raises OperationFailed when the export
    fails, the copy fails (the server's copy is removed all the same) or the copy differs from the server's."""
    answer = backup_tool(target, "export", identifier, timeout=3600)
    if answer.get("status") != "success":
        raise OperationFailed(f"{what}: export failed on {target.name}: {answer.get('error')}")
    try:
        get_file(target, answer["path"], str(local), remove=True)
    except OperationFailed as failed:
        local.unlink(missing_ok=True)
        try:
            run_command(target, ["rm", "-f", answer["path"]])
        except RucheError:
            raise OperationFailed(
                f"{what}: {failed}; the server's archive {answer['path']} could not be removed either",
                hint=f"remove it on {target.name}: `rm -f {answer['path']}` (it holds the association's data)",
            ) from failed
        raise
    if file_sha256(local) != answer["sha256"]:
        local.unlink(missing_ok=True)
        raise OperationFailed(f"{what}: the archive copied differs from the server's (checksum)")
    return answer
