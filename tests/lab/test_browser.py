"""The whole path in a browser, onto the lab: a member signs in with an invite link in headless
Chromium, requests Radicale (a file-based service) with a parameter, an admin approves from the
CLI, `ruche worker` provisions it on a lab server, and the member's pages show it running with
its URL, which the browser then opens and gets Radicale's own page from."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.browser import accessibility_violations, chromium, free_port, served, use_loopback_web_settings
from tests.lab.servers import address_of, on

W = "--workspace"


@pytest.fixture
def worker(lab, tmp_path):
    """A `ruche worker` running beside the test (stopped with SIGTERM at the end)."""
    log = tmp_path / "worker.log"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", W, str(lab), "worker", "--poll", "0.5", "--watch", "0"],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    yield log
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_member_requests_a_service_in_the_browser_and_gets_it_running_on_the_lab(lab, ruche, worker, tmp_path):
    w = [W, str(lab)]
    use_loopback_web_settings(lab, free_port())
    added = ruche(*w, "association", "add", "potager", "--name", "Le potager", "--email", "contact@potager.example",
                  "--offer", "association")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    link = json.loads(
        ruche(*w, "association", "invite", "potager", "--email", "membre@potager.example", "--json").stdout
    )["link"]

    with served(lab, tmp_path / "serve.log") as base, chromium() as browser:
        page = browser.new_context(locale="fr-FR").new_page()
        page.goto(link)
        assert page.url == f"{base}/espace"
        page.get_by_role("link", name="Demander un service").click()
        page.get_by_role("link", name=re.compile("^Radicale")).click()
        page.get_by_label("Nom du service").fill("agenda")
        page.get_by_label("Identifiant du compte principal").fill("jardinier")
        page.get_by_role("button", name="Envoyer la demande").click()
        status = page.locator("#suivi")
        expect(status).to_contain_text("en attente")
        request_id = re.search(r"/espace/demandes/(\d+)", page.url).group(1)

        approved = ruche(*w, "request", "approve", request_id, "--json")  # the admin, in a shell
        assert approved.exit_code == 0, approved.stderr
        # the page follows without a reload: the worker's progress, then the end
        expect(status).to_contain_text("en cours d'installation", timeout=30_000)
        expect(status).to_contain_text("installée", timeout=600_000)
        assert accessibility_violations(page) == []

        page.goto(f"{base}/espace")
        card = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=re.compile("^agenda")))
        expect(card).to_contain_text("en service")
        expect(card).to_contain_text("répond")
        url = card.get_by_role("link").get_attribute("href")
        assert url == "https://agenda.potager.lab.ruche.test/"

    shown = json.loads(ruche(*w, "request", "show", request_id, "--json").stdout)
    kinds = [e["kind"] for e in shown["history"]]
    assert shown["state"] == "done" and kinds.count("request.done") == 1, worker.read_text()[-3000:]
    instance = {e["address"]: e for e in json.loads(ruche(*w, "status", "--json").stdout)}["potager/agenda"]
    server = instance["server"]
    assert "RADICALE_ADMIN_USER=jardinier\n" in on(
        lab, server, "cat", "/srv/ruche/potager/agenda/env/app.env"
    )  # the form's parameter

    # The link answers: the browser opens it, the name resolved to the lab server (the lab's own CA).
    with chromium(f"--host-resolver-rules=MAP agenda.potager.lab.ruche.test {address_of(lab, server)}") as browser:
        page = browser.new_context(ignore_https_errors=True).new_page()
        response = page.goto(url)
        assert response is not None and response.ok, response and response.status
        assert "Radicale" in page.title() or "Radicale" in page.content()
