"""The audit trail of runs in the state database (SQLite and PostgreSQL)."""

import json

from orchestrator.state.database import StateStore
from orchestrator.state.runs import record_run
from orchestrator.workspace import open_workspace


def fake_run(run_id: str, started: str, changed: int) -> dict:
    counts = {"ok": 5, "changed": changed, "failed": 0, "unreachable": 0, "skipped": 1}
    return {
        "run_id": run_id, "playbook": "server.yml", "status": "successful", "rc": 0,
        "hosts": {"lab-1": counts, "lab-2": dict(counts, failed=1)}, "artifacts": f"/runs/{run_id}",
        "started": started, "finished": started,
    }  # fmt: skip


def test_runs_are_listed_newest_first_and_shown(workspace, ruche):
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            record_run(session, fake_run("20261101T100000Z-aaaaaa", "2026-11-01T10:00:00+00:00", 3), target="all")
            record_run(session, fake_run("20261102T100000Z-bbbbbb", "2026-11-02T10:00:00+00:00", 0), target="lab-1")
    finally:
        store.close()
    listed = json.loads(ruche("--workspace", str(workspace), "runs", "list", "--json").stdout)
    assert [r["id"] for r in listed] == ["20261102T100000Z-bbbbbb", "20261101T100000Z-aaaaaa"]
    assert listed[1]["changed"] == 6 and listed[1]["failed"] == 1 and listed[0]["target"] == "lab-1"
    shown = ruche("--workspace", str(workspace), "runs", "show", "20261101T100000Z-aaaaaa")
    assert shown.exit_code == 0 and "lab-2" in shown.stdout and "status: successful" in shown.stdout
    missing = ruche("--workspace", str(workspace), "runs", "show", "nope")
    assert missing.exit_code == 4 and "no run 'nope'" in missing.stderr
