import re
from pathlib import Path

import pytest

from orchestrator.catalog import Service, load_catalog, load_service, render_environment, resolve_parameters
from orchestrator.errors import ConfigError, InvalidInput
from orchestrator.workspace import BUNDLED_CATALOG_DIR

RADICALE = (BUNDLED_CATALOG_DIR / "radicale.yaml").read_text()


def test_every_bundled_entry_is_valid():
    catalog = load_catalog(BUNDLED_CATALOG_DIR)
    assert {"nextcloud", "mattermost", "limesurvey", "radicale", "miniflux"} <= set(catalog.services)
    assert catalog.get("nextcloud").database == "postgresql"
    assert catalog.get("radicale").database == "none"


def test_every_catalogue_field_is_described():
    schema = Service.model_json_schema()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        for name, field in definition["properties"].items():
            assert field.get("description"), f"{definition.get('title')}.{name} has no description"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_errors_name_the_file_and_every_path(tmp_path):
    broken = (
        RADICALE.replace("memory_mb: 256", "memory_mb: lots")
        .replace("port: 5232", "port: 70000")
        .replace("health: {path: /.web/", "health: {colour: red, path: /.web/")
    )
    path = write(tmp_path, "radicale", broken)
    with pytest.raises(ConfigError) as caught:
        load_service(path)
    message = caught.value.message
    assert f"{path}: At 'sizes.medium.memory_mb'" in message and "'lots'" in message
    assert f"{path}: At 'port'" in message
    assert f"{path}: At 'health.colour': unknown field" in message


def test_a_directory_reports_the_errors_of_all_its_files(tmp_path):
    write(tmp_path, "radicale", RADICALE.replace("database: none", "database: oracle"))
    write(tmp_path, "other", RADICALE)  # id does not match the file name
    with pytest.raises(ConfigError) as caught:
        load_catalog(tmp_path)
    assert "radicale.yaml: At 'database'" in caught.value.message
    assert "other.yaml: At 'id'" in caught.value.message


@pytest.mark.parametrize(
    "change, expected",
    [
        (("${secret.admin_password}", "${secret.nope}"), "${secret.nope} is not defined"),
        (("${param.admin_user}", "${db.user}"), "${db.user} is not defined"),
        (("${param.admin_user}", "${param.admin_user"), "malformed reference"),
        (("mount: /var/lib/radicale", "mount: /var/../etc"), "must not contain '..'"),
        (("volumes: [data]", "volumes: [other]"), "unknown volumes: other"),
        (("image: lab.ruche.invalid/radicale:trixie", "image: 'radicale; rm -rf /'"), "At 'versions[1].image'"),
        (
            ('upgrade_from: ["3.*"]', 'upgrade_from: ["3.*"]\n  - version: 3.1.8\n    image: a.b/c:d'),
            "3.1.8 is listed twice",
        ),
        (("versions:", "default_version: 9.9.9\nversions:"), "default_version 9.9.9 is not one of versions"),
    ],
)
def test_inconsistent_entries_are_refused(tmp_path, change, expected):
    path = write(tmp_path, "radicale", RADICALE.replace(*change))
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_service(path)


def test_parameters_are_validated_and_defaulted():
    nextcloud = load_catalog(BUNDLED_CATALOG_DIR).get("nextcloud")
    assert resolve_parameters(nextcloud, {"admin_email": "a@asso.fr"}) == {"admin_email": "a@asso.fr", "locale": "fr"}
    with pytest.raises(InvalidInput, match="missing required parameter 'admin_email'.*--param admin_email=VALUE"):
        resolve_parameters(nextcloud, {})
    with pytest.raises(InvalidInput, match="is not an e-mail address"):
        resolve_parameters(nextcloud, {"admin_email": "not-an-email"})
    with pytest.raises(InvalidInput, match="unknown parameter 'ansible_host'"):
        resolve_parameters(nextcloud, {"admin_email": "a@asso.fr", "ansible_host": "evil"})
    with pytest.raises(InvalidInput, match="control characters"):
        resolve_parameters(nextcloud, {"admin_email": "a@asso.fr\nX: y"})


def test_environment_values_are_substituted_literally_and_once():
    radicale = load_catalog(BUNDLED_CATALOG_DIR).get("radicale")
    hostile = "{{ lookup('pipe','touch /tmp/pwned') }}${secret.admin_password}$(id)"
    environment = render_environment(
        radicale, {"param": {"admin_user": hostile}, "secret": {"admin_password": "s3cret"}, "instance": {}, "db": {}}
    )
    assert environment == {"RADICALE_ADMIN_USER": hostile, "RADICALE_ADMIN_PASSWORD": "s3cret"}


def radicale_with_check(check: str) -> str:
    return RADICALE[: RADICALE.index("\ncheck:")] + "\ncheck:\n  source: https://radicale.org/\n" + check


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("  write: [{exec: [echo, '${secret.admin_password}']}]\n  read: {exec: [ls]}\n", "${secret.admin_password} is not allowed"),
        ("  write: [{exec: [echo, '${param.admin_user}']}]\n  read: {exec: [ls]}\n", "${param.admin_user} is not allowed"),
        ("  write: [{http: {method: GET, path: '/${param.nope}'}}]\n  read: {exec: [ls]}\n", "${param.nope} is not allowed"),
        ("  write: [{http: {method: GET, path: '/${secret.admin_password}'}}]\n  read: {exec: [ls]}\n", "path: ${secret.admin_password}"),
        ("  write: [{exec: [ls]}]\n  read: {exec: [echo, '${check.token}']}\n", "check.read.exec[1]: ${check.token}"),
        ("  write: [{http: {method: GET, path: /, password: '${secret.admin_password}'}}]\n  read: {exec: [ls]}\n", "needs a user"),
        ("  write: [{exec: [echo, '${db.password}']}]\n  read: {exec: [ls]}\n", "${db.password} is not allowed"),
        ("  write: [{exec: [ls], http: {method: GET, path: /}}]\n  read: {exec: [ls]}\n", "exactly one of exec"),
        ("  write: [{http: {method: GET, path: /, user: a, password: 'x${secret.admin_password}'}}]\n"
         "  read: {exec: [ls]}\n", "password must be one reference"),
        ("  write: []\n  read: {exec: [ls]}\n", "at least 1 item"),
    ],
)  # fmt: skip
def test_a_check_hook_may_only_use_the_token_parameters_and_secrets_where_safe(tmp_path, check, message):
    with pytest.raises(ConfigError) as raised:
        load_service(write(tmp_path, "radicale", radicale_with_check(check)))
    assert message in str(raised.value)


def test_a_check_steps_references_are_substituted_once_as_plain_text():
    from orchestrator.catalog import render_check_step

    service = load_catalog(BUNDLED_CATALOG_DIR).get("radicale")
    step = render_check_step(
        service.check.write[1],
        {"check": {"token": "T1"}, "param": {"admin_user": "${check.token}"}, "secret": {"admin_password": "p"}},
    )
    assert step.http.path == "/${check.token}/T1/T1.ics" and step.http.user == "${check.token}"
    assert step.http.password == "p" and "UID:T1\r\n" in step.http.body


def test_every_bundled_entry_says_how_it_takes_an_own_domain():
    for service in load_catalog(BUNDLED_CATALOG_DIR).services.values():
        own_domain = service.require_own_domain()
        assert own_domain.how.strip() and all(source.startswith("https://") for source in own_domain.sources)


def test_an_entry_without_own_domain_is_reported_as_not_taking_one(tmp_path):
    text = re.sub(r"\nown_domain:\n(  .*\n)+", "\n", RADICALE)
    assert "own_domain" not in text
    service = load_service(write(tmp_path, "radicale", text))
    with pytest.raises(InvalidInput) as caught:
        service.require_own_domain()
    assert "radicale cannot take an association's own domain" in caught.value.message
    assert "service_catalog/radicale.yaml" in caught.value.message and "collective's name" in caught.value.hint
    no_source = RADICALE.replace("    - https://github.com/Kozea/Radicale/blob/master/DOCUMENTATION.md\n", "")
    with pytest.raises(ConfigError, match=re.escape("own_domain.sources")):
        load_service(write(tmp_path, "radicale", no_source))
