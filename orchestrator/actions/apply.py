"""``ruche apply``: bring servers to the state ruche describes (for now: the server base role)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.actions.inventory_export import write_inventory
from orchestrator.runner import run_playbook
from orchestrator.state.runs import record_run
from orchestrator.state.servers import get_server


def _progress_from_events(progress: Progress):
    def on_event(event: dict) -> None:
        data = event.get("event_data", {})
        kind = event.get("event")
        if kind == "playbook_on_task_start":
            progress(f"task: {data.get('task', '?')}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            message = (data.get("res") or {}).get("msg", "")
            progress(f"FAILED on {data.get('host')}: {data.get('task')}: {message}")
        elif kind == "runner_on_unreachable":
            progress(f"UNREACHABLE: {data.get('host')}")

    return on_event


def apply(workspace_path: Path | None, *, server: str | None = None, progress: Progress = no_progress) -> dict:
    """Export the inventory and run the server playbook (on ``server`` only, if given); give the run.

    Raises NotFound for an unknown server. A failed run is reported in the result, not raised.
    """
    with opened(workspace_path) as (workspace, store):
        with store.session() as session:
            if server is not None:
                get_server(session, server)
            exported = write_inventory(workspace, session)
        progress(f"inventory {'written' if exported['changed'] else 'unchanged'}: {exported['directory']}")
        result = run_playbook(
            "server.yml", inventory=Path(exported["directory"]), runs_dir=workspace.root / "runs", limit=server,
            on_event=_progress_from_events(progress),
        )  # fmt: skip
        summary = asdict(result)
        summary["changed"] = result.changed
        summary["succeeded"] = result.succeeded
        with store.session() as session:
            record_run(session, summary, target=server or "all")
    return summary
