"""``ruche export``: an association's data in standard formats, readable without ruche (CHATONS charter)."""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.errors import InvalidInput, OperationFailed
from orchestrator.operations.backup_jobs import require_backups
from orchestrator.operations.server_exports import fetch_export, file_sha256
from orchestrator.remote import SshTarget
from orchestrator.state.associations import get_association
from orchestrator.state.instances import list_instances
from orchestrator.state.models import utc_now

README = """Export of {name} ({slug}) made by {collective} on {created}.

One directory per service instance:
  NAME/dump/database.sql   the database, as plain SQL from pg_dump or mariadb-dump (if the service has one)
  NAME/dump/manifest.json  what the instance held: files with their SHA-256, tables with their row counts
  NAME/volumes/...         the service's files, as the service stored them
manifest.json (here) lists every instance with its service, version and the SHA-256 of every file
of this archive. Check them with: sha256sum -c SHA256SUMS
"""


def export_association(workspace_path: Path | None, slug: str, output: Path, *,
                       progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Write ``output`` (a .tar.gz) with each running instance's dump, files and a manifest; give a summary.

    Raises NotFound, InvalidInput (nothing to export, or ``output`` exists), MissingPrerequisite
    (backups not configured: the servers' export tool shares their settings) or OperationFailed.
    """
    output = output.expanduser().resolve()
    if output.exists():
        raise InvalidInput(f"{output} exists already", hint="choose another --output, or remove it")
    with opened(workspace_path) as (workspace, store), store.session() as session:
        require_backups(workspace)
        association = get_association(session, slug)
        instances = [i for i in list_instances(session, association=slug) if i.state == "running"]
        if not instances:
            raise InvalidInput(f"{slug} has no running instance to export")
        plan = [(i.name, i.service_id, i.service_version, i.identifier, SshTarget.of(i.server)) for i in instances]
        header = {"association": slug, "name": association.name, "collective": workspace.config.collective}
    created = utc_now().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ruche-export-") as scratch:
        root = Path(scratch) / f"{slug}-export"
        root.mkdir()
        entries = []
        for name, service, version, identifier, target in plan:
            progress(f"{slug}/{name}: dumping on {target.name}")
            local_tar = Path(scratch) / f"{identifier}.tar"
            fetch_export(target, identifier, local_tar, what=f"{slug}/{name}")
            with tarfile.open(local_tar) as archive:
                extract_data(archive, root / name)
            local_tar.unlink()
            entries.append({"name": name, "service": service, "version": version})
        (root / "README.txt").write_text(
            README.format(created=created, slug=slug, **{k: header[k] for k in ("name", "collective")})
        )
        files = {str(p.relative_to(root)): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}
        manifest = {**header, "created_at": created, "instances": entries, "files": files}
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        (root / "SHA256SUMS").write_text("".join(f"{digest}  {path}\n" for path, digest in files.items()))
        partial = output.with_name(output.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as archive:
            archive.add(root, arcname=root.name)
        partial.rename(output)
    return {"output": str(output), "size": output.stat().st_size, "instances": entries, "files": len(files),
            "sha256": file_sha256(output)}  # fmt: skip


def extract_data(archive: tarfile.TarFile, destination: Path) -> None:
    """Extract ``archive`` under ``destination`` as tarfile's "data" filter does: nothing outside it (absolute
    names, "..", links leading out), no device or FIFO, no owner or set-id bits kept. Debian 12's Python 3.11.2
    predates ``extractall(filter=...)`` (3.11.4), so the same checks are made here when it is missing."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(destination, filter="data")
        return
    root = destination.resolve()
    members = []
    for member in archive.getmembers():
        target = (root / member.name).resolve()
        if member.name.startswith("/") or not target.is_relative_to(root):
            raise OperationFailed(f"the archive names {member.name!r}, outside its directory")
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else root
            if member.linkname.startswith("/") or not (base / member.linkname).resolve().is_relative_to(root):
                raise OperationFailed(f"the archive's link {member.name!r} leads outside its directory")
        elif not (member.isfile() or member.isdir()):
            raise OperationFailed(f"the archive holds {member.name!r}, neither a file nor a directory")
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        member.mode &= 0o755 if member.isdir() else 0o644
        members.append(member)
    archive.extractall(destination, members=members)
