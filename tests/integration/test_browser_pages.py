"""Every page in headless Chromium (Debian's, driven by Playwright) against a real `ruche serve` on
loopback, SQLite state: axe-core finds no WCAG 2.1 A/AA violation in French or English, the forms
work from the keyboard with their labels, and a request's page follows the run without a reload.
(The lab tier's browser test does the whole path onto a real server.)"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from orchestrator.actions.admin import add as add_admin
from orchestrator.actions.association_invite import invite
from orchestrator.state.database import StateStore
from orchestrator.state.models import BackupRun, Instance, utc_now
from orchestrator.state.queue import beat, claim_next, finish
from orchestrator.workspace import open_workspace
from tests.browser import accessibility_violations, chromium, free_port, served, use_loopback_web_settings
from tests.helpers import serve_lab_images_from

PASSWORD = "un mot de passe assez long"


@pytest.fixture(scope="module")
def site(tmp_path_factory, ruche_module):
    """A served workspace (one server, association "amap" on an offer, an admin) and amap's invite link."""
    path = tmp_path_factory.mktemp("browser") / "workspace"
    w = ["--workspace", str(path)]
    assert (
        ruche_module("init", str(path), "--collective", "Les Chatons du coin", "--domain", "coin.example.org").exit_code
        == 0
    )
    use_loopback_web_settings(path, free_port())
    serve_lab_images_from(path)
    assert (
        ruche_module(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code
        == 0
    )
    added = ruche_module(
        *w, "association", "add", "amap", "--name", "AMAP du coin", "--email", "c@amap.fr", "--offer", "association"
    )
    assert added.exit_code == 0, added.stderr
    add_admin(path, "camille", PASSWORD)
    link = json.loads(ruche_module(*w, "association", "invite", "amap", "--json").stdout)["link"]
    with served(path, path.parent / "serve.log") as base, chromium() as browser:
        yield path, base, link, browser


@pytest.fixture
def page(site):
    _path, _base, _link, browser = site
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


def new_link(path) -> str:
    """A new invite link of amap: a link opens one session only, and each test's browser context needs its own."""
    return invite(path, "amap")["link"]


def assert_accessible(page) -> None:
    violations = accessibility_violations(page)
    assert violations == [], f"{page.url}:\n" + "\n".join(violations)


def test_public_pages_have_no_accessibility_violation_in_french_or_english(site, page):
    _path, base, _link, _browser = site
    for path in ("/", "/rejoindre", "/admin/connexion", "/connexion/not-a-valid-token", "/nulle-part", "/deconnexion"):
        for lang in ("fr", "en"):
            page.goto(f"{base}{path}?lang={lang}")
            assert page.locator("html").get_attribute("lang") == lang
            assert_accessible(page)
    page.goto(f"{base}/rejoindre?lang=fr")
    page.get_by_label("Nom de l'association").fill("AMAP du coin")
    page.get_by_role("button", name="Envoyer").click()  # the browser itself stops a form missing required fields
    assert page.url == f"{base}/rejoindre?lang=fr"
    assert page.get_by_label("Nom court").evaluate("field => field.validity.valueMissing")
    page.get_by_label("Nom court").fill("amap")  # already registered: the server says it cannot be used, naming nobody
    page.get_by_label("Adresse e-mail de contact").fill("contact@amap.example")
    page.get_by_role("button", name="Envoyer").click()
    assert "ne peut pas être utilisé" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Nom de l'association").input_value() == "AMAP du coin"  # nothing typed is lost
    assert_accessible(page)


def test_a_member_uses_the_keyboard_and_labels_and_every_page_passes_axe(site, page):
    path, base, _link, _browser = site
    page.goto(new_link(path))
    assert page.url == f"{base}/espace"
    assert page.get_by_role("heading", level=1).inner_text() == "Espace de AMAP du coin"
    assert_accessible(page)
    page.keyboard.press("Tab")  # the first stop is the skip link, visible when focused
    skip = page.get_by_role("link", name="Aller au contenu")
    assert skip.evaluate("element => element === document.activeElement") and skip.is_visible()

    page.get_by_role("link", name="Demander un service").click()
    assert_accessible(page)
    page.get_by_role("link", name=re.compile("^Radicale")).click()
    assert_accessible(page)
    page.get_by_label("Nom du service").fill("../agenda")
    page.get_by_label("Identifiant du compte principal").fill("jardinier")
    page.get_by_label("Identifiant du compte principal").press("Enter")  # submit from the keyboard: the browser
    assert "/espace/demande/radicale" in page.url  # checks the name's pattern first
    assert page.get_by_label("Nom du service").evaluate("field => field.validity.patternMismatch")
    page.get_by_label("Nom du service").fill("agenda")
    page.get_by_label("Taille").select_option("small")
    page.get_by_role("button", name="Envoyer la demande").click()
    page.wait_for_url(re.compile(r"/espace/demandes/\d+"))
    assert "Demande envoyée" in page.get_by_role("status").inner_text()
    assert_accessible(page)

    page.go_back()  # the same name again: the server refuses it, the form keeps what was typed
    page.get_by_role("button", name="Envoyer la demande").click()
    alert = page.get_by_role("alert")
    assert (
        "agenda" in alert.inner_text()
        and page.get_by_label("Identifiant du compte principal").input_value() == "jardinier"
    )
    assert_accessible(page)

    page.goto(f"{base}/espace?lang=en")
    assert page.get_by_role("heading", level=1).inner_text() == "AMAP du coin's space"
    assert_accessible(page)
    (entry,) = [
        r for r in json.loads(page.evaluate("fetch('/api/v1/requests').then(r => r.text())")) if r["name"] == "agenda"
    ]
    assert (entry["parameters"], entry["state"]) == ({"admin_user": "jardinier"}, "pending")


def request_radicale(site, page, name: str) -> None:
    """Sign ``page`` in as amap's member and request Radicale named ``name`` with the form."""
    path, base, _link, _browser = site
    page.goto(new_link(path))
    page.goto(f"{base}/espace/demande/radicale")
    page.get_by_label("Nom du service").fill(name)
    page.get_by_role("button", name="Envoyer la demande").click()


def test_an_admin_signs_in_and_the_review_page_passes_axe(site, page):
    _path, base, _link, _browser = site
    request_radicale(site, page, "carnet")

    admin = page.context.browser.new_context(locale="fr-FR").new_page()
    admin.goto(f"{base}/admin/connexion")
    admin.get_by_label("Identifiant").fill("camille")
    admin.get_by_label("Mot de passe").fill(PASSWORD)
    admin.get_by_label("Mot de passe").press("Enter")
    admin.wait_for_url(f"{base}/admin")  # the sign-in posts, then is redirected: wait for the page to load
    admin.wait_for_load_state()
    assert admin.url == f"{base}/admin"
    assert "carnet" in admin.content()
    assert_accessible(admin)
    admin.context.close()


def test_the_request_page_follows_the_run_without_a_reload(site, page, ruche):
    path, _base, _link, _browser = site
    request_radicale(site, page, "suivi")
    request_id = page.url.split("/")[-1].split("?")[0]
    status = page.locator("#suivi")
    assert "en attente" in status.inner_text()
    page.evaluate("window.reloaded = false")  # survives only if the page is not reloaded

    approved = ruche("--workspace", str(path), "request", "approve", request_id, "--json")
    assert approved.exit_code == 0, approved.stderr
    store = StateStore(open_workspace(path).state_url)
    try:
        run = claim_next(store, "browser-test")
        assert run.id == json.loads(approved.stdout)["queued_run"]
        beat(store, run.id, "browser-test", progress="task: Start amap-suivi's unit")
        expect(status).to_contain_text(
            "Start amap-suivi's unit", timeout=15000
        )  # polled by Playwright (the CSP forbids eval)
        assert "en cours d'installation" in status.inner_text()
        finish(store, run.id, "browser-test", succeeded=True, run_identifier="r-1", result={})
    finally:
        store.close()
    expect(status).to_contain_text("installée", timeout=15000)
    assert page.evaluate("window.reloaded") is False
    assert status.get_by_role("link").get_attribute("href") == "https://suivi.amap.coin.example.org/"
    assert_accessible(page)


def page_width(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def test_every_page_fits_a_phone_360_px_wide_without_sideways_scrolling(site, ruche):
    """At 360x740 (a small phone) no page is wider than the screen: each service is a card, headers and forms
    wrap; the member's space in English too (the_space_answers_in_english)."""
    path, base, _link, browser = site
    context = browser.new_context(locale="fr-FR", viewport={"width": 360, "height": 740})
    try:
        member = context.new_page()
        request_radicale(site, member, "telephone-et-agenda-partage")
        request_id = member.url.split("/")[-1].split("?")[0]
        approved = ruche("--workspace", str(path), "request", "approve", request_id, "--json")
        assert approved.exit_code == 0, approved.stderr  # its instance is planned: a row of the services table
        for address in ("/espace", "/espace/demande", "/espace/demande/radicale", f"/espace/demandes/{request_id}",
                        "/", "/rejoindre", "/admin/connexion", "/nulle-part"):  # fmt: skip
            member.goto(f"{base}{address}")
            if address == "/espace":  # each service a card (a list item under its heading)
                assert member.get_by_role("heading", name=re.compile("^telephone-et-agenda-partage")).is_visible()
            scroll_width, inner_width = page_width(member)
            assert scroll_width <= inner_width == 360, (address, scroll_width)
        member.goto(f"{base}/espace")
        assert_accessible(member)
        the_space_answers_in_english(site, member, ruche)  # the same session (sign-ins are limited per address)
        admin = context.new_page()  # the same cookies: its session replaces the member's
        admin.goto(f"{base}/admin/connexion?lang=fr")
        admin.get_by_label("Identifiant").fill("camille")
        admin.get_by_label("Mot de passe").fill(PASSWORD)
        admin.get_by_label("Mot de passe").press("Enter")
        admin.wait_for_url(f"{base}/admin")
        admin.wait_for_load_state()
        scroll_width, inner_width = page_width(admin)
        assert scroll_width <= inner_width == 360, ("/admin", scroll_width)
        assert_accessible(admin)
    finally:
        context.close()


def test_a_manager_invites_a_member_and_deletes_a_service_at_phone_width_and_the_pages_pass_axe(site, ruche):
    """The association's manager's pages (issue 24, item 2) at 360 px in French and English, the admins' members
    page too: axe finds nothing, the forms work from their labels, no page is wider than the screen."""
    path, base, _link, browser = site
    created = ruche(
        "--workspace", str(path), "instance", "create", "amap", "radicale", "--name", "gestion", "--over-quota"
    )
    assert created.exit_code == 0, created.stderr
    lead = invite(path, "amap", name="Camille", manager=True)
    context = browser.new_context(locale="fr-FR", viewport={"width": 360, "height": 740})

    def fits_and_passes(page) -> None:
        scroll_width, inner_width = page_width(page)
        assert scroll_width <= inner_width == 360, (page.url, scroll_width)
        assert_accessible(page)

    try:
        page = context.new_page()
        page.goto(lead["link"])
        page.get_by_role("link", name="Gérer l'association : membres, services, journal").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Gérer AMAP du coin")
        fits_and_passes(page)
        page.get_by_label("Nom du membre").fill("Dominique")
        page.get_by_label("Adresse e-mail du membre").fill("dominique@amap.example")
        page.get_by_role("button", name="Créer un lien de connexion").click()
        assert "Lien de connexion pour Dominique" in page.get_by_role("status").inner_text()
        assert "/connexion/" in page.get_by_label("Lien de connexion").input_value()
        fits_and_passes(page)

        store = StateStore(open_workspace(path).state_url)  # running: its card takes an own domain (issue 25)
        try:
            with store.session() as session:
                session.scalar(select(Instance).where(Instance.name == "gestion")).state = "running"
        finally:
            store.close()
        page.goto(f"{base}/espace/gestion")
        card = page.locator("li.card", has=page.get_by_role("heading", name="gestion (radicale)"))
        card.get_by_label("Utiliser notre propre nom de domaine").fill("gestion.amap-du-coin.test")
        card.get_by_role("button", name="Utiliser ce domaine pour gestion").click()
        expect(page.get_by_role("status")).to_contain_text("« gestion.amap-du-coin.test » est enregistré")
        expect(card).to_contain_text("_ruche.gestion.amap-du-coin.test")
        fits_and_passes(page)

        card.get_by_label("Pour le supprimer, tapez son nom : gestion").fill("gestion")
        card.get_by_role("button", name="Supprimer").click()
        expect(page.get_by_role("status")).to_contain_text("Le service sera supprimé")
        assert (
            "à supprimer"
            in page.locator("li.card", has=page.get_by_role("heading", name="gestion (radicale)")).inner_text()
        )
        fits_and_passes(page)
        page.get_by_role("link", name="Le journal de l'association").click()
        page.wait_for_url(f"{base}/espace/gestion/journal")  # content() read while the page loads is empty
        expect(page.get_by_role("main")).to_contain_text("service à supprimer")
        expect(page.get_by_role("main")).to_contain_text("manager Camille of amap")
        fits_and_passes(page)
        for address in ("/espace/gestion?lang=en", "/espace/gestion/journal?lang=en"):
            page.goto(f"{base}{address}")
            assert page.locator("html").get_attribute("lang") == "en"
            fits_and_passes(page)

        admin = context.new_page()
        admin.goto(f"{base}/admin/connexion?lang=fr")
        admin.get_by_label("Identifiant").fill("camille")
        admin.get_by_label("Mot de passe").fill(PASSWORD)
        admin.get_by_label("Mot de passe").press("Enter")
        admin.wait_for_url(f"{base}/admin")
        admin.get_by_role("link", name="Membres des associations").click()
        dominique = admin.locator("li.card", has=admin.get_by_role("heading", name="Dominique"))
        dominique.get_by_role("button", name="Nommer gestionnaire").click()
        expect(admin.get_by_role("status")).to_contain_text("maintenant gestionnaire")
        fits_and_passes(admin)
    finally:
        context.close()


def the_space_answers_in_english(site, member, ruche) -> None:
    """The member's space at 360 px in English (``member``: a page signed in, of that width): each service by its
    name with what it is for, its address once it runs, health and last backup in words, the offer's figures as
    named bars; no sideways scrolling, no axe violation."""
    path, base, _link, _browser = site
    created = ruche("--workspace", str(path), "instance", "create", "amap", "radicale", "--name", "carnet-de-chants")
    assert created.exit_code == 0, created.stderr
    store = StateStore(open_workspace(path).state_url)
    try:
        with store.session() as session:
            instance = session.scalar(select(Instance).where(Instance.name == "carnet-de-chants"))
            instance.state, instance.health, instance.health_checked_at = "running", "healthy", utc_now()
            saved = utc_now() - timedelta(hours=3, minutes=10)
            session.add(BackupRun(instance_id=instance.id, instance_address=instance.address, server="web-1", kind="backup",
                                  reason="scheduled", status="success", started_at=saved, finished_at=saved))  # fmt: skip
    finally:
        store.close()
    member.goto(f"{base}/espace?lang=en")
    card = member.get_by_role("listitem").filter(
        has=member.get_by_role("heading", name=re.compile("^carnet-de-chants"))
    )
    assert "Radicale" in card.get_by_role("heading", level=3).inner_text()  # level 4: its own domains
    text = card.inner_text().replace("\u00a0", " ")
    assert "backed up 3 hr. ago" in text and "answers (checked" in text
    assert card.get_by_role("link").get_attribute("href") == "https://carnet-de-chants.amap.coin.example.org/"
    meters = member.locator("meter")
    assert meters.count() == 3
    assert member.get_by_label(re.compile("^Memory: \\d+ MiB of \\d+ MiB$")).evaluate("m => m.tagName") == "METER"
    assert "small: 128 MiB of memory, 1 GiB of disk" in member.get_by_role("main").inner_text().replace("\u00a0", " ")
    scroll_width, inner_width = page_width(member)
    assert scroll_width <= inner_width == 360, ("/espace", scroll_width)
    assert_accessible(member)
