"""An association leaves one collective for another with its data (issue 27): two workspaces, each with a lab of
its own on its own subnet. On the sender's lab, association "depart" has a Miniflux (a category written through its
API) and a MediaWiki from Debian's package (a page written through its maintenance CLI; files of two owners and
PostgreSQL tables). `ruche association export --to` the receiver's key writes the signed bundle; on the receiver,
a bundle with one changed byte, one from a key not trusted, and one whose slug is taken there are refused with
nothing created; then `ruche association import --trust` the sender's key deploys both services on the receiver's
lab, loads their data and compares it with what was exported: the category is read back through Miniflux's API with
the admin password the sealed secrets carried, the page through MediaWiki's web server. Both audit trails name the
bundle by its SHA-256. (The checks of every other refusal, without servers: tests/integration/test_association_import.py.)
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from orchestrator.actions.lab_down import tear_down
from orchestrator.actions.lab_up import bring_up
from tests.lab.conftest import make_lab_workspace
from tests.lab.servers import address_of, on

W = "--workspace"
PAGE = f"Assemblee_generale_{uuid.uuid4().hex[:6]}"
CATEGORY = "Circuits courts"


def receiver_subnet() -> str:
    """Beside the session lab's (10.213.49 or 10.213.5x): 10.213.7x, x the pytest-xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"10.213.{70 + (int(worker) if worker.isdigit() else 0)}.0/24"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    """The other collective: a workspace of its own whose lab (one application server, a backup server) is up."""
    path = make_lab_workspace(tmp_path_factory.mktemp("receiver") / "workspace", receiver_subnet())
    try:
        bring_up(path, app_servers=1, progress=lambda message: print(f"receiver lab up: {message}", flush=True))
        yield path
    finally:
        tear_down(path)


def https(lab: Path, server: str, domain: str, path: str, *, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    argv = ["curl", "--silent", "--insecure", "--max-time", "30", "--resolve", f"{domain}:443:{address_of(lab, server)}",
            "--write-out", "\n%{http_code}"]  # fmt: skip
    if auth:
        argv += ["--user", f"{auth[0]}:{auth[1]}"]
    result = subprocess.run([*argv, f"https://{domain}{path}"], capture_output=True, text=True, timeout=60)
    text, _, code = result.stdout.rpartition("\n")
    return int(code or 0), text


def shown(ruche, lab: Path, address: str) -> dict:
    return json.loads(ruche(W, str(lab), "instance", "show", address, "--json").stdout)


def secret(ruche, lab: Path, address: str) -> str:
    return json.loads(ruche(W, str(lab), "instance", "secrets", address, "admin_password", "--json").stdout)[
        "admin_password"
    ]


def categories(ruche, lab: Path, address: str) -> list[str]:
    instance = shown(ruche, lab, address)
    code, text = https(lab, instance["server"], instance["domain"], "/v1/categories",
                       auth=("admin", secret(ruche, lab, address)))  # fmt: skip
    assert code == 200, text
    return [c["title"] for c in json.loads(text)]


def page(ruche, lab: Path, address: str) -> tuple[int, str]:
    instance = shown(ruche, lab, address)
    return https(lab, instance["server"], instance["domain"], f"/index.php?title={PAGE}&action=raw")


def test_an_association_leaves_with_its_data_for_another_collective_and_a_bad_bundle_is_refused(
    lab, receiver, ruche, tmp_path
):
    sender, w, r = lab, [W, str(lab)], [W, str(receiver)]
    assert ruche(*w, "association", "add", "depart", "--name", "Association en partance", "--email",
                 "contact@depart.example", "--offer", "association").exit_code == 0  # fmt: skip
    for command in (("depart", "miniflux", "--name", "veille", "--server", "lab-1"),
                    ("depart", "mediawiki-debian", "--name", "wiki", "--server", "lab-2",
                     "--param", "admin_email=admin@depart.example", "--param", "site_name=En partance")):  # fmt: skip
        created = ruche(*w, "instance", "create", *command)
        assert created.exit_code == 0, created.stderr
    applied = ruche(*w, "apply", "--json")
    assert applied.exit_code == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
    veille = shown(ruche, sender, "depart/veille")
    made = subprocess.run(
        ["curl", "--silent", "--insecure", "--max-time", "30", "--resolve",
         f"{veille['domain']}:443:{address_of(sender, veille['server'])}", "--user",
         f"admin:{secret(ruche, sender, 'depart/veille')}", "--data-binary", json.dumps({"title": CATEGORY}),
         "--header", "Content-Type: application/json", f"https://{veille['domain']}/v1/categories"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert CATEGORY in made.stdout, made.stdout + made.stderr
    on(sender, "lab-2", "podman", "exec", "--user", "www-data", "ruche-depart--wiki-app", "sh", "-c",
       f"echo 'Ordre du jour: le départ.' | /usr/local/bin/mediawiki-maintenance edit --summary import '{PAGE}'")  # fmt: skip
    assert page(ruche, sender, "depart/wiki") == (200, "Ordre du jour: le départ.")

    receiver_key = json.loads(ruche(*r, "key", "show", "--json").stdout)["public_key"]
    sender_key = json.loads(ruche(*w, "key", "show", "--json").stdout)["public_key"]
    bundle = tmp_path / "depart.ruche-bundle"
    exported = ruche(*w, "association", "export", "depart", "-o", str(bundle), "--to", receiver_key, "--json")
    assert exported.exit_code == 0, exported.stdout[-2000:] + exported.stderr[-3000:]
    digest = json.loads(exported.stdout)["sha256"]
    unpacked = gzip.decompress(bundle.read_bytes())  # the tar itself: every member's bytes
    for address in ("depart/veille", "depart/wiki"):  # carried sealed, never in clear
        assert secret(ruche, sender, address).encode() not in unpacked

    # refused, nothing created: a changed byte, a key not trusted, a slug taken
    nothing = ruche(*r, "association", "list", "--json").stdout, ruche(*r, "instance", "list", "--json").stdout
    raw = bytearray(bundle.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / "changed.ruche-bundle").write_bytes(bytes(raw))
    changed = ruche(*r, "association", "import", str(tmp_path / "changed.ruche-bundle"), "--trust", sender_key)
    untrusted = ruche(*r, "association", "import", str(bundle))
    assert changed.exit_code == 2 and untrusted.exit_code == 2 and "not trusted" in untrusted.stderr
    assert ruche(*r, "association", "add", "depart", "--name", "Homonyme", "--email", "h@h.example").exit_code == 0
    taken = ruche(*r, "association", "import", str(bundle), "--trust", sender_key)
    assert taken.exit_code == 2 and "already exists" in taken.stderr, taken.stderr
    assert ruche(*r, "association", "remove", "depart", "--yes").exit_code == 0
    assert (
        ruche(*r, "association", "list", "--json").stdout,
        ruche(*r, "instance", "list", "--json").stdout,
    ) == nothing

    imported = ruche(*r, "association", "import", str(bundle), "--trust", sender_key, "--json")
    assert imported.exit_code == 0, imported.stdout[-3000:] + imported.stderr[-5000:]
    result = json.loads(imported.stdout)
    assert result["secrets"] == "carried" and result["sha256"] == digest
    for name in ("veille", "wiki"):
        assert result["instances"][name]["result"]["health"] == "healthy", result
    assert result["instances"]["wiki"]["result"]["tables"] > 10 and result["instances"]["wiki"]["result"]["files"] > 0
    assert CATEGORY in categories(ruche, receiver, "depart/veille")  # with the admin password the bundle carried
    assert page(ruche, receiver, "depart/wiki") == (200, "Ordre du jour: le départ.")
    assert secret(ruche, receiver, "depart/wiki") == secret(ruche, sender, "depart/wiki")
    for workspace, kind in ((sender, "association.exported"), (receiver, "association.imported")):
        events = json.loads(ruche(W, str(workspace), "events", "--kind", kind, "--json").stdout)
        assert [e["detail"]["sha256"] for e in events if e["subject"] == "depart"] == [digest], (kind, events)
