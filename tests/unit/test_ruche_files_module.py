"""The roles' ruche_files module (playbooks/roles/ruche_server/library/, linked from the instance role's), run as
Ansible runs it (its arguments as JSON, its answer as JSON on standard output) in a temporary directory: a failure
halfway leaves the restart marker, so the next run restarts the units; a symbolic link to a directory is followed; a
directory where a file should be is refused with its path; the content is never echoed back; directories take their
own modes; a file whose check refuses its new content is left as it was."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys

import pytest

from orchestrator.runner import PLAYBOOKS_DIR

pytestmark = [pytest.mark.unit, pytest.mark.skipif(os.geteuid() != 0, reason="the module gives every file to root")]
MODULE = PLAYBOOKS_DIR / "roles" / "ruche_server" / "library" / "ruche_files.py"


def run_module(monkeypatch, arguments: dict) -> dict:
    from ansible.module_utils import basic

    spec = importlib.util.spec_from_file_location("ruche_files_under_test", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": arguments}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    output = io.StringIO()
    monkeypatch.setattr(sys, "stdout", output)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(output.getvalue())


def test_a_write_failing_halfway_leaves_the_marker_and_the_files_written_before(tmp_path, monkeypatch):
    marker = tmp_path / ".restart-pending"
    files = [{"path": str(tmp_path / "a.container"), "content": "[Unit]\n", "mode": "0644"},
             {"path": str(tmp_path / "gone" / "b.container"), "content": "[Unit]\n", "mode": "0644"}]  # fmt: skip
    failed = run_module(monkeypatch, {"files": files, "pending_marker": str(marker)})
    assert failed["failed"] and failed["msg"].startswith(f"{tmp_path}/gone/b.container: ")
    assert failed["changed_files"] == [str(tmp_path / "a.container")] and marker.exists() and failed["changed"]
    # the next run finds a.container as it would write it, but the marker says the restart is still due
    (tmp_path / "gone").mkdir()
    again = run_module(monkeypatch, {"files": files, "pending_marker": str(marker)})
    assert again["changed_files"] == [str(tmp_path / "gone" / "b.container")] and again["pending"] is True
    marker.unlink()
    assert run_module(monkeypatch, {"files": files, "pending_marker": str(marker)})["pending"] is False
    assert not list(tmp_path.glob(".ruche-*")) and not list((tmp_path / "gone").glob(".ruche-*"))  # no temporary left


def test_directories_follow_links_and_a_directory_in_a_files_place_is_refused(tmp_path, monkeypatch):
    (tmp_path / "disk").mkdir(mode=0o755)
    (tmp_path / "volumes").symlink_to(tmp_path / "disk")
    made = run_module(monkeypatch, {"directories": [str(tmp_path / "volumes"), str(tmp_path / "env")]})
    assert made["created_directories"] == [str(tmp_path / "volumes"), str(tmp_path / "env")]
    assert (tmp_path / "volumes").is_symlink() and oct((tmp_path / "disk").stat().st_mode & 0o777) == "0o700"
    (tmp_path / "env" / "app.env").mkdir()
    refused = run_module(monkeypatch, {"files": [{"path": str(tmp_path / "env" / "app.env"),
                                                  "content": "SECRET=s3cr3t-value\n", "mode": "0600"}]})  # fmt: skip
    assert refused["failed"] and refused["msg"].startswith(f"{tmp_path}/env/app.env: ")
    assert "s3cr3t-value" not in json.dumps(refused)  # the content (no_log) is never echoed back


def test_the_instance_role_runs_the_base_roles_module():
    linked = PLAYBOOKS_DIR / "roles" / "ruche_instance" / "library" / "ruche_files.py"
    assert linked.is_symlink() and linked.resolve() == MODULE.resolve()


def test_directories_take_their_own_modes_and_a_refused_check_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    made = run_module(monkeypatch, {"directories": [{"path": str(tmp_path / "srv"), "mode": "0711"},
                                                    str(tmp_path / "etc"),
                                                    {"path": str(tmp_path / "cache" / "ruche" / "restic/"),
                                                     "mode": "0700"}], "directory_mode": "0755"})  # fmt: skip
    assert made["created_directories"] == [str(tmp_path / d) for d in ("srv", "etc", "cache/ruche/restic")]
    modes = {d: oct((tmp_path / d).stat().st_mode & 0o777) for d in ("srv", "etc", "cache", "cache/ruche")}
    assert modes == {"srv": "0o711", "etc": "0o755", "cache": "0o700", "cache/ruche": "0o700"}  # parents as asked
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    dangling = run_module(monkeypatch, {"directories": [str(tmp_path / "gone" / "sub")]})
    assert dangling["failed"] and dangling["msg"].endswith(f"{tmp_path}/gone is a symbolic link to nothing")
    bad = run_module(monkeypatch, {"directories": [{"path": str(tmp_path / "x")}]})
    assert bad["failed"] and "a path and a mode" in bad["msg"] and not (tmp_path / "x").exists()
    config = tmp_path / "etc" / "Caddyfile"
    config.write_text("kept\n")
    config.chmod(0o644)
    check = "grep -q ^good %s"  # as ansible.builtin.template's validate: %s is the new content's file
    refused = run_module(monkeypatch, {"files": [{"path": str(config), "content": "bad\n", "mode": "0644",
                                                  "validate": check}]})  # fmt: skip
    assert refused["failed"] and refused["msg"].startswith(f"{config}: the new content was refused by")
    assert refused["changed"] is False  # nothing written (a failure after a write says changed: below)
    assert config.read_text() == "kept\n" and not list((tmp_path / "etc").glob(".ruche-*"))
    accepted = run_module(monkeypatch, {"files": [{"path": str(config), "content": "good\n", "mode": "0644",
                                                   "validate": check}]})  # fmt: skip
    assert accepted["changed_files"] == [str(config)] and config.read_text() == "good\n"
    unchecked = run_module(monkeypatch, {"files": [{"path": str(config), "content": "x", "mode": "0644",
                                                    "validate": "true"}]})  # fmt: skip
    assert unchecked["failed"] and "must hold %s" in unchecked["msg"] and config.read_text() == "good\n"
