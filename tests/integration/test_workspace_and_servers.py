"""The workspace and the server registry through the real CLI, on SQLite and on PostgreSQL."""

import json

from sqlalchemy import create_engine, inspect

from orchestrator.config import load_config


def test_init_creates_a_valid_workspace_with_a_migrated_database(workspace, state_url):
    config = load_config(workspace / "ruche.toml")
    assert config.collective == "Test" and config.base_domain == "test.example.org"
    assert (workspace / "inventories").is_dir()
    engine = create_engine(state_url)
    try:
        assert {"servers", "alembic_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_init_twice_is_refused(workspace, ruche):
    result = ruche("init", str(workspace))
    assert result.exit_code == 5 and "already holds a workspace" in result.stderr


def test_init_with_a_bad_domain_writes_nothing(tmp_path, ruche):
    target = tmp_path / "refused"
    result = ruche("init", str(target), "--domain", "Not a domain")
    assert result.exit_code == 2 and "At 'base_domain'" in result.stderr
    assert not (target / "ruche.toml").exists()


def test_servers_are_added_listed_shown_drained_and_removed(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(
            *w, "server", "add", "beta", "--no-connect", "--address", "192.0.2.2", "--memory", "8G", "--disk", "1T"
        ).exit_code
        == 0
    )
    assert (
        ruche(
            *w, "server", "add", "alpha", "--no-connect", "--address", "192.0.2.1", "--label", "region=lyon"
        ).exit_code
        == 0
    )
    listed = json.loads(ruche(*w, "server", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["alpha", "beta"]
    assert listed[1]["memory_mb"] == 8192 and listed[1]["disk_gb"] == 1024
    assert listed[0]["labels"] == {"region": "lyon"}

    assert ruche(*w, "server", "drain", "alpha").exit_code == 0
    assert json.loads(ruche(*w, "server", "show", "alpha", "--json").stdout)["draining"] is True

    assert ruche(*w, "server", "remove", "alpha", "--yes").exit_code == 0
    assert [s["name"] for s in json.loads(ruche(*w, "server", "list", "--json").stdout)] == ["beta"]
    text = ruche(*w, "server", "list").stdout
    assert "beta" in text and "192.0.2.2" in text and "8G" in text


def test_refused_commands_leave_the_registry_unchanged(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert ruche(*w, "server", "add", "alpha", "--no-connect", "--address", "192.0.2.1").exit_code == 0
    before = ruche(*w, "server", "list", "--json").stdout

    duplicate = ruche(*w, "server", "add", "other", "--no-connect", "--address", "192.0.2.1")
    assert duplicate.exit_code == 5 and "address is already registered: alpha" in duplicate.stderr
    hostile = ruche(*w, "server", "add", "../../etc", "--no-connect", "--address", "192.0.2.9")
    assert hostile.exit_code == 2 and "At 'name'" in hostile.stderr
    bad_size = ruche(*w, "server", "add", "gamma", "--no-connect", "--address", "192.0.2.3", "--memory", "lots")
    assert bad_size.exit_code == 2 and "'lots' is not a size" in bad_size.stderr
    missing = ruche(*w, "server", "remove", "nope", "--yes")
    assert missing.exit_code == 4 and "known: alpha" in missing.stderr

    assert ruche(*w, "server", "list", "--json").stdout == before


def test_commands_outside_a_workspace_say_how_to_make_one(tmp_path, ruche):
    result = ruche("--workspace", str(tmp_path / "nowhere"), "server", "list")
    assert result.exit_code == 4
    assert "is not a ruche workspace" in result.stderr and "ruche init" in result.stderr
    assert "Traceback" not in result.stderr


def test_workspace_given_after_the_subcommand_is_the_one_used(workspace, ruche):
    assert (
        ruche(
            "server", "add", "web-1", "--no-connect", "--address", "192.0.2.10", "--workspace", str(workspace)
        ).exit_code
        == 0
    )
    listed = ruche("server", "list", "--json", "-w", str(workspace))
    assert listed.exit_code == 0 and [s["name"] for s in json.loads(listed.stdout)] == ["web-1"], listed.stderr


def test_a_missing_ssh_key_file_is_refused_at_add_and_nothing_is_stored(workspace, ruche, tmp_path):
    w = ["--workspace", str(workspace)]
    refused = ruche(
        *w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.10", "--ssh-key", str(tmp_path / "absent")
    )
    assert refused.exit_code == 2 and "--ssh-key" in refused.stderr and "no such file" in refused.stderr
    assert json.loads(ruche(*w, "server", "list", "--json").stdout) == []
    key = tmp_path / "id_ed25519"
    key.write_text("a key\n")
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.10", "--ssh-key", str(key)).exit_code
        == 0
    )
    (server,) = json.loads(ruche(*w, "server", "list", "--json").stdout)
    assert server["ssh_key_path"] == str(key.resolve())
