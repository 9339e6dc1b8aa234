"""A member's export of their association's data, the files' side (issue 27): written by the worker as the
association's signed bundle (operations/bundle_export.write_bundle, never with application secrets: a member's
download is not sealed for anyone) into WORKSPACE/exports/ (mode 0700, files 0600, random names), opened for its
one download, deleted after it or once expired. The records are state/exports.py's.

Who deletes what: the download's background task deletes the file it streamed (web/routes/member_export.py);
:func:`purge` marks the ready exports whose day is over expired and deletes every file under exports/ that no queued
or ready export owns (expired, downloaded, failed, or of an association since removed). It runs when a member's
space is shown, when an expired link is opened, before each export the worker prepares, and once a minute in every
worker's loop (actions/worker.py).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from orchestrator.operations.bundle_export import write_bundle
from orchestrator.state.database import StateStore
from orchestrator.state.exports import EXPORTS_DIR, expire_due, mark_failed, mark_ready
from orchestrator.state.models import MemberExport
from orchestrator.workspace import Workspace

# the only paths an export's row may name (state/exports.request_export makes them): nothing else is ever opened
PATH = re.compile(rf"^{EXPORTS_DIR}/[0-9a-f]{{32}}\.tar\.gz$")
# write_bundle's scratch directory (.ruche-bundle-*) has no owner to look up: removed once surely abandoned
SCRATCH_AGE_SECONDS = 2 * 86400


def exports_dir(workspace: Workspace) -> Path:
    """WORKSPACE/exports, made if missing, readable by ruche's user alone."""
    directory = workspace.root / EXPORTS_DIR
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    return directory


def file_of(workspace: Workspace, export: MemberExport) -> Path | None:
    """The export's file, if its recorded path is one ruche makes; else None."""
    return workspace.root / export.path if PATH.fullmatch(export.path or "") else None


def prepare_export(workspace: Workspace, store: StateStore, export_id: object, *, run_id: int | None = None,
                   progress: Callable[[str], None] = lambda _m: None) -> tuple[bool, dict]:  # fmt: skip
    """The worker's run of kind ``export``: the association's bundle written to the export's file, then the export
    marked ready (:func:`record_ready`), or failed with the error (for the admins). Gives (succeeded, summary)."""
    with store.session() as session:
        keep = expire_due(session)
        export = session.get(MemberExport, export_id) if isinstance(export_id, int) else None
        found = (export.status, export.association.slug, file_of(workspace, export)) if export else None
        if export is not None and export.queued_run_id is not None and export.queued_run_id != run_id:
            found = None  # another run's export (a reused id, or a run handed to another worker): never two writers
    _delete_unowned(workspace, keep)
    if found is None or found[0] != "queued" or found[2] is None:
        return False, {"status": "skipped", "export": export_id, "error": "no such export queued"}
    _status, slug, target = found
    exports_dir(workspace)
    for leftover in (target, target.with_name(target.name + ".partial")):  # an interrupted attempt's, retried
        leftover.unlink(missing_ok=True)
    try:
        written = write_bundle(workspace, store, slug, target, recipient=None, progress=progress)
    except Exception as error:  # noqa: BLE001 - any failure is the export's: recorded, the member told it failed
        with store.session() as session:
            mark_failed(session, export_id, str(error))
        return False, {"status": "failed", "export": export_id, "error": str(error)}
    return record_ready(workspace, store, export_id, written)


def record_ready(workspace: Workspace, store: StateStore, export_id: int, written: dict) -> tuple[bool, dict]:
    """Once write_bundle wrote the export's file (``written``: its summary, with size and sha256): the file checked
    there and made 0600, the export ready for a day. Gives (succeeded, summary); a file nobody waits for any more
    (the export no longer queued) is deleted."""
    with store.session() as session:
        export = session.get(MemberExport, export_id)
        path = file_of(workspace, export) if export is not None else None
        if path is None or not path.is_file() or path.stat().st_size != written.get("size"):
            mark_failed(session, export_id, f"the written file is missing or not of {written.get('size')} bytes")
            return False, {"status": "failed", "export": export_id, "error": "the written file is missing"}
        path.chmod(0o600)
        if mark_ready(session, export_id, size=written["size"], sha256=written["sha256"]) is None:
            path.unlink(missing_ok=True)
            return False, {"status": "skipped", "export": export_id, "error": "the export is no longer queued"}
    return True, {"status": "ready", "export": export_id, "size": written["size"], "sha256": written["sha256"]}


def purge(workspace: Workspace, session: Session) -> list[str]:
    """Due exports marked expired (in ``session``), then every file under exports/ no queued or ready export owns
    deleted; give the names deleted."""
    return _delete_unowned(workspace, expire_due(session))


def purge_now(workspace: Workspace, store: StateStore) -> list[str]:
    """:func:`purge` in a session of its own (the worker's pass)."""
    with store.session() as session:
        keep = expire_due(session)
    return _delete_unowned(workspace, keep)


def _delete_unowned(workspace: Workspace, keep: list[str]) -> list[str]:
    directory = workspace.root / EXPORTS_DIR
    if not directory.is_dir():
        return []
    kept = {Path(path).name for path in keep}
    removed = []
    for entry in sorted(directory.iterdir()):
        name = entry.name.removesuffix(".partial")
        ours = PATH.fullmatch(f"{EXPORTS_DIR}/{name}") or entry.name.startswith(".ruche-bundle-")
        if name in kept or not ours:  # a file an admin put there (e.g. `association export -o exports/...`) stays
            continue
        if entry.is_dir() and not entry.is_symlink():
            if time.time() - entry.stat().st_mtime > SCRATCH_AGE_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def open_for_download(workspace: Workspace, export: MemberExport) -> BinaryIO | None:
    """The export's file opened for reading (before it is marked downloaded: a purge may then delete its name, the
    open file stays readable), or None when it is not there any more."""
    path = file_of(workspace, export)
    try:
        return path.open("rb") if path is not None else None
    except FileNotFoundError:
        return None


def delete_after_download(handle: BinaryIO, path: Path) -> None:
    """The download's background task, once the file was streamed (or the client left): closed and deleted."""
    handle.close()
    path.unlink(missing_ok=True)
