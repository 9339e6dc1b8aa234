"""The exported inventory as real Ansible reads it: user values arrive literally, never templated."""

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.inventory import ServerEntry, render_inventory
from tests.helpers import instance_entry

ANSIBLE_BIN = Path(sys.executable).parent


def write(directory: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    return directory


def hostile_inventory(tmp_path: Path, marker: Path) -> Path:
    value = "{{ lookup('pipe','touch " + str(marker) + "') }}"
    instance = instance_entry("asso", "site", "web-1", title=value)
    files = render_inventory([ServerEntry("web-1", "192.0.2.1", "root", 22, "apps", False)], [instance])
    return write(tmp_path / "inventory", files)


def run_debug_play(inventory: Path, tmp_path: Path) -> str:
    """Run a play whose debug task (run on the control machine, no SSH) templates the parameter."""
    playbook = tmp_path / "show.yml"
    playbook.write_text(
        "- hosts: apps\n  gather_facts: false\n  tasks:\n"
        '    - debug:\n        msg: "title={{ ruche_instances[0].parameters.title }}"\n'
    )
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)],
        capture_output=True, text=True, timeout=300, env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_ansible_reads_the_inventory_and_sees_user_values_as_unsafe(tmp_path):
    inventory = hostile_inventory(tmp_path, tmp_path / "pwned")
    listed = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]["web-1"]
    assert hostvars["ansible_host"] == "192.0.2.1"
    assert "__ansible_unsafe" in json.dumps(hostvars["ruche_instances"][0]["parameters"])


def test_a_template_in_a_parameter_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    output = run_debug_play(hostile_inventory(tmp_path, marker), tmp_path)
    assert f"title={{{{ lookup('pipe','touch {marker}') }}}}" in output
    assert not marker.exists()


def test_control_the_same_value_without_unsafe_would_run(tmp_path):
    """Shows the test above can fail: an untagged value IS executed by ansible-core."""
    marker = tmp_path / "pwned"
    inventory = hostile_inventory(tmp_path, marker)
    host_vars = inventory / "host_vars" / "web-1.yml"
    host_vars.write_text(host_vars.read_text().replace("!unsafe ", ""))
    run_debug_play(inventory, tmp_path)
    assert marker.exists()


def test_an_empty_user_value_reads_as_an_empty_string_not_none(tmp_path):
    instance = instance_entry("asso", "site", "web-1", title="")
    files = render_inventory([ServerEntry("web-1", "192.0.2.1", "root", 22, "apps", False)], [instance])
    output = run_debug_play(write(tmp_path / "inventory", files), tmp_path)
    playbook = tmp_path / "length.yml"
    playbook.write_text(
        "- hosts: apps\n  gather_facts: false\n  tasks:\n"
        '    - debug:\n        msg: "length={{ ruche_instances[0].parameters.title | length }}"\n'
    )
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory"), str(playbook)],
        capture_output=True, text=True, timeout=300, env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0 and '"msg": "length=0"' in result.stdout, result.stdout[-2000:]
    assert '"msg": "title="' in output
