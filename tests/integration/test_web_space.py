"""The member's space answers the member's questions (issue 24, item 3), and the rest of the probe's finding 9:
each service by its name and purpose, its address once it runs, health and last good backup in words, the
offer as bars with what the sizes mean, updates; old rate-limit rows and expired sessions removed; API
timestamps in UTC with their offset; the CSRF token from a JSON endpoint; `ruche init --base-url`; another
association's link never replaces a session silently; success notices in their own box; a 413 page; the
association's own footprint of the last full month (issue 28), never another's, "not measured yet" without samples."""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from datetime import timedelta

from sqlalchemy import select, update

from orchestrator.operations.footprint import footprint, last_full_month
from orchestrator.state.database import StateStore
from orchestrator.state.instances import get_instance
from orchestrator.state.models import (
    Association,
    BackupRun,
    Instance,
    RateLimitHit,
    RateLimitKey,
    Server,
    Upgrade,
    UsageSample,
    WebSession,
    utc_now,
)
from orchestrator.state.rate_limits import hit
from orchestrator.web import space
from orchestrator.web.space import amount
from orchestrator.workspace import open_workspace
from tests.integration.test_web import admin_client, client_for, csrf_of, fleet, signed_in  # noqa: F401 (fixture)

OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def words(response) -> str:
    """A page's text with Babel's no-break spaces as plain ones ("il y a 3\u00a0h")."""
    return response.text.replace("\u00a0", " ").replace("\u202f", " ")


def state_of(workspace) -> StateStore:
    return StateStore(open_workspace(workspace).state_url)


def test_the_space_names_each_service_its_backup_in_words_and_the_offer_as_bars(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    assert ruche(*w, "instance", "create", "amap", "radicale", "--name", "agenda", "--version", "3.1.8").exit_code == 0
    opened = open_workspace(workspace)  # updates only at night (read when the app starts)
    offers = dict(opened.config.offers)
    offers["association"] = offers["association"].model_copy(update={"maintenance_window": "22:00-06:00"})
    opened.edit_config({"offers": offers})
    member = signed_in(workspace, links["amap"])
    planned = words(member.get("/espace"))
    assert "agenda — Radicale" in planned and "(radicale)" not in planned  # its name, not its catalogue id
    assert "Agenda et carnet" in planned or "agenda" in planned.lower()
    assert "https://agenda.amap." not in planned and "attribuée une fois qu&#39;il fonctionne" in planned
    assert "pas encore sauvegardé" in planned and "pas encore vérifiée" in planned
    assert "Aucune mise à jour pour l&#39;instant" in planned

    store = state_of(workspace)
    try:
        with store.session() as session:
            instance = session.scalar(select(Instance).where(Instance.name == "agenda"))
            instance.state, instance.health = "running", "healthy"
            instance.health_checked_at = utc_now() - timedelta(minutes=5)
            three_hours = utc_now() - timedelta(hours=3)
            session.add(
                BackupRun(
                    instance_id=instance.id,
                    instance_address="amap/agenda",
                    server="web-1",
                    kind="backup",
                    reason="scheduled",
                    status="success",
                    started_at=three_hours,
                    finished_at=three_hours,
                )
            )
            session.add(
                BackupRun(
                    instance_id=instance.id,
                    instance_address="amap/agenda",
                    server="web-1",
                    kind="backup",
                    reason="scheduled",
                    status="failed",
                    started_at=utc_now(),
                    finished_at=utc_now(),
                )
            )
            session.add(Upgrade(instance_id=instance.id, instance_address="amap/agenda", service_id="radicale",
                                server="web-1", from_version="3.1.8", to_version="3.5.3", status="running", step="pull",
                                requested_by="admin", started_at=utc_now(), detail={}))  # fmt: skip
    finally:
        store.close()
    page = words(member.get("/espace"))
    assert '<a href="https://agenda.amap.test.example.org/">' in page  # the address, now that it runs
    assert "sauvegardé il y a 3 h" in page  # the last good backup, not the failed one after it
    assert "répond (vérifiée il y a 5 min)" in page
    assert "Maintenance en cours : mise à jour en cours vers 3.5.3." in page
    # the offer "association": 1 service of 10, 128 MiB of 4096 MiB, 1 GiB of 50 GiB, as bars with their text
    offer = open_workspace(workspace).config.offers["association"]
    meters = re.findall(r'<label for="meter-(\w+)">([^<]+)</label>\s*<meter id="meter-\1" min="0" max="(\d+)" value="(\d+)"',
                        page)  # fmt: skip
    assert [(key, int(top), int(value)) for key, _text, top, value in meters] == [
        ("instances", offer.max_instances, 1),
        ("memory", offer.memory_mb, 128),
        ("disk", offer.disk_gb, 1),
    ]
    assert meters[1][1] == f"Mémoire : 128 Mio sur {offer.memory_mb} Mio"
    assert "petite : 128 Mio de mémoire, 1 Gio de disque" in page and "grande : 512 Mio de mémoire" in page

    english = words(member.get("/espace?lang=en"))
    assert "backed up 3 hr. ago" in english and "Maintenance under way: update to 3.5.3 in progress" in english
    assert "Memory: 128 MiB of" in english and "small: 128 MiB of memory, 1 GiB of disk" in english
    form = member.get("/espace/demande/radicale?lang=en").text  # the request form says what each size gives
    assert '<option value="medium">medium: 256 MiB of memory, 5 GiB of disk</option>' in form

    store = state_of(workspace)
    try:
        with store.session() as session:
            session.execute(update(Upgrade).values(status="succeeded", finished_at=utc_now()))
    finally:
        store.close()
    done = words(member.get("/espace?lang=en"))
    assert "Last update: updated to 3.5.3 on" in done and "No other update is planned yet." in done
    assert "Updates of your services happen between 22:00 and 06:00 (UTC)" in done
    (listed,) = member.get("/api/v1/instances").json()
    assert OFFSET.match(listed["last_backup"]) and OFFSET.match(listed["upgrade"]["at"])


def test_rate_limit_rows_past_their_window_are_removed_by_the_next_hits(fleet, workspace):  # noqa: F811
    store = state_of(workspace)
    try:
        with store.session() as session:
            for n in range(3):
                assert hit(session, name="sign-in", key=f"192.0.2.{n}", limit=10, window_seconds=60)
            assert hit(session, name="join", key="192.0.2.9", limit=5, window_seconds=600)
        with store.session() as session:  # two of them a day old
            old = utc_now() - timedelta(days=1)
            keys = {k.key: k.id for k in session.scalars(select(RateLimitKey))}
            session.execute(update(RateLimitHit).where(RateLimitHit.key_id.in_([keys["192.0.2.0"], keys["192.0.2.1"]]))
                            .values(at=old))  # fmt: skip
        with store.session() as session:
            assert hit(session, name="sign-in", key="198.51.100.1", limit=10, window_seconds=60)
        with store.session() as session:
            left = sorted(k.key for k in session.scalars(select(RateLimitKey)))
            assert left == ["192.0.2.2", "192.0.2.9", "198.51.100.1"]  # another limiter's keys are its own
            assert session.scalar(select(RateLimitHit).where(RateLimitHit.at <= utc_now() - timedelta(hours=1))) is None
    finally:
        store.close()


def test_a_sign_in_removes_the_expired_sessions(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    store = state_of(workspace)
    try:
        with store.session() as session:
            session.execute(update(WebSession).values(expires_at=utc_now() - timedelta(minutes=1)))
            assert len(list(session.scalars(select(WebSession)))) == 1
    finally:
        store.close()
    assert member.get("/espace", follow_redirects=False).status_code == 303  # expired: it only stopped working
    signed_in(workspace, links["chorale"])  # a sign-in removes the expired sessions
    store = state_of(workspace)
    try:
        with store.session() as session:
            sessions = list(session.scalars(select(WebSession)))
            assert [s.association.slug for s in sessions] == ["chorale"]
    finally:
        store.close()


def test_every_api_timestamp_is_iso_8601_in_utc_with_its_offset(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    token = csrf_of(member.get("/espace").text)
    created = member.post(
        "/api/v1/requests", json={"service": "radicale", "name": "agenda"}, headers={"X-CSRF-Token": token}
    )
    assert created.status_code == 201
    for entry in (created.json(), member.get("/api/v1/requests").json()[0],
                  member.get(f"/api/v1/requests/{created.json()['id']}").json()):  # fmt: skip
        assert OFFSET.match(entry["created_at"]) and OFFSET.match(entry["updated_at"]), entry
    (listed,) = json.loads(ruche(*w, "request", "list", "--json").stdout)
    assert OFFSET.match(listed["created_at"])


def test_an_api_client_gets_its_csrf_token_from_a_json_endpoint_and_writes_still_need_it(fleet, workspace):  # noqa: F811
    _w, links = fleet
    assert client_for(workspace).get("/api/v1/session").status_code == 401
    member = signed_in(workspace, links["amap"])
    described = member.get("/api/v1/session")
    assert described.status_code == 200 and described.headers["cache-control"] == "no-store"
    body = described.json()
    assert set(body) == {"association", "csrf_token", "expires_at"} and body["association"] == "amap"
    assert body["csrf_token"] == csrf_of(member.get("/espace").text) and OFFSET.match(body["expires_at"])
    refused = member.post("/api/v1/requests", json={"service": "radicale"})
    assert refused.status_code == 403 and "GET /api/v1/session" in refused.json()["detail"]
    sent = member.post("/api/v1/requests", json={"service": "radicale"}, headers={"X-CSRF-Token": body["csrf_token"]})
    assert sent.status_code == 201
    assert "/api/v1/session" in member.get("/api/openapi.json").json()["paths"]


def test_ruche_init_writes_the_web_apps_address_invite_links_name(tmp_path, ruche, monkeypatch):
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD", "un mot de passe de coffre assez long")
    assert ruche("init", str(tmp_path / "a"), "--domain", "chatons.example.org").exit_code == 0
    written = tomllib.loads((tmp_path / "a" / "ruche.toml").read_text())
    assert written["web"]["base_url"] == "https://ruche.chatons.example.org"
    assert ruche("init", str(tmp_path / "b"), "--base-url", "https://espace.example.net").exit_code == 0
    assert tomllib.loads((tmp_path / "b" / "ruche.toml").read_text())["web"]["base_url"] == "https://espace.example.net"
    refused = ruche("init", str(tmp_path / "c"), "--base-url", "ftp://x")
    assert (
        refused.exit_code == 2
        and "--base-url 'ftp://x'" in refused.stderr
        and not (tmp_path / "c" / "ruche.toml").exists()
    )


def test_another_associations_link_asks_to_sign_out_first_and_stays_unused(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    other = member.get(links["chorale"].split("8080", 1)[1], follow_redirects=False)
    assert other.status_code == 409 and "Vous êtes connecté·e à l&#39;espace de Amap" in other.text
    assert 'action="/deconnexion"' in other.text and "ruche_session" not in other.headers.get("set-cookie", "")
    assert "Espace de Amap" in member.get("/espace").text  # still amap's session
    admin = admin_client(workspace)
    as_admin = admin.get(links["chorale"].split("8080", 1)[1], follow_redirects=False)
    assert as_admin.status_code == 409 and "administrateur·rice camille" in as_admin.text
    signed_out = member.post("/deconnexion", data={"csrf_token": csrf_of(member.get("/espace").text)})
    assert signed_out.status_code == 200
    assert signed_in(workspace, links["chorale"]).get("/espace").text.count("Espace de Chorale") >= 1  # still unused


def test_a_success_notice_is_a_status_in_its_own_style_not_the_error_box(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    form = member.get("/espace/demande/radicale")
    member.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small"})
    (entry,) = member.get("/api/v1/requests").json()
    admin = admin_client(workspace)
    approved = admin.post(
        f"/admin/demandes/{entry['id']}/approuver", data={"csrf_token": csrf_of(admin.get("/admin").text)}
    )
    assert approved.status_code == 200 and "Demande approuvée" in approved.text
    assert (
        '<p role="status" class="notice">Demande approuvée' in approved.text and 'class="errors"' not in approved.text
    )
    again = admin.post(
        f"/admin/demandes/{entry['id']}/approuver", data={"csrf_token": csrf_of(admin.get("/admin").text)}
    )
    assert again.status_code == 409 and 'role="alert" class="errors"' in again.text  # a refusal keeps the alert box


def test_a_body_too_large_answers_the_sites_page_and_the_api_json(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    page = member.post("/espace/demande/radicale?lang=en", data={"csrf_token": "x", "name": "a" * (1024 * 1024)})
    assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text and "too large (more than 64 KiB)" in page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    french = client_for(workspace).post(
        "/rejoindre", content=b"x" * (1024 * 1024), headers={"content-type": "text/plain"}
    )
    assert french.status_code == 413 and "trop volumineux" in french.text and 'href="/static/style.css"' in french.text
    api = member.post("/api/v1/requests", content=b"{" + b" " * (1024 * 1024) + b"}",
                      headers={"content-type": "application/json"})  # fmt: skip
    assert api.status_code == 413 and "too large (more than 64 KiB)" in api.json()["detail"]  # its ?lang=en cookie


def test_the_space_shows_its_own_footprint_of_last_month_and_never_anothers(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    for slug in ("amap", "chorale"):
        assert ruche(*w, "instance", "create", slug, "radicale").exit_code == 0
    member = signed_in(workspace, links["amap"])
    nothing = words(member.get("/espace"))  # no sample yet: said so, no zeros
    assert "L&#39;empreinte de vos services" in nothing and "Pas encore mesurée pour " in nothing
    assert "kWh" not in nothing
    start, end = last_full_month(utc_now())
    days = (end - start).days
    store = state_of(workspace)
    try:
        with store.session() as session:
            session.execute(update(Server).values(created_at=start - timedelta(days=30)))
            for address, cpu_hours_a_day in (("amap/radicale", 2), ("chorale/radicale", 5)):
                instance = get_instance(session, address)
                session.add_all([UsageSample(instance_id=instance.id, taken_at=start + timedelta(days=day, hours=12),
                                             seconds=86400, cpu_delta_usec=cpu_hours_a_day * 3600 * 10**6,
                                             memory_bytes=10**9, disk_bytes=2 * 10**9, database_bytes=0, error="")
                                 for day in range(days)])  # fmt: skip
        with store.session() as session:
            config = open_workspace(workspace).config
            ids = {a.slug: a.id for a in session.scalars(select(Association))}
            own = {slug: footprint(session, config, start=start, end=end, association_id=ids[slug])["associations"][0]
                   for slug in ("amap", "chorale")}  # fmt: skip
            totals = footprint(session, config, start=start, end=end)["totals"]
    finally:
        store.close()
    assert own["amap"]["energy_kwh"] > 0 and own["amap"]["cpu_hours"] == 2 * days
    kwh = {slug: amount(own[slug]["energy_kwh"], "fr") for slug in own}  # as the page writes figures
    assert kwh["amap"] != kwh["chorale"]
    assert "Pas encore mesurée" in words(member.get("/espace"))  # kept a while by the app: a month is computed once
    member.app.state.web.kept.clear()
    page = words(member.get("/espace"))
    assert f"<dt>Électricité</dt><dd>{kwh['amap']} kWh, refroidissement" in page
    assert f"<dd>{2 * days} heures de travail de processeur" in page and "Fabrication" in page
    assert "Ce sont des estimations" in page and "multipliée par 1,58" in page
    total_kwh = amount(totals["energy_kwh"], "fr")
    assert f"{kwh['chorale']} kWh" not in page and f"{total_kwh} kWh" not in page  # never another's, nor the fleet's
    english = words(member.get("/espace?lang=en"))
    amap_en = amount(own["amap"]["energy_kwh"], "en")
    assert "Your services&#39; footprint" in english and f"<dd>{amap_en} kWh, cooling and the rest" in english
    assert "These are estimates" in english and "g CO2e (world average)" in english  # web-1 has no country label
    other = words(signed_in(workspace, links["chorale"]).get("/espace"))
    assert f"{kwh['chorale']} kWh" in other and f"{kwh['amap']} kWh" not in other


def test_a_large_fleets_footprint_is_computed_beside_the_page_which_says_so_meanwhile(fleet, workspace, monkeypatch):  # noqa: F811
    """Past FOOTPRINT_INLINE_INSTANCES (here -1) the month is computed in a thread: the page answers at once, saying
    the figures are being computed, and shows what was computed once the thread is done."""
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    monkeypatch.setattr(space, "FOOTPRINT_INLINE_INSTANCES", -1)  # even a fleet of no instance
    computed = threading.Event()
    real = space.footprint

    def slow_footprint(*args, **kwargs):
        computed.wait(30)  # held until the page has answered
        return real(*args, **kwargs)

    monkeypatch.setattr(space, "footprint", slow_footprint)
    assert "sont en cours de calcul" in words(member.get("/espace"))
    computed.set()
    for _ in range(100):
        if not space._footprint_computing:
            break
        time.sleep(0.1)
    page = words(member.get("/espace"))
    assert "sont en cours de calcul" not in page and "Pas encore mesurée" in page  # nothing measured in this fleet
