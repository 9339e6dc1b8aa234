"""Own domains in the member's web space (issue 25): a manager claims one for a running service and reads the records
to publish (the TXT token, the name pointing at the server); every member sees each domain's state in words and
the primary address; only managers add or remove one (a served one's removal queues a run); refusals are
translated texts naming the rule (never another association), another association's service is a 404, a form
without its token is refused, garbage is never a 500, and claims are rate-limited."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import timedelta

from sqlalchemy import select

from orchestrator.state.database import StateStore
from orchestrator.state.models import Domain, Instance, utc_now
from orchestrator.workspace import open_workspace
from tests.integration.test_web import csrf_of, fleet, signed_in  # noqa: F401 (fixture)
from tests.integration.test_web_managers import events, invite, queued_runs

SERVER = "192.0.2.1"


def state_of(workspace) -> StateStore:
    return StateStore(open_workspace(workspace).state_url)


def running(ruche, w, workspace, *addresses: str) -> None:
    """Create each instance (radicale, whose catalogue entry takes an own domain) and record it as running."""
    for address in addresses:
        slug, name = address.split("/")
        assert ruche(*w, "instance", "create", slug, "radicale", "--name", name).exit_code == 0
    store = state_of(workspace)
    try:
        with store.session() as session:
            for instance in session.scalars(select(Instance)):
                instance.state = "running"
    finally:
        store.close()


def words(page) -> str:
    """A page's text as read: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def test_a_manager_adds_a_domain_members_see_its_state_and_the_manager_removes_it(fleet, workspace, ruche):  # noqa: F811
    started = time.monotonic()
    w, links = fleet
    running(ruche, w, workspace, "amap/agenda")
    lead = invite(ruche, w, "amap", "--name", "Camille", "--manager")
    manager = signed_in(workspace, lead["link"])
    member = signed_in(workspace, links["amap"])
    page = manager.get("/espace/gestion")
    assert page.status_code == 200 and "Utiliser notre propre nom de domaine" in page.text
    assert 'action="/espace/gestion/domaines/agenda"' in page.text
    csrf = csrf_of(page.text)

    added = manager.post(
        "/espace/gestion/domaines/agenda", data={"csrf_token": csrf, "domain": "Agenda.AMAP-du-Côté.test."}
    )
    assert added.status_code == 200, added.text
    said = words(added)
    assert "« agenda.amap-du-côté.test » est enregistré pour « agenda »" in said and "en attente de preuve" in said
    listed = json.loads(ruche(*w, "domain", "list", "--json").stdout)
    (domain,) = listed
    assert domain["domain"] == "agenda.xn--amap-du-ct-k7a4k.test" and domain["state"] == "pending"
    for value in ("_ruche.agenda.xn--amap-du-ct-k7a4k.test", domain["token"], SERVER):
        assert f"<code>{value}</code>" in added.text  # each value to copy, as it is
    assert added.headers["cache-control"] == "no-store"
    again = manager.post(
        "/espace/gestion/domaines/agenda", data={"csrf_token": csrf, "domain": "agenda.amap-du-côté.test"}
    )
    assert again.status_code == 200 and "était déjà enregistré" in again.text
    assert len(json.loads(ruche(*w, "domain", "list", "--json").stdout)) == 1  # the same claim, the same token

    # a plain member sees the domain, its state and records, and has no form; posting is refused
    space = member.get("/espace")
    seen = words(space)
    assert "agenda.amap-du-côté.test" in seen and "en attente de preuve" in seen and domain["token"] in seen
    assert "/espace/gestion/domaines" not in space.text and "page de gestion de l'association" in seen
    member_csrf = csrf_of(space.text)
    refused = member.post("/espace/gestion/domaines/agenda", data={"csrf_token": member_csrf, "domain": "x.amap.test"})
    assert refused.status_code == 403 and len(json.loads(ruche(*w, "domain", "list", "--json").stdout)) == 1
    english = words(member.get("/espace?lang=en"))
    assert "waiting for its proof" in english and "Own domain names of agenda" in english

    # a proof that failed (as the worker records it): what is missing in the member's words, not the admins' detail
    store = state_of(workspace)
    try:
        with store.session() as session:
            row = session.scalar(select(Domain))
            row.checked_at = utc_now()
            row.problem = "[token,pointer]: the TXT record _ruche.x must hold ...; x must point at web-1 (192.0.2.1)"
    finally:
        store.close()
    seen = words(member.get("/espace?lang=fr"))
    assert "ne contient pas encore votre jeton" in seen and "ne pointe pas (encore) vers le seul serveur" in seen
    assert "web-1" not in seen and "must hold" not in seen

    # proven and served (as the worker records it): its certificate's issuer and date, and the primary address
    store = state_of(workspace)
    try:
        with store.session() as session:
            row = session.scalar(select(Domain))
            row.status, row.tls_status, row.tls_issuer = "attached", "ok", "CN=Pebble Intermediate CA"
            row.tls_not_after = utc_now() + timedelta(days=60)
            instance = session.scalar(select(Instance).where(Instance.name == "agenda"))
            instance.own_domains, instance.primary_domain = [row.name], row.name
    finally:
        store.close()
    served = words(member.get("/espace?lang=fr"))  # back to French (?lang= is remembered)
    assert "servi, avec un certificat de CN=Pebble Intermediate CA valable jusqu'au" in served
    assert (
        "adresse principale" in served
        and "Adresse principale (celle par laquelle le service se nomme) : agenda.amap-du-côté.test" in served
    )

    wrong = manager.post("/espace/gestion/domaines/agenda/retirer",
                         data={"csrf_token": csrf, "domain": domain["domain"], "confirm": "agenda"})  # fmt: skip
    assert wrong.status_code == 400 and "tapez-le exactement" in wrong.text
    removed = manager.post("/espace/gestion/domaines/agenda/retirer",
                           data={"csrf_token": csrf, "domain": domain["domain"], "confirm": "agenda.amap-du-côté.test"})  # fmt: skip
    assert removed.status_code == 200 and "cessera d'y répondre" in words(removed)
    assert json.loads(ruche(*w, "domain", "list", "--json").stdout) == []
    actor = f"manager Camille of amap (invite {lead['id']})"
    assert queued_runs(workspace) == [("amap/agenda", "queued", actor)]  # the served name leaves through a run
    kinds = [(e["kind"], e["actor"]) for e in events(ruche, w, "--subject", "amap/agenda", "--kind", "domain.*")]
    assert kinds[0] == ("domain.removed", actor) and ("domain.claimed", actor) in kinds
    trail = words(manager.get("/espace/gestion/journal?lang=fr"))
    assert "domaine propre demandé" in trail and "domaine propre retiré" in trail
    print(f"manager's own domain: {time.monotonic() - started:.1f} s")


def test_refusals_are_translated_never_name_another_association_and_never_a_500(fleet, workspace, ruche):  # noqa: F811
    started = time.monotonic()
    w, _links = fleet
    running(ruche, w, workspace, "amap/agenda", "amap/wiki", "chorale/chant")
    assert ruche(*w, "domain", "add", "chorale/chant", "chorale.test").exit_code == 0
    store = state_of(workspace)
    try:
        with store.session() as session:
            session.scalar(select(Domain)).status = "attached"  # the chorale holds it
    finally:
        store.close()
    assert ruche(*w, "domain", "add", "amap/wiki", "wiki.amap.test").exit_code == 0
    manager = signed_in(workspace, invite(ruche, w, "amap", "--manager")["link"])
    csrf = csrf_of(manager.get("/espace/gestion").text)
    base = open_workspace(workspace).config.base_domain

    def claim(name: str, lang: str = "fr", service: str = "agenda"):
        return manager.post(
            f"/espace/gestion/domaines/{service}?lang={lang}", data={"csrf_token": csrf, "domain": name}
        )

    refusals = [
        ("agenda amap.test", "fr", 400, "« agenda amap.test » ne peut pas servir"),
        ("agenda amap.test", "en", 400, "“agenda amap.test” cannot be used: give a domain name such as"),
        (f"wiki.amap.{base}", "fr", 409, f"est le domaine de {open_workspace(workspace).config.collective}"),
        (base, "en", 409, "or a name above or under it: your services already have their address under it"),
        ("www.chorale.test", "fr", 409, "est déjà utilisé par une autre association"),
        ("chorale.test", "en", 409, "is already used by another association of"),
        ("wiki.amap.test", "fr", 409, "est déjà demandé pour votre service « wiki »"),
        ("wiki.amap.test", "en", 409, "is already claimed for your service “wiki”: remove it there first"),
        ("a\u202eb.test", "fr", 400, "U+202E"),
    ]
    for name, lang, status, text in refusals:
        answer = claim(name, lang)
        assert answer.status_code == status and text in words(answer), (name, lang, answer.status_code, words(answer))
        assert "chorale/" not in answer.text and "Chorale" not in answer.text  # never the other association
    for garbage in ("x" * 5000, "\x00\x01.test", "é" * 300 + ".test", "☃.☃", "[::1]", "*.amap.test", "a..b", " "):
        answer = claim(garbage)
        assert answer.status_code == 400 and "ne peut pas servir" in words(answer), (garbage[:20], answer.status_code)
        assert "\x00" not in answer.text
    for i in range(5):
        assert claim(f"n{i}.amap.test").status_code == 200
    full = claim("n5.amap.test", "en")
    assert full.status_code == 409 and "this service has 5 domains already" in words(full)

    assert claim("x.amap.test", service="chant").status_code == 404  # the chorale's service, from the amap
    assert claim("x.amap.test", service="nowhere").status_code == 404
    for path in ("%00", "%C3%A9t%C3%A9", "a" * 300, "agenda%0A"):
        assert claim("x.amap.test", service=path).status_code == 404
        assert manager.post(f"/espace/gestion/domaines/{path}/retirer", data={"csrf_token": csrf}).status_code == 404
    garbled = manager.post("/espace/gestion/domaines/wiki/retirer",
                           data={"csrf_token": csrf, "domain": "\x00" * 3000, "confirm": "\u202e"})  # fmt: skip
    assert garbled.status_code == 409 and "Rechargez la page" in garbled.text
    gone = manager.post("/espace/gestion/domaines/wiki/retirer",
                        data={"csrf_token": csrf, "domain": "chorale.test", "confirm": "chorale.test"})  # fmt: skip
    assert gone.status_code == 409 and "n'a pas (ou plus) de domaine" in words(gone)  # not this service's
    assert len(json.loads(ruche(*w, "domain", "list", "--json").stdout)) == 7  # nothing else recorded or removed
    no_token = manager.post("/espace/gestion/domaines/agenda", data={"domain": "y.amap.test"})
    assert no_token.status_code == 400 and "formulaire a expiré" in no_token.text
    forged = manager.post("/espace/gestion/domaines/wiki/retirer", data={"csrf_token": "x", "domain": "wiki.amap.test",
                                                                          "confirm": "wiki.amap.test"})  # fmt: skip
    assert forged.status_code == 400 and len(json.loads(ruche(*w, "domain", "list", "--json").stdout)) == 7

    # 30 claims per association in ten minutes, refused ones included (these made 23 so far)
    for _ in range(30 - 23):
        assert claim("agenda amap.test").status_code == 400
    limited = claim("z.amap.test")
    assert limited.status_code == 429 and "dans dix minutes" in words(limited)
    print(f"own domain refusals: {time.monotonic() - started:.1f} s")
