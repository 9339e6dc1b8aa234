"""The transparency report (SQLite and PostgreSQL states), in French and English, Markdown and HTML:
services and versions, associations counted and named only with their agreement, servers and labels,
backup policy and verifications, availability from recorded health checks, incidents, software; no
address, e-mail or secret."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from orchestrator.config import BackupSettings
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import BackupRun, HealthCheck, Run, Upgrade, utc_now
from orchestrator.workspace import open_workspace


@pytest.fixture
def fleet(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--address", "192.0.2.1", "--memory", "8G", "--label", "region=lyon", "--label", "hoster=Tetaneutral"),
        ("association", "add", "amap", "--name", "AMAP du coin", "--email", "contact@amap.example", "--offer", "association"),
        ("association", "add", "chorale", "--name", "Chorale discrète", "--email", "contact@chorale.example", "--offer", "association"),
        ("association", "listing", "amap", "agreed"),
        ("instance", "create", "amap", "radicale"),
        ("instance", "create", "chorale", "radicale"),
    ):  # fmt: skip
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"backup": BackupSettings(
        repository="sftp:restic@backup.example.org:/srv/restic", schedule="*-*-* 03:15:00")}))  # fmt: skip
    store = StateStore(opened.state_url)
    now = utc_now()
    try:
        with store.session() as session:
            for address in ("amap/radicale", "chorale/radicale"):
                get_instance(session, address).state = "running"
            session.add_all([HealthCheck(instance_address="amap/radicale", service_id="radicale", at=now - timedelta(hours=h),
                                         health="unhealthy" if h == 1 else "healthy") for h in range(1, 5)])  # fmt: skip
            session.add(HealthCheck(instance_address="amap/radicale", service_id="radicale", at=now - timedelta(days=90),
                                    health="unhealthy"))  # outside the period  # fmt: skip
            session.add(BackupRun(instance_address="amap/radicale", server="web-1", kind="verify", reason="manual", status="success",
                                  started_at=now - timedelta(days=2), finished_at=now - timedelta(days=2)))  # fmt: skip
            session.add(BackupRun(instance_address="amap/radicale", server="web-1", kind="backup", reason="scheduled",
                                  status="success", started_at=now - timedelta(days=1)))  # fmt: skip
            session.add(Run(id="r-failed", playbook="site.yml", target="all", status="failed", rc=2, changed=0, failed=1,
                            hosts={}, artifacts="", started=now - timedelta(days=3), finished=now - timedelta(days=3)))  # fmt: skip
            session.add(Upgrade(instance_address="chorale/radicale", service_id="radicale", server="web-1", from_version="3.1.8",
                                to_version="3.5.3", status="rolled_back", requested_by="camille",
                                started_at=now - timedelta(days=4)))  # fmt: skip
    finally:
        store.close()
    return w


def test_the_report_in_french_and_english_says_what_the_collective_promises_and_nothing_private(
    fleet, workspace, ruche, tmp_path
):
    french = ruche(*fleet, "report", "--lang", "fr")
    assert french.exit_code == 0, french.stderr
    text = french.stdout
    assert "rapport de transparence" in text and "Radicale (agendas et contacts) | 3.5.3 | 2 | 75 %" in text
    assert "2 association(s) utilisent les services du collectif." in text
    assert "AMAP du coin" in text and "Chorale discrète" not in text  # named only with its agreement
    assert "| web-1 | apps | hoster=Tetaneutral, region=lyon | 2 |" in text
    assert "Calendrier : *-*-* 03:15:00" in text and "Destination hors site : SFTP (backup.example.org)." in text
    assert "Conservation : 7 instantanés quotidiens" in text
    assert (
        "Vérifications de restauration (un instantané restauré dans une instance jetable et comparé) : 1, 0 en échec."
        in text
    )
    assert "75 % des 4 vérifications de santé" in text  # the check 90 days ago is outside the period
    assert (
        "un déploiement a échoué" in text
        and "une mise à jour a été annulée (Radicale (agendas et contacts) 3.1.8 → 3.5.3)" in text
    )
    english = ruche(*fleet, "report", "--lang", "en").stdout
    assert "transparency report" in english and "2 association(s) use the collective's services." in english
    assert "75 % of 4 health checks" in english and "an update was rolled back" in english
    for private in ("192.0.2.1", "contact@", "restic@", "/srv/restic", "chorale/radicale", "$ANSIBLE_VAULT"):
        assert private not in text and private not in english

    page = tmp_path / "public" / "transparence.html"
    written = ruche(*fleet, "report", "--lang", "fr", "--format", "html", "-o", str(page))
    assert written.exit_code == 0 and str(page) in written.stdout
    html = page.read_text()
    assert html.startswith("<!doctype html>") and '<html lang="fr">' in html
    assert "<script" not in html and "http" not in html.split("<main>")[0]  # a single static page, nothing fetched
    assert "Chorale discrète" not in html and "AMAP du coin" in html
    assert ruche(*fleet, "report", "--days", "0").exit_code == 2


def test_withdrawing_the_agreement_removes_the_name(fleet, ruche):
    assert json.loads(ruche(*fleet, "association", "listing", "amap", "withdrawn", "--json").stdout)["listed"] is False
    assert "AMAP du coin" not in ruche(*fleet, "report").stdout
    kinds = [e["kind"] for e in json.loads(ruche(*fleet, "events", "--association", "amap", "--json").stdout)]
    assert "listing.withdrawn" in kinds and "listing.agreed" in kinds
