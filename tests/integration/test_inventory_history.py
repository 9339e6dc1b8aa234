"""The inventories' history (SQLite and PostgreSQL states): `inventory export` commits what changed to a Git
repository of inventories/ (nothing when nothing changed), with the actor and what changed in the fleet's
terms; `inventory diff` compares two recorded inventories; secrets show only as changed."""

from __future__ import annotations

import json
import subprocess

from orchestrator.workspace import open_workspace


def git(workspace, *arguments: str) -> str:
    inventories = open_workspace(workspace).inventories_dir
    return subprocess.run(
        ["git", "-C", str(inventories), *arguments], capture_output=True, text=True, check=True
    ).stdout


def test_exports_are_committed_with_who_and_what_changed_and_diff_reads_them(workspace, ruche, monkeypatch):
    monkeypatch.setenv("RUCHE_ACTOR", "camille")
    w = ["--workspace", str(workspace)]
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    assert (
        ruche(
            *w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "decouverte"
        ).exit_code
        == 0
    )
    assert ruche(*w, "instance", "create", "amap", "radicale").exit_code == 0
    first = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    assert first["changed"] and first["commit"]
    unchanged = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    assert not unchanged["changed"] and unchanged["commit"] is None
    assert len(git(workspace, "log", "--oneline").splitlines()) == 1  # an unchanged export records nothing
    assert git(workspace, "status", "--porcelain") == ""  # locks and staging directories are ignored

    assert ruche(*w, "association", "set-offer", "amap", "association").exit_code == 0  # its backup retention changes
    assert (
        ruche(*w, "server", "add", "web-2", "--no-connect", "--address", "192.0.2.2", "--memory", "8G").exit_code == 0
    )
    assert ruche(*w, "association", "add", "chorale", "--name", "Chorale", "--email", "c@chorale.fr").exit_code == 0
    assert ruche(*w, "instance", "create", "chorale", "radicale", "--server", "web-2").exit_code == 0
    second = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    subject, author = git(workspace, "log", "-1", "--format=%s%n%an").splitlines()
    assert subject.startswith("inventory export by camille: ") and author == "camille"
    body = git(workspace, "log", "-1", "--format=%b")
    assert "association chorale: now hosted" in body and "instance chorale/radicale: added" in body
    assert "server web-2: added" in body and "instance amap/radicale: " in body and "Actor: camille" in body

    diff = json.loads(ruche(*w, "inventory", "diff", "--json").stdout)  # the last two commits
    assert (diff["from"], diff["to"]) == (first["commit"], second["commit"])
    assert diff["changes"]["associations"] == {"added": ["chorale"], "removed": []}
    assert diff["changes"]["instances"]["added"] == ["chorale/radicale"]
    assert "backup" in diff["changes"]["instances"]["changed"]["amap/radicale"]  # the offer's retention
    assert diff["changes"]["servers"]["added"] == ["web-2"]
    text = ruche(*w, "inventory", "diff", first["commit"], second["commit"])
    assert text.exit_code == 0 and "instance chorale/radicale: added" in text.stdout

    # a secret changed shows as changed, never its value (ciphertext or clear)
    secrets_before = json.loads(ruche(*w, "instance", "secrets", "amap/radicale", "--json").stdout)
    from orchestrator.state.database import StateStore
    from orchestrator.state.instances import get_instance

    workspace_object = open_workspace(workspace)
    store = StateStore(workspace_object.state_url)
    try:
        with store.session() as session:
            instance = get_instance(session, "amap/radicale")
            instance.secrets = {
                **instance.secrets,
                "admin_password": workspace_object.vault().encrypt("a new one, long enough"),
            }
    finally:
        store.close()
    third = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    changed = json.loads(ruche(*w, "inventory", "diff", "--json").stdout)
    assert changed["to"] == third["commit"] and changed["changes"]["instances"]["changed"] == {
        "amap/radicale": ["secrets"]
    }
    shown = ruche(*w, "inventory", "diff", "--json").stdout + git(workspace, "log", "-1", "--format=%B")
    assert "a new one" not in shown and all(value not in shown for value in secrets_before.values())
    assert ruche(*w, "inventory", "diff", "no-such-run").exit_code == 2
