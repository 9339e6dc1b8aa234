"""`ruche report --chatonsinfos DIR` and `ruche serve`'s /.well-known/chatonsinfos/ (reports/chatonsinfos.py), on
SQLite and PostgreSQL: the files parse as Java properties and hold every mandatory field of the format, a
missing ruche.toml value is refused by its key with nothing written, and no association is ever named.

The mandatory fields, by file. GENERAL.md itself (https://forge.devinsy.fr/statool/statoolinfos/raw/branch/main/
GENERAL.md) could not be fetched whole from here (no network; the search index holds its opening only), so the
list is taken from what could be read of it and, for the organisation and service fields, from the CHATONS
tooling that follows it:

- GENERAL.md's "File section" (https://forge.devinsy.fr/statool/statoolinfosweb/src/commit/
  9227238b2555cc4ce94b549d082d21953748e38a/GENERAL.md): file.class, file.protocol, file.datetime, file.generator,
  file.url, Mandatory "Yes"; its "Host section (draft)": host.name, host.provider "Yes";
- GENERAL.md's federation fields marked "Yes" (name, description, website, contact.email; same URL), held to
  the organisation's too;
- ChatonsInfos' organisation fields marked mandatory (``optional = false``) in YunoHost's chatonsinfos_ynh
  (https://github.com/YunoHost-Apps/chatonsinfos_ynh, conf/config_panel.toml.j2 at commit
  09733a8ddfb6499747f54bd13c31342c03847e70): organization.name, organization.type,
  organization.memberof.chatons.status.level, organization.memberof.chatons.startdate, organization.country.name;
- the service, software and host fields chatonsinfos_ynh fills for every service (scripts/_common.sh at commit
  22460f532bb3159596402fbfcddc8533c5119f04).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import tomlkit
from fastapi.testclient import TestClient
from sqlalchemy import update

from orchestrator.state.database import StateStore
from orchestrator.state.models import Instance
from orchestrator.web.app import create_app
from orchestrator.workspace import open_workspace
from tests.unit.test_chatonsinfos_properties import parse_properties

FILE_MANDATORY = {"file.class", "file.protocol", "file.datetime", "file.generator", "file.url"}
ORGANIZATION_MANDATORY = FILE_MANDATORY | {
    "organization.name", "organization.description", "organization.website", "organization.contact.email",
    "organization.type", "organization.memberof.chatons.status.level", "organization.memberof.chatons.startdate",
    "organization.country.name",
}  # fmt: skip
SERVICE_MANDATORY = FILE_MANDATORY | {
    "service.name", "service.description", "service.website", "service.startdate", "service.status.level",
    "service.registration", "service.registration.load", "service.install.type",
    "software.name", "software.website", "software.license.url", "software.license.name", "software.source.url",
    "host.name", "host.provider", "host.server.distribution", "host.server.type", "host.provider.type",
    "host.country.code",
}  # fmt: skip
URL = re.compile(r"^https?://.+\..+/.*$")
SETTINGS = {
    "description": "Un chaton : hébergement éthique, l'esprit libre = 100 % !",
    "website": "https://chatons.example.org/",
    "contact_email": "contact@chatons.example.org",
    "type": "ASSOCIATION",
    "chatons_since": date(2021, 3, 4),
    "country_name": "France",
    "country_code": "FR",
    "socialnetworks": {"mastodon": "https://mastodon.example.org/@chaton"},
    "host": {"provider_type": "HOSTEDSERVER", "server_type": "VIRTUAL", "country_code": "FR"},
}


def test_files_hold_every_mandatory_field_and_the_web_app_serves_them(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    added = ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "16G",
                  "--disk", "500G", "--label", "provider=Coop-Hosting")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    for slug, name in (("amap", "AMAP du Coin"), ("club", "Club Discret")):
        made = ruche(*w, "association", "add", slug, "--name", name, "--email", f"c@{slug}.fr", "--offer", "decouverte")
        assert made.exit_code == 0, made.stderr
    assert ruche(*w, "association", "listing", "amap", "agreed").exit_code == 0
    for address, service in (("amap", "radicale"), ("club", "miniflux")):
        created = ruche(*w, "instance", "create", address, service)
        assert created.exit_code == 0, created.stderr
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            session.execute(
                update(Instance).where(Instance.service_id == "radicale").values(state="running", health="healthy")
            )
            session.commit()
    finally:
        store.close()

    # missing values: refused by their ruche.toml keys, nothing written, nothing served
    out = tmp_path / "published"
    early = TestClient(create_app(workspace), base_url="https://testserver")
    assert early.get("/.well-known/chatonsinfos/organization.properties").status_code == 404
    refused = ruche(*w, "report", "--chatonsinfos", str(out))
    assert refused.exit_code == 3, refused.stderr
    for key in ("description", "website", "contact_email", "type", "chatons_since", "country_name", "country_code",
                "[chatonsinfos.host] provider_type", "[chatonsinfos.host] server_type"):  # fmt: skip
        assert key in refused.stderr, (key, refused.stderr)
    assert "[chatonsinfos.host] name" not in refused.stderr  # the servers' label `provider` gave host.name
    assert not out.exists()
    document = tomlkit.parse((workspace / "ruche.toml").read_text())
    for key, value in SETTINGS.items():
        if isinstance(value, dict):
            document["chatonsinfos"][key].update(value)
        else:
            document["chatonsinfos"][key] = value
    (workspace / "ruche.toml").write_text(tomlkit.dumps(document))

    written = ruche(*w, "report", "--chatonsinfos", str(out), "--json")
    assert written.exit_code == 0, written.stderr
    listing = json.loads(written.stdout)
    assert listing["services"] == ["miniflux", "radicale"]
    assert sorted(p.name for p in out.iterdir()) == ["miniflux.properties", "organization.properties",
                                                      "radicale.properties"]  # no partial file left  # fmt: skip
    files = {p.name: parse_properties(p.read_text(encoding="utf-8")) for p in out.iterdir()}
    organization = files["organization.properties"]
    assert ORGANIZATION_MANDATORY <= {k for k, v in organization.items() if v}, ORGANIZATION_MANDATORY - set(
        organization
    )
    assert organization["file.class"] == "Organization" and organization["organization.name"] == "Test"
    assert organization["organization.description"] == "Un chaton : hébergement éthique, l'esprit libre = 100 % !"
    assert organization["organization.socialnetworks.mastodon"] == "https://mastodon.example.org/@chaton"
    assert {k: v for k, v in organization.items() if k.startswith("subs.")} == {
        "subs.miniflux": "http://127.0.0.1:8080/.well-known/chatonsinfos/miniflux.properties",
        "subs.radicale": "http://127.0.0.1:8080/.well-known/chatonsinfos/radicale.properties",
    }
    for name in ("radicale.properties", "miniflux.properties"):
        service = files[name]
        assert SERVICE_MANDATORY <= {k for k, v in service.items() if v}, (name, SERVICE_MANDATORY - set(service))
        assert service["file.class"] == "Service"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", service["file.datetime"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", service["service.startdate"])
        assert all(URL.match(service[k]) for k in ("file.url", "service.website", "software.website",
                                                   "software.license.url", "software.source.url"))  # fmt: skip
        assert service["service.registration"] == "Member" and service["service.registration.load"] == "OPEN"
        assert service["host.name"] == "Coop-Hosting" and service["host.provider.type"] == "HOSTEDSERVER"
        assert service["host.server.distribution"] == "Debian GNU/Linux" and service["host.country.code"] == "FR"
    radicale, miniflux = files["radicale.properties"], files["miniflux.properties"]
    assert radicale["software.license.name"] == "GPL-3.0-or-later" and radicale["service.status.level"] == "OK"
    assert miniflux["software.source.url"] == "https://github.com/miniflux/v2"
    assert miniflux["service.status.level"] == "WARNING"  # created, never checked: not said to be OK
    everything = "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    for secret in ("AMAP du Coin", "Club Discret", "amap", "club", "c@", "192.0.2.1"):
        assert secret not in everything, secret  # no association named, listed or not, and no address

    # a service no longer offered: its file goes, a file ruche did not write stays
    (out / "mine.properties").write_text("file.class = Service\n")
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            session.execute(update(Instance).where(Instance.service_id == "miniflux").values(state="deleted"))
            session.commit()
    finally:
        store.close()
    again = json.loads(ruche(*w, "report", "--chatonsinfos", str(out), "--json").stdout)
    assert again["services"] == ["radicale"] and again["removed"] == [str(out / "miniflux.properties")]
    assert sorted(p.name for p in out.iterdir()) == [
        "mine.properties",
        "organization.properties",
        "radicale.properties",
    ]
    assert "subs.miniflux" not in (out / "organization.properties").read_text()
    files = {
        p.name: parse_properties(p.read_text(encoding="utf-8")) for p in out.iterdir() if p.name != "mine.properties"
    }

    # the same files from `ruche serve`, public
    client = TestClient(create_app(workspace), base_url="https://testserver")
    for name in files:
        answer = client.get(f"/.well-known/chatonsinfos/{name}")
        assert answer.status_code == 200, (name, answer.text[:300])
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        served = parse_properties(answer.content.decode("utf-8"))
        assert {k: v for k, v in served.items() if k != "file.datetime"} == {
            k: v for k, v in files[name].items() if k != "file.datetime"
        }
    for wrong in ("miniflux.properties", "mattermost.properties", "organization", "..%2Fruche.toml", "x" * 300 + ".properties",
                  "Radicale.properties", "%00.properties", "radicale.properties.bak", "é.properties"):  # fmt: skip
        answer = client.get(f"/.well-known/chatonsinfos/{wrong}")
        assert answer.status_code == 404, (wrong, answer.status_code)

    # an offered entry without its `software` block: refused by the entry's name, the files left as they were
    catalog = tmp_path / "catalog"
    shutil.copytree(Path(__file__).parents[2] / "service_catalog", catalog)
    entry = (catalog / "radicale.yaml").read_text()
    (catalog / "radicale.yaml").write_text(re.sub(r"\nsoftware:\n(  .*\n)+", "\n", entry))
    document = tomlkit.parse((workspace / "ruche.toml").read_text())
    document["catalog_dir"] = str(catalog)
    (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
    before = (out / "radicale.properties").read_text()
    refused = ruche(*w, "report", "--chatonsinfos", str(out))
    assert refused.exit_code == 3 and "radicale.yaml's `software`" in refused.stderr, refused.stderr
    assert (out / "radicale.properties").read_text() == before
