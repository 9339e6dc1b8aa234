"""`ruche server set` through the real CLI, on SQLite and on PostgreSQL: a changed address reaches
`server list` and the next inventory export (the render cache sees it), refusals change nothing,
a dry run stores nothing, and the audit trail holds the change once."""

from __future__ import annotations

import json

from orchestrator.state.database import StateStore
from orchestrator.state.servers import ServerSpec, add_server
from orchestrator.workspace import open_workspace


def _events(ruche, w) -> list[dict]:
    answer = ruche(*w, "events", "--json")
    assert answer.exit_code == 0, answer.stderr
    return sorted(json.loads(answer.stdout), key=lambda e: e["seq"])


def _fleet(ruche, w, *, instances: int = 1, memory: str = "8G", disk: str = "50G") -> None:
    assert ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", memory, "--disk", disk,
                 "--label", "region=lyon").exit_code == 0  # fmt: skip
    assert ruche(*w, "server", "add", "web-2", "--no-connect", "--address", "192.0.2.2").exit_code == 0
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    for n in range(instances):
        made = ruche(*w, "instance", "create", "amap", "radicale", "--name", f"cal-{n}", "--server", "web-1")
        assert made.exit_code == 0, made.stderr


def test_a_new_address_reaches_the_list_and_the_next_inventory_export(workspace, ruche):
    w = ["--workspace", str(workspace)]
    _fleet(ruche, w, instances=2)
    first = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    assert first["changed"]
    host_vars = workspace / "inventories" / "production" / "host_vars" / "web-1.yml"
    assert "ansible_host: 192.0.2.1" in host_vars.read_text()
    seen = len(_events(ruche, w))

    changed = ruche(*w, "server", "set", "web-1", "--address", "192.0.2.11", "--ssh-port", "2222")
    assert changed.exit_code == 0, changed.stderr
    assert "address: 192.0.2.1 -> 192.0.2.11" in changed.stdout and "ssh_port: 22 -> 2222" in changed.stdout
    assert "ruche inventory export" in changed.stdout and "ruche server trust web-1" in changed.stdout
    (web_1,) = [s for s in json.loads(ruche(*w, "server", "list", "--json").stdout) if s["name"] == "web-1"]
    assert (web_1["address"], web_1["ssh_port"], web_1["labels"]) == ("192.0.2.11", 2222, {"region": "lyon"})

    # the server's render key covers its columns: the cached file is not reused as it was
    second = json.loads(ruche(*w, "inventory", "export", "--json").stdout)
    assert second["changed"] and second["commit"]
    text = host_vars.read_text()
    assert "ansible_host: 192.0.2.11" in text and "ansible_port: 2222" in text and "192.0.2.1\n" not in text
    assert text.count("cal-") >= 2  # its instances kept their place in the file
    audit = json.loads(ruche(*w, "audit", "--no-servers", "--json").stdout)
    assert [f for f in audit["findings"] if f["rule"] == "inventory.matches-state"] == []
    assert [f for f in audit["findings"] if f["rule"].startswith("events")] == []
    plan = ruche(*w, "plan", "--json")
    assert plan.exit_code == 0, plan.stderr

    # one event, from the audit trail's listener, with the values before and after
    new = _events(ruche, w)[seen:]
    assert [(e["kind"], e["subject"]) for e in new] == [("servers.changed", "server/web-1")]
    assert new[0]["detail"] == {"before": {"address": "192.0.2.1", "ssh_port": 22},
                                "after": {"address": "192.0.2.11", "ssh_port": 2222}}  # fmt: skip
    verified = json.loads(ruche(*w, "events", "verify", "--json").stdout)
    assert verified["ok"], verified


def test_ssh_settings_capacity_and_labels_change_and_json_says_what_changed(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    _fleet(ruche, w)
    key = tmp_path / "id_ed25519"
    key.write_text("a key\n")
    answer = ruche(*w, "server", "set", "web-1", "--ssh-user", "deploy", "--ssh-key", str(key), "--cpu", "8",
                   "--memory", "32G", "--disk", "1T", "--label", "hoster=coop", "--unlabel", "region", "--json")  # fmt: skip
    assert answer.exit_code == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["server"] == "web-1" and result["dry_run"] is False
    assert result["changed"] == ["ssh_user", "ssh_key_path", "cpu", "memory_mb", "disk_gb", "labels"]
    assert result["connection_changed"] == ["ssh_user", "ssh_key_path"]
    assert result["before"]["labels"] == {"region": "lyon"} and result["after"]["labels"] == {"hoster": "coop"}
    assert result["after"]["ssh_key_path"] == str(key.resolve())
    assert (result["after"]["memory_mb"], result["after"]["disk_gb"]) == (32768, 1024)
    shown = json.loads(ruche(*w, "server", "show", "web-1", "--json").stdout)
    assert shown == result["after"]

    again = ruche(*w, "server", "set", "web-1", "--cpu", "8")
    assert again.exit_code == 0 and "nothing changed" in again.stdout


def test_refusals_leave_the_registry_and_the_trail_unchanged(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    _fleet(ruche, w, instances=3, memory="1G", disk="4G")  # 3 x (0.25 CPU, 128 MiB, 1 GiB)
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            add_server(session, ServerSpec(name="lab-1", address="10.77.0.11", origin="lab"))
    finally:
        store.close()
    before = ruche(*w, "server", "list", "--json").stdout
    events = len(_events(ruche, w))

    missing = ruche(*w, "server", "set", "nope", "--cpu", "4")
    assert missing.exit_code == 4 and "no server named 'nope'" in missing.stderr and "web-1" in missing.stderr
    nothing = ruche(*w, "server", "set", "web-1")
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr
    assert all(option in nothing.stderr for option in ("--address", "--ssh-key", "--memory", "--label", "--unlabel"))
    no_key = ruche(*w, "server", "set", "web-1", "--ssh-key", str(tmp_path / "absent"))
    assert no_key.exit_code == 2 and "--ssh-key" in no_key.stderr and "no such file" in no_key.stderr
    bad_size = ruche(*w, "server", "set", "web-1", "--memory", "lots")
    assert bad_size.exit_code == 2 and "'lots' is not a size" in bad_size.stderr
    bad_address = ruche(*w, "server", "set", "web-1", "--address", "not an address")
    assert bad_address.exit_code == 2 and "At 'address'" in bad_address.stderr
    bad_label = ruche(*w, "server", "set", "web-1", "--label", "region")
    assert bad_label.exit_code == 2 and "expected NAME=VALUE" in bad_label.stderr
    no_label = ruche(*w, "server", "set", "web-1", "--unlabel", "hoster")
    assert no_label.exit_code == 2 and "no such label" in no_label.stderr and "region=lyon" in no_label.stderr
    taken = ruche(*w, "server", "set", "web-1", "--address", "192.0.2.2")
    assert taken.exit_code == 5 and "address is already registered: web-2" in taken.stderr

    shrink = ruche(*w, "server", "set", "web-1", "--memory", "256M", "--disk", "2G", "--cpu", "1")
    assert shrink.exit_code == 5, shrink.stderr
    assert "memory_mb 1024 -> 256: its instances hold 384 MiB, more than 256 MiB" in shrink.stderr
    assert "disk_gb 4 -> 2: its instances hold 3 GiB, more than 2 GiB" in shrink.stderr
    assert "cpu" not in shrink.stderr.split("hint")[0]  # 0.75 CPU fits 1 core x cpu_overcommit 2
    assert "--force" in shrink.stderr
    dry_shrink = ruche(*w, "server", "set", "web-1", "--disk", "2G", "--dry-run")
    assert dry_shrink.exit_code == 5  # a dry run meets the same refusals

    lab = ruche(*w, "server", "set", "lab-1", "--address", "10.77.0.99")
    assert lab.exit_code == 5 and "belongs to the lab" in lab.stderr and "ruche lab up" in lab.stderr

    assert ruche(*w, "server", "list", "--json").stdout == before
    assert len(_events(ruche, w)) == events


def test_force_lowers_capacity_below_the_instances_and_records_the_figures(workspace, ruche):
    w = ["--workspace", str(workspace)]
    _fleet(ruche, w, instances=3, disk="4G")
    seen = len(_events(ruche, w))
    forced = ruche(*w, "server", "set", "web-1", "--disk", "2G", "--force")
    assert forced.exit_code == 0, forced.stderr
    assert "disk_gb: 4 -> 2" in forced.stdout and "over capacity, recorded" in forced.stdout
    assert json.loads(ruche(*w, "server", "show", "web-1", "--json").stdout)["disk_gb"] == 2
    new = _events(ruche, w)[seen:]
    assert [e["kind"] for e in new] == ["servers.changed", "capacity.override"]
    (over,) = new[1]["detail"]["over"]
    assert (over["field"], over["from"], over["to"], over["allocated"], over["ceiling"]) == ("disk_gb", 4, 2, 3, 2)
    report = json.loads(ruche(*w, "quota", "report", "--json").stdout)
    (web_1,) = [s for s in report["servers"] if s["server"] == "web-1"]
    assert "over_capacity" in web_1["flags"]
    # placement puts nothing more there
    refused = ruche(*w, "instance", "create", "amap", "radicale", "--name", "more", "--server", "web-1")
    assert refused.exit_code == 5 and "not enough disk" in refused.stderr


def test_a_dry_run_says_before_and_after_and_stores_nothing(workspace, ruche):
    w = ["--workspace", str(workspace)]
    _fleet(ruche, w)
    before = ruche(*w, "server", "list", "--json").stdout
    events = len(_events(ruche, w))

    text = ruche(*w, "server", "set", "web-1", "--address", "web-1.example.org", "--label", "hoster=coop", "--dry-run")
    assert text.exit_code == 0, text.stderr
    assert "server web-1 would change:" in text.stdout
    assert "address: 192.0.2.1 -> web-1.example.org" in text.stdout
    assert "labels: region=lyon -> hoster=coop,region=lyon" in text.stdout and "dry run: nothing changed" in text.stdout
    answer = ruche(*w, "server", "set", "web-1", "--address", "web-1.example.org", "--dry-run", "--json")
    result = json.loads(answer.stdout)
    assert result["dry_run"] is True and result["changed"] == ["address"]
    assert (result["before"]["address"], result["after"]["address"]) == ("192.0.2.1", "web-1.example.org")

    assert ruche(*w, "server", "list", "--json").stdout == before
    assert len(_events(ruche, w)) == events
