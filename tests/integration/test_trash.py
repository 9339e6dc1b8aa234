"""`ruche trash list|empty` on SQLite and PostgreSQL, against servers whose /srv/ruche/trash is a local directory:
the real scripts run here (SSH is faked: the lab runs them on its servers, tests/lab/test_instances.py)."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.errors import OperationFailed
from orchestrator.state.database import StateStore
from orchestrator.state.models import Association, utc_now
from orchestrator.trash import STAMP_FORMAT, TRASH_DIR
from orchestrator.workspace import open_workspace


def stamp(days_ago: float) -> str:
    return (utc_now() - timedelta(days=days_ago)).strftime(STAMP_FORMAT)


@pytest.fixture
def servers(tmp_path, workspace, ruche, monkeypatch) -> dict[str, Path]:
    """web-1 and web-2 (application servers) and vault (backup), each with a local directory as its trash;
    amap on offer association (30 days), chorale on none."""
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1"),
        ("server", "add", "web-2", "--no-connect", "--address", "192.0.2.2"),
        ("server", "add", "vault", "--no-connect", "--address", "192.0.2.9", "--role", "backup"),
        ("association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "association"),
        ("association", "add", "chorale", "--name", "La chorale", "--email", "c@chorale.fr", "--no-offer"),
    ):  # fmt: skip
        assert ruche(*w, *command).exit_code == 0, command
    opened = open_workspace(workspace)
    store = StateStore(opened.state_url)
    try:
        with store.session() as session:  # registered long before anything was deleted
            for association in session.scalars(select(Association)):
                association.created_at = utc_now() - timedelta(days=400)
    finally:
        store.close()
    roots = {name: tmp_path / name / "trash" for name in ("web-1", "web-2", "vault")}
    for root in roots.values():
        root.mkdir(parents=True)

    def run_command(target, argv, *, timeout=120):
        """Run ``argv`` here, the server's trash being its local directory."""
        assert target.name != "vault", "a backup server has no trash"
        root = str(roots[target.name])
        done = subprocess.run([root if a == TRASH_DIR else a for a in argv], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise OperationFailed(f"{target.name}: exited {done.returncode}: {done.stderr}")
        return done.stdout.replace(root, TRASH_DIR)

    monkeypatch.setattr("orchestrator.remote.run_command", run_command)
    return roots


def entry(root: Path, name: str, size: int = 5000) -> Path:
    path = root / name
    (path / "app").mkdir(parents=True)
    (path / "app" / "data").write_bytes(b"x" * size)
    return path


def names(entries: list[dict]) -> list[str]:
    return [f"{e['server']}:{e['entry']}" for e in entries]


def test_list_gives_each_entry_its_instance_size_and_due_date(servers, workspace, ruche):
    old, recent = f"{stamp(40)}-amap--agenda", f"{stamp(2)}-amap--wiki"
    chorale, gone = f"{stamp(1)}-chorale--agenda", f"{stamp(1)}-gone--agenda"
    entry(servers["web-1"], old, 50_000)
    entry(servers["web-1"], recent)
    entry(servers["web-2"], chorale)
    entry(servers["web-2"], gone)
    entry(servers["web-2"], "not-an-entry")
    listed = ruche("--workspace", str(workspace), "trash", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    result = json.loads(listed.stdout)
    assert result["servers"] == ["web-1", "web-2"] and result["errors"] == {}
    by_entry = {e["entry"]: e for e in result["entries"]}
    first = by_entry[old]
    assert (first["server"], first["address"], first["association"], first["offer"], first["retention_days"]) == (
        "web-1", "amap/agenda", "amap", "association", 30)  # fmt: skip
    deleted = datetime.strptime(old[:16], STAMP_FORMAT).replace(tzinfo=UTC)
    assert (first["deleted_at"], first["due_at"]) == (deleted.isoformat(), (deleted + timedelta(days=30)).isoformat())
    assert first["path"] == f"{TRASH_DIR}/{old}" and first["bytes"] >= 50_000 and first["due"] is True
    assert by_entry[recent]["due"] is False and by_entry[recent]["rule"] == "offer association: 30 day(s)"
    assert by_entry[chorale]["due"] is True and "chorale has no offer: due at once" in by_entry[chorale]["rule"]
    assert by_entry[gone]["due"] is True and "gone no longer exists: due at once" in by_entry[gone]["rule"]
    odd = by_entry["not-an-entry"]
    assert (
        odd["recognised"] is False and odd["due"] is False and odd["due_at"] is None and "never erased" in odd["rule"]
    )
    text = ruche("--workspace", str(workspace), "trash", "list", "--server", "web-1", "-q")
    assert text.exit_code == 0 and "amap/agenda" in text.stdout and "chorale" not in text.stdout


def test_empty_erases_what_is_due_with_an_event_each_and_nothing_else(servers, workspace, ruche, monkeypatch, tmp_path):
    w = ["--workspace", str(workspace)]
    due = [entry(servers["web-1"], f"{stamp(40)}-amap--agenda"), entry(servers["web-2"], f"{stamp(0)}-gone--agenda")]
    kept = [
        entry(servers["web-1"], f"{stamp(2)}-amap--wiki"),
        entry(servers["web-2"], "20260101T000000Z-amap--agenda.x"),
    ]
    outside = tmp_path / "outside"
    (outside / "precious").mkdir(parents=True)
    link = servers["web-2"] / f"{stamp(3)}-chorale--link"
    link.symlink_to(outside)  # a link named like an entry: the link goes, never what it points to

    dry = ruche(*w, "trash", "empty", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    would = json.loads(dry.stdout)
    assert sorted(names(would["would_erase"])) == sorted(
        [f"web-1:{due[0].name}", f"web-2:{due[1].name}", f"web-2:{link.name}"])  # fmt: skip
    assert all(p.exists() for p in due + kept) and link.is_symlink()

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    refused = ruche(*w, "trash", "empty")
    assert refused.exit_code == 130 and "Erase these 3 entries for good?" in refused.stderr
    assert all(p.exists() for p in due + kept) and link.is_symlink()

    emptied = ruche(*w, "trash", "empty", "--yes", "--json")
    assert emptied.exit_code == 0, emptied.stderr
    result = json.loads(emptied.stdout)
    assert sorted(names(result["erased"])) == sorted(names(would["would_erase"])) and result["failed"] == []
    assert not any(p.exists() for p in due) and not link.is_symlink() and not link.exists()
    assert all(p.exists() for p in kept) and (outside / "precious").is_dir()
    events = json.loads(ruche(*w, "events", "--kind", "trash.erased", "--json").stdout)
    assert sorted(e["subject"] for e in events) == ["amap/agenda", "chorale/link", "gone/agenda"]
    gone = next(e for e in events if e["subject"] == "gone/agenda")
    assert (
        gone["association"] == "gone" and gone["detail"]["server"] == "web-2" and gone["detail"]["entry"] == due[1].name
    )
    assert "no longer exists" in gone["detail"]["rule"] and gone["detail"]["bytes"] > 0
    assert ruche(*w, "events", "verify").exit_code == 0

    again = ruche(*w, "trash", "empty", "--yes")
    assert again.exit_code == 0 and "0 entries erased, 2 kept (next due at" in again.stdout


def test_retention_zero_erases_at_the_next_emptying(servers, workspace, ruche):
    recent = entry(servers["web-1"], f"{stamp(0)}-amap--agenda")
    assert ruche("--workspace", str(workspace), "trash", "empty", "--yes").exit_code == 0 and recent.exists()
    opened = open_workspace(workspace)
    offers = dict(opened.config.offers)
    offers["association"] = offers["association"].model_copy(update={"trash_retention_days": 0})
    opened.save_config(opened.config.model_copy(update={"offers": offers}))
    emptied = ruche("--workspace", str(workspace), "trash", "empty", "--yes")
    assert emptied.exit_code == 0 and not recent.exists()
    assert f"erased amap/agenda on web-1 ({TRASH_DIR}/{recent.name}" in emptied.stdout


def test_an_unreachable_server_fails_the_command_and_the_others_are_emptied(servers, workspace, ruche, monkeypatch):
    from orchestrator.remote import run_command as local_run

    erased = entry(servers["web-1"], f"{stamp(1)}-chorale--agenda")

    def web_2_down(target, argv, *, timeout=120):
        if target.name == "web-2":
            raise OperationFailed("cannot reach web-2 (192.0.2.2:22) over SSH: timed out")
        return local_run(target, argv, timeout=timeout)

    monkeypatch.setattr("orchestrator.remote.run_command", web_2_down)
    result = ruche("--workspace", str(workspace), "trash", "empty", "--yes", "--json")
    assert result.exit_code == 1 and "web-2: cannot reach web-2" in result.stderr
    assert json.loads(result.stdout)["errors"] == {"web-2": "cannot reach web-2 (192.0.2.2:22) over SSH: timed out"}
    assert not erased.exists()


def test_unknown_or_backup_servers_are_refused(servers, workspace, ruche):
    for name in ("nope", "vault"):
        refused = ruche("--workspace", str(workspace), "trash", "list", "--server", name)
        assert refused.exit_code == 4 and f"no application server named '{name}'" in refused.stderr
