"""One language per CLI output: names and labels in the user's locale (French or English), headers in English."""

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.cli.render import user_language

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("environment", "language"),
    [({"LANG": "fr_FR.UTF-8"}, "fr"), ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "fr_FR.UTF-8", "LC_ALL": "en_GB"}, "en"),
     ({"LC_MESSAGES": "fr_BE"}, "fr"), ({}, "en")],
)  # fmt: skip
def test_the_language_is_the_users_locale_english_by_default(monkeypatch, environment, language):
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert user_language() == language


def test_the_catalogue_list_is_in_one_language(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD", "x" * 32)
    assert runner.invoke(cli, ["init", str(tmp_path / "v")]).exit_code == 0
    for variable in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    english = runner.invoke(cli, ["-w", str(tmp_path / "v"), "catalog", "list"]).output
    assert "NAME" in english and "NOM" not in english and "forms and surveys" in english
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert "formulaires et sondages" in runner.invoke(cli, ["-w", str(tmp_path / "v"), "catalog", "list"]).output
