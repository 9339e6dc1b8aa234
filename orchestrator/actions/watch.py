"""``ruche watch``: look at everything that can go wrong, record alerts and tell them (operations/watch.py);
once (a systemd timer, cron) or every [alerts] interval_minutes until stopped."""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.operations.watch import summary
from orchestrator.operations.watch import watch as watch_once


def watch(workspace_path: Path | None, *, tell: bool = True, progress: Progress = no_progress) -> dict:
    """One watch; gives its outcome (operations/watch.watch)."""
    with opened(workspace_path) as (workspace, store):
        return watch_once(workspace, store, progress=progress, tell=tell)


def watch_forever(workspace_path: Path | None, *, interval_seconds: float | None = None, stop: threading.Event,
                  progress: Progress = no_progress) -> int:  # fmt: skip
    """A watch every ``interval_seconds`` (None: [alerts] interval_minutes, read again at each) until ``stop``;
    a watch that fails is said and the next one tries again. Gives how many watches ran."""
    done = 0
    while not stop.is_set():
        with opened(workspace_path) as (workspace, store):
            wait = interval_seconds or workspace.config.alerts.interval_minutes * 60
            try:
                progress(f"watch: {summary(watch_once(workspace, store, progress=progress))}")
            except Exception as error:  # noqa: BLE001 - a failed watch is said; the next one tries again
                progress(f"watch failed: {error}")
        done += 1
        stop.wait(wait)
    return done
