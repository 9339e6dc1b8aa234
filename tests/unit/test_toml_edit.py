"""ruche.toml changed in place (orchestrator.toml_edit, Workspace.edit_config) and the lab's settings laid over it."""

from __future__ import annotations

import copy
import tomllib
from random import Random

import pytest

from orchestrator.config import (
    BackupSettings,
    MailSettings,
    RegistrySettings,
    WorkspaceConfig,
    default_offers,
    dump_config,
)
from orchestrator.errors import ConfigError
from orchestrator.toml_edit import changed_text
from orchestrator.workspace import Workspace

ADMIN_FILE = """\
# Our collective's settings: ask Camille before changing anything.
collective = "Les Chatons"   # as registered
base_domain = "chatons.example.org"

# the registry notes: mirror run by the federation
[registry]
mirror = "mirror.example.org:5000"  # theirs

[offers.small]  # the small offer
label = { fr = "Petite", en = "Small" }
max_instances = 1
memory_mb = 512
disk_gb = 5

# Bob's relay
[mail]
host = "smtp.example.org"  # Bob's relay
sender_domain = "chatons.example.org"

# the web app sits behind nginx
[web]
port = 8081
"""


def edit(text: str, change) -> str:
    """``text`` changed by ``change`` (a function that edits its values), checked to give exactly those values."""
    before = tomllib.loads(text)
    after = copy.deepcopy(before)
    change(after)
    edited = changed_text(text, before, after)
    assert tomllib.loads(edited) == after
    return edited


def test_unchanged_values_leave_the_text_byte_for_byte():
    assert changed_text(ADMIN_FILE, tomllib.loads(ADMIN_FILE), tomllib.loads(ADMIN_FILE)) == ADMIN_FILE


def test_a_changed_value_is_replaced_where_it_stands_with_its_comment():
    edited = edit(ADMIN_FILE, lambda values: values["mail"].update(host="relay.example.org"))
    assert edited == ADMIN_FILE.replace('host = "smtp.example.org"  # Bob', 'host = "relay.example.org"  # Bob')
    edited = edit(ADMIN_FILE, lambda values: values["offers"]["small"]["label"].update(fr="Mini"))
    assert edited == ADMIN_FILE.replace('fr = "Petite"', 'fr = "Mini"')


def test_a_new_key_goes_after_the_last_key_of_its_table_before_the_comments_leading_to_the_next():
    edited = edit(ADMIN_FILE, lambda values: values["mail"].update(username="bob", port=465))
    assert 'sender_domain = "chatons.example.org"\nusername = "bob"\nport = 465\n\n# the web app' in edited
    edited = edit(ADMIN_FILE, lambda values: values.update(catalog_dir="catalog"))
    assert 'base_domain = "chatons.example.org"\ncatalog_dir = "catalog"\n\n# the registry notes' in edited
    assert edited.replace('catalog_dir = "catalog"\n', "") == ADMIN_FILE


def test_a_removed_table_takes_the_comment_right_above_it_and_leaves_the_next_tables_comment():
    edited = edit(ADMIN_FILE, lambda values: values.pop("mail"))
    assert edited == ADMIN_FILE.replace(
        '# Bob\'s relay\n[mail]\nhost = "smtp.example.org"  # Bob\'s relay\nsender_domain = "chatons.example.org"\n\n',
        "",
    )
    edited = edit(ADMIN_FILE, lambda values: values.pop("web"))  # the last table: no blank line left at the end
    assert edited == ADMIN_FILE[: ADMIN_FILE.index("\n# the web app")]


def test_a_table_added_then_removed_gives_the_file_back():
    without = edit(ADMIN_FILE, lambda values: values.pop("mail"))
    relay = {"host": "relay.example.org", "port": 587, "sender_domain": "chatons.example.org"}
    with_relay = edit(without, lambda values: values.update(mail=relay))
    assert with_relay.startswith(without) and with_relay.endswith('[mail]\nhost = "relay.example.org"\nport = 587\n'
                                                                  'sender_domain = "chatons.example.org"\n')  # fmt: skip
    assert edit(with_relay, lambda values: values.pop("mail")) == without


def test_a_new_table_comes_before_the_comments_that_ended_the_last_one():
    text = ADMIN_FILE + "\n# end of the file: keep it last\n"
    edited = edit(text, lambda values: values.update(backup={"repository": "/srv/backup"}))
    assert edited.endswith('port = 8081\n\n[backup]\nrepository = "/srv/backup"\n\n# end of the file: keep it last\n')
    new_offer = {"label": {"fr": "Grande", "en": "Large"}, "max_instances": 9, "memory_mb": 9000, "disk_gb": 90}
    edited = edit(ADMIN_FILE, lambda values: values["offers"].update(large=new_offer))
    assert "disk_gb = 5\n\n[offers.large]\n" in edited and 'en = "Large"\n\n# Bob\'s relay\n[mail]' in edited


def test_values_the_file_leaves_at_their_defaults_are_written_only_when_they_change():
    text = 'collective = "X"\nbase_domain = "x.example.org"\n'
    config = WorkspaceConfig.model_validate(tomllib.loads(text))
    before = config.model_dump(mode="json", exclude_none=True)
    after = config.model_copy(update={"registry": RegistrySettings(mirror="m.example.org")}).model_dump(
        mode="json", exclude_none=True
    )
    assert changed_text(text, before, after) == text + '\n[registry]\nmirror = "m.example.org"\n'


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    workspace = Workspace(tmp_path)
    config = WorkspaceConfig(collective="Test", base_domain="test.example.org", offers=default_offers())
    workspace.config_path.write_text("# the admin's own note\n" + dump_config(config))
    return workspace


def test_edit_config_changes_only_what_changes_and_validates_before_writing(workspace):
    original = workspace.config_path.read_text()
    relay = MailSettings(host="smtp.example.org", sender_domain="test.example.org")
    assert workspace.edit_config({"mail": relay}).mail == relay
    assert workspace.config.mail == relay and workspace.config_path.read_text().startswith(original)
    with pytest.raises(ConfigError) as caught:
        workspace.edit_config({"default_offer": "gold"})
    assert (
        f"{workspace.config_path}: At 'default_offer':" in caught.value.message and "no offer" in caught.value.message
    )
    assert workspace.config_path.read_text().startswith(original)  # untouched by the refused change
    workspace.edit_config({"mail": None})
    assert workspace.config_path.read_text() == original and workspace.config.mail is None
    assert not [path.name for path in workspace.root.iterdir() if path.name != "ruche.toml"]  # no temporary left


def test_save_config_writes_the_settings_that_differ_from_the_ones_in_use(workspace):
    workspace.write_lab_settings({"proxy_tls": "internal"})
    config = workspace.config
    workspace.save_config(config.model_copy(update={"catalog_dir": "catalog"}))
    text = workspace.config_path.read_text()
    assert 'catalog_dir = "catalog"' in text and 'proxy_tls = "acme"' in text  # the lab's value is not copied in


def test_the_lab_settings_replace_ruche_tomls_own_without_touching_it(workspace):
    original = workspace.config_path.read_text()
    sink = MailSettings(host="10.213.47.3", port=25, security="none", sender_domain="test.example.org")
    workspace.write_lab_settings({
        "registry": RegistrySettings(mirror="10.213.47.1:5000", insecure=True), "proxy_tls": "internal",
        "resource_limits": False, "backup": BackupSettings(repository="/srv/backup"), "mail": sink,
    })  # fmt: skip
    assert workspace.config_path.read_text() == original
    assert (workspace.config.proxy_tls, workspace.config.resource_limits, workspace.config.mail) == (
        "internal",
        False,
        sink,
    )
    assert workspace.config.registry.mirror == "10.213.47.1:5000" and workspace.config.offers == default_offers()
    assert (workspace.file_config.proxy_tls, workspace.file_config.mail) == ("acme", None)
    assert workspace.setting_source("mail") == workspace.lab_settings_path == workspace.root / "lab" / "settings.toml"
    assert workspace.setting_source("offers") == workspace.config_path
    workspace.lab_settings_path.unlink()
    assert Workspace(workspace.root).config == workspace.file_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web = { port = 1 }\n", "At 'web': not a setting the lab may set"),
        ('proxy_tls = "nope"\n', "At 'proxy_tls': Input should be 'acme' or 'internal'"),
        ('[mail]\nhost = "10.0.0.1"\n', "At 'mail.sender_domain': Field required"),
        ("proxy_tls = \n", "not valid TOML"),
    ],
)
def test_the_lab_settings_are_validated_with_ruche_tomls_schema_naming_their_file(workspace, text, expected):
    workspace.lab_settings_path.parent.mkdir()
    workspace.lab_settings_path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        assert Workspace(workspace.root).config is None  # never reached: reading it raises
    assert f"{workspace.lab_settings_path}: " in caught.value.message and expected in caught.value.message


LAYOUTS = [
    ADMIN_FILE,
    dump_config(WorkspaceConfig(collective="T", base_domain="t.example.org", offers=default_offers(),
                                mail=MailSettings(host="smtp.example.org", sender_domain="t.example.org"))),
    'a = 1\nregistry.mirror = "x"  # dotted\n[offers.one]\nx = 1\n[mail]\nhost = "h"\n[offers.two]  # apart\ny = 2\n# end\n',
    "[[servers]]\nx = 1\n[[servers]]\nx = 2\n[t]\nk = { a = 1, b = [1, 2] }\n",
]  # fmt: skip


def _without_empty_tables(values):
    if isinstance(values, dict):
        kept = {key: _without_empty_tables(value) for key, value in values.items()}
        return {key: value for key, value in kept.items() if value != {}}
    return values


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
def test_random_changes_give_exactly_the_values_wanted(layout):
    """Values changed, removed, added (tables too) at every depth; an emptied table may disappear, as it reads the same
    for ruche.toml's models."""
    random = Random(layout)
    text = LAYOUTS[layout]

    def mutate(values: dict) -> None:
        for key in list(values):
            draw = random.random()
            if isinstance(values[key], dict) and draw < 0.5:
                mutate(values[key])
            elif draw < 0.15:
                del values[key]
            elif draw < 0.3:
                values[key] = random.choice([1, "s", True, [1, 2], {"n": 1, "m": {"z": "q"}}])
        if random.random() < 0.3:
            values[f"new{random.randint(0, 99)}"] = random.choice([5, "new", {"k": 1}, {"t": {"u": 2}}])

    for _ in range(200):
        before = tomllib.loads(text)
        after = copy.deepcopy(before)
        mutate(after)
        edited = changed_text(text, before, after)
        assert _without_empty_tables(tomllib.loads(edited)) == _without_empty_tables(after), (text, after, edited)
