"""The mail relay's ${mail.*} variables, and each catalogue entry's verification."""

from __future__ import annotations

from pathlib import Path

from orchestrator.catalog import Service
from orchestrator.deployment import MailRelay, instance_variables, mail_values
from tests.helpers import CATALOG, instance_record

ROOT = Path(__file__).parents[2]


def test_mail_values_spell_the_protection_for_each_service_and_name_a_sender_per_instance():
    relay = MailRelay(
        host="smtp.example.org", port=465, security="tls", sender_domain="chatons.example.org", username="ruche"
    )
    values = mail_values(relay, "amap", "cloud")
    assert values["from"] == "cloud-amap@chatons.example.org" and values["from_local"] == "cloud-amap"
    assert (values["php_secure"], values["security_upper"], values["auth"]) == ("ssl", "TLS", "true")
    assert mail_values(None, "amap", "cloud")["enabled"] == "false"


def test_the_mail_password_reaches_env_files_only_as_a_vaulted_secret():
    data = CATALOG.get("radicale").model_dump()
    data["environment"] = {"SMTP_HOST": "${mail.host}", "SMTP_PASSWORD": "${mail.password}"}
    service = Service(**data)
    relay = MailRelay(
        host="smtp.example.org",
        port=587,
        security="starttls",
        sender_domain="example.org",
        password="$ANSIBLE_VAULT;1.1;AES256\n00",
    )
    record = instance_record(admin_user="admin")
    record = type(record)(**{**record.__dict__, "mail": relay})
    variables = instance_variables(record, service)
    environment = {e["name"]: e["parts"] for e in variables["app"]["environment"]}
    assert environment["SMTP_PASSWORD"] == [{"secret": "mail_password"}]
    assert environment["SMTP_HOST"] == [{"text": "smtp.example.org"}]
    assert variables["secrets"]["mail_password"].startswith("$ANSIBLE_VAULT")


def test_every_entry_says_how_it_was_verified_and_its_lab_tests_exist_and_use_it():
    for service in CATALOG.services.values():
        for path in service.verification.lab_tests:
            text = (ROOT / path).read_text().lower()
            assert service.id in text, f"{path} does not deploy {service.id}"
        assert service.verification.summary


def test_secrets_are_generated_in_their_declared_format():
    from orchestrator.deployment import generate_secrets

    data = CATALOG.get("radicale").model_dump()
    data["secrets"] = ["admin_password", "nonce", "key"]
    data["secret_formats"] = {"nonce": "hex24", "key": "hex32"}
    values = generate_secrets(Service(**data))
    assert len(values["nonce"]) == 48 and len(values["key"]) == 64 and int(values["key"], 16) >= 0
    assert (
        len(values["admin_password"]) >= 32
        and values["admin_password"] != generate_secrets(Service(**data))["admin_password"]
    )


def test_setup_commands_take_parameters_literally_as_arguments():
    data = CATALOG.get("radicale").model_dump()
    data["setup"] = [["tool", "--email", "${param.admin_user}"]]
    service = Service(**data)
    hostile = "$(touch /tmp/x) {{ lookup('pipe','id') }}"
    variables = instance_variables(instance_record(admin_user=hostile), service)
    assert variables["app"]["setup"] == [["tool", "--email", hostile]]
    data["setup"] = [["tool", "${secret.admin_password}"]]
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Service(**data)


def test_a_secret_never_starts_with_a_dash_which_tools_would_take_for_an_option(monkeypatch):
    import orchestrator.secrets as module

    drawn = iter(["-looks-like-an-option", "--again", "a-fine-secret"])
    monkeypatch.setattr(module.secrets, "token_urlsafe", lambda _size: next(drawn))
    assert module.generate_secret() == "a-fine-secret"
