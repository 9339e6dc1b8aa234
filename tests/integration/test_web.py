"""The web app over HTTP (in-process ASGI client), on SQLite and PostgreSQL: sign-in by invite link,
members see only their own association, forms need their CSRF token, hostile values change nothing."""

import json
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from orchestrator.actions.admin import add as add_admin
from orchestrator.state.database import StateStore
from orchestrator.state.queue import beat, claim_next, finish
from orchestrator.web.app import create_app
from orchestrator.workspace import open_workspace


@pytest.fixture
def fleet(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    for slug in ("amap", "chorale"):
        assert (
            ruche(
                *w,
                "association",
                "add",
                slug,
                "--name",
                slug.title(),
                "--email",
                f"c@{slug}.fr",
                "--offer",
                "association",
            ).exit_code
            == 0
        )
    links = {
        slug: json.loads(ruche(*w, "association", "invite", slug, "--json").stdout)["link"]
        for slug in ("amap", "chorale")
    }
    return w, links


def client_for(workspace) -> TestClient:
    return TestClient(create_app(workspace), base_url="https://testserver")


def signed_in(workspace, link: str) -> TestClient:
    client = client_for(workspace)
    response = client.get(link.split("8080", 1)[1], follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/espace"
    assert "HttpOnly" in response.headers["set-cookie"] and "Secure" in response.headers["set-cookie"]
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_a_member_signs_in_with_the_link_and_requests_a_service_in_french(fleet, workspace, ruche):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    page = client.get("/espace")
    assert page.status_code == 200 and '<html lang="fr">' in page.text and "Espace de Amap" in page.text
    form = client.get("/espace/demande/radicale")
    assert 'for="param_admin_user"' in form.text and 'id="param_admin_user"' in form.text  # every field is labelled
    sent = client.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small",
                                                        "param_admin_user": "camille"}, follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303
    shown = client.get(sent.headers["location"])
    assert "Demande envoyée" in shown.text and "en attente" in shown.text
    (entry,) = json.loads(ruche(*w, "request", "list", "--json").stdout)
    assert (entry["association"], entry["name"], entry["parameters"]["admin_user"]) == ("amap", "agenda", "camille")
    english = client.get("/espace?lang=en")
    assert '<html lang="en">' in english.text and "Amap&#39;s space" in english.text


def test_the_request_page_follows_the_worker_until_the_request_is_done(fleet, workspace, ruche):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    form = client.get("/espace/demande/radicale")
    sent = client.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small"},
                       follow_redirects=False)  # fmt: skip
    page = client.get(sent.headers["location"])
    request_id = int(sent.headers["location"].split("/")[-1].split("?")[0])
    part_path = f"/espace/demandes/{request_id}/suivi"
    assert f'data-follow="{part_path}"' in page.text and 'src="/static/suivi.js"' in page.text
    assert client.get("/static/suivi.js").status_code == 200

    part = client.get(part_path)
    assert part.status_code == 200 and part.headers["x-ruche-final"] == "0" and "en attente" in part.text
    assert part.headers["cache-control"] == "no-store" and "<html" not in part.text  # the status part alone
    approved = json.loads(ruche(*w, "request", "approve", str(request_id), "--json").stdout)

    store = StateStore(open_workspace(workspace).state_url)
    try:
        run = claim_next(store, "test-worker")
        assert run.id == approved["queued_run"]
        beat(store, run.id, "test-worker", progress="inventory written: /srv/admin/workspace/inventories/production")
        part = client.get(part_path)
        assert "en cours" in part.text and "/srv/admin" not in part.text  # admins' lines stay with the admins
        beat(store, run.id, "test-worker", progress="task: Start amap-agenda's unit")
        part = client.get(part_path)
        assert "en cours d&#39;installation" in part.text and "étape : Start amap-agenda&#39;s unit" in part.text
        assert (
            client.get(f"/api/v1/requests/{request_id}?lang=en").json()["progress"] == "step: Start amap-agenda's unit"
        )
        finish(store, run.id, "test-worker", succeeded=True, run_identifier="r-1", result={})
    finally:
        store.close()
    part = client.get(part_path)
    assert part.headers["x-ruche-final"] == "1" and "installée" in part.text
    assert "https://agenda.amap." in part.text  # the service's address, once it exists
    assert client.get(f"/api/v1/requests/{request_id}").json()["deployed"]["url"].startswith("https://agenda.amap.")
    final_page = client.get(f"/espace/demandes/{request_id}")
    assert 'data-follow=""' in final_page.text  # nothing left to follow

    chorale = signed_in(workspace, links["chorale"])
    assert chorale.get(part_path).status_code == 404
    assert client_for(workspace).get(part_path).status_code == 401


def test_a_member_of_one_association_gets_404_for_everything_of_another(fleet, workspace, ruche):
    _w, links = fleet
    chorale = signed_in(workspace, links["chorale"])
    form = chorale.get("/espace/demande/radicale")
    chorale.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small"})
    (theirs,) = chorale.get("/api/v1/requests").json()
    amap = signed_in(workspace, links["amap"])
    assert amap.get(f"/espace/demandes/{theirs['id']}").status_code == 404
    assert amap.get(f"/api/v1/requests/{theirs['id']}").status_code == 404
    assert amap.get("/espace/demandes/999999").status_code == 404  # the same answer as a missing one
    assert amap.get("/api/v1/requests").json() == [] and amap.get("/api/v1/instances").json() == []
    assert client_for(workspace).get("/api/v1/requests").status_code == 401


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": "{{ 7*7 }}"}, "Nom du service : « {{ 7*7 }} » ne peut pas être utilisé : utilisez des lettres"),
        ({"name": "../../etc"}, "Nom du service : « ../../etc »"),
        ({"name": "a; rm -rf /"}, "Nom du service : « a; rm -rf / »"),
        ({"size": "$(reboot)"}, "Taille : choisissez parmi : "),
        ({"param_admin_user": "x" * 65}, "Identifiant du compte principal : 64 caractères au plus."),
    ],
)
def test_hostile_form_values_get_a_clear_error_and_change_nothing(fleet, workspace, ruche, fields, message):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    form = client.get("/espace/demande/radicale")
    answer = client.post(
        "/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small", **fields}
    )
    assert answer.status_code == 400 and 'role="alert"' in answer.text
    assert message.replace("'", "&#39;") in answer.text or message in answer.text
    assert json.loads(ruche(*w, "request", "list", "--json").stdout) == []


def test_template_syntax_in_a_parameter_is_kept_as_text(fleet, workspace, ruche):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    form = client.get("/espace/demande/radicale")
    client.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small",
                                                 "param_admin_user": "{{ 7*7 }}<script>"})  # fmt: skip
    (entry,) = json.loads(ruche(*w, "request", "list", "--json").stdout)
    assert entry["parameters"]["admin_user"] == "{{ 7*7 }}<script>"
    page = client.get(f"/espace/demandes/{entry['id']}")
    assert "<script>" not in page.text.split("<main", 1)[1]


def test_forms_need_the_csrf_token_bodies_have_a_size_limit_and_bad_bytes_are_refused(fleet, workspace, ruche):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    missing = client.post("/espace/demande/radicale", data={"name": "agenda", "size": "small"})
    assert missing.status_code == 400 and "rechargez la page" in missing.text
    huge = client.post("/espace/demande/radicale", data={"csrf_token": "x", "name": "a" * (1024 * 1024)})
    assert huge.status_code == 413
    form = client.get("/espace/demande/radicale")
    token = csrf_of(form.text)
    broken = client.post("/espace/demande/radicale", content=b"csrf_token=" + token.encode() + b"&name=%FF%FE&size=small",
                         headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert broken.status_code == 400
    api = client.post("/api/v1/requests", json={"service": "radicale", "name": "agenda"})
    assert api.status_code == 403  # no X-CSRF-Token
    assert json.loads(ruche(*w, "request", "list", "--json").stdout) == []
    created = client.post(
        "/api/v1/requests", json={"service": "radicale", "name": "agenda"}, headers={"X-CSRF-Token": token}
    )
    assert created.status_code == 201 and created.json()["state"] == "pending"


def test_security_headers_sign_in_rate_limit_and_revocation(fleet, workspace, ruche):
    w, links = fleet
    client = signed_in(workspace, links["amap"])
    page = client.get("/espace")
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy",
                   "strict-transport-security"):  # fmt: skip
        assert header in page.headers
    (invite,) = json.loads(ruche(*w, "association", "invites", "amap", "--json").stdout)
    assert ruche(*w, "association", "revoke-invite", str(invite["id"])).exit_code == 0
    assert client.get("/espace", follow_redirects=False).status_code == 303  # signed out
    assert client_for(workspace).get(links["amap"].split("8080", 1)[1], follow_redirects=False).status_code == 403
    # 10 sign-in attempts a minute per address, counted in the state database: another app (process)
    # shares them, so the two attempts above count too
    stranger = client_for(workspace)
    answers = [stranger.get(f"/connexion/not-a-token-{n}").status_code for n in range(12)]
    assert answers[:8] == [403] * 8 and answers[8:] == [429] * 4


def test_the_api_is_described_by_openapi(fleet, workspace):
    description = client_for(workspace).get("/api/openapi.json").json()
    assert "/api/v1/requests" in description["paths"] and "RequestIn" in description["components"]["schemas"]


def admin_client(workspace, password: str = "un mot de passe assez long") -> TestClient:
    add_admin(workspace, "camille", password)
    client = client_for(workspace)
    page = client.get("/admin/connexion")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    signed = client.post("/admin/connexion", data={"form_token": token, "name": "camille", "password": password},
                         follow_redirects=False)  # fmt: skip
    assert signed.status_code == 303 and signed.headers["location"] == "/admin"
    return client


def test_an_admin_signs_in_with_a_password_and_approves_or_rejects_from_the_review_page(fleet, workspace, ruche):
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    for name in ("agenda", "autre"):
        form = member.get("/espace/demande/radicale")
        member.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": name, "size": "small"})
    admin = admin_client(workspace)
    page = admin.get("/admin")
    assert page.status_code == 200 and "« agenda »" in page.text and "« autre »" in page.text
    ids = {r["name"]: r["id"] for r in json.loads(ruche(*w, "request", "list", "--json").stdout)}
    csrf = csrf_of(page.text)
    assert admin.post(f"/admin/demandes/{ids['agenda']}/approuver", data={}).status_code == 400  # no CSRF token
    admin.post(f"/admin/demandes/{ids['agenda']}/approuver", data={"csrf_token": csrf})
    empty = admin.post(f"/admin/demandes/{ids['autre']}/refuser", data={"csrf_token": csrf, "reason": " "})
    assert "Indiquez un motif" in empty.text
    admin.post(f"/admin/demandes/{ids['autre']}/refuser", data={"csrf_token": csrf, "reason": "Un seul agenda suffit"})
    states = {r["name"]: (r["state"], r["reason"]) for r in json.loads(ruche(*w, "request", "list", "--json").stdout)}
    assert states == {"agenda": ("provisioning", ""), "autre": ("rejected", "Un seul agenda suffit")}
    history = json.loads(ruche(*w, "request", "show", str(ids["agenda"]), "--json").stdout)["history"]
    assert history[1]["actor"] == "admin camille"
    assert "Un seul agenda suffit" in member.get(f"/espace/demandes/{ids['autre']}").text
    assert member.get("/admin", follow_redirects=False).status_code == 303  # members are not admins
    assert admin.get("/espace", follow_redirects=False).status_code == 303  # nor admins members


def test_a_wrong_admin_password_is_refused_and_sign_in_attempts_are_limited(fleet, workspace, ruche):
    add_admin(workspace, "camille", "un mot de passe assez long")
    client = client_for(workspace)
    codes = []
    for _ in range(11):
        page = client.get("/admin/connexion")
        token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
        codes.append(
            client.post(
                "/admin/connexion", data={"form_token": token, "name": "camille", "password": "wrong"}
            ).status_code
        )
    assert codes[:10] == [401] * 10 and codes[10] == 429
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_admin_add_reads_the_password_from_stdin_and_refuses_a_short_one(workspace, ruche):
    def add(name: str, password: str):
        return subprocess.run([sys.executable, "-m", "orchestrator", "--workspace", str(workspace), "admin", "add", name,
                               "--password-stdin"], input=password + "\n", capture_output=True, text=True, timeout=60)  # fmt: skip

    short = add("dominique", "court")
    assert short.returncode == 2 and "12 to 1024 characters" in short.stderr
    assert add("dominique", "un mot de passe assez long").returncode == 0
    assert [a["name"] for a in json.loads(ruche("--workspace", str(workspace), "admin", "list", "--json").stdout)] == [
        "dominique"
    ]
    state = (workspace / "ruche.db").read_bytes() if (workspace / "ruche.db").exists() else b""
    assert b"un mot de passe assez long" not in state


def join_token(client: TestClient) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', client.get("/rejoindre").text).group(1)


def test_an_unknown_association_applies_on_the_public_page_and_an_admin_accepts_it(fleet, workspace, ruche):
    w, _links = fleet
    visitor = client_for(workspace)
    page = visitor.get("/rejoindre")
    assert page.status_code == 200 and 'for="slug"' in page.text and 'for="message"' in page.text
    sent = visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": "Le jardin", "slug": "jardin",
                                            "email": "contact@jardin.example", "message": "Un agenda partagé"})  # fmt: skip
    assert sent.status_code == 200 and "Merci" in sent.text
    taken = visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": "Autre", "slug": "jardin",
                                             "email": "x@y.example"})  # fmt: skip
    assert taken.status_code == 400 and "ne peut pas être utilisé" in taken.text
    admin = admin_client(workspace)
    review = admin.get("/admin")
    assert "Le jardin (jardin, contact@jardin.example)" in review.text
    (application,) = json.loads(ruche(*w, "association", "applications", "--json").stdout)
    admin.post(
        f"/admin/candidatures/{application['id']}/accepter",
        data={"csrf_token": csrf_of(review.text), "offer": "decouverte"},
    )
    registered = json.loads(ruche(*w, "association", "show", "jardin", "--json").stdout)
    assert (registered["name"], registered["offer"]) == ("Le jardin", "decouverte")
    assert json.loads(ruche(*w, "association", "applications", "--json").stdout)[0]["state"] == "accepted"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"slug": "../x"}, "Nom court : utilisez des lettres minuscules"),
        ({"slug": "Jardin Partagé"}, "Nom court : utilisez des lettres minuscules"),
        ({"slug": "a;id"}, "Nom court : utilisez des lettres minuscules"),
        ({"email": "pas-une-adresse"}, "Adresse e-mail de contact : ce n&#39;est pas une adresse e-mail"),
        ({"message": "x" * 2001}, "Quelques mots sur vos besoins : 2000 caractères au plus."),
        ({"name": "{{ 7*7 }}" + "x" * 300}, "Nom de l&#39;association : 200 caractères au plus."),
    ],
)
def test_hostile_applications_get_a_clear_error_and_record_nothing(fleet, workspace, ruche, fields, message):
    w, _links = fleet
    visitor = client_for(workspace)
    values = {
        "form_token": join_token(visitor),
        "name": "Le jardin",
        "slug": "jardin",
        "email": "c@jardin.example",
        **fields,
    }
    answer = visitor.post("/rejoindre", data=values)
    assert answer.status_code == 400 and message in answer.text
    assert json.loads(ruche(*w, "association", "applications", "--json").stdout) == []


def test_the_public_page_is_rate_limited_and_declines_are_recorded(fleet, workspace, ruche):
    w, _links = fleet
    visitor = client_for(workspace)
    codes = [visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": f"Asso {n}", "slug": f"asso-{n}",
                                              "email": f"c@asso{n}.example"}).status_code for n in range(6)]  # fmt: skip
    assert codes == [200] * 5 + [429]
    first = json.loads(ruche(*w, "association", "applications", "--json").stdout)[-1]
    assert ruche(*w, "association", "decline", str(first["id"])).exit_code == 2  # a reason is required
    declined = json.loads(
        ruche(*w, "association", "decline", str(first["id"]), "--reason", "Hors de notre territoire", "--json").stdout
    )
    assert declined["state"] == "declined" and declined["reason"] == "Hors de notre territoire"
    assert ruche(*w, "association", "show", first["slug"]).exit_code == 4


def test_members_see_their_services_version_and_what_an_upgrade_did(fleet, workspace, ruche):
    from orchestrator.state.instances import get_instance
    from orchestrator.state.models import Upgrade, utc_now

    w, links = fleet
    assert ruche(*w, "instance", "create", "amap", "radicale", "--name", "agenda", "--version", "3.1.8").exit_code == 0
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            instance = get_instance(session, "amap/agenda")
            session.add(Upgrade(instance_id=instance.id, instance_address="amap/agenda", service_id="radicale", server="web-1",
                                from_version="3.1.8", to_version="3.5.3", status="rolled_back", step="rollback",
                                requested_by="admin", started_at=utc_now(), finished_at=utc_now(), detail={}))  # fmt: skip
    finally:
        store.close()
    client = signed_in(workspace, links["amap"])
    page = client.get("/espace").text
    assert "3.1.8" in page and "mise à jour vers 3.5.3 annulée" in page and "la version 3.1.8 fonctionne" in page
    assert "update to 3.5.3 cancelled" in client.get("/espace?lang=en").text
    (listed,) = client.get("/api/v1/instances").json()
    assert listed["version"] == "3.1.8" and listed["upgrade"]["status"] == "rolled_back"
    other = signed_in(workspace, links["chorale"])
    assert "3.5.3" not in other.get("/espace").text
