"""What every action needs: the workspace, its state store, a progress callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import InvalidInput
from orchestrator.state.database import StateStore
from orchestrator.workspace import Workspace, open_workspace

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    """A progress callback that shows nothing."""


@contextmanager
def opened(workspace_path: Path | None) -> Iterator[tuple[Workspace, StateStore]]:
    """Give the workspace at ``workspace_path`` and its state store, closed on exit."""
    workspace = open_workspace(workspace_path)
    store = StateStore(workspace.state_url)
    try:
        yield workspace, store
    finally:
        store.close()


def parse_key_values(pairs: tuple[str, ...], *, option: str, example: str) -> dict[str, str]:
    """Give ``{"k": "v"}`` for ``("k=v", ...)`` given as ``option``.

    Raises InvalidInput (quoting ``example``) for a pair without '=' or an empty key, and for a
    key given twice.
    """
    values: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InvalidInput(f"{option} {pair!r}: expected NAME=VALUE, e.g. {example}")
        if key in values:
            raise InvalidInput(f"{option} {key} is given twice")
        values[key] = value
    return values


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """Give ``{"k": "v"}`` for ``--label k=v`` pairs; raises InvalidInput for a malformed or repeated one."""
    return parse_key_values(pairs, option="--label", example="region=lyon")
