"""Every route of the web app, listed from the app itself: only the public ones open without a session,
admins' routes refuse a member, and every JSON API answer matches the OpenAPI document the app publishes."""

from __future__ import annotations

import json
import re

import jsonschema
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from orchestrator.web.app import create_app
from tests.integration.test_web import admin_client, csrf_of, fleet, signed_in  # noqa: F401 (fleet: a fixture)

# The routes anyone may reach: landing, sign-in link, sign-out, join page, admins' sign-in, static files, OpenAPI.
PUBLIC = {("GET", "/"), ("GET", "/connexion/{token}"), ("POST", "/deconnexion"), ("GET", "/rejoindre"),
          ("POST", "/rejoindre"), ("GET", "/admin/connexion"), ("POST", "/admin/connexion"), ("GET", "/static"),
          ("GET", "/api/openapi.json")}  # fmt: skip
# Routes with an access of their own, not a session's: Prometheus' /metrics, to [metrics]' token or clients only,
# the missing page (404) to anyone else (tests/integration/test_metrics.py).
OWN_ACCESS = {(method, "/metrics") for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
# The ChatonsInfos files are published information: anyone may read them (tests/integration/test_chatonsinfos.py).
PUBLIC |= {("GET", "/.well-known/chatonsinfos/{name}")}
SAMPLE = {"token": "x", "service_id": "radicale", "request_id": "1", "application_id": "1", "decision": "approuver",
          "invite_id": "1", "change": "retirer", "role": "gestionnaire", "name": "agenda", "action": "supprimer"}  # fmt: skip


def every_route(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app answers, included routers' ones with their prefix."""
    try:  # FastAPI 0.16x keeps included routers as they are: their routes are reached through contexts
        from fastapi.routing import iter_route_contexts
    except ImportError:  # earlier versions copy them into app.routes
        contexts = [(route, route.path) for route in app.routes]
    else:
        contexts = [(context.original_route, context.path) for context in iter_route_contexts(app.routes)]
    found = []
    for route, path in contexts:
        if isinstance(route, Mount):
            found.append(("GET", path))
        elif isinstance(route, (APIRoute, Route)):
            found += [(method, path) for method in sorted(route.methods - {"HEAD"})]
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r}")
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)


def test_only_the_public_routes_open_without_a_session_and_admin_routes_refuse_a_member(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    member = signed_in(workspace, links["amap"])
    form = member.get("/espace/demande/radicale")
    member.post("/espace/demande/radicale", data={"csrf_token": csrf_of(form.text), "name": "agenda", "size": "small"})
    before = ruche(*w, "request", "list", "--json").stdout
    routes = every_route(create_app(workspace))
    assert {r for r in routes if r in PUBLIC} == PUBLIC  # a public route that goes away is noticed too
    protected = [r for r in routes if r not in PUBLIC]
    assert len(protected) >= 13
    anonymous = TestClient(create_app(workspace), base_url="https://testserver")
    for method, path in protected:
        answer = anonymous.request(method, concrete(path), follow_redirects=False)
        if (method, path) in OWN_ACCESS:
            assert answer.status_code == 404, f"{method} {path} answers {answer.status_code} to anyone"
            continue
        where = "/admin/connexion" if path.startswith("/admin") else "/"
        assert (answer.status_code == 303 and answer.headers["location"] == where) or answer.status_code == 401, (
            f"{method} {path} answers {answer.status_code} without a session"
        )
        if answer.status_code == 401:
            assert path.startswith("/api/") or path.endswith("/suivi")
        assert "agenda" not in answer.text
    admin_routes = [r for r in protected if r[1].startswith("/admin")]
    assert len(admin_routes) >= 3
    csrf = csrf_of(member.get("/espace").text)
    for method, path in admin_routes:
        answer = member.request(method, concrete(path), data={"csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/connexion", (
            f"{method} {path} opens to a member"
        )
    assert ruche(*w, "request", "list", "--json").stdout == before  # nothing was approved, rejected or added
    assert json.loads(before)[0]["state"] == "pending"


def response_schema(document: dict, method: str, path: str, status: int) -> dict:
    operation = document["paths"][path][method.lower()]
    content = operation["responses"][str(status)]["content"]["application/json"]
    return {**content["schema"], "components": document["components"]}


def test_every_api_answer_matches_the_published_schema(fleet, workspace, ruche):  # noqa: F811
    w, links = fleet
    amap = signed_in(workspace, links["amap"])
    document = amap.get("/api/openapi.json").json()
    api_operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert api_operations == {("GET", "/api/v1/instances"), ("GET", "/api/v1/requests"), ("GET", "/api/v1/session"),
                              ("GET", "/api/v1/requests/{request_id}"), ("POST", "/api/v1/requests")}  # fmt: skip
    csrf = csrf_of(amap.get("/espace").text)
    anonymous = TestClient(create_app(workspace), base_url="https://testserver")
    chorale = signed_in(workspace, links["chorale"])
    answers = []  # (method, path template, response)

    def call(client, method, template, path=None, **kwargs):
        answers.append((method, template, client.request(method, path or template, **kwargs)))
        return answers[-1][2]

    created = call(
        amap, "POST", "/api/v1/requests", json={"service": "radicale", "name": "agenda"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201
    request_id = created.json()["id"]
    admin = admin_client(workspace)
    admin.post(f"/admin/demandes/{request_id}/approuver", data={"csrf_token": csrf_of(admin.get("/admin").text)})
    detail = "/api/v1/requests/{request_id}"
    assert call(amap, "GET", detail, f"/api/v1/requests/{request_id}").json()["state"] == "provisioning"
    instances = call(amap, "GET", "/api/v1/instances").json()
    assert [i["address"] for i in instances] == ["amap/agenda"] and instances[0]["upgrade"] is None
    assert call(amap, "GET", "/api/v1/requests").json()[0]["id"] == request_id
    assert (
        call(
            amap,
            "POST",
            "/api/v1/requests",
            json={"service": "radicale", "name": "agenda"},
            headers={"X-CSRF-Token": csrf},
        ).status_code
        == 409
    )  # the name is taken
    assert (
        call(
            amap,
            "POST",
            "/api/v1/requests",
            json={"service": "radicale", "name": "Not A Name"},
            headers={"X-CSRF-Token": csrf},
        ).status_code
        == 400
    )
    assert call(amap, "POST", "/api/v1/requests", json={"service": "radicale"}).status_code == 403
    assert (
        call(
            amap,
            "POST",
            "/api/v1/requests",
            json={"service": "radicale", "colour": "red"},
            headers={"X-CSRF-Token": csrf},
        ).status_code
        == 422
    )  # fields the model does not name
    assert call(chorale, "GET", detail, f"/api/v1/requests/{request_id}").status_code == 404
    assert call(amap, "GET", "/api/v1/session").json()["csrf_token"] == csrf
    for template in ("/api/v1/instances", "/api/v1/requests", "/api/v1/session"):
        assert call(anonymous, "GET", template).status_code == 401
    assert call(anonymous, "POST", "/api/v1/requests", json={"service": "radicale"}).status_code == 401

    for method, template, response in answers:
        jsonschema.validate(response.json(), response_schema(document, method, template, response.status_code))
    assert {(method, template) for method, template, _response in answers} == api_operations
    # the schema is strict: an answer with a field the model does not name would fail
    extra = {**created.json(), "admin_password": "x"}
    try:
        jsonschema.validate(extra, response_schema(document, "POST", "/api/v1/requests", 201))
    except jsonschema.ValidationError as error:
        assert "admin_password" in error.message
    else:
        raise AssertionError("the published schema lets an unknown field through")
