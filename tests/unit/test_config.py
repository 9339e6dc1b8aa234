import tomllib

import pytest

from orchestrator.config import RegistrySettings, WorkspaceConfig, dump_config, load_config
from orchestrator.errors import ConfigError
from orchestrator.registries import render_mirror_drop_in


def test_config_round_trips_through_toml(tmp_path):
    config = WorkspaceConfig(collective="Les Chatons", base_domain="chatons.example.org")
    path = tmp_path / "ruche.toml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_every_config_error_names_file_and_path(tmp_path):
    path = tmp_path / "ruche.toml"
    path.write_text(
        'collective = "X"\nbase_domain = "Not A Domain"\ncolour = "blue"\n'
        '[registry]\nmirror = "http://mirror/path"\n[lab]\nsubnet = "10.0.0.0/8"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = caught.value.message
    assert f"{path}: At 'base_domain'" in message
    assert f"{path}: At 'colour': unknown field" in message
    assert f"{path}: At 'registry.mirror'" in message
    assert f"{path}: At 'lab.subnet'" in message and "/24 and /28" in message


def test_broken_toml_is_a_config_error(tmp_path):
    path = tmp_path / "ruche.toml"
    path.write_text("collective = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_every_config_field_is_described():
    schema = WorkspaceConfig.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for name, field in definition["properties"].items():
            assert field.get("description"), f"{definition.get('title')}.{name} has no description"


def test_mirror_drop_in_routes_each_registry_through_the_mirror():
    settings = RegistrySettings(
        mirror="10.0.0.1:5000", insecure=True, mirrored_registries=["docker.io", "lab.ruche.invalid"]
    )
    parsed = tomllib.loads(render_mirror_drop_in(settings))
    assert parsed["registry"] == [
        {
            "prefix": "docker.io",
            "location": "docker.io",
            "mirror": [{"location": "10.0.0.1:5000/docker.io", "insecure": True}],
        },
        {
            "prefix": "lab.ruche.invalid",
            "location": "lab.ruche.invalid",
            "mirror": [{"location": "10.0.0.1:5000/lab.ruche.invalid", "insecure": True}],
        },
    ]


def test_no_mirror_gives_a_drop_in_that_changes_nothing():
    assert tomllib.loads(render_mirror_drop_in(RegistrySettings())) == {}


def test_a_written_ruche_toml_explains_each_field_with_its_description_and_reads_back_the_same():
    import tomllib

    from orchestrator.config import MailSettings, WorkspaceConfig, default_offers, dump_config

    config = WorkspaceConfig(collective="Test", base_domain="test.example.org", offers=default_offers(),
                             mail=MailSettings(host="smtp.example.org", sender_domain="test.example.org"))  # fmt: skip
    text = dump_config(config)
    assert WorkspaceConfig(**tomllib.loads(text)) == config
    lines = text.splitlines()
    for key, description in (("base_domain = ", "# Domain under which instances get their addresses"),
                             ("[backup]", "# Where and when instances are backed up."),
                             ("max_instances = ", "# Most instances an association may have."),
                             ("host = ", "# ")):  # fmt: skip
        index = next(i for i, line in enumerate(lines) if line.startswith(key))
        above = [line for line in lines[:index][-3:] if line.startswith("#")]
        assert above and any(line.startswith(description) for line in above), (key, lines[index - 3 : index + 1])
