"""What an attacker's probe of `ruche serve` found (issue: the associations' web space, hardened), each kept
out: ids past what the database holds, non-finite numbers, pages cached with personal data, and sign-in
tokens in the access log."""

from __future__ import annotations

import logging

import pytest
import requests

from orchestrator.web.app import STATIC_DIR
from orchestrator.web.security import RedactSignInLinks
from tests.browser import free_port, served, use_loopback_web_settings
from tests.integration.test_web import admin_client, csrf_of, fleet, signed_in  # noqa: F401 (fixture)

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
        assert requests.get(f"{base}/connexion/{token}?x=1", timeout=10, allow_redirects=False).status_code == 303
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
