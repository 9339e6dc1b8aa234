"""`ruche audit` against the lab's servers: after an apply nothing is found; a unit file edited by
hand, a container started by hand, the firewall table deleted, an inventory file edited and an
association over its offer each give their finding, and the next apply (or the fix named) clears it.
Also: an apply skips instances that need nothing, and reports and repairs drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator.workspace import open_workspace
from tests.lab.servers import on

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
