"""Own domains as pure rules: names normalised, claims refused with what to fix, the records to publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domains import Claim, check_claim, expiring, normalise, records_to_publish, shown, state
from orchestrator.errors import Conflict, InvalidInput

BASE = "chatons.example.org"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Wiki.AMAP.test", "wiki.amap.test"),
        ("wiki.amap.test.", "wiki.amap.test"),
        ("  wiki.amap.test  ", "wiki.amap.test"),
        ("wiki.amap-du-côté.org", "wiki.xn--amap-du-ct-k7a4k.org"),
        ("WIKI.AMAP-DU-CÔTÉ.ORG.", "wiki.xn--amap-du-ct-k7a4k.org"),
    ],
)
def test_names_are_normalised_to_lower_case_a_labels_without_the_trailing_dot(text, name):
    assert normalise(text) == name
    assert normalise(name) == name


def test_a_name_is_shown_as_people_read_it():
    assert shown("wiki.xn--amap-du-ct-k7a4k.org") == "wiki.amap-du-côté.org"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("localhost", "at least two labels"),
        ("*.amap.test", "wildcards"),
        ("192.0.2.1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("wiki_amap.test", "not"),
        ("-wiki.amap.test", "not"),
        ("wiki..amap.test", "not"),
        ("wiki.amap.123", "number"),
        ("a" * 64 + ".test", "not"),
        (".".join(["a" * 60] * 4) + ".test", "longer than 246"),
        ("wiki.amap.test\n_ruche.x TXT", "not"),
    ],
)
def test_what_is_not_a_domain_name_is_refused_saying_why(text, says):
    with pytest.raises(InvalidInput) as refused:
        normalise(text)
    assert says in refused.value.message and refused.value.hint


def test_a_name_under_above_or_equal_to_the_collectives_domain_is_refused():
    for name in (BASE, f"wiki.amap.{BASE}", "example.org"):
        with pytest.raises(Conflict, match="collective's own domain"):
            check_claim(name, "amap", "amap/wiki", BASE, [])


def test_a_name_held_by_another_association_and_names_around_it_are_refused_without_naming_it():
    held = [Claim("amap-du-coin.org", "jardins", "jardins/wiki", "attached")]
    for name in ("amap-du-coin.org", "wiki.amap-du-coin.org", "deep.wiki.amap-du-coin.org"):
        with pytest.raises(Conflict) as refused:
            check_claim(name, "velo", "velo/site", BASE, held)
        assert "another association" in refused.value.message and "jardins" not in refused.value.message
    under = [Claim("wiki.amap-du-coin.org", "amap", "amap/wiki", "attached")]
    with pytest.raises(Conflict, match="one inside the other"):
        check_claim("amap-du-coin.org", "velo", "velo/site", BASE, under)


def test_a_pending_claim_of_another_association_does_not_block_and_the_owner_gets_its_own_claim_back():
    pending = [Claim("wiki.amap.test", "squatter", "squatter/x", "pending")]
    assert check_claim("wiki.amap.test", "amap", "amap/wiki", BASE, pending) is None
    own = Claim("wiki.amap.test", "amap", "amap/wiki", "pending")
    assert check_claim("wiki.amap.test", "amap", "amap/wiki", BASE, [own]) == own
    with pytest.raises(Conflict, match="already claimed for amap/wiki"):
        check_claim("wiki.amap.test", "amap", "amap/other", BASE, [own])


def test_the_records_to_publish_are_the_token_and_a_pointer_at_the_server():
    txt, pointer = records_to_publish("wiki.amap.test", "ruche-domain-verification=abc", "192.0.2.7")
    assert txt == {"name": "_ruche.wiki.amap.test", "type": "TXT", "value": "ruche-domain-verification=abc",
                   "line": '_ruche.wiki.amap.test. 3600 IN TXT "ruche-domain-verification=abc"'}  # fmt: skip
    assert pointer["type"] == "A" and pointer["value"] == "192.0.2.7"
    assert records_to_publish("wiki.amap.test", "t", "web-1.chatons.example.org")[1]["type"] == "CNAME"
    assert records_to_publish("wiki.amap.test", "t", "2001:db8::7")[1]["type"] == "AAAA"


def test_states_and_expiry():
    assert state("pending", "unknown") == "pending"
    assert state("attached", "unknown") == "verified"
    assert state("attached", "ok") == "serving"
    assert state("attached", "failing") == "failing"
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert expiring(now + timedelta(days=13), now, 14) and not expiring(now + timedelta(days=15), now, 14)
    assert not expiring(None, now, 14)
