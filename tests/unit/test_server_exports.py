"""operations/server_exports.fetch_export: the server's answer believed only when the copy's SHA-256 is the
server's, and the server's copy removed even when copying it fails (SSH stood in for by functions)."""

from __future__ import annotations

import hashlib

import pytest

from orchestrator.errors import OperationFailed
from orchestrator.operations import server_exports
from orchestrator.remote import SshTarget

TARGET = SshTarget(name="lab-1", address="10.0.0.1")
DATA = b"an instance's archive"


def served(monkeypatch, *, sha256: str, copy_fails: bool = False) -> list[list[str]]:
    removed: list[list[str]] = []
    answer = {"status": "success", "path": "/var/tmp/x.tar", "size": len(DATA), "sha256": sha256}
    monkeypatch.setattr(server_exports, "backup_tool", lambda target, command, identifier, timeout: answer)

    def get_file(target, remote, local, remove):
        if copy_fails:
            raise OperationFailed("connection lost")
        with open(local, "wb") as handle:
            handle.write(DATA)

    monkeypatch.setattr(server_exports, "get_file", get_file)
    monkeypatch.setattr(server_exports, "run_command", lambda target, argv: removed.append(argv) or "")
    return removed


def test_a_copy_with_the_servers_checksum_is_kept(monkeypatch, tmp_path):
    served(monkeypatch, sha256=hashlib.sha256(DATA).hexdigest())
    answer = server_exports.fetch_export(TARGET, "asso--app", tmp_path / "x.tar", what="asso/app")
    assert answer["size"] == len(DATA) and (tmp_path / "x.tar").read_bytes() == DATA
    assert server_exports.file_sha256(tmp_path / "x.tar") == hashlib.sha256(DATA).hexdigest()


def test_a_copy_that_differs_is_refused_and_removed(monkeypatch, tmp_path):
    served(monkeypatch, sha256="0" * 64)
    with pytest.raises(OperationFailed, match="differs from the server's"):
        server_exports.fetch_export(TARGET, "asso--app", tmp_path / "x.tar", what="asso/app")
    assert not (tmp_path / "x.tar").exists()


def test_a_failed_copy_removes_the_servers_archive(monkeypatch, tmp_path):
    removed = served(monkeypatch, sha256="0" * 64, copy_fails=True)
    with pytest.raises(OperationFailed, match="connection lost"):
        server_exports.fetch_export(TARGET, "asso--app", tmp_path / "x.tar", what="asso/app")
    assert removed == [["rm", "-f", "/var/tmp/x.tar"]]


def test_a_failed_export_names_the_instance_and_the_server(monkeypatch, tmp_path):
    monkeypatch.setattr(server_exports, "backup_tool", lambda *a, **k: {"status": "failed", "error": "disk full"})
    with pytest.raises(OperationFailed, match="asso/app: export failed on lab-1: disk full"):
        server_exports.fetch_export(TARGET, "asso--app", tmp_path / "x.tar", what="asso/app")


def test_a_copy_and_a_removal_that_both_fail_say_where_the_data_was_left(monkeypatch, tmp_path):
    served(monkeypatch, sha256="0" * 64, copy_fails=True)

    def unreachable(target, argv):
        raise OperationFailed("cannot reach lab-1 over SSH")

    monkeypatch.setattr(server_exports, "run_command", unreachable)
    with pytest.raises(OperationFailed) as raised:
        server_exports.fetch_export(TARGET, "asso--app", tmp_path / "x.tar", what="asso/app")
    assert "connection lost" in str(raised.value) and "could not be removed" in str(raised.value)
    assert "rm -f /var/tmp/x.tar" in raised.value.hint
