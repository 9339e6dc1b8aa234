"""An association chooses its incident alerts itself (issue 26): a manager ticks whether its contact address is told
by mail of the alerts on its own services, and in which language, from /espace/gestion; the choice is recorded as
`ruche association alerts` records it, with the manager's name. Plain members see it and cannot change it; another
association's manager changes only their own; every post needs its token; a bad value changes nothing."""

from __future__ import annotations

import html
import json
import time

from tests.integration.test_web import csrf_of, fleet, signed_in  # noqa: F401 (fixture)
from tests.integration.test_web_managers import events, invite


def read(answer) -> str:
    """The page's text, its entities read (an apostrophe is &#39; in the page)."""
    return html.unescape(answer.text)


def choice_of(ruche, w, slug: str) -> tuple[bool, str]:
    (entry,) = [e for e in json.loads(ruche(*w, "association", "list", "--json").stdout) if e["slug"] == slug]
    return entry["alerts_opt_in"], entry["language"]


def alert_events(ruche, w, slug: str) -> list[dict]:
    return events(ruche, w, "--association", slug, "--kind", "association.alerts")


def test_a_manager_turns_the_alerts_on_in_french_then_off(fleet, workspace, ruche):  # noqa: F811
    started = time.monotonic()
    w, links = fleet
    assert ruche(*w, "association", "alerts", "amap", "off", "--language", "en").exit_code == 0
    lead = invite(ruche, w, "amap", "--name", "Camille", "--manager")
    manager = signed_in(workspace, lead["link"])
    page = manager.get("/espace/gestion")
    assert page.status_code == 200 and 'aria-labelledby="alertes"' in page.text and "Alertes d'incident" in read(page)
    assert "c@amap.fr" in page.text and "jamais pour ceux d'autres associations" in read(page)
    assert (
        '<option value="en" lang="en" selected>' in page.text
        and 'name="notify" type="checkbox" value="on">' in page.text
    )
    plain = signed_in(workspace, links["amap"])
    assert "n'est pas prévenue par e-mail" in read(plain.get("/espace"))

    turned_on = manager.post("/espace/gestion/alertes", data={"csrf_token": csrf_of(page.text), "notify": "on",
                                                               "language": "fr"}, follow_redirects=False)  # fmt: skip
    assert turned_on.status_code == 303 and turned_on.headers["location"] == "/espace/gestion?info=alerts-on"
    assert choice_of(ruche, w, "amap") == (True, "fr") and choice_of(ruche, w, "chorale") == (False, "fr")
    shown = manager.get(turned_on.headers["location"])
    assert "sera prévenue par e-mail des incidents" in shown.text
    assert '<option value="fr" lang="fr" selected>' in shown.text and 'value="on" checked>' in shown.text
    assert "L'adresse de contact de l'association est prévenue par e-mail" in read(plain.get("/espace"))

    turned_off = manager.post("/espace/gestion/alertes", data={"csrf_token": csrf_of(shown.text), "language": "fr"},
                              follow_redirects=False)  # fmt: skip
    assert turned_off.status_code == 303 and turned_off.headers["location"] == "/espace/gestion?info=alerts-off"
    assert choice_of(ruche, w, "amap") == (False, "fr")
    assert "ne sera plus prévenue" in manager.get(turned_off.headers["location"]).text
    # the same choice again records nothing
    manager.post("/espace/gestion/alertes", data={"csrf_token": csrf_of(shown.text), "language": "fr"})

    actor = f"manager Camille of amap (invite {lead['id']})"
    recorded = [(e["actor"], e["detail"]) for e in alert_events(ruche, w, "amap")]
    assert recorded[:2] == [
        (actor, {"before": {"alerts_opt_in": True, "language": "fr"}, "after": {"alerts_opt_in": False, "language": "fr"}}),
        (actor, {"before": {"alerts_opt_in": False, "language": "en"}, "after": {"alerts_opt_in": True, "language": "fr"}}),
    ]  # fmt: skip
    assert len(recorded) == 3 and recorded[2][0] != actor  # the admin's command, first
    print(f"manager's alerts choice: {time.monotonic() - started:.1f} s")


def test_plain_members_other_managers_bad_tokens_and_bad_values_change_nothing(fleet, workspace, ruche):  # noqa: F811
    started = time.monotonic()
    w, links = fleet
    amap = signed_in(workspace, invite(ruche, w, "amap", "--manager")["link"])
    chorale_lead = invite(ruche, w, "chorale", "--manager", "--name", "Lou")
    chorale = signed_in(workspace, chorale_lead["link"])
    plain = signed_in(workspace, links["amap"])
    on_in_english = {"notify": "on", "language": "en"}

    refused = plain.post("/espace/gestion/alertes", data={"csrf_token": csrf_of(plain.get("/espace").text),
                                                          **on_in_english})  # fmt: skip
    assert refused.status_code == 403 and "gestionnaires" in refused.text
    assert 'action="/espace/gestion/alertes"' not in plain.get("/espace").text
    csrf = csrf_of(amap.get("/espace/gestion").text)
    chorale_csrf = csrf_of(chorale.get("/espace/gestion").text)
    assert amap.post("/espace/gestion/alertes", data=on_in_english).status_code == 400  # no token
    assert amap.post("/espace/gestion/alertes", data={"csrf_token": chorale_csrf, **on_in_english}).status_code == 400
    assert amap.post("/espace/gestion/alertes", data={"csrf_token": "x" * 40, **on_in_english}).status_code == 400

    for values in ({"notify": "on", "language": "de"}, {"notify": "on"}, {"notify": "oui", "language": "fr"},
                   {"notify": "on", "language": "fr\x00"}, {"notify": "on", "language": "f" * 10_000}):  # fmt: skip
        bad = amap.post("/espace/gestion/alertes", data={"csrf_token": csrf, **values})
        assert bad.status_code == 400, values
        assert "Rien n'a été changé : la langue des alertes doit être l'une de celles-ci : Français, English" in read(
            bad
        )
    assert choice_of(ruche, w, "amap") == (False, "fr") and alert_events(ruche, w, "amap") == []

    # another association's manager chooses for their own association only
    theirs = chorale.post("/espace/gestion/alertes", data={"csrf_token": chorale_csrf, **on_in_english})
    assert theirs.status_code == 200 and "sera prévenue par e-mail" in theirs.text
    assert choice_of(ruche, w, "chorale") == (True, "en") and choice_of(ruche, w, "amap") == (False, "fr")
    assert [e["actor"] for e in alert_events(ruche, w, "chorale")] == [
        f"manager Lou of chorale (invite {chorale_lead['id']})"
    ]
    assert alert_events(ruche, w, "amap") == []
    print(f"alerts choice refused: {time.monotonic() - started:.1f} s")
