"""The transparency report (SQLite and PostgreSQL states), in French and English, Markdown and HTML:
services and versions, associations counted and named only with their agreement, servers and labels,
backup policy and verifications, availability from recorded health checks, incidents, the versions
instances run (behind the one new instances get for over a month, past upstream support; in --json too),
the footprint of the last full month (the collective's totals as operations/footprint gives them, figures only of
the associations that agreed to be named), software; no address, e-mail or secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from orchestrator.actions.report import transparency_report
from orchestrator.config import BackupSettings
from orchestrator.operations.footprint import footprint, last_full_month
from orchestrator.reports.transparency import _format_number
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import BackupRun, HealthCheck, Run, Server, Upgrade, UsageSample, utc_now
from orchestrator.workspace import open_workspace


@pytest.fixture
def fleet(workspace, ruche):
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G", "--label", "region=lyon", "--label", "hoster=Tetaneutral"),
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


@pytest.fixture
def versions_fleet(workspace, ruche):
    """Radicale instances on 3.1.8 (its entry lists it before 3.5.3, the one new instances get; upstream support
    ended 2026-06-10): one created 40 days ago, one 10 days ago, one created 100 days ago but upgraded to 3.1.8
    5 days ago; one on 3.5.3 for 90 days; one on 3.1.8 for a year but deleted (not counted)."""
    w = ["--workspace", str(workspace)]
    for command in (
        ("server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "16G"),
        ("association", "add", "amap", "--name", "AMAP du coin", "--email", "contact@amap.example"),
        ("association", "add", "chorale", "--name", "Chorale discrète", "--email", "contact@chorale.example"),
        ("association", "add", "ecole", "--name", "École ouverte", "--email", "contact@ecole.example"),
        ("instance", "create", "amap", "radicale", "--version", "3.1.8"),
        ("instance", "create", "chorale", "radicale", "--version", "3.1.8"),
        ("instance", "create", "ecole", "radicale", "--version", "3.1.8"),
        ("instance", "create", "ecole", "radicale", "--name", "agenda"),
        ("instance", "create", "ecole", "radicale", "--name", "ancien", "--version", "3.1.8"),
    ):  # fmt: skip
        done = ruche(*w, *command)
        assert done.exit_code == 0, (command, done.stderr)
    store = StateStore(open_workspace(workspace).state_url)
    now = utc_now()
    try:
        with store.session() as session:
            ages = {"amap/radicale": 40, "chorale/radicale": 10, "ecole/radicale": 100, "ecole/agenda": 90,
                    "ecole/ancien": 365}  # fmt: skip
            for address, days in ages.items():
                instance = get_instance(session, address)
                instance.state = "deleted" if address == "ecole/ancien" else "running"
                instance.created_at = now - timedelta(days=days)
            upgraded = get_instance(session, "ecole/radicale")
            session.add_all([
                Upgrade(instance_id=upgraded.id, instance_address="ecole/radicale", service_id="radicale", server="web-1",
                        from_version="3.1.7", to_version="3.1.8", status="succeeded", requested_by="camille",
                        started_at=now - timedelta(days=5, minutes=10), finished_at=now - timedelta(days=5)),
                # a failed try long ago does not count, nor does the upgrade of another instance
                Upgrade(instance_id=get_instance(session, "amap/radicale").id, instance_address="amap/radicale",
                        service_id="radicale", server="web-1", from_version="3.1.7", to_version="3.1.8",
                        status="rolled_back", requested_by="camille", started_at=now - timedelta(days=2)),
            ])  # fmt: skip
    finally:
        store.close()
    return w


def test_the_report_counts_the_versions_instances_run_and_those_behind_or_past_support(versions_fleet, ruche):
    result = ruche(*versions_fleet, "report", "--json")
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "text" not in answer and answer["language"] == "fr"
    assert answer["report"]["versions_in_use"] == {
        "behind_after_days": 30, "instances": 4, "behind": 1, "past_end_of_support": 3,
        "services": [{
            "service": "radicale", "name": "Radicale (agendas et contacts)", "new_instances_version": "3.5.3",
            "instances": 4, "behind": 1, "past_end_of_support": 3,
            "versions": [
                {"version": "3.1.8", "new_instances": False, "listed": True, "older": True, "instances": 3,
                 "behind": 1, "end_of_support": "2026-06-10", "support": "ended",
                 "support_days": answer["report"]["versions_in_use"]["services"][0]["versions"][0]["support_days"]},
                {"version": "3.5.3", "new_instances": True, "listed": True, "older": False, "instances": 1,
                 "behind": 0, "end_of_support": "2028-08-09", "support": "supported", "support_days": None},
            ],
        }],
    }  # fmt: skip
    assert answer["report"]["versions_in_use"]["services"][0]["versions"][0]["support_days"] > 0
    table = {line["name"]: line["instances"] for line in answer["report"]["services"]}
    assert table["Radicale (agendas et contacts)"] == 4  # the services' table counts the same instances
    assert "AMAP du coin" not in result.stdout and "amap" not in result.stdout  # counted, never named

    french = ruche(*versions_fleet, "report", "--lang", "fr").stdout
    assert "## Versions en service" in french
    assert (
        "| Radicale (agendas et contacts) | 3.1.8 | 3 (dont 1 depuis plus d'un mois) | terminé le 2026-06-10 |"
        in french
    )
    assert (
        "| Radicale (agendas et contacts) | 3.5.3 (celle des nouvelles instances) | 1 | jusqu'au 2028-08-09 |" in french
    )
    assert (
        "- 1 instance(s) sur une version plus ancienne que celle des nouvelles instances depuis plus d'un mois "
        "(compté depuis le jour où chacune a été créée ou mise à jour vers sa version)." in french
    )
    assert "- 3 instance(s) sur une version dont le suivi par ses développeurs a pris fin." in french
    english = ruche(*versions_fleet, "report", "--lang", "en").stdout
    assert "## Versions in use" in english
    assert (
        "| Radicale (calendars and contacts) | 3.1.8 | 3 (1 on it for more than a month) | ended on 2026-06-10 |"
        in english
    )
    assert "| Radicale (calendars and contacts) | 3.5.3 (the one new instances get) | 1 | until 2028-08-09 |" in english
    assert "- 1 instance(s) on versions older than the one new instances get for more than a month" in english
    assert "- 3 instance(s) on versions whose upstream support has ended." in english

    html = ruche(*versions_fleet, "report", "--lang", "en", "--format", "html").stdout
    assert "<h2>Versions in use</h2>" in html
    assert (
        '<tr><th scope="row">Radicale (calendars and contacts)</th><td>3.1.8</td>'
        "<td>3 (1 on it for more than a month)</td><td>ended on 2026-06-10</td></tr>" in html
    )
    assert "<li>1 instance(s) on versions older than the one new instances get for more than a month" in html
    html_fr = ruche(*versions_fleet, "report", "--lang", "fr", "--format", "html").stdout
    assert "<td>3 (dont 1 depuis plus d&#39;un mois)</td><td>terminé le 2026-06-10</td>" in html_fr
    assert "<li>3 instance(s) sur une version dont le suivi par ses développeurs a pris fin.</li>" in html_fr


def test_versions_are_counted_against_the_reports_date(versions_fleet, workspace, tmp_path):
    """A month is more than 30 days after creation or the last upgrade to the version; support against that day."""
    store = StateStore(open_workspace(workspace).state_url)
    created = datetime(2026, 5, 1, tzinfo=UTC)
    try:
        with store.session() as session:
            for address in ("amap/radicale", "chorale/radicale", "ecole/radicale", "ecole/agenda"):
                get_instance(session, address).created_at = created
            session.execute(delete(Upgrade))
            upgraded = get_instance(session, "ecole/radicale")
            session.add(Upgrade(instance_id=upgraded.id, instance_address="ecole/radicale", service_id="radicale",
                                server="web-1", from_version="3.1.7", to_version="3.1.8", status="succeeded",
                                requested_by="camille", started_at=created + timedelta(days=20),
                                finished_at=None))  # finished_at not recorded: its start counts  # fmt: skip
    finally:
        store.close()

    def versions(now):
        result = transparency_report(workspace, language="en", now=now)
        return result["report"]["versions_in_use"], result["text"]

    figures, text = versions(created + timedelta(days=30))  # exactly 30 days: not more than a month
    assert (figures["behind"], figures["past_end_of_support"]) == (0, 0)
    assert figures["services"][0]["versions"][0]["support"] == "ending"
    assert "| 3.1.8 | 3 | ends on 2026-06-10 (in 10 days) |" in text
    assert "- 0 instance(s) on versions older than the one new instances get for more than a month" in text

    figures, text = versions(created + timedelta(days=30, minutes=1))
    assert figures["behind"] == 2  # amap and chorale; ecole's came to 3.1.8 20 days after its creation
    assert "| 3.1.8 | 3 (2 on it for more than a month) | ends on 2026-06-10 (in 10 days) |" in text

    figures, text = versions(datetime(2026, 6, 11, tzinfo=UTC))  # 41 days after creation, 21 after the upgrade
    assert (figures["behind"], figures["past_end_of_support"]) == (2, 3)
    assert "| 3.1.8 | 3 (2 on it for more than a month) | ended on 2026-06-10 |" in text
    assert "From 2026-05-12 to 2026-06-11 (30 days)." in text  # the period ends on the report's date too

    figures, _text = versions(datetime(2026, 6, 21, 0, 1, tzinfo=UTC))
    assert figures["behind"] == 3 and figures["services"][0]["versions"][1]["behind"] == 0  # 3.5.3: never behind


def test_a_version_the_catalogue_no_longer_lists_is_behind_and_a_newer_one_is_not(versions_fleet, workspace, ruche):
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            get_instance(session, "amap/radicale").service_version = "3.0.0"  # dropped from the catalogue
    finally:
        store.close()
    rows = json.loads(ruche(*versions_fleet, "report", "--json").stdout)["report"]["versions_in_use"]["services"][0]
    assert [(v["version"], v["instances"], v["behind"], v["support"]) for v in rows["versions"]] == [
        ("3.0.0", 1, 1, "unlisted"), ("3.1.8", 2, 0, "ended"), ("3.5.3", 1, 0, "supported")]  # fmt: skip
    assert (
        "| 3.0.0 | 1 (1 on it for more than a month) | no longer in the catalogue |"
        in ruche(*versions_fleet, "report", "--lang", "en").stdout
    )


def test_without_instances_the_part_says_so(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert "Aucune instance ne fonctionne encore." in ruche(*w, "report").stdout
    assert json.loads(ruche(*w, "report", "--json").stdout)["report"]["versions_in_use"] == {
        "behind_after_days": 30, "instances": 0, "behind": 0, "past_end_of_support": 0, "services": []}  # fmt: skip


def test_the_footprint_of_last_month_gives_the_collectives_totals_and_only_agreed_names(fleet, workspace, ruche):
    assert "Non mesurée : l'usage d'aucune instance n'a été enregistré en " in ruche(*fleet, "report").stdout
    start, end = last_full_month(utc_now())
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            session.execute(update(Server).values(created_at=start - timedelta(days=30)))
            for address, cpu_hours_a_day in (("amap/radicale", 3), ("chorale/radicale", 1)):
                instance = get_instance(session, address)
                session.add_all([UsageSample(instance_id=instance.id, taken_at=start + timedelta(days=day, hours=12),
                                             seconds=86400, cpu_delta_usec=cpu_hours_a_day * 3600 * 10**6,
                                             memory_bytes=10**9, disk_bytes=3 * 10**9, database_bytes=10**8, error="")
                                 for day in range((end - start).days)])  # fmt: skip
        with store.session() as session:
            computed = footprint(session, open_workspace(workspace).config, start=start, end=end)
    finally:
        store.close()
    totals = computed["totals"]
    by_slug = {entry["slug"]: entry for entry in computed["associations"]}
    assert totals["energy_kwh"] > 1 and by_slug["amap"]["energy_kwh"] != by_slug["chorale"]["energy_kwh"]

    shown = json.loads(ruche(*fleet, "report", "--json").stdout)["report"]["footprint"]
    for key in ("energy_kwh", "carbon_kg_co2e", "embodied_kg_co2e", "cpu_hours", "backup_gb_months"):
        assert shown["totals"][key] == pytest.approx(totals[key]), key
    assert shown["totals"]["storage_gb_months"] == pytest.approx(
        totals["disk_gb_months"] + totals["database_gb_months"]
    )
    assert shown["associations_counted"] == 2 and shown["month"] == start.strftime("%Y-%m")
    assert [entry["name"] for entry in shown["named"]] == ["AMAP du coin"]  # chorale did not agree to be named

    html = ruche(*fleet, "report", "--lang", "fr", "--format", "html").stdout
    section = html.split("<h2>Empreinte</h2>", 1)[1].split("<h2>", 1)[0]

    def fr(value):
        return _format_number(value, "fr")

    assert "utilisés par les 2 association(s) dont les services ont été mesurés" in section
    assert f"<li>Électricité : {fr(totals['energy_kwh'])} kWh, part du bâtiment (PUE) comprise</li>" in section
    assert f"<li>Gaz à effet de serre de cette électricité : {fr(totals['carbon_kg_co2e'])} kg éq. CO2</li>" in section
    assert f"durée de vie : {fr(totals['embodied_kg_co2e'])} kg éq. CO2</li>" in section
    assert f"<li>Calcul : {fr(totals['cpu_hours'])} heures-CPU</li>" in section
    storage = fr(totals["disk_gb_months"] + totals["database_gb_months"])
    assert f"<li>Stockage : {storage} Go-mois de fichiers et de bases de données" in section
    amap = by_slug["amap"]
    assert (f'<tr><th scope="row">AMAP du coin</th><td>{fr(amap["energy_kwh"])}</td><td>{fr(amap["carbon_kg_co2e"])}'
            f'</td><td>{fr(amap["embodied_kg_co2e"])}</td><td>{fr(amap["cpu_hours"])}</td></tr>') in section  # fmt: skip
    assert "Chorale" not in html and f"<td>{fr(by_slug['chorale']['energy_kwh'])}</td>" not in section
    assert "PUE 1,58" in section and "480 g éq. CO2 (moyenne mondiale)" in section and "docs/footprint.md" in section
    english = ruche(*fleet, "report", "--lang", "en").stdout
    assert "## Footprint" in english and f"- Electricity: {_format_number(totals['energy_kwh'], 'en')} kWh" in english
    assert "| AMAP du coin |" in english and "All constants are ruche's published defaults." in english
