"""Alerts' pure parts: what a watch opens, refreshes, clears, tells and reminds (alerts.decide); the notices'
texts (notices.py); the relay's mailto:// URL and its masked form (operations/notify.py); the servers' probe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.alerts import Finding, OpenAlert, decide
from orchestrator.config import MailSettings
from orchestrator.notices import admin_text, member_text
from orchestrator.operations.notify import label, relay_url
from orchestrator.operations.watch_checks import parse_probe

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def found(kind: str, subject: str) -> Finding:
    return Finding(kind, subject, f"{subject} is wrong", association=subject.split("/")[0] if "/" in subject else None)


def test_a_new_finding_opens_one_alert_found_again_it_refreshes_and_gone_it_clears():
    first = decide([], [found("instance.down", "a/x"), found("instance.down", "a/x")], now=NOW, remind_every=None)
    assert [f.key for f in first.opened] == [("instance.down", "a/x")]  # once, though found twice
    told = OpenAlert(1, "instance.down", "a/x", NOW, None, False)
    again = decide([told], [found("instance.down", "a/x")], now=NOW, remind_every=timedelta(hours=24))
    assert (again.opened, list(again.seen_again), again.cleared, again.opening, again.reminding) == (
        [],
        [1],
        [],
        [],
        [],
    )
    gone = decide([told], [], now=NOW, remind_every=None)
    assert gone.cleared == [1]


def test_an_untold_alert_is_told_again_a_told_one_reminded_after_the_interval_unless_acknowledged():
    untold = OpenAlert(1, "server.disk", "web-1", None, None, False)
    told_long_ago = OpenAlert(2, "server.memory", "web-1", NOW - timedelta(hours=25), None, False)
    reminded_lately = OpenAlert(3, "backup.overdue", "a/x", NOW - timedelta(days=3), NOW - timedelta(hours=1), False)
    acknowledged = OpenAlert(4, "quota.over", "a", NOW - timedelta(days=3), None, True)
    findings = [found("server.disk", "web-1"), found("server.memory", "web-1"), found("backup.overdue", "a/x"),
                found("quota.over", "a")]  # fmt: skip
    decision = decide([untold, told_long_ago, reminded_lately, acknowledged], findings, now=NOW,
                      remind_every=timedelta(hours=24))  # fmt: skip
    assert (decision.opening, decision.reminding, decision.cleared) == ([1], [2], [])
    assert decide([told_long_ago], findings[1:2], now=NOW, remind_every=None).reminding == []  # 0: never


def test_an_alert_whose_state_this_watch_could_not_tell_stays_open():
    disk = OpenAlert(1, "server.disk", "web-1", NOW, None, False)
    kept = decide([disk], [found("server.unreachable", "web-1")], now=NOW, remind_every=None,
                  unknown={("server.disk", "web-1")})  # fmt: skip
    assert kept.cleared == [] and [f.kind for f in kept.opened] == ["server.unreachable"]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown alert kind"):
        Finding("instance.sad", "a/x", "?")


def view(kind: str, subject: str, association: str | None = None, **values) -> dict:
    return {"id": 7, "kind": kind, "subject": subject, "association": association, "summary": "evidence here",
            "values": values, "first_seen": "2026-11-30T12:00:00+00:00", "cleared_at": "2026-11-30T13:00:00+00:00"}  # fmt: skip


def test_notices_are_in_the_readers_language_and_associations_are_told_only_of_their_own_kinds():
    down = view("instance.down", "amap/wiki", "amap", instance="amap/wiki", address="wiki.amap.test",
                since="2026-11-30 12:00 UTC")  # fmt: skip
    admin = admin_text("en", "opened", down, collective="Chatons")
    assert admin.title == "[Chatons] Alert: amap/wiki does not answer"
    assert "evidence here" in admin.body and "ruche alerts ack 7 --reason" in admin.body
    member = member_text("fr", "opened", down, collective="Chatons")
    assert member.title == "[Chatons] Alerte : amap/wiki ne répond pas"
    assert "wiki.amap.test" in member.body and "evidence here" not in member.body  # its words, not the admins'
    assert member_text("fr", "cleared", down, collective="Chatons").title.startswith("[Chatons] Rétabli : ")
    quota = member_text("fr", "opened", view("quota.over", "amap", "amap", used="6.00 GiB", what="disk",
                                             limit="5 GiB"), collective="C")  # fmt: skip
    assert "utilise 6.00 GiB (espace disque), alors que son offre en prévoit 5 GiB" in quota.body
    assert member_text("fr", "opened", view("server.disk", "web-1", percent=95), collective="C") is None
    assert member_text("fr", "opened", view("run.failed", "amap/wiki", "amap"), collective="C") is None


def test_the_relays_mailto_url_quotes_its_password_and_its_masked_form_hides_it():
    relay = MailSettings(
        host="smtp.example.org", sender_domain="chatons.example.org", username="ruche@chatons.example.org"
    )
    url = relay_url(relay, ["admin@example.org"], password="p@ss:w/rd?&", sender_name="Les Chatons")
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    assert (plugin.user, plugin.password, plugin.host, plugin.port) == ("ruche@chatons.example.org", "p@ss:w/rd?&",
                                                                        "smtp.example.org", 587)  # fmt: skip
    assert plugin.from_addr == ("Les Chatons", "ruche-alerts@chatons.example.org") and plugin.secure_mode == "starttls"
    assert label(url).startswith("mailto://smtp.example.org:587 (") and "p@ss" not in label(url)
    with pytest.raises(ValueError, match="not an address mail can be sent to"):
        relay_url(relay, ["a,attacker@evil.example"], password=None, sender_name="C")  # Apprise splits on commas


def test_a_channel_is_named_by_scheme_and_host_never_by_its_path_query_or_credentials():
    hook = "jsons://user:pw@hooks.example.org/webhook/7f3c-SECRET?-Authorization=Bearer%20s3cr3t"
    shown = label(hook)
    assert shown.startswith("jsons://hooks.example.org (") and not any(
        secret in shown for secret in ("SECRET", "s3cr3t", "pw", "user", "webhook")
    )
    assert label(hook) != label(hook.replace("SECRET", "OTHER"))  # two channels on one host told apart


def test_the_servers_probe_is_read_for_disk_and_memory():
    answer = """Filesystem        1-blocks       Used   Available Capacity Mounted on
/dev/sda1      107374182400 96636764160 10737418240      91% /srv
MemTotal:        4000000 kB
MemAvailable:     400000 kB
"""
    assert parse_probe(answer) == (96636764160, 107374182400, 4096000000, 409600000)


def test_admins_read_the_evidence_in_their_language_and_an_older_alert_its_summary():
    disk = view("server.disk", "lab-1", percent=93, used_gib="18.6", size_gib="20.0", threshold=90)
    body = admin_text("fr", "opened", disk, collective="C").body
    assert body.startswith("Serveur lab-1 : /srv est plein à 93 % (18.6 Gio sur 20.0 ; [alerts] disk_used_percent 90).")
    assert "evidence here" not in body
    quota = view("quota.over", "amap", "amap", used="6.00 GiB", what="disk", limit="5 GiB", offer="association",
                 over=[["disk", "6.00 GiB", "5 GiB"], ["memory", "900 MiB", "512 MiB"]])  # fmt: skip
    assert admin_text("fr", "opened", quota, collective="C").body.startswith(
        "amap (offre association) : espace disque 6.00 GiB mesurés, l’offre donne 5 GiB; mémoire 900 MiB mesurés"
    )
    stuck = view("queue.stuck", "12", target="amap/wiki", since="2026-11-30 12:00 UTC", worker="", waiting="queued")
    assert "attend un worker" in admin_text("fr", "opened", stuck, collective="C").body
    expiring = view("certificate.expiring", "wiki.amap.org", "amap", instance="amap/wiki", domain="wiki.amap.org",
                    detail="it expires on 2026-12-05 10:00 UTC, within 14 days, and was not renewed",
                    expires="2026-12-05 10:00 UTC", days=14)  # fmt: skip
    assert "il expire le 2026-12-05 10:00 UTC" in admin_text("fr", "opened", expiring, collective="C").body
    assert "il expire le" in member_text("fr", "opened", expiring, collective="C").body
    older = view("server.disk", "lab-1", percent=93)  # recorded before the values were: its English summary
    assert admin_text("fr", "opened", older, collective="C").body.startswith("evidence here")
