"""The lab's Nextcloud-class service, MediaWiki from Debian's package, on the lab: installed into its
volume on first start (files of two owners), a page created and read back through its API, its
job-runner sidecar running the job queue, a password-reset mail reaching the lab's SMTP
sink. A restart of every unit (owners compared), backup and a restore (in place, of a snapshot taken in read-only mode, whose flag is in the volume like
Nextcloud's maintenance mode in its config.php) are steps of `ruche catalog check mediawiki-debian`
(test_catalog_check_mediawiki.py), as is `backup verify`; a restore into another instance is in test_ownership.py;
the upgrade from 1.39 is below. The wiki also takes its association's own domain (issue 25): proven through the lab
DNS, served with a certificate from the lab's Pebble, watched and removed.

Failure paths of an upgrade from 1.39 to 1.43 (PostgreSQL 15 -> 17): the registry refusing the server's pulls
ends it at once with nothing stopped; ruche killed in the middle of it leaves it interrupted, and the next `ruche
instance upgrade` rolls it back from its journal and then upgrades the wiki, its page intact.

One association (savoirs) with a mediawiki-debian instance on lab-1, on MediaWiki 1.39.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from email import message_from_string, policy
from pathlib import Path

import pytest
import tomlkit
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.lab.acme import issuing_roots
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.network import REGISTRY_PORT
from orchestrator.web.app import create_app
from orchestrator.workspace import open_workspace
from tests.helpers import Webhook
from tests.lab.servers import address_of, on

W = "--workspace"
ADDRESS = "savoirs/wiki"
APP = "ruche-savoirs--wiki-app"
JOBS = "ruche-savoirs--wiki-jobs"
ADMIN_EMAIL = "admin@savoirs.example"
PAGE = f"Calendrier_des_ateliers_{uuid.uuid4().hex[:6]}"
OLD, NEW = "1.39.17", "1.43.9"  # the wiki starts on bookworm's MediaWiki and PostgreSQL 15
NEW_APP_IMAGE = "lab.ruche.invalid/mediawiki:trixie"


class Wiki:
    """A client of the wiki's API through the server's Caddy, keeping its cookies (as a browser would)."""

    def __init__(self, lab: Path, server: str, domain: str, cookies: Path) -> None:
        self.base = f"https://{domain}"
        self.resolve = f"{domain}:443:{address_of(lab, server)}"
        self.cookies = cookies

    def call(self, method: str, path: str, data: dict | None = None) -> tuple[int, str]:
        argv = ["curl", "--silent", "--insecure", "--max-time", "60", "--resolve", self.resolve, "--cookie", str(self.cookies),
                "--cookie-jar", str(self.cookies), "--write-out", "\n%{http_code}", "--request", method]  # fmt: skip
        for key, value in (data or {}).items():
            argv += ["--data-urlencode", f"{key}={value}"]
        result = subprocess.run(argv + [self.base + path], capture_output=True, text=True, timeout=90)
        text, _, code = result.stdout.rpartition("\n")
        return int(code or 0), text

    def api(self, method: str, **parameters: str) -> dict:
        parameters["format"] = "json"
        if method == "GET":
            query = "&".join(f"{k}={v}" for k, v in parameters.items())
            code, text = self.call("GET", f"/api.php?{query}")
        else:
            code, text = self.call("POST", "/api.php", parameters)
        assert code == 200, text[-2000:]
        return json.loads(text)

    def token(self, kind: str) -> str:
        return self.api("GET", action="query", meta="tokens", type=kind)["query"]["tokens"][f"{kind}token"]

    def sign_in(self, user: str, password: str) -> dict:
        return self.api("POST", action="clientlogin", username=user, password=password, loginreturnurl=self.base + "/",
                        logintoken=self.token("login"))["clientlogin"]  # fmt: skip


def in_app(lab: Path, *argv: str) -> str:
    return on(lab, "lab-1", "podman", "exec", "--user", "www-data", APP, *argv)


@pytest.fixture(scope="module")
def wiki(lab, ruche_module, tmp_path_factory):
    w = [W, str(lab)]
    assert ruche_module(*w, "association", "add", "savoirs", "--name", "Université populaire", "--email",
                        "contact@savoirs.example", "--offer", "association").exit_code == 0  # fmt: skip
    created = ruche_module(*w, "instance", "create", "savoirs", "mediawiki-debian", "--name", "wiki", "--server", "lab-1",
                           "--param", f"admin_email={ADMIN_EMAIL}", "--param", "site_name=Savoirs partagés",
                           "--version", OLD)  # fmt: skip
    assert created.exit_code == 0, created.stdout + created.stderr
    applied = ruche_module(*w, "apply", "--instance", ADDRESS, "--json")
    assert applied.exit_code == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
    (outcome,) = json.loads(applied.stdout)["instances"]
    assert outcome["state"] == "running" and outcome["health"] == "healthy", outcome
    password = json.loads(ruche_module(*w, "instance", "secrets", ADDRESS, "admin_password", "--json").stdout)[
        "admin_password"
    ]
    return {"domain": outcome["domain"], "password": password, "cookies": tmp_path_factory.mktemp("wiki") / "cookies"}


def client(lab: Path, wiki: dict, name: str = "cookies") -> Wiki:
    return Wiki(lab, "lab-1", wiki["domain"], wiki["cookies"].with_name(name))


def read_page(lab: Path, wiki: dict) -> tuple[int, str]:
    return client(lab, wiki, "reader").call("GET", f"/index.php?title={PAGE}&action=raw")


def test_installed_on_first_start_with_the_admin_secret_and_closed_to_strangers(lab, wiki):
    owners = on(lab, "lab-1", "podman", "exec", APP, "stat", "-c", "%n %u:%g %a",
                "/var/lib/mediawiki-data/LocalSettings.php", "/var/lib/mediawiki-data/images").strip().split("\n")  # fmt: skip
    assert owners == ["/var/lib/mediawiki-data/LocalSettings.php 0:33 640", "/var/lib/mediawiki-data/images 33:33 755"]
    browser = client(lab, wiki)
    assert browser.sign_in("Admin", wiki["password"] + "x")["status"] == "FAIL"
    assert browser.sign_in("Admin", wiki["password"])["status"] == "PASS"
    # nobody signs up or edits anonymously
    rights = client(lab, wiki, "anonymous").api("GET", action="query", meta="userinfo", uiprop="rights")["query"][
        "userinfo"
    ]
    assert "createaccount" not in rights["rights"] and "edit" not in rights["rights"]


def test_a_page_created_through_the_api_is_served_and_the_job_runner_runs_the_queue(lab, wiki):
    browser = client(lab, wiki)
    assert browser.sign_in("Admin", wiki["password"])["status"] == "PASS"
    text = "Ateliers du mardi : [[Réparation de vélos]] et [[Couture]].\n[[Catégorie:Ateliers]]"
    edited = browser.api(
        "POST", action="edit", title=PAGE, text=text, summary="ruche test", token=browser.token("csrf")
    )
    assert edited["edit"]["result"] == "Success", edited
    code, body = read_page(lab, wiki)
    assert code == 200 and body == text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # web requests run no job: the sidecar empties the queue
        if in_app(lab, "mediawiki-maintenance", "showJobs").strip() == "0":
            break
        time.sleep(3)
    assert in_app(lab, "mediawiki-maintenance", "showJobs").strip() == "0"
    logs = on(lab, "lab-1", "podman", "logs", JOBS)
    assert "running jobs" in logs and " good" in logs, logs[-3000:]


def test_a_password_reset_mail_reaches_the_lab_smtp_sink(lab, wiki):
    anonymous = client(lab, wiki, "reset")
    answer = anonymous.api("POST", action="resetpassword", user="Admin", token=anonymous.token("csrf"))
    assert answer.get("resetpassword", {}).get("status") == "success", answer
    deadline = time.monotonic() + 120
    found = ""
    while time.monotonic() < deadline and not found:
        found = on(
            lab,
            "lab-backup",
            "sh",
            "-c",
            f"grep -l -r -F -i 'X-RcptTo: {ADMIN_EMAIL}' /var/mail/ruche-sink/new 2>/dev/null || true",
        ).strip()
        time.sleep(2)
    assert found, "no mail to the admin in the lab's SMTP sink"
    message = on(lab, "lab-backup", "cat", found.splitlines()[0])
    assert "From: " in message and "wiki-savoirs@lab.ruche.test" in message  # the instance's own sender
    assert wiki["domain"] in message  # the reset link points at the wiki
    assert "X-Peer: ('" + address_of(lab, "lab-1") in message  # sent from the instance's server


def mails_to(lab: Path, address: str) -> list[str]:
    """Every message the lab's SMTP sink holds for ``address``, oldest first (aiosmtpd's Maildir)."""
    names = on(lab, "lab-backup", "sh", "-c", "grep -l -r -F -i \"X-RcptTo: $1\" /var/mail/ruche-sink/new 2>/dev/null "
               "| xargs -r ls -tr || true", "sh", address).split()  # fmt: skip
    return [on(lab, "lab-backup", "cat", name) for name in names]


def subjects(messages: list[str]) -> list[str]:
    parsed = [message_from_string(m, policy=policy.default) for m in messages]
    return [str(m["Subject"]) for m in parsed]


def health_metric(lab: Path, token: str) -> float | None:
    """The wiki's ruche_instance_healthy as `ruche serve`'s /metrics says it, read with prometheus-client's parser."""
    answer = TestClient(create_app(lab), base_url="https://testserver").get(
        "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text[:500]
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "ruche_instance_healthy" and sample.labels.get("address") == ADDRESS:
                return sample.value
    return None


def test_a_stopped_container_is_told_once_to_the_admins_and_its_association_then_its_recovery(lab, wiki, ruche):
    """Issue 26 on the lab: `ruche watch` every 10 s; the wiki's app container stopped on lab-1: within two watch
    intervals one mail naming it reaches the lab's SMTP sink (the admins', and the association's in French), a
    webhook started here gets the same alert, /metrics says 0; started again: one "recovered" mail, /metrics 1;
    nothing for the other association that opted in. A server's disk and memory thresholds crossed open alerts,
    told to the admins only, that clear when they are not."""
    w = [W, str(lab)]
    config = lab / "ruche.toml"
    saved = config.read_text()
    hook = Webhook()
    watcher = None
    admins, others = "admins@collectif.test", "contact@quartier.example"
    collective = open_workspace(lab).config.collective
    try:
        document = tomlkit.parse(saved)
        document["alerts"] = {"admin_emails": [admins], "usage_minutes": 0, "remind_hours": 0}
        config.write_text(tomlkit.dumps(document))
        assert ruche(*w, "alerts", "notify", "add", hook.url).exit_code == 0
        token = json.loads(ruche(*w, "metrics", "token", "--json").stdout)["token"]
        assert ruche(*w, "association", "add", "quartier", "--name", "Quartier", "--email", others).exit_code == 0
        for slug in ("savoirs", "quartier"):
            assert ruche(*w, "association", "alerts", slug, "on", "--language", "fr").exit_code == 0
        assert health_metric(lab, token) == 1
        interval = 10
        log = lab / "watch.log"
        watcher = subprocess.Popen([sys.executable, "-m", "orchestrator", W, str(lab), "watch", "--interval", str(interval)],
                                   stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        on(lab, "lab-1", "systemctl", "stop", f"{APP}.service")
        stopped = time.monotonic()
        told: list[str] = []
        while time.monotonic() - stopped < 2 * interval + 20 and not told:
            told = [s for s in subjects(mails_to(lab, admins)) if ADDRESS in s]
            time.sleep(1)
        took = time.monotonic() - stopped
        print(f"alert mail {took:.1f} s after the container stopped", file=sys.__stderr__)
        assert told == [f"[{open_workspace(lab).config.collective}] Alert: {ADDRESS} does not answer"], log.read_text()[
            -3000:
        ]
        assert took <= 2 * interval + 10  # two intervals, and the watch's own time
        hooked = [n for n in hook.received if ADDRESS in n["title"]]
        assert [n["title"] for n in hooked] == told and "ruche alerts ack" in hooked[0]["message"]
        (owner,) = [s for s in subjects(mails_to(lab, "contact@savoirs.example")) if "Alerte" in s]
        assert owner.endswith(f"Alerte : {ADDRESS} ne répond pas")
        assert health_metric(lab, token) == 0

        on(lab, "lab-1", "systemctl", "start", f"{APP}.service", f"{JOBS}.service")
        started = time.monotonic()
        recovered: list[str] = []
        while time.monotonic() - started < 4 * interval + 60 and not recovered:
            recovered = [s for s in subjects(mails_to(lab, admins)) if ADDRESS in s and "Recovered" in s]
            time.sleep(1)
        print(f"recovered mail {time.monotonic() - started:.1f} s after the start", file=sys.__stderr__)
        assert len(recovered) == 1, log.read_text()[-3000:]
        time.sleep(interval + 2)  # one more watch: nothing more is told
        assert len([s for s in subjects(mails_to(lab, admins)) if ADDRESS in s]) == 2
        assert [n["title"] for n in hook.received if ADDRESS in n["title"]] == told + recovered
        assert any("Rétabli" in s for s in subjects(mails_to(lab, "contact@savoirs.example")))
        assert health_metric(lab, token) == 1
        assert mails_to(lab, others) == []  # another association's contact hears nothing of savoirs' wiki
        os.killpg(watcher.pid, signal.SIGTERM)
        watcher.wait(timeout=60)
        watcher = None

        # a server's disk and memory: thresholds crossed open alerts, told, which clear once they are not, told
        document = tomlkit.parse(config.read_text())  # with the webhook `alerts notify add` wrote
        document["alerts"] = {**document["alerts"], "disk_used_percent": 1, "memory_used_percent": 1}
        config.write_text(tomlkit.dumps(document))
        crossed = json.loads(ruche(*w, "watch", "--once", "--json", "--quiet").stdout)
        kinds = {(a["kind"], a["subject"]) for a in crossed["alerts"]}
        assert {("server.disk", "lab-1"), ("server.memory", "lab-1")} <= kinds, kinds
        document["alerts"] = {**document["alerts"], "disk_used_percent": 90, "memory_used_percent": 95}
        config.write_text(tomlkit.dumps(document))
        cleared = json.loads(ruche(*w, "watch", "--once", "--json", "--quiet").stdout)
        assert not {a["kind"] for a in cleared["alerts"]} & {"server.disk", "server.memory"}, cleared["alerts"]
        titles = [n["title"] for n in hook.received if "server lab-1:" in n["title"]]
        assert (
            sorted(t.split(": ")[0] for t in titles)
            == [f"[{collective}] Alert"] * 2 + [f"[{collective}] Recovered"] * 2
        )
        assert mails_to(lab, others) == [] and not any(
            "lab-1" in s for s in subjects(mails_to(lab, "contact@savoirs.example"))
        )
    finally:
        if watcher is not None:
            os.killpg(watcher.pid, signal.SIGTERM)
            watcher.wait(timeout=60)
        hook.close()
        config.write_text(saved)


OWN = "wiki.amap.test"


def served_by(lab: Path, name: str, roots: str | None = None) -> tuple[dict, str]:
    """The certificate lab-1's Caddy serves for ``name`` (its chain verified against ``roots`` when given: raises
    ssl.SSLError otherwise), and the wiki's siteinfo through that TLS connection."""
    context = ssl.create_default_context(cadata=roots) if roots else ssl._create_unverified_context()
    with socket.create_connection((address_of(lab, "lab-1"), 443), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            certificate = tls.getpeercert() or {}
            tls.sendall(f"GET /api.php?action=query&meta=siteinfo&format=json HTTP/1.1\r\nHost: {name}\r\n"
                        "Connection: close\r\n\r\n".encode())  # fmt: skip
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    return certificate, answer.decode("utf-8", "replace")


def test_an_own_domain_is_proven_served_with_a_certificate_from_pebble_watched_and_removed(lab, wiki, ruche):
    """Issue 25 on the lab: wiki.amap.test proven through the lab DNS (dnsmasq) and attached to the wiki, which
    answers on it with a certificate Pebble issued over HTTP-01 (chain checked against Pebble's root), and on its
    collective name too; the refusals (a wrong token, a name
    pointing elsewhere, one under the collective's domain, one another association holds) say what to fix; a
    certificate no longer served shows in status and audit; removed, the name is served no more."""
    w = [W, str(lab)]
    started = time.monotonic()
    server = address_of(lab, "lab-1")
    claimed = ruche(*w, "domain", "add", ADDRESS, OWN.upper() + ".", "--json")
    assert claimed.exit_code == 0, claimed.stderr
    claim = json.loads(claimed.stdout)
    token = claim["domain"]["token"]
    assert [(r["name"], r["type"], r["value"]) for r in claim["publish"]] == [
        (f"_ruche.{OWN}", "TXT", token), (OWN, "A", server)]  # fmt: skip
    base = wiki["domain"].split(".", 2)[2]
    under = ruche(*w, "domain", "add", ADDRESS, f"docs.savoirs.{base}")
    assert under.exit_code == 5 and "collective's own domain" in under.stderr and "claim a domain" in under.stderr

    # a wrong token, then the name pointing elsewhere: each refused with what to publish
    assert (
        ruche(*w, "lab", "dns", "set", f"_ruche.{OWN}", "TXT", "ruche-domain-verification=not-this-one").exit_code == 0
    )
    assert ruche(*w, "lab", "dns", "set", OWN, "A", server).exit_code == 0
    wrong = ruche(*w, "domain", "verify", ADDRESS, OWN, "--wait", "0")
    assert wrong.exit_code == 1 and f'_ruche.{OWN} must hold "{token}"' in wrong.stdout, wrong.stdout
    gateway = str(ipaddress.ip_address(server) - (int(server.rsplit(".", 1)[1]) - 1))
    assert ruche(*w, "lab", "dns", "set", f"_ruche.{OWN}", "TXT", token).exit_code == 0
    assert ruche(*w, "lab", "dns", "set", OWN, "A", gateway).exit_code == 0
    elsewhere = ruche(*w, "domain", "verify", ADDRESS, OWN, "--wait", "0")
    assert elsewhere.exit_code == 1, elsewhere.stdout
    assert f"must point at the instance's server lab-1 ({server}): it resolves to {gateway}" in elsewhere.stdout
    assert f"publish `{OWN}. 3600 IN A {server}`" in elsewhere.stdout
    assert json.loads(ruche(*w, "domain", "list", "--json").stdout)[0]["state"] == "pending"

    # published right: proven (TXT, address, round trip through lab-1's Caddy), attached, served
    assert ruche(*w, "lab", "dns", "set", OWN, "A", server).exit_code == 0
    proven = ruche(*w, "domain", "verify", ADDRESS, OWN, "--json")
    assert proven.exit_code == 0, proven.stdout[-3000:] + proven.stderr[-3000:]
    result = json.loads(proven.stdout)
    assert result["proofs"][0]["proven"] and result["runs"][0]["status"] == "successful", result
    roots = issuing_roots(LabLayout(open_workspace(lab).lab_dir))
    certificate, answer = served_by(lab, OWN, roots)  # raises unless the chain leads to Pebble's root
    assert ("DNS", OWN) in certificate["subjectAltName"] and "Pebble" in str(certificate["issuer"]), certificate
    assert " 200 " in answer.splitlines()[0] and '"generator":"MediaWiki' in answer, answer[:500]
    # not its primary address: the wiki still calls itself by its collective name (making it primary restarts the
    # wiki twice, a minute of the suite: seen once on the lab, "server":"https://wiki.amap.test", not kept here)
    assert f'"server":"https://{wiki["domain"]}"' in answer, answer[-2000:]
    assert wiki["domain"] != OWN and client(lab, wiki, "collective").api("GET", action="query", meta="siteinfo")
    (listed,) = json.loads(ruche(*w, "domain", "list", "--json").stdout)
    assert listed["state"] == "serving" and not listed["primary"] and "Pebble" in listed["certificate"]["issuer"], (
        listed
    )
    assert listed["certificate"]["not_after"] > "2026"
    inventory = (lab / "inventories").rglob("lab-1.yml")
    assert any(OWN in path.read_text() for path in inventory)  # the inventory says it

    print(f"proven, attached and served in {time.monotonic() - started:.0f} s", file=sys.__stderr__)
    # the same name, or one under it, is another association's no more to take
    assert (
        ruche(*w, "association", "add", "voisins", "--name", "Voisins", "--email", "c@voisins.example").exit_code == 0
    )
    assert (
        ruche(*w, "instance", "create", "voisins", "radicale", "--name", "agenda", "--server", "lab-1").exit_code == 0
    )
    for name in (OWN, f"www.{OWN}"):
        taken = ruche(*w, "domain", "add", "voisins/agenda", name)
        assert taken.exit_code == 5 and "held by another association" in taken.stderr, taken.stderr
    assert "savoirs" not in taken.stderr
    forgotten = ruche(*w, "instance", "delete", "voisins/agenda", "--yes", "--json")  # never deployed: no run
    assert forgotten.exit_code == 0 and json.loads(forgotten.stdout)["run"] is None, forgotten.stderr

    # a certificate no longer served (the own names' site lost on the server): failing in status and audit
    site = f"/etc/caddy/sites/{ADDRESS.replace('/', '--')}.caddy"
    on(lab, "lab-1", "sh", "-c", f"sed -i 's/^{OWN} {{/gone.invalid {{/' {site} && systemctl reload caddy")
    status = ruche(*w, "status", "--association", "savoirs", "--json")
    assert status.exit_code == 1
    (entry,) = json.loads(status.stdout)
    assert entry["own_domains"][0]["state"] == "failing", entry
    audit = json.loads(ruche(*w, "audit", "--server", "lab-1", "--json").stdout)
    rules = {(f["rule"], f["object"]) for f in audit["findings"]}
    assert ("domains.certificate-valid", f"{OWN} ({ADDRESS})") in rules, audit["findings"]

    # removed: OWN is served no more, the collective's name still is
    removed = ruche(*w, "domain", "remove", ADDRESS, OWN, "--yes", "--json")
    assert removed.exit_code == 0 and json.loads(removed.stdout)["was"] == "attached", removed.stdout + removed.stderr
    with pytest.raises((ssl.SSLError, OSError)):
        served_by(lab, OWN)
    _certificate, answer = served_by(lab, wiki["domain"])
    assert f'"server":"https://{wiki["domain"]}"' in answer, answer[-2000:]
    assert json.loads(ruche(*w, "domain", "list", "--json").stdout) == []
    ruche(*w, "lab", "dns", "remove", OWN)
    ruche(*w, "lab", "dns", "remove", f"_ruche.{OWN}")
    print(f"own domain test: {time.monotonic() - started:.0f} s", file=sys.__stderr__)


def test_its_snapshots_are_taken_in_read_only_mode_with_the_flag_in_the_volume(lab, wiki, ruche):
    """What makes `ruche catalog check mediawiki-debian`'s restore step restore a wiki in its backup's quiet state
    (and then write to it): the read-only flag of backup.before is inside the snapshot, and gone once it is taken."""
    backed_up = ruche(W, str(lab), "backup", "run", ADDRESS, "--json")
    assert backed_up.exit_code == 0, backed_up.stdout[-3000:] + backed_up.stderr[-3000:]
    (result,) = json.loads(backed_up.stdout)["results"]
    assert result["status"] == "success" and not result["detail"].get("after_errors"), result
    manifest = json.loads(
        on(lab, "lab-1", "/usr/local/sbin/ruche-backup", "manifest", "savoirs--wiki", "--snapshot", "latest")
    )
    assert "state/read-only" in manifest["volumes"]["data"], sorted(manifest["volumes"]["data"])[:20]
    left = on(
        lab,
        "lab-1",
        "podman",
        "exec",
        APP,
        "sh",
        "-c",
        "test -e /var/lib/mediawiki-data/state/read-only && echo yes || echo no",
    )
    assert left.strip() == "no"


def units_started(lab: Path) -> dict[str, str]:
    """When each unit of the wiki last entered its active state (a unit stopped or restarted since has another)."""
    units = ["ruche-savoirs--wiki-db", APP, JOBS]
    return {unit: on(lab, "lab-1", "systemctl", "show", "-P", "ActiveEnterTimestampMonotonic", f"{unit}.service").strip()
            for unit in units}  # fmt: skip


def shown(ruche, lab: Path) -> dict:
    return json.loads(ruche(W, str(lab), "instance", "show", ADDRESS, "--json").stdout)


def test_an_upgrade_the_registry_refuses_ends_at_once_and_stops_nothing(lab, wiki, ruche):
    # the new version's application image must be pulled (another module's check may have left it on lab-1)
    on(lab, "lab-1", "podman", "image", "rm", "--ignore", NEW_APP_IMAGE)
    assert (
        on(lab, "lab-1", "sh", "-c", 'podman image exists "$1" && echo yes || echo no', "_", NEW_APP_IMAGE).strip()
        == "no"
    )
    gateway = ipaddress.ip_interface(address_of(lab, "lab-1") + "/24").network.network_address + 1  # the lab host
    before = units_started(lab)
    on(lab, "lab-1", "sh", "-c", 'printf "%s\\n" "$1" | nft -f -', "_",
       f"table inet registry_fault {{ chain output {{ type filter hook output priority 0; "
       f"ip daddr {gateway} tcp dport {REGISTRY_PORT} reject with tcp reset; }}; }}")  # fmt: skip
    try:
        started = time.monotonic()
        refused = ruche(W, str(lab), "instance", "upgrade", ADDRESS, "--to", NEW, "--yes", "--json", "--quiet")
        elapsed = time.monotonic() - started
    finally:
        on(lab, "lab-1", "nft", "delete", "table", "inet", "registry_fault")
    print(f"upgrade {OLD} -> {NEW} with the registry refusing lab-1's pulls: refused in {elapsed:.1f} s")
    assert refused.exit_code == 1, refused.stdout[-4000:] + refused.stderr[-3000:]
    result = json.loads(refused.stdout)
    assert result["status"] == "refused" and "nothing was stopped or changed" in result["detail"]["error"], result
    assert f"cannot pull {NEW_APP_IMAGE}" in result["detail"]["output"], result["detail"]["output"]
    assert "connection refused" in result["detail"]["output"].lower(), result["detail"]["output"]  # podman's own words
    assert [s["step"] for s in result["detail"]["steps"]] == ["data check", "images"]  # no backup, nothing stopped
    assert elapsed < 120
    assert units_started(lab) == before  # not one unit stopped or restarted
    assert (shown(ruche, lab)["version"], shown(ruche, lab)["health"]) == (OLD, "healthy")
    code, body = read_page(lab, wiki)
    assert code == 200 and "Ateliers du mardi" in body


def test_ruche_killed_in_the_middle_of_an_upgrade_is_rolled_back_by_the_next_upgrade_which_succeeds(lab, wiki, ruche):
    argv = [sys.executable, "-m", "orchestrator", W, str(lab), "instance", "upgrade", ADDRESS, "--to", NEW, "--yes",
            "--json", "--quiet"]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while True:  # killed once the database move has begun: the wiki stopped, its database being dumped
        latest = (json.loads(ruche(W, str(lab), "upgrades", ADDRESS, "--json").stdout) or [{"status": "none"}])[0]
        if latest["status"] == "running" and any(
            e["act"] == "database move" for e in latest["detail"].get("journal", [])
        ):
            break
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.5)
    time.sleep(3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed = json.loads(ruche(W, str(lab), "upgrades", ADDRESS, "--json").stdout)[0]
    assert (killed["status"], killed["interrupted"]) == ("running", True), killed
    assert "interrupted" in ruche(W, str(lab), "upgrades", ADDRESS).stdout
    refused = ruche(W, str(lab), "instance", "upgrade", ADDRESS, "--to", NEW, "--dry-run", "--json")
    assert refused.exit_code == 5 and "was interrupted" in refused.stderr  # a dry run changes nothing, says so

    started = time.monotonic()
    again = ruche(W, str(lab), "instance", "upgrade", ADDRESS, "--to", NEW, "--yes", "--json", "--quiet")
    elapsed = time.monotonic() - started
    print(f"interrupted upgrade rolled back, then {OLD} -> {NEW} in {elapsed:.1f} s")
    assert again.exit_code == 0, again.stdout[-4000:] + again.stderr[-3000:]
    assert json.loads(again.stdout)["status"] == "succeeded"
    recovered = next(
        u for u in json.loads(ruche(W, str(lab), "upgrades", ADDRESS, "--json").stdout) if u["id"] == killed["id"]
    )
    assert recovered["status"] == "rolled_back" and not recovered["interrupted"], recovered
    detail = recovered["detail"]
    assert (detail["interrupted"], detail["recovered_by"], detail["recovery"]) == (
        True,
        "instance upgrade",
        "rolled back",
    )
    assert "database move" in detail["interrupted_at"], detail
    assert "database directory put back: success" in detail["steps"][-1]["output"], detail["steps"][-1]
    assert "rolled_back after an interruption, by instance upgrade" in ruche(W, str(lab), "upgrades", ADDRESS).stdout
    after = shown(ruche, lab)
    assert (after["version"], after["state"], after["health"]) == (NEW, "running", "healthy"), after
    code, body = read_page(lab, wiki)
    assert code == 200 and "Ateliers du mardi" in body
    left = on(lab, "lab-1", "ls", "/srv/ruche/savoirs/wiki").split()
    assert "database.before-upgrade" not in left and "upgrade" not in left, left  # the old directory dropped at the end
