"""`ruche serve`'s /metrics (web/metrics.py), in-process, on SQLite and PostgreSQL: served to nobody by default,
to the bearer of `ruche metrics token`'s token or a client of [metrics] clients only (404 to anyone else), and
what it says of the state: an instance's health as its row changes, an open alert, a backup, an offer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from orchestrator.alerts import KINDS
from orchestrator.state.database import StateStore
from orchestrator.state.models import Alert, BackupRun, Domain, Instance, UsageSample
from orchestrator.web.app import create_app
from orchestrator.workspace import open_workspace

GIB = 1024**3


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    added = ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "decouverte")
    assert added.exit_code == 0, added.stderr
    assert ruche(*w, "instance", "create", "amap", "radicale").exit_code == 0
    return w


def client(workspace, address: str = "203.0.113.9") -> TestClient:
    return TestClient(create_app(workspace), base_url="https://testserver", client=(address, 40000))


def samples(text: str) -> dict[tuple, float]:
    """The exposition's samples as {(name, (label pairs sorted)): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def change_state(workspace, *statements) -> None:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            for statement in statements:
                session.execute(statement) if not isinstance(statement, list) else session.add_all(statement)
            session.commit()
    finally:
        store.close()


def test_metrics_are_served_to_nobody_until_a_token_or_a_client_network_is_set(pool, workspace, ruche):
    answer = client(workspace, "127.0.0.1").get("/metrics", headers={"authorization": "Bearer anything"})
    assert answer.status_code == 404 and "<html" in answer.text  # the site's missing page, as for any address
    assert answer.headers["x-content-type-options"] == "nosniff"
    shown = json.loads(ruche(*pool, "metrics", "show", "--json").stdout)
    assert shown["token_set"] is False and shown["clients"] == []


def test_the_token_opens_metrics_a_wrong_or_missing_one_gets_404(pool, workspace, ruche):
    made = ruche(*pool, "metrics", "token")
    assert made.exit_code == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and "credentials_file" in made.stderr and "restart" in made.stderr
    text = (workspace / "ruche.toml").read_text()
    assert token not in text and open_workspace(workspace).config.metrics.token_sha256 in text
    scraper = client(workspace)
    answer = scraper.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    assert answer.headers.get_list("cache-control") == ["no-store"]
    assert answer.headers["x-frame-options"] == "DENY"  # the app's security headers too
    for headers in ({}, {"authorization": f"Bearer {token}x"}, {"authorization": f"Basic {token}"},
                    {"authorization": "Bearer "}):  # fmt: skip
        refused = scraper.get("/metrics", headers=headers)
        assert refused.status_code == 404 and "ruche_" not in refused.text, headers
    again = json.loads(ruche(*pool, "metrics", "token", "--json").stdout)  # a new token replaces the old one
    assert set(again) >= {"token", "token_sha256"} and again["token"] != token
    scraper = client(workspace)
    assert scraper.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 404
    assert scraper.get("/metrics", headers={"authorization": f"Bearer {again['token']}"}).status_code == 200


def test_a_client_network_is_let_in_without_a_token_others_are_not(pool, workspace, ruche):
    added = ruche(*pool, "metrics", "clients", "add", "10.9.0.0/24")
    assert added.exit_code == 0, added.stderr
    assert client(workspace, "10.9.0.7").get("/metrics").status_code == 200
    assert client(workspace, "10.9.1.7").get("/metrics").status_code == 404
    # a forged X-Forwarded-For from a client that is no trusted proxy changes nothing
    forged = client(workspace, "10.9.1.7").get("/metrics", headers={"x-forwarded-for": "10.9.0.7"})
    assert forged.status_code == 404
    bad = ruche(*pool, "metrics", "clients", "add", "10.9.0.300")
    assert bad.exit_code != 0 and "not an IP address or network" in bad.stderr
    assert ruche(*pool, "metrics", "clients", "remove", "10.9.0.0/24").exit_code == 0
    assert client(workspace, "10.9.0.7").get("/metrics").status_code == 404
    missing = ruche(*pool, "metrics", "clients", "remove", "10.9.0.0/24")
    assert missing.exit_code != 0 and "not in [metrics] clients" in missing.stderr


def test_the_metrics_follow_the_state(pool, workspace, ruche):
    assert ruche(*pool, "metrics", "clients", "add", "10.9.0.7").exit_code == 0
    scraper = client(workspace, "10.9.0.7")
    labels = (("address", "amap/radicale"), ("association", "amap"), ("server", "web-1"), ("service", "radicale"))
    healthy = ("ruche_instance_healthy", labels)

    before = samples(scraper.get("/metrics").text)
    assert healthy not in before  # planned: not deployed, not checked
    assert before[("ruche_association_disk_offer_bytes", (("association", "amap"),))] == 5 * GIB  # decouverte
    assert before[("ruche_association_memory_offer_bytes", (("association", "amap"),))] == 512 * 1024**2
    assert all(before[("ruche_alerts_open", (("kind", kind),))] == 0 for kind in KINDS)
    assert ("ruche_association_disk_used_bytes", (("association", "amap"),)) not in before  # not measured yet

    checked = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    change_state(workspace, update(Instance).values(state="running", health="unhealthy", health_checked_at=checked))
    down = samples(scraper.get("/metrics").text)
    assert down[healthy] == 0
    assert down[("ruche_instance_health_checked_timestamp_seconds", labels)] == checked.timestamp()

    backed_up = datetime(2026, 11, 30, 3, 0, 42, tzinfo=UTC)
    expires = datetime(2027, 2, 1, tzinfo=UTC)
    change_state(
        workspace,
        update(Instance).values(health="healthy"),
        [Alert(kind="server.disk", subject="web-1", summary="/srv 93% full", values={}, first_seen=checked,
               last_seen=checked, notify_error=""),
         BackupRun(instance_id=1, instance_address="amap/radicale", server="web-1", kind="backup", reason="scheduled",
                   status="success", started_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC), finished_at=backed_up),
         BackupRun(instance_id=1, instance_address="amap/radicale", server="web-1", kind="backup", reason="scheduled",
                   status="failed", started_at=datetime(2026, 11, 30, 4, 0, tzinfo=UTC)),
         UsageSample(instance_id=1, taken_at=checked, disk_bytes=3 * GIB, memory_bytes=100 * 1024**2),
         Domain(name="agenda.amap.fr", association_id=1, instance_id=1, token="t", status="attached",
                tls_not_after=expires),
         Domain(name="pending.amap.fr", association_id=1, instance_id=1, token="t", status="pending",
                tls_not_after=expires)],
    )  # fmt: skip
    up = samples(scraper.get("/metrics").text)
    assert up[healthy] == 1
    assert up[("ruche_alerts_open", (("kind", "server.disk"),))] == 1
    assert up[("ruche_alerts_open", (("kind", "instance.down"),))] == 0
    backup = ("ruche_backup_last_success_timestamp_seconds", (("address", "amap/radicale"), ("association", "amap")))
    assert up[backup] == backed_up.timestamp()  # the good one, not the later failed one
    assert ("ruche_backup_verify_last_success_timestamp_seconds", backup[1]) not in up  # never verified
    assert up[("ruche_association_disk_used_bytes", (("association", "amap"),))] == 3 * GIB
    assert up[("ruche_association_memory_used_bytes", (("association", "amap"),))] == 100 * 1024**2
    assert up[("ruche_queue_runs", (("state", "queued"),))] == 0
    certificates = {
        key: value for key, value in up.items() if key[0] == "ruche_domain_certificate_expiry_timestamp_seconds"
    }
    assert certificates == {("ruche_domain_certificate_expiry_timestamp_seconds", (("address", "amap/radicale"),
                             ("association", "amap"), ("domain", "agenda.amap.fr"))): expires.timestamp()}  # fmt: skip


def test_through_an_untrusted_proxy_the_client_list_does_not_count_and_other_methods_are_404(pool, ruche, workspace):
    assert ruche(*pool, "metrics", "clients", "add", "127.0.0.1").exit_code == 0
    local = client(workspace, "127.0.0.1")
    assert local.get("/metrics").status_code == 200  # a Prometheus on the control machine, straight to ruche
    # the same connection address, through a reverse proxy on this machine: any visitor on the internet
    assert local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert local.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 404
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
        assert local.request(method, "/metrics").status_code == 404, method
