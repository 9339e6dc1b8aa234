"""ruche-applied (the servers' record of what was applied to each instance): drift found in files
and unit states, never a file's content printed; and the inventory's per-instance fingerprint."""

from __future__ import annotations

import json

import yaml

from orchestrator.inventory import InstanceEntry, ServerEntry, Vaulted, render_inventory
from tests.unit.test_idranges import load_script


def test_a_manifest_finds_files_changed_removed_or_appeared_and_units_in_another_state(tmp_path, monkeypatch):
    applied = load_script("ruche-applied")
    states = {"a.service": "active", "b.timer": "inactive"}
    asked = []

    def properties(units):
        asked.append(units)
        return {u: {"ActiveState": states.get(u, "unknown"), "UnitFileState": "static"} for u in units}

    monkeypatch.setattr(applied, "unit_properties", properties)
    unit, env, site = tmp_path / "a.container", tmp_path / "app.env", tmp_path / "a.caddy"
    unit.write_text("[Container]\nImage=x\n")
    env.write_text("PASSWORD=very-secret\n")
    manifests = tmp_path / "applied"
    applied.record(manifests, "asso--app", "stamp-1", [str(unit), str(env)], [str(site)], ["a.service"], ["b.timer"])
    report = applied.status(manifests)["instances"]["asso--app"]
    assert report["stamp"] == "stamp-1" and report["drift"] == []

    unit.write_text("[Container]\nImage=y\n")  # edited by hand
    env.unlink()
    site.write_text("example.org {}\n")  # a site where ruche withdrew it
    states.update({"a.service": "failed", "b.timer": "active"})
    drift = applied.status(manifests)["instances"]["asso--app"]["drift"]
    assert [(d["kind"], d["object"]) for d in drift] == [
        ("file-appeared", str(site)), ("file-changed", str(unit)), ("file-missing", str(env)),
        ("unit-state", "a.service"), ("unit-state", "b.timer"),
    ]  # fmt: skip
    assert "very-secret" not in json.dumps(drift) and "Image=y" not in json.dumps(drift)
    assert asked == [["a.service", "b.timer"]] * 2  # one systemctl call per status


def test_a_missing_directory_or_a_broken_manifest_never_passes_as_applied(tmp_path):
    applied = load_script("ruche-applied")
    assert applied.status(tmp_path / "none") == {"instances": {}}
    (tmp_path / "asso--app.json").write_text("{not json")
    assert applied.status(tmp_path)["instances"]["asso--app"]["stamp"] is None


def test_the_base_roles_first_read_gives_the_system_and_the_backup_key_and_never_another_files_content(tmp_path):
    applied = load_script("ruche-applied")
    release = tmp_path / "os-release"
    release.write_text(
        'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n'
    )
    assert applied.os_release(release) == {
        "id": "debian",
        "version_id": "13",
        "pretty_name": "Debian GNU/Linux 13 (trixie)",
    }
    release.write_text("PRETTY_NAME='Debian GNU/Linux forky/sid'\nID=debian\n")  # testing: no VERSION_ID
    assert applied.os_release(release)["version_id"] == ""
    key = tmp_path / "id_ed25519.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza ruche-backup@lab-1\n")
    assert applied.public_key(key) == "ssh-ed25519 AAAAC3Nza ruche-backup@lab-1"
    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n")
    assert applied.public_key(secret) is None and applied.public_key(tmp_path / "absent.pub") is None
    (tmp_path / "two.pub").write_text("ssh-ed25519 A\nssh-ed25519 B\n")
    assert applied.public_key(tmp_path / "two.pub") is None


def test_the_server_base_has_a_manifest_of_its_own_whose_firewall_must_stay_loaded_and_enabled(tmp_path, monkeypatch):
    applied = load_script("ruche-applied")
    loaded = {"inet ruche": True}

    def nft(argv, **_):
        return type("Done", (), {"returncode": 0 if loaded.get(" ".join(argv[3:])) else 1})()

    monkeypatch.setattr(applied.subprocess, "run", nft)
    enabled = {"ruche-firewall.service": "enabled"}
    asked = []

    def properties(units):
        asked.append(units)
        return {u: {"ActiveState": "active", "UnitFileState": enabled.get(u, "unknown")} for u in units}

    monkeypatch.setattr(applied, "unit_properties", properties)
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("{\n}\n")
    base = tmp_path / "applied-server"
    applied.record(base, "server", "stamp-s", [str(caddyfile)], [], ["caddy.service"], [], ["inet ruche"],
                   ["ruche-firewall.service"])  # fmt: skip
    assert applied.status(base)["instances"]["server"]["drift"] == []
    assert asked == [["caddy.service", "ruche-firewall.service"]]  # active and enabled states in one call
    loaded["inet ruche"] = False  # `nft flush ruleset` by hand
    enabled["ruche-firewall.service"] = "disabled"  # and the rules no longer loaded at boot
    caddyfile.write_text("{\n  debug\n}\n")
    assert [(d["kind"], d["object"]) for d in applied.status(base)["instances"]["server"]["drift"]] == [
        ("file-changed", str(caddyfile)), ("unit-enabled", "ruche-firewall.service"), ("nft-table", "inet ruche"),
    ]  # fmt: skip
    # what `ruche audit` reads: the base's status beside the instances'
    called = []

    def commands(argv, **_):
        called.append(argv[0])
        return type("Done", (), {"returncode": 0, "stdout": "[]"})()

    monkeypatch.setattr(applied.subprocess, "run", commands)
    inspected = applied.inspect(tmp_path / "applied", tmp_path / "sites", base)
    assert inspected["base"]["stamp"] == "stamp-s" and inspected["instances"] == {}
    assert inspected["base"]["drift"][-1]["kind"] != "nft-table" and called.count("nft") == 1  # the table read once
    assert applied.inspect(tmp_path / "applied", tmp_path / "sites", tmp_path / "none")["base"] is None
    for table in ("inet ruche; flush ruleset", "ruche"):
        try:
            applied.record(base, "server", "s", [], [], [], [], [table])
        except ValueError as error:
            assert "not an nftables table" in str(error)
        else:
            raise AssertionError(f"{table!r} accepted")


def test_every_variable_the_server_role_reads_is_an_input_of_its_stamp():
    """The server role is skipped when its stamp is unchanged: a variable it reads but leaves out of the stamp
    would be a change an apply never makes. Its own registered results and the stamp's are not inputs."""
    import re
    from pathlib import Path

    role = Path(__file__).parents[2] / "playbooks" / "roles" / "ruche_server"
    main = (role / "tasks" / "main.yml").read_text()
    inputs = main.split("    _inputs:", 1)[1].split("    _stamp:", 1)[0]
    read = set()
    for path in [*role.glob("tasks/*.yml"), *role.glob("templates/*.j2"), *role.glob("handlers/*.yml")]:
        read |= set(re.findall(r"\b(ruche_(?:server|backup|own_domain)_[a-z0-9_]+)\b", path.read_text()))
    # (by name only: magic variables and lookups are read in main.yml's _inputs, reviewed there)
    registered = {"ruche_server_firewall_current", "_base_files", "_backup_account_made",
                  "ruche_server_backup_public_key",
                  "ruche_server_stamp", "ruche_server_drift", "ruche_server_unchanged", "ruche_server_full",
                  "ruche_server_applied_dir", "ruche_server_firewall_dropped"}  # fmt: skip
    constants = set(yaml.safe_load((role / "vars" / "main.yml").read_text()))  # in the roles digest
    missing = sorted(name for name in read - registered - constants if name not in inputs)
    assert missing == [], f"read by the server role but not in its stamp's inputs (tasks/main.yml): {missing}"


def _listed(instances, fleet):
    files = render_inventory([ServerEntry("s1", "10.0.0.1", "root", 22, "apps", False)], instances, fleet)
    return {
        i["identifier"]: i["fingerprint"]
        for i in yaml.safe_load(
            files["host_vars/s1.yml"].split("\n", 1)[1].replace("!vault", "").replace("!unsafe", "")
        )["ruche_instances"]
    }


def test_the_fingerprint_changes_with_the_instance_its_secrets_or_the_fleet_settings_only():
    def entry(name, port=20001, secret="$ANSIBLE_VAULT;1.1;AES256\n3131"):
        return InstanceEntry(
            "asso", name, "s1", {"identifier": f"asso--{name}", "http_port": port, "secrets": {"db": Vaulted(secret)}}
        )

    base = _listed([entry("a"), entry("b")], {"ruche_backup_repository": ""})
    assert base == _listed([entry("a"), entry("b")], {"ruche_backup_repository": ""})
    moved = _listed([entry("a", port=20002), entry("b")], {"ruche_backup_repository": ""})
    assert moved["asso--a"] != base["asso--a"] and moved["asso--b"] == base["asso--b"]
    rotated = _listed(
        [entry("a", secret="$ANSIBLE_VAULT;1.1;AES256\n3232"), entry("b")], {"ruche_backup_repository": ""}
    )
    assert rotated["asso--a"] != base["asso--a"] and rotated["asso--b"] == base["asso--b"]
    backed_up = _listed([entry("a"), entry("b")], {"ruche_backup_repository": "sftp:backup@host:/srv"})
    assert all(backed_up[i] != base[i] for i in base)


def test_a_servers_report_is_compared_with_what_its_inventory_lists():
    from orchestrator.idranges import POOL_SIZE, POOL_START
    from orchestrator.operations.server_audit import Expected, compare_server

    expected = [
        Expected("asso--app", "asso/app", "s1", True, {"ruche-asso--app-app": "docker.io/library/radicale:3"}),
        Expected("asso--off", "asso/off", "s2", False, {"ruche-asso--off-app": "radicale:3"}),
    ]
    pool = f"ruche:{POOL_START}:{POOL_SIZE}"
    report = {
        "instances": {"asso--app": {"stamp": "s1", "drift": []}, "asso--off": {"stamp": "s2", "drift": []}},
        "containers": [{"name": "ruche-asso--app-app", "image": "radicale:3", "state": "running"},
                       {"name": "ruche-asso--off-app", "image": "radicale:3", "state": "exited"}],
        "sites": ["asso--app.caddy"], "firewall": {"loaded": True}, "subid": {"subuid": [pool], "subgid": [pool]},
    }  # fmt: skip
    assert compare_server("s", expected, report) == []
    changed = json.loads(json.dumps(report))
    changed["instances"]["asso--app"]["stamp"] = "old"
    changed["instances"]["gone--app"] = {"stamp": "x", "drift": []}
    changed["instances"]["asso--off"]["drift"] = [
        {"kind": "file-changed", "object": "/e/u", "expected": "a" * 64, "found": "b" * 64}
    ]
    changed["containers"][1]["image"] = "radicale:2"
    changed["containers"].append({"name": "intruder", "image": "alpine", "state": "running"})
    changed["sites"].append("asso--off.caddy")
    changed["firewall"]["loaded"] = False
    changed["subid"]["subgid"] = []
    changed["base"] = {"stamp": "b", "drift": [
        {"kind": "unit-enabled", "object": "caddy.service", "expected": "enabled", "found": "disabled"},
        {"kind": "nft-table", "object": "inet ruche", "expected": "loaded", "found": "missing"},  # server.firewall's
    ]}  # fmt: skip
    found = [(f.rule, f.object) for f in compare_server("s", expected, changed)]
    assert found == [
        ("server.applied", "s: asso/app"), ("server.drift", "s: asso/off"), ("server.unknown", "s: instance gone--app"),
        ("server.image", "s: container ruche-asso--off-app"), ("server.unknown", "s: container intruder"),
        ("server.unknown", "s: site /etc/caddy/sites/asso--off.caddy"), ("server.drift", "s: base"),
        ("server.firewall", "s"), ("server.id-pool", "s: /etc/subgid"),
    ]  # fmt: skip
    base = next(f for f in compare_server("s", expected, changed) if f.object == "s: base")
    assert base.evidence == "caddy.service is disabled, ruche left it enabled (started at boot)"


def test_history_reads_only_the_files_that_differ_and_keeps_an_association_hosted_elsewhere():
    from orchestrator.inventory_history import describe_changes

    servers = [
        ServerEntry("a", "10.0.0.1", "root", 22, "apps", False),
        ServerEntry("b", "10.0.0.2", "root", 22, "apps", False),
    ]

    def entry(association, name, server):
        return InstanceEntry(
            association,
            name,
            server,
            {"identifier": f"{association}--{name}", "association": association, "name": name},
        )

    before = render_inventory(servers, [entry("amap", "x", "a"), entry("amap", "y", "b"), entry("gone", "z", "a")], {})
    after = render_inventory(servers, [entry("amap", "y", "b")], {})
    changes = describe_changes(before, after)
    assert changes["instances"]["removed"] == ["amap/x", "gone/z"]
    assert changes["associations"] == {"added": [], "removed": ["gone"]}  # amap is still hosted on b


def test_the_stamp_the_audit_expects_is_the_one_the_role_records_and_compares():
    """The stamp is written twice, in the role's Jinja (install.yml records it, main.yml compares it)
    and in Python (operations/server_audit.stamp): both must stay sha256(fingerprint ~ roles digest)."""
    from pathlib import Path

    from ansible.plugins.filter.core import get_hash

    from orchestrator.operations.server_audit import stamp

    tasks = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "ruche_instance" / "tasks"
    assert (
        "ruche_instance.fingerprint | default('') ~ ruche_roles_digest) | hash('sha256')"
        in (tasks / "install.yml").read_text()
    )
    assert "(candidate.fingerprint ~ ruche_roles_digest) | hash('sha256')" in (tasks / "main.yml").read_text()
    fingerprint, digest = "9bd57ea2310f7bb3854c6fb747ddded9009330a46df8d52551f01871ba64393e", "0f" * 32
    assert stamp(fingerprint, digest) == get_hash(fingerprint + digest, "sha256")


def test_unit_states_are_read_by_name_and_a_block_out_of_step_is_unknown(monkeypatch):
    """`systemctl show A B C` prints one block per unit in order; a block naming another unit is nobody's state."""
    applied = load_script("ruche-applied")
    shown = (
        "Id=caddy.service\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=other.service\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=c.timer\nActiveState=inactive\nUnitFileState=disabled\n"
    )
    monkeypatch.setattr(applied.subprocess, "run", lambda argv, **_: type("Done", (), {"stdout": shown})())
    found = applied.unit_properties(["caddy.service", "b.service", "c.timer"])
    assert found["caddy.service"]["ActiveState"] == "active" and found["b.service"] == {}
    assert found["c.timer"]["UnitFileState"] == "disabled"


def test_a_run_over_the_fleet_goes_with_the_free_strategy_and_one_on_a_server_linear():
    """site.yml's instance play names no strategy: ruche gives free to a run over every server (their instances
    converge side by side) and linear to a run on one server (an upgrade's, a restore's, `apply --server`). Its
    server play is linear whatever ruche gives: the backup account's `throttle: 1` holds only there."""
    from pathlib import Path

    from orchestrator.operations.converge import run_strategy

    site = yaml.safe_load((Path(__file__).parents[2] / "playbooks" / "site.yml").read_text())
    assert [play["roles"] for play in site] == [["ruche_server"], ["ruche_instance"]]
    assert site[0]["strategy"] == "linear" and "strategy" not in site[1]
    # no play gathers facts: the server role reads the system in its first command (Ansible's facts only on a
    # server without ruche's tools), the instance role needs none
    assert [play["gather_facts"] for play in site] == [False, False]
    assert run_strategy(None, None) == "free"
    assert run_strategy("lab-1", None) == run_strategy(None, "amap/veille") == "linear"
