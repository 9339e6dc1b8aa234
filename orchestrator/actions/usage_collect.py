"""``ruche usage collect``: measure every instance on every server, servers in parallel (Fabric)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.actions.common import opened
from orchestrator.operations.usage import measure_usage


def collect_usage(
    workspace_path: Path | None, *, parallel: int = 32, progress: Callable[[str], None] = lambda _m: None
) -> dict:
    """Measure disk, database and memory of every active instance and record one sample each (operations/usage)."""
    with opened(workspace_path) as (workspace, store):
        return measure_usage(workspace, store, parallel=parallel, progress=progress)
