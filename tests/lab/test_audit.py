"""`ruche audit` against the lab's servers: after an apply nothing is found; a unit file edited by
hand, a container started by hand, the firewall table deleted, an inventory file edited and an
association over its offer each give their finding, and the next apply (or the fix named) clears it.
Also: an apply skips instances that need nothing, and reports and repairs drift; and the control plane backed up
and restored onto a new workspace path audits as the old one did and applies."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.workspace import open_workspace
from tests.dns_zone import ZoneServer
from tests.lab.servers import address_of, on

ADDRESS = "audites/radicale"
IDENTIFIER = "audites--radicale"


def server_findings(ruche, lab: Path) -> list[tuple[str, str]]:
    answer = ruche("--workspace", str(lab), "audit", "--server", "lab-1", "--json")
    result = json.loads(answer.stdout)
    found = [
        (f["rule"], f["object"], f["evidence"], f["fix"]) for f in result["findings"] if f["rule"].startswith("server.")
    ]
    assert (answer.exit_code == 1) == bool(result["findings"]) and result["checked"]["servers"] == 1
    return found


def apply_lab_1(ruche, lab: Path) -> dict:
    result = ruche("--workspace", str(lab), "apply", "--server", "lab-1", "--no-health", "--json")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def audited_lab(lab, ruche_module):
    w = ["--workspace", str(lab)]
    assert (
        ruche_module(
            *w,
            "association",
            "add",
            "audites",
            "--name",
            "Audités",
            "--email",
            "contact@audites.example",
            "--offer",
            "association",
        ).exit_code
        == 0
    )
    assert ruche_module(*w, "instance", "create", "audites", "radicale", "--server", "lab-1").exit_code == 0
    apply_lab_1(ruche_module, lab)
    return lab


def test_after_an_apply_the_servers_match_and_a_second_apply_skips_every_instance(audited_lab, ruche):
    assert server_findings(ruche, audited_lab) == []
    again = apply_lab_1(ruche, audited_lab)
    assert again["changed"] == 0 and IDENTIFIER in again["unchanged"] and again["drift"] == {}
    lab_1 = [i for i in json.loads(ruche("--workspace", str(audited_lab), "instance", "list", "--json").stdout)
             if i["server"] == "lab-1" and i["state"] == "running"]  # fmt: skip
    assert {i["address"].replace("/", "--") for i in lab_1} <= set(again["unchanged"])
    full = json.loads(
        ruche("--workspace", str(audited_lab), "apply", "--server", "lab-1", "--no-health", "--full", "--json").stdout
    )
    assert full["succeeded"] and full["changed"] == 0 and full["unchanged"] == []


def doctor(ruche, lab: Path, *options: str) -> tuple[int, dict, set[tuple[str, str]]]:
    """Run `ruche doctor --json`; give its exit code, its answer and the (check, object) of its failures."""
    answer = ruche("--workspace", str(lab), "doctor", "--json", *options)
    result = json.loads(answer.stdout)
    failures = {(c["check"], c["object"]) for c in result["checks"] if c["status"] == "error"}
    assert (answer.exit_code == 1) == bool(failures) and result["ok"] == (not failures), answer.stderr
    return answer.exit_code, result, failures


def check_of(result: dict, check: str, subject: str) -> dict:
    (found,) = [c for c in result["checks"] if c["check"] == check and c["object"] == subject]
    return found


def test_doctor_passes_on_the_lab_and_names_each_fault_with_its_fix(audited_lab, ruche, tmp_path):
    lab, w = audited_lab, ["--workspace", str(audited_lab)]
    address, backup_address = address_of(lab, "lab-1"), address_of(lab, "lab-backup")
    with ZoneServer() as zone:
        # no record published yet: the instances of lab-1 (this module's, and others' in a whole run) are named,
        # each with the zone line to publish
        _, result, failures = doctor(ruche, lab, "--server", "lab-1", "--resolver", zone.address)
        assert ("instance.dns", ADDRESS) in failures and {check for check, _ in failures} == {"instance.dns"}, failures
        assert f"radicale.audites.lab.ruche.test. 3600 IN A {address}" in result["zone"]
        assert len(result["zone"]) == len(failures)
        zone.load(result["zone"])
        code, result, failures = doctor(ruche, lab, "--server", "lab-1", "--resolver", zone.address)
        assert code == 0 and not failures and result["zone"] == [], result["checks"]
        for check in ("server.ssh", "server.os", "server.podman", "server.systemd", "server.port-80",
                      "server.port-443", "server.mail", "server.backup"):  # fmt: skip
            assert check_of(result, check, "lab-1")["status"] == "ok", result["checks"]
        assert check_of(result, "instance.dns", ADDRESS)["status"] == "ok"

    # port 443 closed and the backup target unreachable, by a firewall table of the server's own
    rules = "\n".join([
        "table inet doctor_faults {",
        "  chain input { type filter hook input priority -10; tcp dport 443 reject; }",
        f"  chain output {{ type filter hook output priority -10; ip daddr {backup_address} tcp dport 22 reject; }}",
        "}",
    ])  # fmt: skip
    on(lab, "lab-1", "sh", "-c", 'printf "%s\\n" "$1" | nft -f -', "_", rules)
    try:
        _, result, failures = doctor(ruche, lab, "--server", "lab-1")
    finally:
        on(lab, "lab-1", "nft", "delete", "table", "inet", "doctor_faults")
    assert {("server.port-443", "lab-1"), ("server.backup", "lab-1")} <= failures, result["checks"]
    assert ("server.port-80", "lab-1") not in failures
    assert "open TCP 443" in check_of(result, "server.port-443", "lab-1")["fix"]
    assert backup_address in check_of(result, "server.backup", "lab-1")["detail"]

    # SSH, as for a server an admin adds: lab-1 under a second address, its host key read and recorded
    second = address.rsplit(".", 1)[0] + ".111"
    key = str(open_workspace(lab).lab_dir / "ssh" / "id_ed25519")
    on(lab, "lab-1", "ip", "address", "add", f"{second}/24", "dev", "eth0")
    try:
        added = ruche(*w, "server", "add", "doctor-probe", "--address", second, "--ssh-key", key, "--yes")
        assert added.exit_code == 0, added.stderr
        fingerprint = check_of(doctor(ruche, lab, "--server", "lab-1")[1], "server.ssh", "lab-1")["detail"].split()[-2]
        assert fingerprint.startswith("SHA256:") and fingerprint in added.stderr  # shown before it was trusted
        known = open_workspace(lab).known_hosts_dir / "doctor-probe"
        assert known.read_text().startswith(f"{second} ssh-ed25519 ")
        _, result, failures = doctor(ruche, lab, "--server", "doctor-probe")
        assert not failures and check_of(result, "server.ssh", "doctor-probe")["status"] == "ok", result["checks"]

        # a key the server does not accept
        other = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        assert ruche(*w, "server", "set", "doctor-probe", "--ssh-key", str(other)).exit_code == 0
        _, result, failures = doctor(ruche, lab, "--server", "doctor-probe")
        ssh = check_of(result, "server.ssh", "doctor-probe")
        assert failures == {("server.ssh", "doctor-probe")} and "refused the key" in ssh["detail"], ssh
        assert (
            "authorized_keys" in ssh["fix"] and check_of(result, "server.system", "doctor-probe")["status"] == "skipped"
        )

        # a host key ruche has not recorded
        assert ruche(*w, "server", "set", "doctor-probe", "--ssh-key", key).exit_code == 0
        known.write_text("")
        _, result, failures = doctor(ruche, lab, "--server", "doctor-probe")
        ssh = check_of(result, "server.ssh", "doctor-probe")
        assert failures == {("server.ssh", "doctor-probe")} and "not in the known_hosts" in ssh["detail"], ssh
        assert fingerprint in ssh["fix"] and "ssh-keygen -lf" in ssh["fix"]
        trusted = ruche(*w, "server", "trust", "doctor-probe", "--yes", "--json")
        assert trusted.exit_code == 0 and json.loads(trusted.stdout)["fingerprint"] == fingerprint, trusted.stderr
        assert doctor(ruche, lab, "--server", "doctor-probe")[0] == 0
    finally:
        ruche(*w, "server", "remove", "doctor-probe", "--yes")
        on(lab, "lab-1", "ip", "address", "del", f"{second}/24", "dev", "eth0")


def test_a_unit_edited_by_hand_is_found_and_the_next_apply_puts_it_back(audited_lab, ruche):
    unit = f"/etc/containers/systemd/ruche-{IDENTIFIER}-app.container"
    on(audited_lab, "lab-1", "sed", "-i", "$a # edited by hand", unit)
    found = server_findings(ruche, audited_lab)
    assert [(rule, obj) for rule, obj, _e, _f in found] == [("server.drift", f"lab-1: {ADDRESS}")], found
    evidence, fix = found[0][2], found[0][3]
    assert unit in evidence and "not the file ruche wrote" in evidence and f"ruche apply --instance {ADDRESS}" in fix
    repaired = apply_lab_1(ruche, audited_lab)
    assert [d["object"] for d in repaired["drift"][IDENTIFIER]] == [unit]
    assert "edited by hand" not in on(audited_lab, "lab-1", "cat", unit)
    assert server_findings(ruche, audited_lab) == []


def test_a_container_started_by_hand_is_found_until_removed(audited_lab, ruche):
    image = on(
        audited_lab, "lab-1", "podman", "inspect", "--format", "{{.ImageName}}", f"ruche-{IDENTIFIER}-app"
    ).strip()
    on(audited_lab, "lab-1", "podman", "run", "--detach", "--name", "intruder", "--entrypoint", "sleep", image, "600")
    try:
        found = server_findings(ruche, audited_lab)
        assert [(rule, obj) for rule, obj, _e, _f in found] == [("server.unknown", "lab-1: container intruder")], found
        assert "podman rm --force intruder" in found[0][3]
    finally:
        on(audited_lab, "lab-1", "podman", "rm", "--force", "--time", "0", "intruder")
    assert server_findings(ruche, audited_lab) == []


def test_a_stopped_container_and_a_deleted_firewall_table_are_found_and_the_next_apply_restores_them(
    audited_lab, ruche
):
    on(audited_lab, "lab-1", "nft", "delete", "table", "inet", "ruche")
    on(audited_lab, "lab-1", "systemctl", "stop", f"ruche-{IDENTIFIER}-app.service")
    found = {(rule, obj): evidence for rule, obj, evidence, _f in server_findings(ruche, audited_lab)}
    assert set(found) == {("server.firewall", "lab-1"), ("server.drift", f"lab-1: {ADDRESS}")}, found
    assert (
        f"ruche-{IDENTIFIER}-app.service is inactive, ruche left it active"
        in found[("server.drift", f"lab-1: {ADDRESS}")]
    )
    apply_lab_1(ruche, audited_lab)
    assert "table inet ruche" in on(audited_lab, "lab-1", "nft", "list", "table", "inet", "ruche")
    assert server_findings(ruche, audited_lab) == []


def test_an_inventory_edited_by_hand_and_an_association_over_its_offer_are_found(audited_lab, ruche):
    w = ["--workspace", str(audited_lab)]
    workspace = open_workspace(audited_lab)
    host_vars = workspace.inventories_dir / workspace.config.environment / "host_vars" / "lab-1.yml"
    host_vars.write_text(host_vars.read_text().replace(IDENTIFIER, "someone-else--radicale"))
    answer = json.loads(ruche(*w, "audit", "--server", "lab-1", "--json").stdout)
    assert ("inventory.matches-state", f"inventories/{workspace.config.environment}/host_vars/lab-1.yml") in {
        (f["rule"], f["object"]) for f in answer["findings"]}  # fmt: skip
    apply_lab_1(ruche, audited_lab)  # writes the inventory from the state again
    answer = json.loads(ruche(*w, "audit", "--server", "lab-1", "--json").stdout)
    assert not [f for f in answer["findings"] if f["rule"].startswith(("inventory.", "server."))], answer["findings"]

    assert (
        ruche(
            *w, "instance", "create", "audites", "radicale", "--name", "deux", "--size", "medium", "--server", "lab-1"
        ).exit_code
        == 0
    )
    apply_lab_1(ruche, audited_lab)
    engine = sa.create_engine(workspace.state_url)
    with engine.begin() as connection:  # behind ruche's back: no override, no offer change recorded
        connection.execute(sa.text("UPDATE associations SET offer = 'decouverte' WHERE slug = 'audites'"))
    engine.dispose()
    answer = json.loads(ruche(*w, "audit", "--server", "lab-1", "--json").stdout)
    quota = [f for f in answer["findings"] if f["rule"] == "quota.within-offer"]
    assert [f["object"] for f in quota] == ["audites"] and "set-offer audites" in quota[0]["fix"], answer["findings"]
    assert ruche(*w, "association", "set-offer", "audites", "association").exit_code == 0
    answer = json.loads(ruche(*w, "audit", "--server", "lab-1", "--json").stdout)
    assert not [f for f in answer["findings"] if f["rule"].startswith(("quota.", "inventory.", "server."))], answer[
        "findings"
    ]
    assert ruche(*w, "instance", "delete", "audites/deux", "--purge", "--yes").exit_code == 0


def test_the_control_plane_restored_on_a_new_control_machine_audits_and_applies(
    audited_lab, ruche, tmp_path, monkeypatch
):
    started = time.monotonic()
    lab, repository = audited_lab, tmp_path / "offsite" / "control-plane"
    old = open_workspace(lab)
    made = ruche("--workspace", str(lab), "backup", "control-plane", "--to", str(repository), "--json")
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["holds"]["ssh_keys"] == 1  # the lab's key, named by every lab server
    before = json.loads(ruche("--workspace", str(lab), "audit", "--no-servers", "--json").stdout)["findings"]

    new = tmp_path / "new-control-machine" / "workspace"
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD_FILE", old.config.secrets.vault_password_file)  # kept off the machine
    restored = ruche("backup", "restore-control-plane", "--from", str(repository), str(new), "--json")
    assert restored.exit_code == 0, restored.stderr
    answer = json.loads(restored.stdout)
    # the lab's key and known_hosts lay in the old workspace's lab/, which is not backed up: the key is put outside
    # the new workspace, each server's host keys in its known_hosts/, and the inventory says so
    assert {c["server"] for c in answer["servers_changed"]} >= {"lab-1", "lab-2", "lab-backup"}
    assert all(not Path(k["path"]).is_relative_to(new) for k in answer["keys"])
    # The same lab seen from a new control machine: the lab's own settings (registry mirror, internal TLS, its
    # backup target and mail relay) live in its lab/ settings file, not in ruche.toml nor in the backup; with
    # them the inventory the restore wrote (rendered without them) is written again.
    (new / "lab").mkdir()
    shutil.copy2(old.lab_settings_path, new / "lab" / old.lab_settings_path.name)
    w = ["--workspace", str(new)]
    assert ruche(*w, "inventory", "export").exit_code == 0

    # the association's backup password came back with the state: its repository opens from the new machine
    backed_up = ruche(*w, "backup", "run", ADDRESS, "--json")
    assert backed_up.exit_code == 0, backed_up.stdout[-2000:] + backed_up.stderr[-2000:]

    # the new control machine reaches lab-1 with the restored keys, and finds what the old one found less that
    # backup (backups this session never made or verified), nothing else: inventories, secrets, trail, servers
    after = ruche(*w, "audit", "--server", "lab-1", "--json")
    findings = json.loads(after.stdout)["findings"]
    assert json.loads(after.stdout)["checked"]["servers"] == 1, after.stderr
    # besides backups, only the versions of other files' instances in this shared lab (test_upgrades leaves two
    # Radicales on 3.1.8), which the old control machine found as well (compared just below)
    assert [f for f in findings if not f["rule"].startswith(("backups.", "versions."))] == [], findings
    found_before = {(f["rule"], f["object"]) for f in before}
    assert {(f["rule"], f["object"]) for f in findings} == found_before - {("backups.inside-window", ADDRESS)}
    # and applies: lab-1 holds what the restored state gives, so its instance is left as it is
    applied = apply_lab_1(ruche, new)
    assert applied["succeeded"] and IDENTIFIER in applied["unchanged"] and applied["drift"] == {}, applied
    print(f"control plane backed up, restored, audited and applied in {time.monotonic() - started:.1f} s")
