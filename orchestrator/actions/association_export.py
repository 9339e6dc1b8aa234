"""``ruche association export SLUG -o FILE``: the association's signed bundle (the work:
:mod:`orchestrator.operations.bundle_export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.bundle_export import write_bundle
from orchestrator.signing import PublicKey


def recipient_key(value: str | None) -> PublicKey | None:
    """``--to``: the receiving collective's public key, given as its line or as a file holding it."""
    if value is None:
        return None
    path = Path(value).expanduser()
    text = path.read_text() if not value.startswith("ruche-key:") and path.is_file() else value
    return PublicKey.from_text(text, source="--to")


def export_bundle(workspace_path: Path | None, slug: str, output: Path, *, to: str | None = None,
                  progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Write ``output``, ``slug``'s bundle (``to``: the receiver's key, for its application secrets); give a summary.
    Raises InvalidInput for a bad ``to``, and what :func:`write_bundle` raises."""
    recipient = recipient_key(to)
    with opened(workspace_path) as (workspace, store):
        return write_bundle(workspace, store, slug, output, recipient=recipient, progress=progress)
