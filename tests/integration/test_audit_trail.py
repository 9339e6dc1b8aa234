"""The audit trail, on SQLite and PostgreSQL: every command that changes state leaves an event with who,
what and before/after (secrets never in clear); events form a hash chain that `events verify` recomputes,
naming the first event edited, deleted or inserted; a head kept elsewhere catches a rewritten history."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from orchestrator.actions.admin import add as add_admin
from orchestrator.state.database import StateStore
from orchestrator.state.event_chain import canonical, chain_digest
from orchestrator.state.events import record_event
from orchestrator.state.models import Event
from orchestrator.web.app import create_app
from orchestrator.workspace import open_workspace

PASSWORD = "un mot de passe assez long"


@pytest.fixture
def w(workspace):
    return ["--workspace", str(workspace)]


def head(ruche, w) -> tuple[int, str]:
    answer = json.loads(ruche(*w, "events", "head", "--json").stdout)
    return answer["length"], answer["digest"]


def events(ruche, w, *filters) -> list[dict]:
    answer = ruche(*w, "events", *filters, "--json")
    assert answer.exit_code == 0, answer.stderr
    return json.loads(answer.stdout)


def verify(ruche, w, *options) -> tuple[int, dict]:
    answer = ruche(*w, "events", "verify", *options, "--json")
    return answer.exit_code, json.loads(answer.stdout)


def execute(workspace, statement: str, **values) -> None:
    """Change the state database behind ruche's back (what someone with write access could do)."""
    engine = sa.create_engine(open_workspace(workspace).state_url)
    with engine.begin() as connection:
        connection.execute(sa.text(statement), values)
    engine.dispose()


def test_every_command_that_changes_state_leaves_an_event_with_who_and_before_after(w, workspace, ruche, monkeypatch):
    monkeypatch.setenv("RUCHE_ACTOR", "camille")
    commands = [
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G"),
        ("server", "add", "web-2", "--no-connect", "--address", "192.0.2.2", "--memory", "8G"),
        ("server", "drain", "web-2"),
        ("server", "undrain", "web-2"),
        ("server", "remove", "web-2", "--yes"),
        ("association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "decouverte"),
        ("association", "set-offer", "amap", "association"),
        ("association", "invite", "amap", "--json"),
        ("association", "revoke-invite", "1"),
        ("instance", "create", "amap", "radicale"),
    ]
    for command in commands:
        before = head(ruche, w)[0]
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
        assert head(ruche, w)[0] > before, f"`ruche {' '.join(command)}` changed the state and left no event"
    added = add_admin(workspace, "dominique", PASSWORD)
    assert added
    removed = ruche(*w, "admin", "remove", "dominique", "--yes")
    assert removed.exit_code == 0, removed.stderr

    drained = events(ruche, w, "--kind", "servers.changed")
    assert [(e["actor"], e["detail"]["before"], e["detail"]["after"]) for e in drained] == [
        ("camille", {"draining": True}, {"draining": False}),
        ("camille", {"draining": False}, {"draining": True}),
    ]
    (offer_change,) = [e for e in events(ruche, w, "--kind", "associations.changed") if "offer" in e["detail"]["after"]]
    assert (offer_change["subject"], offer_change["detail"]) == ("amap", {"before": {"offer": "decouverte"},
                                                                          "after": {"offer": "association"}})  # fmt: skip
    (created,) = events(ruche, w, "--kind", "instances.created")
    assert created["subject"] == "amap/radicale" and created["association"] == "amap"
    assert (
        created["detail"]["after"]["service_id"] == "radicale" and created["detail"]["after"]["secrets"] == "(secret)"
    )
    assert events(ruche, w, "--kind", "admins.deleted")[0]["detail"]["before"]["password_hash"] == "(secret)"
    assert [e["kind"] for e in events(ruche, w, "--subject", "server/web-2")][0] == "servers.deleted"

    # secrets never in clear: not the instance's, not an invite's token, not the admin's password or hash
    everything = ruche(*w, "events", "--json").stdout
    secrets = json.loads(ruche(*w, "instance", "secrets", "amap/radicale", "--json").stdout)
    for value in [*secrets.values(), PASSWORD, "$argon2"]:
        assert value not in everything
    assert verify(ruche, w) == (0, {"ok": True, "length": head(ruche, w)[0], "head": head(ruche, w)[1], "problem": None,
                                    "first_bad_seq": None})  # fmt: skip


def test_the_web_records_members_and_admins_as_actors_and_filters_find_them(w, workspace, ruche):
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    assert (
        ruche(
            *w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "association"
        ).exit_code
        == 0
    )
    link = json.loads(ruche(*w, "association", "invite", "amap", "--json").stdout)["link"]
    member = TestClient(create_app(workspace), base_url="https://testserver")
    assert member.get(link.split("8080", 1)[1], follow_redirects=False).status_code == 303
    csrf = member.get("/espace").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    sent = member.post(
        "/api/v1/requests", json={"service": "radicale", "name": "agenda"}, headers={"X-CSRF-Token": csrf}
    )
    assert sent.status_code == 201
    add_admin(workspace, "camille", PASSWORD)
    admin = TestClient(create_app(workspace), base_url="https://testserver")
    page = admin.get("/admin/connexion")
    token = page.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    admin.post("/admin/connexion", data={"form_token": token, "name": "camille", "password": PASSWORD})
    review = admin.get("/admin")
    admin_csrf = review.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert admin.post(f"/admin/demandes/{sent.json()['id']}/approuver", data={"csrf_token": admin_csrf},
                      follow_redirects=False).status_code == 303  # fmt: skip

    by_member = events(ruche, w, "--actor", "member of amap")
    assert {"web_sessions.created", "service_requests.created"} <= {e["kind"] for e in by_member}
    by_admin = events(ruche, w, "--actor", "admin camille")
    assert {"service_requests.changed", "instances.created", "queued_runs.created"} <= {e["kind"] for e in by_admin}
    assert {e["association"] for e in events(ruche, w, "--association", "amap")} == {"amap"}
    assert {e["subject"] for e in events(ruche, w, "--instance", "amap/agenda")} == {"amap/agenda"}
    assert all(e["kind"].startswith("instances.") for e in events(ruche, w, "--kind", "instances.*"))
    assert events(ruche, w, "--since", "2999-01-01") == []
    assert len(events(ruche, w, "--limit", "2")) == 2
    bad = ruche(*w, "events", "--since", "yesterday")
    assert bad.exit_code == 2 and "2026-11-27" in bad.stderr
    assert verify(ruche, w)[0] == 0


@pytest.fixture
def chained(w, workspace, ruche):
    """A workspace with a few events (server, association, instance) and the chain's head before tampering."""
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    assert ruche(*w, "instance", "create", "amap", "radicale").exit_code == 0
    assert ruche(*w, "association", "add", "chorale", "--name", "Chorale", "--email", "c@chorale.fr").exit_code == 0
    length, digest = head(ruche, w)
    assert length >= 4 and verify(ruche, w)[0] == 0
    return length, digest


def test_an_edited_event_is_named(chained, w, workspace, ruche):
    execute(workspace, "UPDATE events SET actor = 'someone else' WHERE seq = 2")
    code, result = verify(ruche, w)
    assert (
        code == 1
        and result["first_bad_seq"] == 2
        and "event 2 (" in result["problem"]
        and "was edited" in result["problem"]
    )
    text = ruche(*w, "events", "verify")
    assert text.exit_code == 1 and "audit trail BROKEN: event 2" in text.stderr


def test_a_deleted_event_is_named(chained, w, workspace, ruche):
    execute(workspace, "DELETE FROM events WHERE seq = 3")
    code, result = verify(ruche, w)
    assert code == 1 and result["first_bad_seq"] == 3 and "event 3 deleted" in result["problem"]


def test_deleting_the_last_events_is_seen(chained, w, workspace, ruche):
    length, _digest = chained
    execute(workspace, "DELETE FROM events WHERE seq >= :last", last=length - 1)
    code, result = verify(ruche, w)
    assert code == 1 and "the last events were deleted" in result["problem"]


def test_an_inserted_event_is_named(chained, w, workspace, ruche):
    execute(workspace, "INSERT INTO events (at, actor, kind, subject, detail) VALUES "
                       "(CURRENT_TIMESTAMP, 'camille', 'quota.override', 'amap/radicale', '{}')")  # fmt: skip
    code, result = verify(ruche, w)
    assert code == 1 and "outside the chain: it was inserted" in result["problem"]


def test_a_history_rewritten_with_new_digests_passes_alone_but_not_against_a_kept_head(
    chained, w, workspace, ruche, tmp_path
):
    kept = tmp_path / "head.json"
    kept.write_text(ruche(*w, "events", "head", "--json").stdout)
    assert verify(ruche, w, "--head", str(kept))[0] == 0
    # whoever can write the database can rewrite an event and recompute every digest after it
    store = StateStore(open_workspace(workspace).state_url)
    try:
        table = Event.__table__
        with store.session() as session:
            rows = session.execute(sa.select(table.c.seq, table.c.at, table.c.actor, table.c.kind, table.c.subject,
                                             table.c.association, table.c.detail).order_by(table.c.seq)).all()  # fmt: skip
        previous = "0" * 64
        with store.engine.begin() as connection:
            for seq, at, actor, kind, subject, association, detail in rows:
                actor = "nobody" if seq == 1 else actor
                digest = chain_digest(previous, canonical(seq, at, actor, kind, subject, association, detail))
                connection.execute(
                    sa.text(
                        "UPDATE events SET actor = :actor, previous_digest = :previous, digest = :digest "
                        "WHERE seq = :seq"
                    ),
                    {"actor": actor, "previous": previous, "digest": digest, "seq": seq},
                )
                previous = digest
            connection.execute(sa.text("UPDATE event_chain SET head = :head"), {"head": previous})
    finally:
        store.close()
    assert verify(ruche, w)[0] == 0  # consistent in itself...
    code, result = verify(ruche, w, "--head", str(kept))
    assert code == 1 and "history up to it was rewritten" in result["problem"]  # ...but not the history kept elsewhere
    length, digest = chained
    assert verify(ruche, w, "--head", f"{length}:{digest}")[0] == 1
    assert ruche(*w, "events", "verify", "--head", "nonsense").exit_code == 2


def test_concurrent_writers_never_fork_the_chain(chained, w, workspace, ruche):
    store = StateStore(open_workspace(workspace).state_url)
    errors = []

    def write(n: int) -> None:
        try:
            for i in range(10):
                with store.session() as session:
                    record_event(session, kind="test.concurrent", subject=f"amap/writer-{n}", detail={"i": i})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        store.close()
    assert errors == []
    assert len(events(ruche, w, "--kind", "test.concurrent")) == 40
    assert verify(ruche, w)[0] == 0
