"""Every catalogue entry's units, env files and Caddy site, compared with reviewed golden files.

Regenerate after a deliberate change with RUCHE_UPDATE_GOLDEN=1, then review the diff.
"""

import os
from pathlib import Path

import pytest

from orchestrator.deployment import InstanceRecord, MailRelay, instance_variables, secret_names
from tests.helpers import CATALOG
from tests.role_templates import read_golden, render_instance_files

GOLDEN = Path(__file__).parent / "golden"


def example_files(service_id: str, state: str = "present") -> dict[str, str]:
    return render_instance_files(*example_variables(service_id, state))


def example_variables(service_id: str, state: str = "present") -> tuple[dict, dict[str, str]]:
    """The role variables of an example instance of ``service_id``, and its secrets in clear."""
    service = CATALOG.get(service_id)
    parameters = {p.name: p.default or "contact@chorale.example" for p in service.parameters}
    record = InstanceRecord(
        association="chorale", name=service_id, domain=f"{service_id}.chorale.example.org", http_port=20003,
        desired_state=state, cpu=service.sizes.small.cpu, memory_mb=service.sizes.small.memory_mb,
        parameters=parameters, secrets={name: "CIPHERTEXT" for name in secret_names(service)}, id_start=1074003968,
        mail=MailRelay(host="smtp.chatons.example.org", port=587, security="starttls", sender_domain="chatons.example.org",
                       username="ruche", password="CIPHERTEXT"),
    )  # fmt: skip
    secrets = {n: f"<{n}>" for n in [*secret_names(service), "mail_password"]}
    return instance_variables(record, service), secrets


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
def test_rendered_files_match_the_reviewed_golden_files(service_id):
    rendered = example_files(service_id)
    directory = GOLDEN / service_id
    if os.environ.get("RUCHE_UPDATE_GOLDEN"):
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            stale.unlink()
        for name, text in rendered.items():
            (directory / name).write_text(text)
    assert rendered == read_golden(directory)


def test_a_suspended_instance_is_not_started_at_boot():
    running, suspended = example_files("miniflux"), example_files("miniflux", state="suspended")
    unit = "ruche-chorale--miniflux-app.container"
    assert "WantedBy=multi-user.target" in running[unit] and "[Install]" not in suspended[unit]


def test_parameter_values_reach_env_files_literally():
    service = CATALOG.get("radicale")
    hostile = "{{ lookup('pipe','id') }} $(id) `id` ${HOME} 'x\" \\"
    record = InstanceRecord(
        "a", "r", "r.a.example.org", 20000, "present", 0.25, 128, {"admin_user": hostile}, {}, id_start=1073741824
    )
    files = render_instance_files(instance_variables(record, service), {"admin_password": "pw"})
    assert f"RADICALE_ADMIN_USER={hostile}\n" in files["app.env"]
