"""The control-plane backup's pure parts: the repository's password derived from the vault password, how a
repository is named and shown, the `[backup] control_plane_repository` setting, the state dump's text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.actions.control_plane_backup import (
    Restic,
    repository_location,
    repository_password,
    shown_repository,
)
from orchestrator.config import BackupSettings
from orchestrator.state.dump import dump_lines


def test_the_repository_password_derives_from_the_vault_password_and_does_not_show_it():
    password = repository_password(b"the vault password")
    assert password == repository_password(b"the vault password") and len(password) == 64
    assert int(password, 16) >= 0 and password != repository_password(b"another vault password")
    assert "vault" not in password


def test_the_repository_password_reaches_restic_only_in_its_environment(monkeypatch):
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD", "the vault password")
    monkeypatch.setenv("RESTIC_PASSWORD_FILE", "/elsewhere")
    restic = Restic("/srv/backup", "derived")
    environment = restic._environment()
    assert environment["RESTIC_PASSWORD"] == "derived"
    assert "RUCHE_VAULT_PASSWORD" not in environment and "RESTIC_PASSWORD_FILE" not in environment


def test_repositories_are_given_to_restic_as_written_and_shown_without_a_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert repository_location("offsite") == str(tmp_path / "offsite")
    for remote in ("sftp:ruche@backup.example.net:/srv/cp", "s3:https://s3.example.net/cp", "rest:https://h:8000/"):
        assert repository_location(remote) == remote and shown_repository(remote) == remote
    assert shown_repository("rest:https://ruche:s3cret@h:8000/cp") == "rest:https://ruche:***@h:8000/cp"
    assert Restic("rest:https://ruche:s3cret@h/cp", "x").repository == "rest:https://ruche:***@h/cp"


@pytest.mark.parametrize("value", ["/srv/control-plane", "sftp:ruche@backup.example.net:/srv/cp", "s3:https://h/b"])
def test_the_setting_takes_a_restic_repository(value):
    assert BackupSettings(control_plane_repository=value).control_plane_repository == value


@pytest.mark.parametrize("value", ["relative/path", "ftp://host/x", "/with space"])
def test_the_setting_refuses_what_restic_would_not_read(value):
    with pytest.raises(ValidationError, match="restic repository"):
        BackupSettings(control_plane_repository=value)


def test_a_dump_is_written_one_row_a_line_and_reads_back():
    dump = {"format": "ruche-state-dump", "format_version": 1, "revision": "0017", "dialect": "sqlite",
            "tables": {"servers": {"columns": ["id", "name"], "kinds": ["plain", "plain"], "rows": [[1, "a"], [2, "é"]]},
                       "empty": {"columns": ["id"], "kinds": ["plain"], "rows": []}}}  # fmt: skip
    text = "".join(dump_lines(dump))
    assert json.loads(text) == dump
    assert '\n[2, "é"]' in text and text.count("\n") >= 4
    assert json.loads("".join(dump_lines({**dump, "tables": {}}))) == {**dump, "tables": {}}


def test_a_local_repository_under_home_is_made_absolute():
    assert Path(repository_location("~/x")).is_absolute()
