"""`ruche doctor` and the host key `server add` records, without a lab: what fails is named with its fix and
nothing is stored by a refused `server add` (tests/lab/test_audit.py runs doctor against real servers)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_a_server_that_does_not_answer_is_not_registered_unless_no_connect(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    refused = ruche(*w, "server", "add", "web-1", "--address", "127.0.0.1", "--ssh-port", "1", "--yes")
    assert refused.exit_code == 1 and "cannot reach 127.0.0.1:1 to read its SSH host key" in refused.stderr
    assert "--no-connect" in refused.stderr and "nothing was registered" in refused.stderr
    assert json.loads(ruche(*w, "server", "list", "--json").stdout) == []
    missing = ruche(*w, "server", "add", "web-1", "--address", "127.0.0.1", "--known-hosts", str(tmp_path / "absent"))
    assert missing.exit_code == 2 and "--known-hosts" in missing.stderr
    both = ruche(*w, "server", "add", "web-1", "--address", "127.0.0.1", "--known-hosts", "x", "--no-connect")
    assert both.exit_code == 2
    known = tmp_path / "known_hosts"
    known.write_text("127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    added = ruche(
        *w, "server", "add", "web-1", "--address", "127.0.0.1", "--ssh-port", "1", "--known-hosts", str(known)
    )
    assert added.exit_code == 0, added.stderr
    (server,) = json.loads(ruche(*w, "server", "list", "--json").stdout)
    assert server["ssh_known_hosts_path"] == str(known.resolve())
    untrusted = ruche(*w, "server", "trust", "web-1", "--yes")
    assert untrusted.exit_code == 1 and "cannot reach 127.0.0.1:1" in untrusted.stderr


def test_doctor_names_a_server_it_cannot_reach_and_what_to_do_and_exits_1(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(*w, "server", "add", "web-1", "--address", "127.0.0.1", "--ssh-port", "1", "--no-connect").exit_code == 0
    )
    answer = ruche(*w, "doctor", "--json")
    assert answer.exit_code == 1, answer.stderr
    result = json.loads(answer.stdout)
    checks = {(c["check"], c["object"]): c for c in result["checks"]}
    assert checks[("workspace.state", "workspace")]["status"] == "ok"
    assert checks[("workspace.vault", "workspace")]["status"] in ("ok", "warning")
    ssh = checks[("server.ssh", "web-1")]
    assert ssh["status"] == "error" and "127.0.0.1:1" in ssh["detail"] and "server set web-1" in ssh["fix"]
    assert checks[("server.system", "web-1")]["status"] == "skipped"
    assert result["ok"] is False and result["counts"]["error"] == 1 and result["zone"] == []
    text = ruche(*w, "doctor")
    assert text.exit_code == 1 and "FAIL  web-1  server.ssh" in text.stdout and "fix: " in text.stdout
    assert ruche(*w, "doctor", "--server", "nope").exit_code == 4
    assert ruche(*w, "doctor", "--resolver", "not-an-address").exit_code == 2


def test_doctor_refuses_an_ssh_key_others_can_read(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    key = tmp_path / "id_ed25519"
    key.write_text("a key\n")
    key.chmod(0o644)
    assert (
        ruche(*w, "server", "add", "web-1", "--address", "127.0.0.1", "--ssh-key", str(key), "--no-connect").exit_code
        == 0
    )
    result = json.loads(ruche(*w, "doctor", "--json").stdout)
    (ssh,) = [c for c in result["checks"] if c["check"] == "server.ssh"]
    assert ssh["status"] == "error" and "read by others" in ssh["detail"] and ssh["fix"] == f"chmod 600 {key.resolve()}"
