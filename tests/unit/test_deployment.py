"""Deployment variables: env parts, secrets by reference, database wiring, fingerprints, ports."""

import pytest

from orchestrator.deployment import InstanceRecord, fingerprint, free_http_port, instance_variables, secret_names
from orchestrator.inventory import Unsafe, Vaulted
from tests.helpers import CATALOG


def record(**changes):
    fields = dict(
        association="amap", name="veille", domain="veille.amap.example.org", http_port=20001, desired_state="present",
        cpu=0.25, memory_mb=128, parameters={"admin_user": "{{ x }}"}, secrets={"admin_password": "C1", "db_password": "C2"},
    )  # fmt: skip
    fields.update(changes)
    return InstanceRecord(**fields)


def test_secrets_are_referenced_by_name_and_user_text_is_unsafe():
    variables = instance_variables(record(), CATALOG.get("miniflux"))
    environment = {e["name"]: e["parts"] for e in variables["app"]["environment"]}
    assert environment["ADMIN_PASSWORD"] == [{"secret": "admin_password"}]
    assert environment["ADMIN_USERNAME"] == [{"text": "{{ x }}"}] and isinstance(
        environment["ADMIN_USERNAME"][0]["text"], Unsafe
    )
    assert environment["DATABASE_URL"] == [
        {"text": "postgres://app:"}, {"secret": "db_password"},
        {"text": "@ruche-amap--veille-db:5432/app?sslmode=disable"},
    ]  # fmt: skip
    assert environment["BASE_URL"] == [{"text": "https://veille.amap.example.org"}]
    assert all(isinstance(v, Vaulted) for v in variables["secrets"].values())
    database = {e["name"]: e["parts"] for e in variables["database"]["environment"]}
    assert database["POSTGRES_PASSWORD"] == [{"secret": "db_password"}]


def test_secret_names_include_the_databases():
    assert secret_names(CATALOG.get("miniflux")) == ["admin_password", "db_password"]
    assert secret_names(CATALOG.get("radicale")) == ["admin_password"]


def test_fingerprint_follows_what_is_deployed():
    service = CATALOG.get("miniflux")
    base = fingerprint(instance_variables(record(), service))
    assert base == fingerprint(instance_variables(record(), service))
    assert base != fingerprint(instance_variables(record(desired_state="suspended"), service))
    assert base != fingerprint(instance_variables(record(parameters={"admin_user": "other"}), service))


def test_free_http_port_takes_the_lowest_unused_and_refuses_when_full():
    assert free_http_port({20000, 20001, 20003}) == 20002
    with pytest.raises(ValueError):
        free_http_port(set(range(20000, 30000)))


def _environment(variables):
    return {e["name"]: "".join(part.get("text", "?") for part in e["parts"]) for e in variables["app"]["environment"]}


def test_an_own_domain_made_primary_is_the_instances_address_and_every_name_is_listed():
    service = CATALOG.get("miniflux")
    probe = service.model_copy(update={"environment": {
        "DOMAIN": "${instance.domain}", "URL": "${instance.url}", "NAMES": "${instance.domains}",
        "COLLECTIVE": "${instance.collective_domain}"}})  # fmt: skip
    own = record(own_domains=("veille.amap-du-coin.org", "rss.amap-du-coin.org"), primary_domain="rss.amap-du-coin.org")
    assert _environment(instance_variables(own, probe)) == {
        "DOMAIN": "rss.amap-du-coin.org", "URL": "https://rss.amap-du-coin.org",
        "NAMES": "rss.amap-du-coin.org veille.amap.example.org veille.amap-du-coin.org",
        "COLLECTIVE": "veille.amap.example.org"}  # fmt: skip
    # attached but not primary: the collective's name stays the address, the own domain is one more name
    attached = record(own_domains=("veille.amap-du-coin.org",))
    assert _environment(instance_variables(attached, probe)) == {
        "DOMAIN": "veille.amap.example.org", "URL": "https://veille.amap.example.org",
        "NAMES": "veille.amap.example.org veille.amap-du-coin.org", "COLLECTIVE": "veille.amap.example.org"}  # fmt: skip
    assert _environment(instance_variables(record(), probe))["NAMES"] == "veille.amap.example.org"
    assert _environment(instance_variables(own, service))["BASE_URL"] == "https://rss.amap-du-coin.org"


def test_nextcloud_trusts_every_name_and_writes_links_with_the_primary_one():
    nextcloud = record(
        name="cloud", domain="cloud.amap.example.org", parameters={"admin_email": "a@amap.example.org"},
        own_domains=("cloud.amap-du-coin.org",), primary_domain="cloud.amap-du-coin.org",
    )  # fmt: skip
    variables = instance_variables(nextcloud, CATALOG.get("nextcloud"))
    environment = _environment(variables)
    assert environment["NEXTCLOUD_TRUSTED_DOMAINS"] == "cloud.amap-du-coin.org cloud.amap.example.org"
    assert environment["OVERWRITEHOST"] == "cloud.amap-du-coin.org"
    assert environment["OVERWRITECLIURL"] == "https://cloud.amap-du-coin.org"
    # the entrypoint applies NEXTCLOUD_TRUSTED_DOMAINS only when it installs: setup writes it at every apply
    assert any("occ config:import" in " ".join(command) and "NEXTCLOUD_TRUSTED_DOMAINS" in " ".join(command)
               for command in CATALOG.get("nextcloud").setup)  # fmt: skip
