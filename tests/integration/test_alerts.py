"""The watcher through the real CLI on SQLite and PostgreSQL, told through real channels: Apprise posting to a
webhook receiver (HTTP on loopback) and mailing through an SMTP relay (aiosmtpd on loopback).

Provoked: a server that refuses SSH, an instance that does not answer through Caddy, a backup outside its offer's
window and a restore check too old, an association measured over its offer, a run that failed for real (ansible
to a server that refuses SSH), a queued run no worker takes. Each opens once, is told once to the admins, and the
association that opted in is mailed of its own instances' alerts only; each clears when its cause goes, and the
clearing is told. The instance down and a server's disk and memory are shown for real on the lab
(tests/lab/test_alerts.py)."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import tomlkit
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from orchestrator.state.database import StateStore
from orchestrator.state.leases import release_lease, take_lease
from orchestrator.state.models import Alert, BackupRun, Instance, QueuedRun, UsageSample, utc_now
from orchestrator.workspace import open_workspace
from tests.helpers import Webhook

GIB = 1024**3


class Sink:
    """An SMTP relay on loopback keeping every message: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):  # noqa: N802 - aiosmtpd's name
                sink.messages.append(
                    (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
                )
                return "250 OK"

        with socket.socket() as probe:  # a free port (aiosmtpd's readiness check cannot use port 0)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list:
        return [m for recipients, m in self.messages if address in recipients]

    def close(self) -> None:
        self.controller.stop()


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def channels():
    hook, sink = Webhook(), Sink()
    yield hook, sink
    hook.close()
    sink.close()


def settle(workspace, **settings) -> None:
    """Write ruche.toml's [alerts] (and [mail], [backup]) for the test."""
    path = workspace / "ruche.toml"
    document = tomlkit.parse(path.read_text())
    for table, values in settings.items():
        document[table] = values
    path.write_text(tomlkit.dumps(document))


def test_failures_provoked_open_once_are_told_to_admins_and_to_the_owner_only_then_clear(workspace, ruche, channels):
    hook, sink = channels
    w = ["--workspace", str(workspace)]
    settle(workspace, mail={"host": "127.0.0.1", "port": sink.port, "security": "none", "sender_domain": "test.example.org"},
           backup={"repository": "/srv/ruche-backups"},
           alerts={"admin_emails": ["admins@collectif.test"], "usage_minutes": 0, "queue_stuck_minutes": 5})  # fmt: skip
    added = ruche(*w, "alerts", "notify", "add", hook.url, "--json")
    assert added.exit_code == 0, added.stderr
    assert hook.url not in (workspace / "ruche.toml").read_text()  # kept as vault ciphertext
    listed = json.loads(ruche(*w, "alerts", "notify", "list", "--json").stdout)
    assert [e["kind"] for e in listed] == ["url", "email"]
    # servers that refuse SSH at once (nothing listens on port 1): unreachable, their runs fail for real
    for name, address in (("web-1", "127.0.0.2"), ("web-2", "127.0.0.4")):
        server = ruche(*w, "server", "add", name, "--no-connect", "--address", address, "--ssh-port", "1",
                       "--memory", "8G", "--disk", "100G")  # fmt: skip
        assert server.exit_code == 0, server.stderr
    for slug in ("amap", "velo"):
        assert ruche(*w, "association", "add", slug, "--name", slug.upper(), "--email", f"contact@{slug}.test",
                     "--offer", "decouverte").exit_code == 0  # fmt: skip
        created = ruche(*w, "instance", "create", slug, "radicale", "--name", "agenda", "--server", "web-1")
        assert created.exit_code == 0, created.stderr
    opted = ruche(*w, "association", "alerts", "amap", "on", "--language", "fr", "--json")
    assert opted.exit_code == 0 and json.loads(opted.stdout)["alerts_opt_in"], opted.stderr
    store = StateStore(open_workspace(workspace).config.state_url)
    with store.session() as session:  # as if a run had deployed them 40 days ago, never backed up since
        for instance in session.scalars(select(Instance)):
            instance.state, instance.created_at = "running", utc_now() - timedelta(days=40)
        amap = session.scalar(select(Instance).where(Instance.name == "agenda", Instance.domain.like("%amap%")))
        session.add(UsageSample(instance_id=amap.id, disk_bytes=6 * GIB, memory_bytes=100 * 1024**2))  # offer: 5 GiB
    failed = ruche(*w, "apply", "--server", "web-2", "--no-health", "--json")
    assert failed.exit_code != 0  # ansible could not reach it: a run recorded as failed
    queued = ruche(*w, "apply", "--server", "web-1", "--enqueue", "--json")
    assert queued.exit_code == 0, queued.stderr
    with store.session() as session:  # queued ten minutes ago, and no worker took it
        session.execute(update(QueuedRun).values(created_at=utc_now() - timedelta(minutes=10)))

    first = ruche(*w, "watch", "--once", "--json")
    assert first.exit_code == 0, first.stderr  # every notice delivered
    assert ruche(*w, "alerts").exit_code == 1  # while one is open
    opened = {(a["kind"], a["subject"]) for a in json.loads(first.stdout)["alerts"]}
    assert opened == {
        ("server.unreachable", "web-1"), ("server.unreachable", "web-2"), ("run.failed", "web-2"),
        ("instance.down", "amap/agenda"), ("instance.down", "velo/agenda"),
        ("backup.overdue", "amap/agenda"), ("backup.overdue", "velo/agenda"),
        ("backup.unverified", "amap/agenda"), ("backup.unverified", "velo/agenda"),
        ("quota.over", "amap"), ("queue.stuck", "1"),
    }, opened  # fmt: skip
    assert len(hook.received) == len(opened)  # one notice per alert on the webhook...
    assert all(n["title"].startswith("[Test] Alert: ") for n in hook.received)
    assert len(sink.to("admins@collectif.test")) == len(opened)  # ...and one mail each to the admins
    owner = sink.to("contact@amap.test")
    assert sorted(m["Subject"] for m in owner) == sorted([
        "[Test] Alerte : amap/agenda ne répond pas", "[Test] Alerte : amap/agenda : pas de sauvegarde récente",
        "[Test] Alerte : amap/agenda : sauvegardes non vérifiées récemment", "[Test] Alerte : amap utilise plus que son offre",
    ])  # fmt: skip
    assert all("velo" not in body(m) and "web-" not in body(m) for m in owner)  # its own, no server's
    quota = next(m for m in owner if "offre" in m["Subject"])
    assert "6.00 GiB" in body(quota) and "5 GiB" in body(quota)
    assert sink.to("contact@velo.test") == []  # velo did not opt in

    again = ruche(*w, "watch", "--once", "--json")
    assert json.loads(again.stdout)["opened"] == [] and json.loads(again.stdout)["notices"] == []  # told once
    assert len(hook.received) == len(opened)
    with store.session() as session:  # told 25 hours ago ([alerts] remind_hours: 24): reminded, to the admins only
        session.execute(
            update(Alert).where(Alert.kind == "quota.over").values(notified_at=utc_now() - timedelta(hours=25))
        )
    reminded = json.loads(ruche(*w, "watch", "--once", "--json").stdout)["notices"]
    assert [(n["event"], n["kind"]) for n in reminded] == [("reminder", "quota.over")]
    assert hook.received[-1]["title"] == "[Test] Still open: amap uses more than its offer"
    assert len(sink.to("contact@amap.test")) == len(owner)  # the association is not reminded

    # the causes go: good backups and restore checks, a measure under the offer, web-2 removed, the queued run taken
    with store.session() as session:
        now = utc_now()
        for instance in session.scalars(select(Instance)):
            for kind in ("backup", "verify"):
                session.add(BackupRun(instance_id=instance.id, instance_address=f"{instance.association.slug}/agenda",
                                      server="web-1", kind=kind, reason="scheduled", status="success", started_at=now,
                                      finished_at=now))  # fmt: skip
            if instance.association.slug == "amap":
                session.add(UsageSample(instance_id=instance.id, disk_bytes=GIB, memory_bytes=100 * 1024**2))
    worked = ruche(*w, "worker", "--once", "--quiet")  # takes the queued run, which fails for real on web-1
    assert worked.exit_code == 1 and "1 failed" in worked.stdout, worked.stdout + worked.stderr
    assert ruche(*w, "server", "remove", "web-2", "--yes").exit_code == 0
    ack = ruche(*w, "alerts", "ack", str(_id(first, "instance.down", "velo/agenda")), "--reason", "velo moves out")
    assert ack.exit_code == 0, ack.stderr
    before = len(hook.received)
    third = json.loads(ruche(*w, "watch", "--once", "--json").stdout)
    still = {(a["kind"], a["subject"]) for a in third["alerts"]}
    # web-1's queued run now failed too: run.failed on web-1 replaces queue.stuck
    assert still == {("server.unreachable", "web-1"), ("instance.down", "amap/agenda"),
                     ("instance.down", "velo/agenda"), ("run.failed", "web-1")}, still  # fmt: skip
    recovered = [n for n in hook.received[before:] if n["title"].startswith("[Test] Recovered: ")]
    assert len(recovered) == 8, [n["title"] for n in hook.received[before:]]
    assert sum(1 for m in sink.to("contact@amap.test") if m["Subject"].startswith("[Test] Rétabli")) == 3
    listed_all = json.loads(ruche(*w, "alerts", "--all", "--json").stdout)
    acked = next(a for a in listed_all if a["subject"] == "velo/agenda" and a["kind"] == "instance.down")
    assert (acked["state"], acked["ack_reason"]) == ("acknowledged", "velo moves out")
    assert any(e["kind"] == "alert.acknowledged" for e in json.loads(ruche(*w, "events", "--json").stdout))


def _id(result, kind: str, subject: str) -> int:
    return next(a["id"] for a in json.loads(result.stdout)["alerts"] if (a["kind"], a["subject"]) == (kind, subject))


def test_a_channel_apprise_does_not_know_is_refused_and_nothing_is_written(workspace, ruche):
    before = (workspace / "ruche.toml").read_text()
    refused = ruche("--workspace", str(workspace), "alerts", "notify", "add", "nosuch://token@example.org")
    assert refused.exit_code == 2 and "not an Apprise URL" in refused.stderr and "token" not in refused.stderr
    assert (workspace / "ruche.toml").read_text() == before


def test_one_watch_at_a_time_whichever_process_and_a_dead_holders_lease_expires(workspace, ruche):
    store = StateStore(open_workspace(workspace).config.state_url)
    try:
        assert take_lease(store, "watch", "host-a:1", seconds=600)
        assert not take_lease(store, "watch", "host-b:2", seconds=600)
        assert take_lease(store, "watch", "host-a:1", seconds=600)  # its holder renews it
        skipped = json.loads(ruche("--workspace", str(workspace), "watch", "--once", "--json").stdout)
        assert skipped["skipped"] == "another watch runs (host-a:1)" and skipped["notices"] == []
        release_lease(store, "watch", "host-b:2")  # not its own: nothing
        assert not take_lease(store, "watch", "host-b:2", seconds=600)
        release_lease(store, "watch", "host-a:1")
        assert take_lease(store, "watch", "host-b:2", seconds=-1)  # taken, and already expired (its holder died)
        assert take_lease(store, "watch", "host-c:3", seconds=600)
    finally:
        store.close()


def test_a_channel_that_refuses_is_tried_again_alone_and_the_others_are_not_told_twice(workspace, ruche, channels):
    hook, _sink = channels
    w = ["--workspace", str(workspace)]
    settle(workspace, alerts={"usage_minutes": 0})
    with socket.socket() as probe:  # a port nothing listens on: that webhook refuses every delivery
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    for url in (hook.url, f"json://127.0.0.1:{closed}/hook"):
        assert ruche(*w, "alerts", "notify", "add", url).exit_code == 0
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "127.0.0.2", "--ssh-port", "1").exit_code == 0
    )
    for attempt in range(2):
        watched = ruche(*w, "watch", "--once", "--json")
        assert watched.exit_code == 1  # a notice was not delivered
        (notice,) = json.loads(watched.stdout)["notices"]
        assert notice["event"] == "opened" and notice["sent_to"] == (1 if attempt == 0 else 0)
        assert f"json://127.0.0.1:{closed} (" in notice["error"] and "/hook" not in notice["error"]
    assert len(hook.received) == 1  # the webhook that took it is not told again
    (alert,) = json.loads(ruche(*w, "alerts", "--json").stdout)
    assert alert["notified_at"] is None and "127.0.0.1" in alert["notify_error"]
    unknown = ruche(*w, "alerts", "--association", "nosuch")
    assert unknown.exit_code == 4, unknown.stderr  # a typo is not "no alert"
