"""``ruche report``: the collective's transparency report, from the state (see reports/transparency.py); with
``--chatonsinfos DIR``, its ChatonsInfos files instead (reports/chatonsinfos.py)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.catalog import load_catalog
from orchestrator.errors import InvalidInput
from orchestrator.i18n import LANGUAGES
from orchestrator.reports import chatonsinfos
from orchestrator.reports.transparency import FORMATS, figures, gather, render


def transparency_report(workspace_path: Path | None, *, language: str = "fr", format: str = "md", days: int = 30,
                        output: Path | None = None, now: datetime | None = None) -> dict:  # fmt: skip
    """Give the report's text and its figures (``report``), as of ``now`` (default: the current time), and
    write the text to ``output`` when given, replacing the file whole."""
    if language not in LANGUAGES:
        raise InvalidInput(f"--lang {language!r}: one of {', '.join(LANGUAGES)}")
    if format not in FORMATS:
        raise InvalidInput(f"--format {format!r}: one of {', '.join(FORMATS)}")
    if not 1 <= days <= 3660:
        raise InvalidInput(f"--days {days}: between 1 and 3660")
    with opened(workspace_path) as (workspace, store), store.session() as session:
        report = gather(session, workspace.config, load_catalog(workspace.catalog_dir), days=days, language=language,
                        now=now)  # fmt: skip
    text = render(report, language=language, format=format)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(f".{output.name}.partial")
        partial.write_text(text)
        partial.replace(output)
    return {
        "language": language,
        "format": format,
        "days": days,
        "output": str(output) if output else None,
        "text": text,
        "report": figures(report),
    }


def _write_whole(directory: Path, name: str, text: str) -> None:
    """Write ``directory/name`` whole: a fresh temporary file (O_EXCL: never a link someone planted), synced, then
    renamed over it."""
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # published files
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def chatonsinfos_files(workspace_path: Path | None, directory: Path, *, now: datetime | None = None) -> dict:
    """Write the collective's ChatonsInfos files into ``directory`` (made if need be), each written whole then
    renamed into place; nothing is written when a mandatory value is missing (ConfigError naming each)."""
    with opened(workspace_path) as (workspace, store), store.session() as session:
        published = chatonsinfos.gather(session, workspace.config, load_catalog(workspace.catalog_dir), now=now)
        base = workspace.config.web.base_url
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(
            f"--chatonsinfos {directory}: not a directory", hint="give a directory to write the files in"
        )
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in published.files:
            _write_whole(directory, name, published.text(name))
            written.append({"file": str(directory / name), "url": chatonsinfos.file_url(workspace.config, name)})
    except OSError as error:
        raise InvalidInput(f"--chatonsinfos {directory}: {error.strerror or error}",
                           hint="give a directory ruche may write in") from None  # fmt: skip
    # a service no longer offered: its file, when ruche wrote it, goes (any other file is left alone)
    removed = []
    for stale in sorted(directory.glob("*.properties")):
        if stale.name not in published.files and chatonsinfos.written_by_ruche(stale):
            stale.unlink()
            removed.append(str(stale))
    return {"directory": str(directory), "base_url": base, "services": published.services(), "files": written,
            "removed": removed}  # fmt: skip
