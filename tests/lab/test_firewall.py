"""The servers' inbound firewall on the lab: SSH and HTTPS in, everything else dropped, no lock-out."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from orchestrator.runner import run_playbook
from orchestrator.workspace import open_workspace
from tests.lab.servers import address_of, on

pytestmark = pytest.mark.lab

LISTENER_PORT = 8081


def connect(address: str, port: int, timeout: float = 3.0) -> str:
    """Give "open", "refused" or "dropped" (no answer within ``timeout``) for a TCP connection."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "dropped"


@pytest.fixture(scope="module")
def converged_lab_2(lab, ruche_module):
    result = ruche_module("--workspace", str(lab), "apply", "--server", "lab-2", "--no-health", "--json")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return lab


def test_only_ssh_and_caddy_are_reachable_from_outside_and_the_boot_unit_reloads_the_rules(converged_lab_2):
    lab = converged_lab_2
    address = address_of(lab, "lab-2")
    unit = f"ruche-test-listener-{uuid.uuid4().hex[:6]}"
    on(
        lab,
        "lab-2",
        "systemd-run",
        f"--unit={unit}",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "0.0.0.0",
        str(LISTENER_PORT),
    )
    try:
        # the listener is up (the server reaches it on loopback) but outsiders get no answer at all
        on(
            lab,
            "lab-2",
            "python3",
            "-c",
            f"import socket,time;time.sleep(1);socket.create_connection(('127.0.0.1',{LISTENER_PORT}),3)",
        )
        assert connect(address, LISTENER_PORT) == "dropped"
        assert connect(address, 443) in ("open", "refused")  # let through (Caddy listens once a site exists)
        assert connect(address, 22) == "open"
    finally:
        on(lab, "lab-2", "systemctl", "stop", unit)

    # the rules survive a reload by the boot unit (what a reboot runs)
    on(lab, "lab-2", "nft", "delete", "table", "inet", "ruche")
    assert connect(address, LISTENER_PORT, timeout=1) == "refused"  # nothing listens now, and nothing drops
    on(lab, "lab-2", "systemctl", "restart", "ruche-firewall.service")
    rules = on(lab, "lab-2", "nft", "--json", "list", "table", "inet", "ruche")
    chains = [item["chain"] for item in json.loads(rules)["nftables"] if "chain" in item]
    assert [(c["name"], c["hook"], c["policy"]) for c in chains] == [("input", "input", "drop")]
    assert connect(address, LISTENER_PORT, timeout=1) == "dropped"


def test_rules_that_would_cut_ssh_are_rolled_back_by_the_server_and_the_run_fails(converged_lab_2, ruche):
    lab = converged_lab_2
    workspace = open_workspace(lab)
    # a wrong SSH port: the new rules would drop ruche's own connections to port 22
    result = run_playbook(
        "site.yml", inventory=workspace.root / "inventories" / workspace.config.environment, vault_password=workspace.vault_password(), runs_dir=workspace.root / "runs",
        limit="lab-2",
        extravars={"ruche_server_firewall_ssh_port": "2222", "ruche_server_firewall_confirm_seconds": "8",
                   "ruche_server_firewall_rollback_seconds": "15"},
    )  # fmt: skip
    assert not result.succeeded and result.hosts["lab-2"].failed >= 1
    events = "\n".join(p.read_text() for p in Path(result.artifacts, "job_events").glob("*.json"))
    assert "cut ruche's SSH connection" in events

    # the server went back to the confirmed rules by itself: SSH answers, port 22 is still the one open
    assert connect(address_of(lab, "lab-2"), 22) == "open"
    loaded = on(lab, "lab-2", "nft", "list", "table", "inet", "ruche")
    assert 'tcp dport 22 accept comment "SSH"' in loaded and "2222" not in loaded
    assert "tcp dport 2222" in on(lab, "lab-2", "cat", "/etc/ruche/firewall.nft.next")
    assert "2222" not in on(lab, "lab-2", "cat", "/etc/ruche/firewall.nft")

    # the next normal apply puts the right rules back in place and is confirmed
    again = ruche("--workspace", str(lab), "apply", "--server", "lab-2", "--no-health", "--json")
    assert again.exit_code == 0, again.stdout[-3000:]
    assert "2222" not in on(lab, "lab-2", "cat", "/etc/ruche/firewall.nft.next")
