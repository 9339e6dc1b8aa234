"""scripts/install on a stock Debian: ruche in its own virtual environment made with Debian's Python.

Debian marks its Python as externally managed (PEP 668), so `pip install` into it fails; the install
must work with nothing but Debian's Python on PATH (no pyenv, no other interpreter first).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.mark.skipif(not Path("/etc/debian_version").exists(), reason="scripts/install is for Debian")
def test_the_install_works_with_only_debians_python_on_path_and_gives_ruche(tmp_path):
    venv = tmp_path / "venv"
    environment = {"PATH": DEBIAN_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
                   "RUCHE_VENV": str(venv), "RUCHE_LINK": "no"}  # fmt: skip
    # the PATH holds no other Python: the one the install finds is Debian's
    found = subprocess.run(["sh", "-c", "command -v python3"], env=environment, capture_output=True, text=True)
    assert found.stdout.strip() == "/usr/bin/python3"
    installed = subprocess.run(["bash", "scripts/install"], cwd=ROOT, env=environment, capture_output=True, text=True,
                               timeout=1200)  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert installed.stdout.strip().splitlines()[-1] == str(venv / "bin" / "python")
    version = subprocess.run(
        [str(venv / "bin" / "ruche"), "--version"], env=environment, capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("ruche, version "), version.stdout + version.stderr
    base = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.base_prefix, sys.prefix)"],
                          env=environment, capture_output=True, text=True).stdout.split()  # fmt: skip
    assert base == ["/usr", str(venv)]  # Debian's Python, in its own environment
    # what the demo does not need is not installed: the tests' extras
    tests_extra = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest"], env=environment, capture_output=True
    )
    assert tests_extra.returncode != 0
    # and it runs: a workspace made, the catalogue read, the environment's Ansible there for ansible-runner
    environment["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # where `ruche init` puts the vault password
    ruche = str(venv / "bin" / "ruche")
    made = subprocess.run([ruche, "init", str(tmp_path / "ws"), "--collective", "Test", "--domain", "test.example"],
                          env=environment, capture_output=True, text=True)  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    listed = subprocess.run([ruche, "--workspace", str(tmp_path / "ws"), "catalog", "list", "--json"], env=environment,
                            capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0 and '"radicale"' in listed.stdout, listed.stdout[-2000:] + listed.stderr[-2000:]
    assert (venv / "bin" / "ansible-playbook").exists()
