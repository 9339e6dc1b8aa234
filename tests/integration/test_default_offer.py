"""ruche.toml's default_offer (SQLite and PostgreSQL states): an association added or accepted without an offer
goes on it (recorded in its creation's event), an explicit offer wins, a default naming no offer is refused with
the file and the path; unset (as `ruche init` leaves it, commented out), such an association has no offer and
`ruche audit` warns about it."""

from __future__ import annotations

import json

import pytest

from orchestrator.state.applications import submit_application
from orchestrator.state.database import StateStore
from orchestrator.workspace import open_workspace

COMMENTED = '# default_offer = "decouverte"'


def set_default(workspace, line: str) -> None:
    config = workspace / "ruche.toml"
    text = config.read_text()
    assert COMMENTED in text  # as `ruche init` writes it
    config.write_text(text.replace(COMMENTED, line))


@pytest.fixture
def w(workspace, ruche):
    w = ["--workspace", str(workspace)]
    added = ruche(
        *w,
        "server",
        "add",
        "big",
        "--no-connect",
        "--address",
        "192.0.2.1",
        "--cpu",
        "16",
        "--memory",
        "32G",
        "--disk",
        "1T",
    )
    assert added.exit_code == 0, added.stderr
    return w


def add(ruche, w, slug: str, *options: str) -> dict:
    added = ruche(*w, "association", "add", slug, "--name", slug.upper(), "--email", f"c@{slug}.fr", *options, "--json")
    assert added.exit_code == 0, added.stderr
    return json.loads(added.stdout)


def shown_offer(ruche, w, slug: str):
    return json.loads(ruche(*w, "association", "show", slug, "--json").stdout)["offer"]


def events(ruche, w, kind: str) -> list[dict]:
    return [e for e in json.loads(ruche(*w, "events", "--json").stdout) if e["kind"] == kind]


def apply_to_join(workspace, slug: str) -> int:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            return submit_application(session, slug=slug, name=slug.upper(), email=f"c@{slug}.fr", message="").id
    finally:
        store.close()


def no_offer_warnings(ruche, w) -> list[dict]:
    audited = json.loads(ruche(*w, "audit", "--no-servers", "--json").stdout)
    return [f for f in audited["warnings"] if f["rule"] == "quota.no-offer"]


def test_an_association_added_without_offer_goes_on_the_default_which_then_bounds_it(workspace, w, ruche):
    set_default(workspace, 'default_offer = "decouverte"')
    assert add(ruche, w, "amap")["offer"] == "decouverte"
    assert shown_offer(ruche, w, "amap") == "decouverte"
    (created,) = events(ruche, w, "associations.created")
    assert created["subject"] == "amap" and created["detail"]["after"]["offer"] == "decouverte"
    # decouverte: 512 MiB; a small Nextcloud takes 1024 MiB
    refused = ruche(*w, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr")
    assert refused.exit_code == 5 and "beyond amap's offer 'decouverte'" in refused.stderr
    assert ruche(*w, "association", "list").stdout.splitlines()[-1].split()[-1] == "decouverte"
    assert no_offer_warnings(ruche, w) == []


def test_an_explicit_offer_wins_over_the_default(workspace, w, ruche):
    set_default(workspace, 'default_offer = "decouverte"')
    assert add(ruche, w, "amap", "--offer", "association")["offer"] == "association"
    assert shown_offer(ruche, w, "amap") == "association"
    unknown = ruche(*w, "association", "add", "chorale", "--name", "C", "--email", "c@c.fr", "--offer", "gold")
    assert unknown.exit_code == 2 and "offer 'gold' does not exist" in unknown.stderr
    assert [e["subject"] for e in events(ruche, w, "associations.created")] == ["amap"]


def test_an_accepted_application_goes_on_the_default_unless_an_offer_is_given(workspace, w, ruche):
    set_default(workspace, 'default_offer = "decouverte"')
    jardin, verger = apply_to_join(workspace, "jardin"), apply_to_join(workspace, "verger")
    accepted = ruche(*w, "association", "accept", str(jardin), "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert json.loads(accepted.stdout)["state"] == "accepted"
    assert shown_offer(ruche, w, "jardin") == "decouverte"
    assert ruche(*w, "association", "accept", str(verger), "--offer", "association").exit_code == 0
    assert shown_offer(ruche, w, "verger") == "association"
    created = {e["subject"]: e["detail"]["after"]["offer"] for e in events(ruche, w, "associations.created")}
    assert created == {"jardin": "decouverte", "verger": "association"}
    decided = {e["detail"]["slug"]: e["detail"]["offer"] for e in events(ruche, w, "application.accepted")}
    assert decided == {"jardin": "decouverte", "verger": "association"}


def test_a_default_naming_no_offer_is_refused_with_the_file_and_the_path(workspace, w, ruche):
    set_default(workspace, 'default_offer = "gold"')
    refused = ruche(*w, "association", "add", "amap", "--name", "A", "--email", "c@amap.fr")
    assert refused.exit_code == 3
    assert f"{workspace / 'ruche.toml'}: At 'default_offer':" in refused.stderr
    assert "names no offer of [offers] (offers: association, decouverte)" in refused.stderr
    assert "Traceback" not in refused.stderr
    config = workspace / "ruche.toml"
    config.write_text(config.read_text().replace('default_offer = "gold"', 'default_offer = "decouverte"'))
    assert json.loads(ruche(*w, "association", "list", "--json").stdout) == []  # nothing was stored


def test_unset_as_init_leaves_it_an_association_has_no_offer_and_the_audit_warns_until_it_has_one(w, ruche):
    assert add(ruche, w, "amap")["offer"] is None
    assert add(ruche, w, "chorale", "--offer", "association")["offer"] == "association"
    (warning,) = no_offer_warnings(ruche, w)
    assert warning["object"] == "amap" and "no limit" in warning["evidence"]
    assert "`ruche association set-offer amap OFFER`" in warning["fix"] and "default_offer" in warning["fix"]
    assert ruche(*w, "inventory", "export").exit_code == 0
    audited = ruche(*w, "audit", "--no-servers")
    assert audited.exit_code == 0 and "warning: quota.no-offer: amap" in audited.stdout  # a warning: no failure
    assert ruche(*w, "association", "set-offer", "amap", "decouverte").exit_code == 0
    assert no_offer_warnings(ruche, w) == []


def test_the_default_survives_a_rewrite_of_ruche_toml(workspace, w, ruche):
    set_default(workspace, 'default_offer = "association"')
    assert ruche(*w, "mail", "set", "--host", "smtp.example.org", "--sender-domain", "test.example.org").exit_code == 0
    text = (workspace / "ruche.toml").read_text()
    assert 'default_offer = "association"' in text and COMMENTED not in text
    assert add(ruche, w, "amap")["offer"] == "association"


def test_no_offer_registers_without_the_default_and_cannot_be_given_with_an_offer(workspace, ruche):
    config = workspace / "ruche.toml"
    text = config.read_text()
    if "# default_offer = " not in text:
        return  # this workspace's configuration has no offers to default to
    config.write_text(text.replace("# default_offer = ", "default_offer = ", 1))
    w = ["--workspace", str(workspace)]
    added = ruche(
        *w, "association", "add", "essai", "--name", "Essai", "--email", "a@essai.example", "--no-offer", "--json"
    )
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["offer"] is None
    both = ruche(*w, "association", "add", "autre", "--name", "Autre", "--email", "a@autre.example", "--no-offer",
                 "--offer", "association")  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.stderr
