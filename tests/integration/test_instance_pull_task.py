"""The instance role's pull task, run by the real ansible-playbook on this machine with a stand-in ``podman`` first on
PATH (the lab runs the real one: tests/lab/test_apply.py): an image already there is not pulled, a missing one is, and
every image that cannot be pulled is told with podman's own answer; an image name is an argument, never shell code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from orchestrator.runner import PLAYBOOKS_DIR
from orchestrator.yaml_text import Unsafe, dump_yaml

ROLE = PLAYBOOKS_DIR / "roles" / "ruche_instance"
ANSIBLE_BIN = Path(sys.executable).parent
# podman image exists: true for images listed in present; podman pull: fails for names holding "absent"; both
# want "--" before the name (a name is never read as an option)
FAKE_PODMAN = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$1 $2" in
  "image exists") [ "$3" = -- ] && grep -qxF -- "$4" "$(dirname "$0")/present" ;;
  "pull --quiet") [ "$3" = -- ] || exit 2
                  case "$4" in *absent*) echo "Error: $4: manifest unknown" >&2; exit 125 ;; esac
                  echo "$4" >> "$(dirname "$0")/present"; echo sha256:0123 ;;
  *) exit 2 ;;
esac
"""


def run_pull(tmp_path: Path, images: dict[str, str]) -> tuple[dict, list[str]]:
    """Run the role's two pull tasks for an instance whose app, database and sidecar use ``images`` (keys app, db,
    sidecar); give the play's recap of the pull (changed, failed, message) and podman's calls."""
    (block,) = yaml.safe_load((ROLE / "tasks" / "install.yml").read_text())
    tasks = [t for t in block["block"] if t["name"].startswith(("Pull the images of", "Report the images of"))]
    assert len(tasks) == 2
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    (tools / "podman").write_text(FAKE_PODMAN)
    (tools / "podman").chmod(0o755)
    (tools / "present").touch()
    instance = {
        "identifier": "asso--app", "association": "asso", "name": "app", "service": "radicale",
        "app": {"image": Unsafe(images["app"])}, "database": {"image": Unsafe(images["db"])},
        "sidecars": [{"image": Unsafe(images["sidecar"])}, {"image": Unsafe(images["app"])}],
    }  # fmt: skip
    report = {"name": "Report", "ansible.builtin.debug": {"msg": "{{ {'changed': _pulled is changed} | to_json }}"}}
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ruche_instance": instance},
             "tasks": [{"name": "instance", "block": [*tasks, report],
                        "rescue": [{"name": "Failed", "ansible.builtin.debug": {
                            "msg": "{{ {'failed': ansible_failed_result.msg} | to_json }}"}}]}]}]  # fmt: skip
    playbook = tmp_path / "pull.yml"
    playbook.write_text(dump_yaml(play))
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)], capture_output=True, text=True,
        timeout=300, env={"ANSIBLE_NOCOLOR": "1", "PATH": f"{tools}:{ANSIBLE_BIN}:/usr/bin:/bin",
                          "HOME": str(tmp_path), "ANSIBLE_PYTHON_INTERPRETER": sys.executable},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.strip().startswith('"msg":'))
    calls = (tools / "calls").read_text().splitlines()
    (tools / "calls").unlink()
    return json.loads(json.loads(line.split('"msg":', 1)[1].strip())), calls


def test_present_images_are_kept_missing_ones_pulled_once(tmp_path):
    images = {
        "app": "registry.example/app:1",
        "db": "registry.example/postgres:17",
        "sidecar": "registry.example/cron:1",
    }
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "present").write_text("registry.example/postgres:17\n")
    first, calls = run_pull(tmp_path, images)
    assert first == {"changed": True}
    assert calls == [
        "image exists -- registry.example/postgres:17",
        "image exists -- registry.example/app:1",
        "pull --quiet -- registry.example/app:1",
        "image exists -- registry.example/cron:1",
        "pull --quiet -- registry.example/cron:1",
    ]  # the app's image, also a sidecar's, asked once
    again, calls = run_pull(tmp_path, images)
    assert again == {"changed": False} and all(call.startswith("image exists") for call in calls)


def test_every_image_that_cannot_be_pulled_is_told_with_podmans_answer_and_a_name_is_never_run(tmp_path):
    hostile = "lab.ruche.invalid/absent:1; touch " + str(tmp_path / "pwned")
    images = {"app": "lab.ruche.invalid/absent:2", "db": "registry.example/postgres:17", "sidecar": hostile}
    failed, calls = run_pull(tmp_path, images)
    message = failed["failed"]
    assert "cannot pull lab.ruche.invalid/absent:2: Error: lab.ruche.invalid/absent:2: manifest unknown" in message
    assert f"cannot pull {hostile}: Error: {hostile}: manifest unknown" in message
    assert (
        "`ruche lab up --service radicale` builds and pushes" in message
        and "ruche apply --instance asso/app" in message
    )
    assert "pull --quiet -- registry.example/postgres:17" in calls  # the others are still pulled
    assert not (tmp_path / "pwned").exists()
