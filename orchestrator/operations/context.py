"""What every operation works in: an opened workspace and its state store, and a progress callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.state.database import StateStore
from orchestrator.workspace import Workspace, open_workspace

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """A progress callback that shows nothing."""


@contextmanager
def opened(workspace_path: Path | None) -> Iterator[tuple[Workspace, StateStore]]:
    """Give the workspace at ``workspace_path`` and its state store, closed on exit (a verb opens them once)."""
    workspace = open_workspace(workspace_path)
    store = StateStore(workspace.state_url)
    try:
        yield workspace, store
    finally:
        store.close()
