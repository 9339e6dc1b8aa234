"""``ruche association export SLUG -o FILE``: the association's signed bundle (the work:
:mod:`orchestrator.operations.bundle_export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened, read_public_key
from orchestrator.operations.bundle_export import write_bundle


def export_bundle(workspace_path: Path | None, slug: str, output: Path, *, to: str | None = None,
                  progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Write ``output``, ``slug``'s bundle (``to``: the receiver's key, for its application secrets); give a summary.
    Raises InvalidInput for a bad ``to``, and what :func:`write_bundle` raises."""
    recipient = None if to is None else read_public_key(to, "--to")
    with opened(workspace_path) as (workspace, store):
        return write_bundle(workspace, store, slug, output, recipient=recipient, progress=progress)
