"""The lab's Nextcloud-class service, MediaWiki from Debian's package, on the lab: installed into its
volume on first start (files of two owners), a page created and read back through its API, its
job-runner sidecar running the job queue, a password-reset mail reaching the lab's SMTP
sink. A restart of every unit (owners compared), backup, restores (in place, of a snapshot taken in read-only mode, whose flag is in the volume like
Nextcloud's maintenance mode in its config.php), `backup verify` and the upgrade from 1.39 are steps of
`ruche catalog check mediawiki-debian` (test_catalog_check_mediawiki.py).

One association (savoirs) with a mediawiki-debian instance on lab-1.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.lab.servers import address_of, on

W = "--workspace"
ADDRESS = "savoirs/wiki"
APP = "ruche-savoirs--wiki-app"
JOBS = "ruche-savoirs--wiki-jobs"
ADMIN_EMAIL = "admin@savoirs.example"
PAGE = f"Calendrier_des_ateliers_{uuid.uuid4().hex[:6]}"
RUN_PHP = "/usr/share/mediawiki/maintenance/run.php"


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
                           "--param", f"admin_email={ADMIN_EMAIL}", "--param", "site_name=Savoirs partagés")  # fmt: skip
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
        if in_app(lab, "php", RUN_PHP, "showJobs").strip() == "0":
            break
        time.sleep(3)
    assert in_app(lab, "php", RUN_PHP, "showJobs").strip() == "0"
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
