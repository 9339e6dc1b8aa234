"""The roles' Molecule scenarios (molecule/), run against the lab's servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.workspace import open_workspace

PROJECT = Path(__file__).resolve().parents[2]


def molecule(lab: Path, scenario: str) -> subprocess.CompletedProcess:
    """Run ``molecule test -s SCENARIO`` on the lab's inventory; give the finished process."""
    workspace = open_workspace(lab)
    environment = dict(os.environ)
    environment.update({
        "RUCHE_MOLECULE_INVENTORY": str(workspace.root / "inventories" / workspace.config.environment),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(workspace.config.secrets.vault_password_file),
        "PATH": f"{Path(sys.executable).parent}:{environment.get('PATH', '/usr/bin:/bin')}",
        "NO_COLOR": "1",
    })  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "molecule", "test", "-s", scenario],
        cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def exported(lab, ruche_module):
    result = ruche_module("--workspace", str(lab), "inventory", "export")
    assert result.exit_code == 0, result.stderr
    return lab


@pytest.mark.parametrize("scenario", ["ruche_server", "ruche_instance"])
def test_the_roles_molecule_scenario_passes_on_the_lab(exported, scenario):
    finished = molecule(exported, scenario)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-6000:]
    # the recap: every step of the sequence ran (none skipped as "missing") and succeeded
    recap = re.search(rf"^{scenario}\s*: actions=(\d+)\s+successful=(\d+) .*missing=(\d+)\s+failed=(\d+)", output, re.M)
    assert recap is not None, output[-3000:]
    actions, successful, missing, failed = map(int, recap.groups())
    assert (successful, missing, failed) == (actions, 0, 0) and actions >= 4, recap.group(0)
