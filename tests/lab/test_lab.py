"""The lab's servers are real: SSH, systemd, images pulled through the lab registry, HTTP."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import requests
from cryptography import x509

from orchestrator.actions.lab_down import tear_down
from orchestrator.actions.lab_up import bring_up
from orchestrator.config import LAB_SETTINGS_KEYS
from orchestrator.errors import Conflict, TimedOut
from orchestrator.lab.acme import issuing_roots
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.machine import wait_for_ssh
from orchestrator.lab.network import LabNetwork
from orchestrator.lab.record import LabRecord
from orchestrator.processes import is_same_process
from orchestrator.remote import SshTarget, run_command
from orchestrator.workspace import open_workspace

from .conftest import leftovers, make_lab_workspace


def lab_servers(ruche, workspace: Path) -> list[dict]:
    result = ruche("--workspace", str(workspace), "server", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return [server for server in json.loads(result.stdout) if server["origin"] == "lab"]


def target_of(entry: dict) -> SshTarget:
    workspace_lab = Path(entry["ssh_key_path"]).parent
    return SshTarget(
        name=entry["name"], address=entry["address"], key_path=entry["ssh_key_path"],
        known_hosts_path=str(workspace_lab / "known_hosts"),
    )  # fmt: skip


def test_status_reports_every_server_reachable_and_running(lab, ruche):
    result = ruche("--workspace", str(lab), "lab", "status", "--json")
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["up"] is True and status["registry"]["answering"] is True
    assert [(s["name"], s["role"]) for s in status["servers"]] == [
        ("lab-1", "apps"),
        ("lab-2", "apps"),
        ("lab-backup", "backup"),
    ]
    for server in status["servers"]:
        assert server["ssh_reachable"] and server["running"], server
        assert server["systemd"] == "running", server
        assert server["hostname"] == server["name"]


def test_lab_servers_sit_in_the_same_registry_as_any_server(lab, ruche):
    servers = lab_servers(ruche, lab)
    assert {s["name"] for s in servers} == {"lab-1", "lab-2", "lab-backup"}
    assert all(s["labels"] == {"lab": "true"} and s["ssh_user"] == "root" for s in servers)
    removal = ruche("--workspace", str(lab), "server", "remove", "lab-1", "--yes")
    assert removal.exit_code == 5 and "lab down" in removal.stderr


def test_each_server_reports_its_own_name_and_address(lab, ruche):
    seen = {}
    for entry in lab_servers(ruche, lab):
        output = run_command(target_of(entry), ["sh", "-c", "hostname; ip -4 -o addr show dev eth0"])
        hostname, address_line = output.strip().splitlines()
        assert hostname == entry["name"]
        assert f" {entry['address']}/" in address_line
        seen[hostname] = entry["address"]
    assert len(set(seen.values())) == len(seen) == 3


def test_a_host_key_that_does_not_match_is_refused(lab, ruche, tmp_path):
    first, second = lab_servers(ruche, lab)[:2]
    known_hosts = Path(first["ssh_key_path"]).parent / "known_hosts"
    keys = {line.split()[0]: line.split(None, 1)[1] for line in known_hosts.read_text().splitlines()}
    swapped = tmp_path / "known_hosts"
    swapped.write_text(f"{first['address']} {keys[second['address']]}\n")  # lab-2's key for lab-1's address
    impostor = SshTarget(
        name=first["name"], address=first["address"], key_path=first["ssh_key_path"], known_hosts_path=str(swapped)
    )
    with pytest.raises(Exception, match="cannot reach lab-1"):
        run_command(impostor, ["true"])


@pytest.mark.parametrize("server_name", ["lab-1", "lab-2"])
def test_an_image_from_the_lab_registry_runs_and_answers_http_from_the_host(lab, ruche, server_name):
    entry = next(s for s in lab_servers(ruche, lab) if s["name"] == server_name)
    target = target_of(entry)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    run_command(
        target,
        ["podman", "run", "-d", "--name", name, "-p", "18080:5232", "-e", "RADICALE_ADMIN_USER=admin",
         "-e", f"RADICALE_ADMIN_PASSWORD={password}", "lab.ruche.invalid/radicale:trixie"],
        timeout=180,
    )  # fmt: skip
    try:
        base = f"http://{entry['address']}:18080"
        for _ in range(50):
            try:
                if requests.get(f"{base}/.web/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            run_command(target, ["sleep", "0.2"])
        assert requests.get(f"{base}/.web/", timeout=5).status_code == 200
        assert requests.request("PROPFIND", f"{base}/admin/", auth=("admin", password), timeout=5).status_code == 207
        assert requests.request("PROPFIND", f"{base}/admin/", auth=("admin", "wrong"), timeout=5).status_code == 401
        pulled = run_command(
            target, ["podman", "image", "inspect", "--format", "{{.RepoTags}}", "lab.ruche.invalid/radicale:trixie"]
        )
        assert "lab.ruche.invalid/radicale:trixie" in pulled
    finally:
        run_command(target, ["podman", "rm", "--force", name])


def test_the_labs_settings_live_in_a_file_of_its_own_and_ruche_toml_keeps_its_own(lab, ruche):
    workspace = open_workspace(lab)
    record = LabRecord.load(LabLayout(workspace.lab_dir).record_path)
    sink = record.machines["lab-backup"].address
    text = workspace.config_path.read_text()
    assert record.registry_address not in text and sink not in text
    assert 'proxy_tls = "acme"' in text and "resource_limits = true" in text
    own, used = workspace.file_config, workspace.config
    assert (own.registry.mirror, own.backup.repository, own.mail) == (None, None, None)
    assert sorted(workspace.lab_settings) == sorted(LAB_SETTINGS_KEYS)
    assert (used.registry.mirror, used.registry.insecure) == (record.registry_address, True)
    assert (used.proxy_tls, used.resource_limits) == ("internal", False)
    assert (used.backup.repository, used.backup.managed_server) == (f"sftp:restic@{sink}:/srv/restic", "lab-backup")
    assert (used.mail.host, used.mail.port, used.mail.security) == (sink, 25, "none")
    shown = json.loads(ruche("--workspace", str(lab), "mail", "show", "--json").stdout)
    assert (shown["host"], shown["from_lab"], shown["source"]) == (sink, True, str(workspace.lab_settings_path))


def test_the_lab_dns_answers_what_is_set_and_the_lab_acme_server_answers_over_https(lab, ruche):
    workspace = open_workspace(lab)
    layout = LabLayout(workspace.lab_dir)
    record = LabRecord.load(layout.record_path)
    gateway = LabNetwork.parse(record.subnet).gateway
    domains = workspace.config.domains  # the lab's settings name its DNS, Pebble and the CA of Pebble's HTTPS
    assert (domains.acme_directory, domains.resolvers) == (f"https://{gateway}:14000/dir", [gateway])
    assert domains.acme_ca_root == str(layout.acme_ca_root) and workspace.file_config.domains.acme_ca_root is None
    status = json.loads(ruche("--workspace", str(lab), "lab", "status", "--json").stdout)
    assert status["dns"]["answering"] and status["acme"]["answering"], status

    def ask(name: str, rtype: str) -> tuple[str, list[str]]:
        answer = dns.query.udp(dns.message.make_query(name, rtype), gateway, timeout=3)
        return dns.rcode.to_text(answer.rcode()), [item.to_text() for rrset in answer.answer for item in rrset]

    started = time.monotonic()
    name, address = f"wiki-{uuid.uuid4().hex[:6]}.amap.test", record.machines["lab-1"].address
    for args in ((f"_ruche.{name}", "TXT", "ruche-verify=token 1"), (name.upper(), "a", address)):
        result = ruche("--workspace", str(lab), "lab", "dns", "set", *args)
        assert result.exit_code == 0, result.stderr
    assert ask(f"_ruche.{name}", "TXT") == ("NOERROR", ['"ruche-verify=token 1"'])
    assert ask(name, "A") == ("NOERROR", [address])
    assert ask(f"other.{name}.example", "A") == ("NXDOMAIN", [])  # never forwarded
    listed = json.loads(ruche("--workspace", str(lab), "lab", "dns", "list", "--json").stdout)
    assert {"name": name, "type": "A", "value": address} in listed
    refused = ruche("--workspace", str(lab), "lab", "dns", "set", name, "TXT", "a\nserver=10.0.0.1")
    assert refused.exit_code == 2 and "printable ASCII" in refused.stderr
    for removal in ((name, "A"), (f"_ruche.{name}",)):
        assert ruche("--workspace", str(lab), "lab", "dns", "remove", *removal).exit_code == 0
    assert ask(name, "A")[0] == ask(f"_ruche.{name}", "TXT")[0] == "NXDOMAIN"
    print(f"lab DNS: 2 records set, answered and removed in {time.monotonic() - started:.1f} s")

    directory = requests.get(domains.acme_directory, verify=domains.acme_ca_root, timeout=10)
    assert directory.status_code == 200 and directory.json()["newOrder"].startswith(f"https://{gateway}:14000/")
    root = x509.load_pem_x509_certificate(issuing_roots(layout).encode())
    assert "Pebble Root CA" in root.subject.rfc4514_string()


def test_up_again_changes_nothing(lab):
    record_path = LabLayout(open_workspace(lab).lab_dir).record_path
    before = LabRecord.load(record_path)
    processes = {"registry": before.registry, **{name: m.process for name, m in before.machines.items()}}
    gone = [name for name, p in processes.items() if p is None or not is_same_process(p.pid, p.start_time)]
    assert gone == [], f"the lab's processes that are gone before `lab up` runs again: {gone}"
    status = bring_up(lab, app_servers=2)
    assert status["up"] is True
    assert LabRecord.load(record_path) == before


def test_up_with_another_size_while_up_is_refused(lab):
    with pytest.raises(Conflict, match="already up"):
        bring_up(lab, app_servers=3)


def test_a_server_that_never_answers_times_out_naming_it_and_its_log(lab, tmp_path):
    ghost = SshTarget(name="ghost", address="10.213.49.99", key_path=str(tmp_path / "none"))
    with pytest.raises(TimedOut) as caught:
        wait_for_ssh(ghost, console_log=tmp_path / "ghost.console.log", timeout=3)
    assert "ghost (10.213.49.99) did not answer SSH within 3 s" in caught.value.message
    assert "ghost.console.log" in caught.value.hint and "lab down" in caught.value.hint


def test_a_subnet_already_in_use_is_refused_and_down_still_works(tmp_path):
    subnet_link = "rltestbr0"
    subprocess.run(["ip", "link", "add", subnet_link, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.213.51.1/24", "dev", subnet_link], check=True)
        workspace = make_lab_workspace(tmp_path / "taken", "10.213.51.0/24")
        with pytest.raises(Conflict, match=f"10.213.51.0/24 is already in use on this machine \\({subnet_link}"):
            bring_up(workspace, app_servers=1)
        tear_down(workspace)
        assert not (workspace / "lab").exists()
    finally:
        subprocess.run(["ip", "link", "delete", subnet_link], check=True)


def test_down_after_an_interrupted_up_removes_everything(tmp_path, ruche):
    workspace = make_lab_workspace(tmp_path / "interrupted", "10.213.50.0/24")

    def interrupt_once_booted(message: str) -> None:
        if message.startswith("waiting for SSH"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bring_up(workspace, app_servers=1, progress=interrupt_once_booted)
    layout = LabLayout(open_workspace(workspace).lab_dir)
    record = LabRecord.load(layout.record_path)
    assert record is not None and len(record.machines) == 2
    assert len(leftovers(record)) >= 3  # two servers and the registry at least were running

    result = ruche("--workspace", str(workspace), "lab", "down")
    assert result.exit_code == 0, result.stderr
    assert leftovers(record) == []
    assert not layout.root.exists()
    assert lab_servers(ruche, workspace) == []
