"""The instance role's file-writing tasks (its ruche_files module, library/), run by the real ansible-playbook on this
machine into a temporary directory: they write exactly what the golden files hold (tests/role_templates.py renders
them outside Ansible), with their modes, report the files they wrote, and write nothing the second time. (On the lab,
tests/lab/test_instances.py compares the files the whole role wrote on a server.)"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.runner import PLAYBOOKS_DIR
from orchestrator.yaml_text import Unsafe, dump_yaml
from tests.unit.test_rendered_units import example_files, example_variables

ROLE = PLAYBOOKS_DIR / "roles" / "ruche_instance"
ANSIBLE_BIN = Path(sys.executable).parent
WRITING = (
    "Write the directories and units of",
    "Write the environment files of",
    "Write the backup settings and site of",
)


def _play(tmp_path: Path, service_id: str, user_value: str | None = None) -> Path:
    """A playbook running the role's writing tasks (with the block's own variables) on localhost into tmp_path;
    ``user_value``: the first text of the app's environment (a parameter's value), written ``!unsafe`` by the
    inventory's own YAML writer."""
    (block,) = yaml.safe_load((ROLE / "tasks" / "install.yml").read_text())
    tasks = [task for task in block["block"] if task["name"].startswith(WRITING)]
    assert len(tasks) == 3, [task["name"] for task in block["block"]]
    for task in tasks:
        task.pop("notify", None)  # no handler here
    variables, secrets = json.loads(json.dumps(example_variables(service_id)))  # plain types, for YAML
    tasks[0]["register"] = "_units_written"  # what it wrote, for the report below (the role needs only the marker)
    if user_value is not None:
        next(p for v in variables["app"]["environment"] for p in v["parts"] if "text" in p)["text"] = Unsafe(user_value)
    play_vars = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    play_vars.update({
        "ruche_instance": {k: v for k, v in variables.items() if k != "secrets"},
        "ruche_secrets": {str(variables["identifier"]): secrets},
        "ruche_instance_root": str(tmp_path / "srv"), "ruche_instance_quadlet_dir": str(tmp_path / "quadlet"),
        "ruche_instance_sites_dir": str(tmp_path / "sites"), "ruche_backup_config_dir": str(tmp_path / "backup"),
        "ruche_backup_repository": "sftp:ruche@backup.example:/srv/restic",
    })  # fmt: skip
    play_vars["ruche_secrets"][str(variables["identifier"])]["restic_password"] = "<restic_password>"
    for directory in ("quadlet", "sites", "backup"):
        (tmp_path / directory).mkdir()
    (tmp_path / "templates").symlink_to(ROLE / "templates")
    report = {"name": "Report", "ansible.builtin.debug": {
        "msg": "{{ {'units': _units_written.changed_files, 'env': _environment_files is changed,"
               " 'pending': _environment_files.pending} | to_json }}"}}  # fmt: skip
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": play_vars,
             "tasks": [{"name": "instance", "vars": block["vars"], "block": [*tasks, report]}]}]  # fmt: skip
    playbook = tmp_path / "write.yml"
    playbook.write_text(dump_yaml(play))
    return playbook


def _run(playbook: Path, *options: str, output: list | None = None) -> dict:
    """Run the playbook (with ansible-playbook's ``options``); give the report task's message (``output``: gets the
    whole standard output)."""
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "-i", "localhost,", *options, str(playbook)],
        capture_output=True, text=True, timeout=300,
        env={"ANSIBLE_NOCOLOR": "1", "PATH": f"{ANSIBLE_BIN}:/usr/bin:/bin", "HOME": str(playbook.parent),
             "ANSIBLE_LIBRARY": str(ROLE / "library"), "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith('"msg":'))
    if output is not None:
        output.append(result.stdout)
    return json.loads(json.loads(line.split('"msg":', 1)[1].strip()))


@pytest.mark.skipif(os.geteuid() != 0, reason="the module gives every file to root")
@pytest.mark.parametrize("service_id", ["mediawiki-debian"])  # a database and a sidecar (Radicale, neither: below)
def test_the_roles_writing_tasks_write_the_golden_files_once(tmp_path, service_id):
    playbook = _play(tmp_path, service_id)
    output: list[str] = []
    first = _run(playbook, "-vvv", output=output)  # every result shown: no secret in any
    assert (
        "<restic_password>" not in output[0] and "<admin_password>" not in output[0] and "VALUE_SPECIFIED" in output[0]
    )
    expected = example_files(service_id)
    variables, _ = example_variables(service_id)
    instance_dir = tmp_path / "srv" / variables["association"] / variables["name"]
    written = {p.name: p for d in (tmp_path / "quadlet", instance_dir / "env", tmp_path / "sites") for p in d.iterdir()}
    assert {name: path.read_text() for name, path in written.items()} == {
        name: text.replace("/srv/ruche/", f"{tmp_path}/srv/") for name, text in expected.items()
    }  # the same files, under this test's root
    modes = {name: stat.S_IMODE(path.stat().st_mode) for name, path in written.items()}
    assert modes == {name: 0o600 if name.endswith(".env") else 0o644 for name in written}
    backup = {p.name: p for p in (tmp_path / "backup").iterdir()}
    assert backup["chorale.password"].read_text() == "<restic_password>"
    settings_text = backup[f"{variables['identifier']}.json"].read_text()
    assert settings_text.endswith("\n}\n")  # to_nice_json, one newline after, as ruche-backup reads it
    settings = json.loads(settings_text)
    assert (
        settings["units"]
        and settings["instance_dir"] == str(instance_dir)
        and settings["id"] == variables["identifier"]
    )
    assert {stat.S_IMODE(p.stat().st_mode) for p in backup.values()} == {0o600}
    assert stat.S_IMODE(instance_dir.stat().st_mode) == 0o700 and (instance_dir / "volumes").is_dir()
    assert sorted(Path(p).name for p in first["units"]) == sorted(
        n for n in written if n.endswith((".container", ".network"))
    )
    assert first["env"] is True and first["pending"] is True
    # the role's restart (not run here) would clear the marker: left, it says the units still need restarting
    assert _run(playbook) == {"units": [], "env": False, "pending": True}  # nothing written, the restart still due
    marker = instance_dir / ".restart-pending"
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600
    marker.unlink()  # as the role does once the units are restarted
    assert _run(playbook) == {"units": [], "env": False, "pending": False}
    (tmp_path / "quadlet" / f"ruche-{variables['identifier']}.network").write_text("edited by hand\n")
    (instance_dir / "env" / "app.env").chmod(0o644)
    again = _run(playbook)
    assert [Path(p).name for p in again["units"]] == [f"ruche-{variables['identifier']}.network"] and again["env"]
    assert stat.S_IMODE((instance_dir / "env" / "app.env").stat().st_mode) == 0o600 and again["pending"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the module gives every file to root")
def test_a_template_in_a_user_value_is_written_literally_never_run(tmp_path):
    marker = tmp_path / "pwned"
    hostile = "{{ lookup('pipe','touch " + str(marker) + "') }} {% raw %}"
    assert _run(_play(tmp_path, "radicale", hostile))["env"] is True
    variables, _ = example_variables("radicale")
    env = (tmp_path / "srv" / variables["association"] / variables["name"] / "env" / "app.env").read_text()
    assert f"RADICALE_ADMIN_USER={hostile}\n" in env and not marker.exists()
    expected = {name for name in example_files("radicale") if name.endswith((".container", ".network"))}
    assert {p.name for p in (tmp_path / "quadlet").iterdir()} == expected  # no database, no sidecar
