"""What an attacker's probe of `ruche serve` found (issue: the associations' web space, hardened), each kept
out: ids past what the database holds, non-finite numbers, pages cached with personal data, sign-in tokens in
the access log, reused sign-in links, forwarded headers and many addresses against the rate limits, requests
beyond the offer, enumeration on the join page, a sign-out that pretends, words put in a page by its address,
invisible characters."""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from fastapi.testclient import TestClient
from pydantic import ValidationError

from orchestrator.actions.admin import add as add_admin
from orchestrator.config import WebSettings
from orchestrator.web.app import STATIC_DIR, create_app
from orchestrator.web.pages import COOKIE
from orchestrator.web.security import RedactSignInLinks, relative_location
from orchestrator.workspace import open_workspace
from tests.browser import free_port, served, use_loopback_web_settings
from tests.integration.test_web import admin_client, client_for, csrf_of, fleet, join_token, signed_in  # noqa: F401 (fixture)

HUGE = str(2**63)


@pytest.mark.parametrize("path", [f"/espace/demandes/{HUGE}", f"/espace/demandes/{HUGE}/suivi", "/espace/demandes/abc",
                                  "/espace/demandes/0", f"/espace/demandes/{'9' * 40}"])  # fmt: skip
def test_a_request_id_that_names_no_row_is_a_missing_page_never_a_500(fleet, workspace, path):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    answer = member.get(path)
    assert answer.status_code == 404 and "<html" in answer.text, (answer.status_code, answer.text[:300])
    assert answer.headers["x-content-type-options"] == "nosniff"  # the security headers are there too


def test_the_api_answers_422_for_huge_ids_and_non_finite_numbers_and_the_admin_route_404(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    assert member.get(f"/api/v1/requests/{HUGE}").status_code == 422
    token = csrf_of(member.get("/espace/demande/radicale").text)
    for size in ("NaN", "Infinity", "1e999", "-Infinity"):
        body = f'{{"service": "radicale", "name": "agenda", "size": {size}}}'
        answer = member.post(
            "/api/v1/requests", content=body, headers={"content-type": "application/json", "X-CSRF-Token": token}
        )
        assert answer.status_code == 422, (size, answer.status_code, answer.text[:300])
        assert answer.json()["detail"][0]["loc"] == ["body", "size"] and "input" not in answer.json()["detail"][0]
        assert answer.headers["x-frame-options"] == "DENY"
    admin = admin_client(workspace)
    csrf = csrf_of(admin.get("/admin").text)
    approved = admin.post(f"/admin/demandes/{HUGE}/approuver", data={"csrf_token": csrf}, follow_redirects=False)
    assert approved.status_code == 404


def test_pages_and_api_answers_are_never_stored_by_a_cache_static_files_may_be(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    for path in ("/espace", "/api/v1/requests", "/espace/demande/radicale", "/"):
        answer = member.get(path)
        assert answer.status_code == 200 and answer.headers.get_list("cache-control") == ["no-store"], path
    admin = admin_client(workspace)
    assert admin.get("/admin").headers["cache-control"] == "no-store"
    static = member.get("/static/" + next(path.name for path in STATIC_DIR.iterdir()))
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_a_sign_in_token_never_reaches_the_access_log(fleet, workspace, tmp_path):  # noqa: F811
    _w, links = fleet
    port = free_port()
    use_loopback_web_settings(workspace, port)
    token = links["amap"].rsplit("/", 1)[1]
    with served(workspace, tmp_path / "serve.log", port=port) as base:
        opened = requests.get(f"{base}/connexion/{token}", timeout=10, allow_redirects=False)
        assert opened.status_code == 303
        assert requests.get(f"{base}/connexion/{token}?x=1", timeout=10, allow_redirects=False).status_code == 403
    log = (tmp_path / "serve.log").read_text()
    assert "/connexion/(hidden)" in log and token not in log, log[-2000:]


def test_the_filter_rewrites_uvicorns_access_record_and_leaves_others():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/connexion/s3cr3t-token?lang=en", "1.1", 303), None)  # fmt: skip
    assert (
        RedactSignInLinks().filter(record)
        and record.getMessage() == '127.0.0.1:5000 - "GET /connexion/(hidden)?lang=en HTTP/1.1" 303'
    )
    other = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "%s", ("/espace",), None)
    assert RedactSignInLinks().filter(other) and other.getMessage() == "/espace"


# --- sign-in links are exchanged once for a session --------------------------------------------------------------


def test_a_sign_in_link_opens_one_session_only_then_asks_for_a_new_link(fleet, workspace):  # noqa: F811
    _w, links = fleet
    path = links["amap"].split("8080", 1)[1]
    member = signed_in(workspace, links["amap"])
    again = member.get(path, follow_redirects=False)  # the browser it signed in: simply taken to its space
    assert again.status_code == 303 and again.headers["location"] == "/espace"
    for lang, words in (("fr", "déjà servi"), ("en", "already been used")):
        reused = client_for(workspace).get(f"{path}?lang={lang}", follow_redirects=False)
        assert reused.status_code == 403 and words in reused.text, reused.text[-600:]
        assert COOKIE not in reused.headers.get("set-cookie", "")  # no session opened
        assert "Test" in reused.text  # whom to ask: the association's manager or the collective's admins
    assert member.get("/espace", follow_redirects=False).status_code == 200  # the first session still works


# --- rate limits per account, and X-Forwarded-For only from trusted proxies --------------------------------------


def admin_sign_in_from(workspace, address: str, password: str) -> requests.Response:
    client = TestClient(create_app(workspace), base_url="https://testserver", client=(address, 40000))
    token = re.search(r'name="form_token" value="([^"]+)"', client.get("/admin/connexion").text).group(1)
    return client.post("/admin/connexion", data={"form_token": token, "name": "camille", "password": password},
                       follow_redirects=False)  # fmt: skip


def test_wrong_admin_passwords_are_limited_per_account_whatever_the_address(workspace):
    add_admin(workspace, "camille", "un mot de passe assez long")
    codes = [admin_sign_in_from(workspace, f"2001:db8::{n}", "wrong").status_code for n in range(11)]
    assert codes == [401] * 10 + [429], codes
    refused = admin_sign_in_from(workspace, "2001:db8::99", "un mot de passe assez long")
    assert refused.status_code == 429 and "dix minutes" in refused.text  # not even the right one, for a while


def test_forwarded_for_is_believed_from_trusted_proxies_only(workspace, tmp_path):
    port = free_port()
    use_loopback_web_settings(workspace, port)

    def attempts(base: str) -> list[int]:
        return [requests.get(f"{base}/connexion/not-a-token", headers={"X-Forwarded-For": f"198.51.100.{n}"},
                             timeout=10, allow_redirects=False).status_code for n in range(11)]  # fmt: skip

    with served(workspace, tmp_path / "serve.log", port=port) as base:  # default: no proxy trusted
        assert attempts(base) == [403] * 10 + [429]  # one address: the connection's
    opened = open_workspace(workspace)
    web = opened.config.web.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    opened.save_config(opened.config.model_copy(update={"web": web}))
    with served(workspace, tmp_path / "serve-proxied.log", port=port) as base:
        assert attempts(base) == [403] * 11  # behind a trusted proxy: each client its own address


def test_trusted_proxies_must_be_addresses_or_networks():
    assert WebSettings(trusted_proxies=["127.0.0.1", "10.0.0.0/24", "::1"]).trusted_proxies[1] == "10.0.0.0/24"
    assert WebSettings().trusted_proxies == []
    with pytest.raises(ValidationError, match="'proxy.example' is not an IP address or network"):
        WebSettings(trusted_proxies=["proxy.example"])


# --- requests checked against the offer, and a cap on pending ones, at submission --------------------------------


def request_form(member, service: str, **fields) -> requests.Response:
    token = csrf_of(member.get(f"/espace/demande/{service}").text)
    return member.post(f"/espace/demande/{service}", data={"csrf_token": token, **fields})


def test_a_request_beyond_the_offer_is_refused_when_the_member_asks_with_the_limits(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    answer = request_form(member, "nextcloud", name="nuage", size="large")  # 500 GiB on a 60 GiB offer
    assert answer.status_code == 400 and "dépasse l&#39;offre de votre association (association)" in answer.text
    assert "disque : 500 GiB alors que l&#39;offre permet 60 GiB (440 GiB de trop)" in answer.text, answer.text[-1500:]
    token = csrf_of(member.get("/espace/demande/radicale").text)
    api = member.post("/api/v1/requests?lang=en", json={"service": "nextcloud", "name": "nuage", "size": "large"},
                      headers={"X-CSRF-Token": token})  # fmt: skip
    assert (
        api.status_code == 409 and "disk 500 GiB where the offer allows 60 GiB (440 GiB over)" in api.json()["detail"]
    )
    assert json.loads(ruche(*w, "request", "list", "--json").stdout) == []


def test_an_association_has_at_most_five_requests_pending(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    for n in range(5):
        assert request_form(member, "radicale", name=f"agenda-{n}", size="small").status_code == 200
    sixth = request_form(member, "radicale", name="agenda-6", size="small")
    assert sixth.status_code == 400 and "déjà 5 demandes en attente" in sixth.text
    assert len(json.loads(ruche(*w, "request", "list", "--json").stdout)) == 5


# --- the join page names nobody, and says the right window -------------------------------------------------------


def test_the_join_page_names_no_association_nor_application_and_its_limit_says_ten_minutes(fleet, workspace):  # noqa: F811
    visitor = client_for(workspace)

    def apply(slug: str) -> requests.Response:
        return visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": "Un nom", "slug": slug,
                                                "email": f"c@{slug}.example"})  # fmt: skip

    assert apply("jardin").status_code == 200  # a pending application
    for slug in ("amap", "jardin"):  # a registered association, a pending application: the same words
        taken = apply(slug)
        errors = taken.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
        assert taken.status_code == 400 and "Ce nom court ne peut pas être utilisé" in errors and slug not in errors
    limited = [apply(f"asso-{n}") for n in range(3)][-1]
    assert limited.status_code == 429 and "dix minutes" in limited.text


# --- sign-out, the review page's notices, invisible characters ---------------------------------------------------


def test_sign_out_without_its_token_ends_nothing_and_says_so(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    forged = member.post("/deconnexion", data={}, follow_redirects=False)
    assert forged.status_code == 400 and "toujours connecté" in forged.text
    assert member.get("/espace", follow_redirects=False).status_code == 200
    token = csrf_of(member.get("/espace").text)
    assert "déconnecté" in member.post("/deconnexion", data={"csrf_token": token}).text
    assert member.get("/espace", follow_redirects=False).status_code == 303


def test_the_review_page_shows_only_its_own_notices(fleet, workspace):  # noqa: F811
    admin = admin_client(workspace)
    forged = admin.get("/admin?info=Votre+mot+de+passe+a+expir%C3%A9%2C+tapez-le+sur+evil.example")
    assert forged.status_code == 200 and "evil.example" not in forged.text
    assert "Demande approuvée" in admin.get("/admin?info=approved").text


def test_invisible_and_direction_changing_characters_are_refused(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    answer = request_form(member, "radicale", name="agenda", size="small", param_admin_user="admin\u202etxt.exe")
    assert (
        answer.status_code == 400
        and "admin_user : les caractères invisibles" in answer.text
        and "U+202E" in answer.text
    )
    token = csrf_of(member.get("/espace/demande/radicale").text)
    api = member.post("/api/v1/requests", json={"service": "radicale", "name": "agenda",
                                                "parameters": {"admin_user": "a\u200bb"}}, headers={"X-CSRF-Token": token})  # fmt: skip
    assert api.status_code == 400 and "U+200B" in api.json()["detail"]
    assert json.loads(ruche(*w, "request", "list", "--json").stdout) == []
    assert request_form(member, "radicale", name="agenda", size="small").status_code == 200
    (entry,) = json.loads(ruche(*w, "request", "list", "--json").stdout)
    admin = admin_client(workspace)
    csrf = csrf_of(admin.get("/admin").text)
    refused = admin.post(f"/admin/demandes/{entry['id']}/refuser", data={"csrf_token": csrf, "reason": "Non \u202enon"})
    assert refused.status_code == 409 and "U+202E" in refused.text
    assert json.loads(ruche(*w, "request", "list", "--json").stdout)[0]["state"] == "pending"
    visitor = client_for(workspace)
    joined = visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": "Le\u2067 jardin",
                                              "slug": "jardin", "email": "c@jardin.example"})  # fmt: skip
    assert joined.status_code == 400 and "U+2067" in joined.text


# --- every refusal a member or admin reads is in their language, naming its field; pages answer pages ------------


def test_refused_values_are_said_in_the_members_language_naming_the_field(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    answer = request_form(member, "radicale", name="Mon Agenda!", size="énorme", param_admin_user="x" * 65)
    errors = answer.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
    assert answer.status_code == 400 and "use a-z" not in errors and "expected one of" not in errors
    assert "Nom du service : « Mon Agenda! » ne peut pas être utilisé" in errors.replace("&#34;", '"')
    assert "Taille : choisissez parmi : " in errors, errors
    assert "Identifiant du compte principal : 64 caractères au plus" in errors, errors
    assert request_form(member, "radicale", name="agenda", size="small").status_code == 200
    taken = request_form(member, "radicale", name="agenda", size="small")  # the name taken: said by its kind
    assert "votre association a déjà un service ou une demande nommé « agenda »" in taken.text
    assert "exists or is already requested" not in taken.text
    english = member.post("/espace/demande/radicale?lang=en", data={"csrf_token": csrf_of(answer.text),
                                                                     "name": "Mon Agenda!", "size": "small"})  # fmt: skip
    assert "Name of the service: “Mon Agenda!” cannot be used" in english.text, english.text[-1500:]
    token = csrf_of(member.get("/espace/demande/radicale").text)
    api = member.post("/api/v1/requests?lang=en", json={"service": "radicale", "name": "Bad Name",
                                                        "parameters": {"admin_user": "x" * 65, "colour": "red"}},
                      headers={"X-CSRF-Token": token})  # fmt: skip
    detail = api.json()["detail"]
    assert api.status_code == 400 and "name: “Bad Name” cannot be used" in detail, detail
    assert "parameters.admin_user: 64 characters at most." in detail and "colour: this service has no such" in detail


def test_the_join_form_says_what_is_wrong_per_field_in_the_visitors_language(fleet, workspace):  # noqa: F811
    visitor = client_for(workspace)
    answer = visitor.post("/rejoindre", data={"form_token": join_token(visitor), "name": "", "slug": "Jardin Partagé",
                                              "email": "pas-une-adresse", "message": "x" * 2001})  # fmt: skip
    errors = answer.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
    assert answer.status_code == 400 and "At &#39;" not in errors and "String should" not in errors, errors
    for text in ("Nom court : utilisez des lettres minuscules", "Adresse e-mail de contact : ce n&#39;est pas une adresse",
                 "Nom de l&#39;association : ce champ est obligatoire", "Quelques mots sur vos besoins : 2000 caractères"):  # fmt: skip
        assert text in errors, (text, errors)
    english = visitor.post("/rejoindre?lang=en", data={"form_token": join_token(visitor), "name": "Le jardin",
                                                       "slug": "jardin", "email": "pas-une-adresse"})  # fmt: skip
    assert "Contact e-mail address: this is not an e-mail address" in english.text


def test_an_admins_refused_decision_is_said_in_their_language(fleet, workspace):  # noqa: F811
    admin = admin_client(workspace)
    csrf = csrf_of(admin.get("/admin").text)
    missing = admin.post("/admin/demandes/999/approuver", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "no request 999" not in missing.text
    assert "cette demande ou candidature n&#39;existe pas (ou plus)" in missing.text
    offer = admin.post("/admin/candidatures/999/accepter?lang=en", data={"csrf_token": csrf, "offer": "or"})
    assert "Offer: there is no offer “or”" in offer.text and "does not exist" not in offer.text


def test_an_approval_beyond_the_offer_gives_its_figures_in_the_admins_language(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    for name in ("sondages", "enquetes"):  # each fits the offer alone (50 of its 60 GiB): both may wait
        sent = request_form(member, "limesurvey", name=name, size="large", param_admin_email="a@amap.fr")
        assert sent.status_code == 200, sent.text[-1500:]
    first, second = sorted(r["id"] for r in json.loads(ruche(*w, "request", "list", "--json").stdout))
    admin = admin_client(workspace)
    csrf = csrf_of(admin.get("/admin").text)
    approved = admin.post(f"/admin/demandes/{first}/approuver", data={"csrf_token": csrf}, follow_redirects=False)
    assert approved.status_code == 303
    refused = admin.post(f"/admin/demandes/{second}/approuver", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "where the offer allows" not in refused.text
    assert "au-delà de l&#39;offre de l&#39;association (association)" in refused.text, refused.text[-2000:]
    assert "disque : 100 GiB alors que l&#39;offre permet 60 GiB (40 GiB de trop)" in refused.text
    english = admin.post(f"/admin/demandes/{second}/approuver?lang=en", data={"csrf_token": csrf})
    assert (
        "beyond the association&#39;s offer (association): disk 100 GiB where the offer allows 60 GiB" in english.text
    )


def test_pages_answer_pages_for_the_frameworks_refusals_and_the_api_keeps_json(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    for path, lang, words in (("/deconnexion", "fr", "attend le bouton"), ("/deconnexion", "en", "takes a form"),
                              ("/espace/demande", "fr", "attend le bouton")):  # fmt: skip
        answer = member.request("GET" if path == "/deconnexion" else "PUT", f"{path}?lang={lang}")
        assert answer.status_code == 405 and answer.headers["content-type"].startswith("text/html"), answer.text
        assert f'<html lang="{lang}">' in answer.text and words in answer.text and "detail" not in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
    missing = member.get("/espace/demandes/abc")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    api = member.put("/api/v1/instances")
    assert api.status_code == 405 and api.json() == {"detail": "Method Not Allowed"}
    assert member.get("/api/v1/nowhere?lang=fr").json() == {"detail": "introuvable (ou pas de votre association)"}
    assert member.get("/api/v1/requests/999?lang=en").json() == {"detail": "not found (or not your association's)"}
    assert "X-CSRF-Token" in member.post("/api/v1/requests", json={"service": "radicale"}).json()["detail"]


def test_a_trailing_slash_redirect_stays_on_this_site_whatever_the_host_header(fleet, workspace):  # noqa: F811
    _w, links = fleet
    member = signed_in(workspace, links["amap"])
    for path, target in [("/espace/", "/espace"), ("/espace/gestion/", "/espace/gestion"),
                         ("/rejoindre/?a=b", "/rejoindre?a=b"), ("/api/v1/requests/", "/api/v1/requests")]:  # fmt: skip
        answer = member.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert answer.status_code == 307 and answer.headers["location"] == target, (path, answer.headers)
    assert relative_location((b"location", b"https://evil.example//evil.example/x?y=1")) == (
        b"location",
        b"/evil.example/x?y=1",
    )
