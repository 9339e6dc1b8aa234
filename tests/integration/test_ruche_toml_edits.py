"""ruche.toml as the admin wrote it survives the commands that change it; the lab's settings stay in a file of their
own, and `lab up` keeps away from a workspace with an admin's servers (SQLite and PostgreSQL states)."""

from __future__ import annotations

import json

import pytest

from orchestrator.actions.lab_up import bring_up
from orchestrator.config import MailSettings
from orchestrator.errors import Conflict
from orchestrator.workspace import open_workspace


@pytest.fixture
def w(workspace) -> list[str]:
    return ["--workspace", str(workspace)]


def with_admin_comments(workspace) -> str:
    """ruche.toml with the admin's own comments and layout (an end-of-line comment, a note above a table, a last line)."""
    path = workspace / "ruche.toml"
    text = path.read_text()
    text = text.replace("base_domain = ", "# bought in 2024, renewed by Camille\nbase_domain = ", 1)
    text = text.replace(
        "\n[web]\n", "\n# the web app sits behind our nginx\n[web]  # see /etc/nginx/sites-enabled\n", 1
    )
    text += "\n# last line: ask on the forum before changing anything\n"
    path.write_text(text)
    return text


def test_mail_set_and_unset_keep_the_admins_comments(workspace, w, ruche):
    original = with_admin_comments(workspace)
    config = workspace / "ruche.toml"
    assert ruche(*w, "mail", "set", "--host", "smtp.example.org", "--sender-domain", "test.example.org").exit_code == 0
    assert ruche(*w, "mail", "set", "--username", "ruche", "--port", "465", "--security", "tls").exit_code == 0
    text = config.read_text()
    assert text.startswith(original.rstrip("\n").rsplit("\n", 1)[0])  # all of it, but the last line, is as it was
    assert text.endswith('\n[mail]\nhost = "smtp.example.org"\nport = 465\nsecurity = "tls"\n'
                         'sender_domain = "test.example.org"\nusername = "ruche"\n\n'
                         "# last line: ask on the forum before changing anything\n")  # fmt: skip
    assert ruche(*w, "mail", "set", "--host", "relay.example.org").exit_code == 0
    assert config.read_text() == text.replace('host = "smtp.example.org"', 'host = "relay.example.org"')
    assert ruche(*w, "mail", "unset", "--yes").exit_code == 0
    assert config.read_text() == original


def test_a_refused_change_leaves_ruche_toml_untouched(workspace, w, ruche):
    original = with_admin_comments(workspace)
    refused = ruche(*w, "mail", "set", "--host", "smtp.example.org", "--sender-domain", "Not A Domain")
    assert refused.exit_code == 2 and "At 'sender_domain'" in refused.stderr
    assert (workspace / "ruche.toml").read_text() == original


def test_the_lab_settings_apply_over_ruche_toml_which_mail_show_says(workspace, w, ruche):
    original = with_admin_comments(workspace)
    opened = open_workspace(workspace)
    sink = MailSettings(host="10.213.47.3", port=25, security="none", sender_domain="test.example.org")
    opened.write_lab_settings({"proxy_tls": "internal", "resource_limits": False, "mail": sink})
    shown = json.loads(ruche(*w, "mail", "show", "--json").stdout)
    assert (shown["host"], shown["from_lab"], shown["source"]) == ("10.213.47.3", True, str(opened.lab_settings_path))
    assert "the lab's relay" in ruche(*w, "mail", "show").stdout

    # the admin's relay goes into ruche.toml all the same, and is said to wait for `lab down`
    changed = ruche(*w, "mail", "set", "--host", "smtp.example.org", "--sender-domain", "test.example.org")
    assert changed.exit_code == 0 and "until `ruche lab down`" in changed.stdout
    assert json.loads(ruche(*w, "mail", "show", "--json").stdout)["host"] == "10.213.47.3"
    assert 'proxy_tls = "acme"' in (workspace / "ruche.toml").read_text()  # the lab's values stay in their file
    opened.lab_settings_path.unlink()  # what `lab down` does with the lab's directory
    shown = json.loads(ruche(*w, "mail", "show", "--json").stdout)
    assert (shown["host"], shown["from_lab"]) == ("smtp.example.org", False)
    assert ruche(*w, "mail", "unset", "--yes").exit_code == 0
    assert (workspace / "ruche.toml").read_text() == original


def test_lab_up_is_refused_in_a_workspace_with_an_admins_servers(workspace, w, ruche):
    added = ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.10")
    assert added.exit_code == 0, added.stderr
    with pytest.raises(Conflict) as caught:
        bring_up(workspace, app_servers=1)
    assert "servers registered by an admin (web-1)" in caught.value.message
    assert "workspace of its own" in caught.value.hint and "lab up" in caught.value.hint
    assert not (workspace / "lab").exists()
    refused = ruche(*w, "lab", "up")
    assert refused.exit_code == 5 and "web-1" in refused.stderr
