"""Fixed subordinate ID ranges on the lab: files of two owners in an instance's volume keep both
owners across a container restart, a server reboot, a restore, and a restore into another instance
on the other server; that copy's recorded admin secret opens the restored data; ranges never overlap.

One association (archives) with a Radicale instance on lab-1: the image runs as the radicale user,
and the test adds, as root inside the container, a file of root's and one of www-data's (33), as a
Nextcloud-class image keeps them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.idranges import POOL_START, RANGE_SIZE
from tests.lab.servers import address_of, on

W = "--workspace"
APP = "ruche-archives--radicale-app"
VOLUME = "/var/lib/radicale"


class _Loader(yaml.SafeLoader):
    """Reads generated inventories as an auditor's script would: !unsafe and !vault values as plain text."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def read_host_vars(lab: Path, server: str) -> dict:
    return yaml.load((lab / "inventories" / "production" / "host_vars" / f"{server}.yml").read_text(), Loader=_Loader)


def owners_inside(lab: Path, server: str, container: str) -> dict[str, str]:
    """The owners (UID:GID) of the test's files as the container sees them."""
    listing = on(lab, server, "podman", "exec", "--user", "0", container, "stat", "-c", "%n %u:%g",
                 f"{VOLUME}/root-file", f"{VOLUME}/www-data-file", f"{VOLUME}/collections")  # fmt: skip
    return {Path(name).name: owner for name, owner in (line.split() for line in listing.splitlines())}


def owners_on_host(lab: Path, server: str, directory: str) -> dict[str, str]:
    listing = on(lab, server, "sh", "-c", f"cd {directory} && stat -c '%n %u:%g' root-file www-data-file collections")
    return {name: owner for name, owner in (line.split() for line in listing.splitlines())}


def instance(ruche, lab: Path, address: str) -> dict:
    return json.loads(ruche(W, str(lab), "instance", "show", address, "--json").stdout)


def propfind(lab: Path, shown: dict, user: str, password: str) -> int:
    argv = ["curl", "--silent", "--insecure", "--max-time", "30", "--resolve", f"{shown['domain']}:443:{address_of(lab, shown['server'])}",
            "--request", "PROPFIND", "--header", "Depth: 0", "--user", f"{user}:{password}", "--output", "/dev/null",
            "--write-out", "%{http_code}", f"https://{shown['domain']}/{user}/"]  # fmt: skip
    return int(subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout or 0)


def wait_until_healthy(ruche, lab: Path, address: str, attempts: int = 60) -> None:
    states = {}
    for _ in range(attempts):
        result = ruche(W, str(lab), "status", "--association", address.split("/")[0], "--json")
        states = {i["address"]: i["health"] for i in json.loads(result.stdout)}
        if states.get(address) == "healthy":
            return
        time.sleep(2)
    raise AssertionError(f"{address} did not answer again: {states.get(address)}")


@pytest.fixture(scope="module")
def archives(lab, ruche_module):
    w = [W, str(lab)]
    assert ruche_module(*w, "association", "add", "archives", "--name", "Archives du quartier", "--email",
                        "contact@archives.example", "--offer", "association").exit_code == 0  # fmt: skip
    created = ruche_module(
        *w, "instance", "create", "archives", "radicale", "--server", "lab-1", "--param", "admin_user=archiviste"
    )
    assert created.exit_code == 0, created.stdout + created.stderr
    applied = ruche_module(*w, "apply", "--instance", "archives/radicale", "--json")
    assert applied.exit_code == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    on(lab, "lab-1", "podman", "exec", "--user", "0", APP, "sh", "-c",
       f"echo racine > {VOLUME}/root-file && echo web > {VOLUME}/www-data-file && chown 33:33 {VOLUME}/www-data-file")  # fmt: skip
    return instance(ruche_module, lab, "archives/radicale")


def test_the_instance_runs_in_its_recorded_range_and_the_inventory_shows_it(lab, archives):
    ids = archives["id_range"]
    assert (
        ids["size"] == RANGE_SIZE
        and ids["start"] >= POOL_START
        and ids["start"] == POOL_START + ids["slot"] * RANGE_SIZE
    )
    pid = on(lab, "lab-1", "podman", "inspect", "--format", "{{.State.Pid}}", APP).strip()
    assert on(lab, "lab-1", "cat", f"/proc/{pid}/uid_map").split() == ["0", str(ids["start"]), str(RANGE_SIZE)]
    assert on(lab, "lab-1", "cat", f"/proc/{pid}/gid_map").split() == ["0", str(ids["start"]), str(RANGE_SIZE)]
    (listed,) = [i for i in read_host_vars(lab, "lab-1")["ruche_instances"] if i["identifier"] == "archives--radicale"]
    assert listed["ids"] == {"start": ids["start"], "size": RANGE_SIZE}
    assert f"ruche:{POOL_START}:" in on(lab, "lab-1", "cat", "/etc/subuid")


def test_two_owners_survive_a_restart_and_a_reboot(lab, archives, ruche):
    start = archives["id_range"]["start"]
    expected_inside = {"root-file": "0:0", "www-data-file": "33:33"}
    first = owners_inside(lab, "lab-1", APP)
    assert {k: first[k] for k in expected_inside} == expected_inside
    radicale_owner = first["collections"]  # the image's own user, as Podman's :U set it once at creation
    assert radicale_owner != "0:0"
    host = owners_on_host(lab, "lab-1", "/srv/ruche/archives/radicale/volumes/data")
    assert host["root-file"] == f"{start}:{start}" and host["www-data-file"] == f"{start + 33}:{start + 33}"

    on(lab, "lab-1", "systemctl", "restart", f"{APP}.service")
    wait_until_healthy(ruche, lab, "archives/radicale")
    assert owners_inside(lab, "lab-1", APP) == {**expected_inside, "collections": radicale_owner}

    # A reboot of the server's system (every service and container stopped, quadlet units generated
    # again at boot and started by their [Install] section); the lab's servers share the host's kernel.
    on(lab, "lab-1", "sh", "-c", "systemctl soft-reboot >/dev/null 2>&1 &")
    time.sleep(10)
    wait_until_healthy(ruche, lab, "archives/radicale", attempts=90)
    assert owners_inside(lab, "lab-1", APP) == {**expected_inside, "collections": radicale_owner}
    assert owners_on_host(lab, "lab-1", "/srv/ruche/archives/radicale/volumes/data") == host


def test_two_owners_survive_a_restore_and_a_restore_into_another_instance_on_the_other_server(lab, archives, ruche):
    w = [W, str(lab)]
    expected = owners_inside(lab, "lab-1", APP)
    backed_up = ruche(*w, "backup", "run", "archives/radicale", "--json")
    assert backed_up.exit_code == 0, backed_up.stdout[-2000:] + backed_up.stderr[-2000:]
    (snapshot,) = [result["snapshot_id"] for result in json.loads(backed_up.stdout)["results"]]
    on(lab, "lab-1", "podman", "exec", "--user", "0", APP, "rm", f"{VOLUME}/www-data-file")

    restored = ruche(*w, "backup", "restore", "archives/radicale", "--yes", "--json")
    assert restored.exit_code == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    assert owners_inside(lab, "lab-1", APP) == expected

    # the snapshot with both files (the restore above took a safety backup, now the latest, without one)
    copied = ruche(*w, "backup", "restore", "archives/radicale", "--snapshot", snapshot, "--into", "archives/copie",
                   "--server", "lab-2", "--yes", "--json")  # fmt: skip
    assert copied.exit_code == 0, copied.stdout[-3000:] + copied.stderr[-3000:]
    answer = json.loads(copied.stdout)["restore"]
    assert answer["health"] == "healthy" and answer["secrets_carried_over"] == ["admin_password"]
    copy = instance(ruche, lab, "archives/copie")
    assert copy["server"] == "lab-2" and copy["id_range"]["start"] != archives["id_range"]["start"]
    assert owners_inside(lab, "lab-2", "ruche-archives--copie-app") == expected
    start = copy["id_range"]["start"]
    host = owners_on_host(lab, "lab-2", "/srv/ruche/archives/copie/volumes/data")
    assert host["root-file"] == f"{start}:{start}" and host["www-data-file"] == f"{start + 33}:{start + 33}"

    # the copy's recorded admin secret opens the restored data (the users file came from the source)
    secret = json.loads(ruche(*w, "instance", "secrets", "archives/copie", "admin_password", "--json").stdout)[
        "admin_password"
    ]
    assert propfind(lab, copy, "archiviste", secret) == 207
    assert propfind(lab, copy, "archiviste", secret + "x") == 401


def test_no_two_instances_of_the_fleet_share_a_range(lab, archives, ruche):
    exported = ruche(W, str(lab), "inventory", "export", "--json")
    assert exported.exit_code == 0, exported.stdout + exported.stderr
    spans = []
    for path in sorted((lab / "inventories" / "production" / "host_vars").glob("*.yml")):
        for listed in read_host_vars(lab, path.stem).get("ruche_instances") or []:
            if listed.get("ids"):
                spans.append(
                    (listed["ids"]["start"], listed["ids"]["start"] + listed["ids"]["size"], listed["identifier"])
                )
    assert len(spans) >= 2
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
