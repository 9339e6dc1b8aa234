"""ruche.toml's [firewall] extra rules and [acme] settings: validated at the edge, passed to the ruche_server role,
and rendered by its templates (the firewall's nftables rules, Caddy's global options)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from orchestrator.config import LETS_ENCRYPT_STAGING, WorkspaceConfig, load_config
from orchestrator.errors import ConfigError
from orchestrator.operations.inventories import fleet_variables
from orchestrator.runner import PLAYBOOKS_DIR

pytestmark = pytest.mark.unit
TEMPLATES = PLAYBOOKS_DIR / "roles" / "ruche_server" / "templates"
BASE = 'collective = "C"\nbase_domain = "chatons.example.org"\n'


def render(template: str, variables: dict) -> str:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), trim_blocks=True,
                                     undefined=jinja2.ChainableUndefined)  # fmt: skip
    return environment.get_template(template).render(**variables)


def config_of(tmp_path: Path, text: str) -> WorkspaceConfig:
    path = tmp_path / "ruche.toml"
    path.write_text(BASE + text)
    return load_config(path)


def test_extra_firewall_rules_reach_the_servers_nftables_rules(tmp_path):
    config = config_of(tmp_path, '[firewall]\nextra_rules = [{port = 9100, from = "192.0.2.5"}, '
                                 '{port = 3478, proto = "udp"}, {port = 5666, from = "2001:db8::/64"}]\n')  # fmt: skip
    variables = fleet_variables(config)
    assert variables["ruche_server_firewall_extra_rules"] == [
        {"port": 9100, "proto": "tcp", "from": "192.0.2.5/32"},
        {"port": 3478, "proto": "udp", "from": ""},
        {"port": 5666, "proto": "tcp", "from": "2001:db8::/64"},
    ]
    rules = render("firewall.nft.j2", {"ruche_server_firewall_ssh_port": 22, "ruche_server_firewall_public_tcp_ports":
                   [80, 443], "ruche_server_firewall_public_udp_ports": [443], **variables})  # fmt: skip
    assert 'ip saddr 192.0.2.5/32 tcp dport 9100 accept comment "extra rule 1"' in rules
    assert 'udp dport 3478 accept comment "extra rule 2"' in rules
    assert 'ip6 saddr 2001:db8::/64 tcp dport 5666 accept comment "extra rule 3"' in rules


@pytest.mark.parametrize(
    ("text", "where"),
    [('[firewall]\nextra_rules = [{port = 70000}]\n', "firewall.extra_rules[0].port"),
     ('[firewall]\nextra_rules = [{port = 22, from = "anyone; drop"}]\n', "firewall.extra_rules[0].from"),
     ('[firewall]\nextra_rules = [{port = 22, proto = "icmp"}]\n', "firewall.extra_rules[0].proto"),
     ('[acme]\nemail = "admin@example.org\\n}\\nimport /etc/passwd"\n', "acme.email")],
)  # fmt: skip
def test_a_wrong_setting_is_refused_naming_its_path(tmp_path, text, where):
    with pytest.raises(ConfigError) as refused:
        config_of(tmp_path, text)
    assert where in str(refused.value)


def test_the_acme_contact_and_staging_ca_become_caddys_global_options(tmp_path):
    config = config_of(tmp_path, '[acme]\nemail = "admins@chatons.example.org"\nstaging = true\n')
    variables = fleet_variables(config)
    assert variables["ruche_server_acme_ca"] == LETS_ENCRYPT_STAGING
    caddyfile = render("Caddyfile.j2", variables)
    assert "\temail admins@chatons.example.org\n" in caddyfile and f"\tacme_ca {LETS_ENCRYPT_STAGING}\n" in caddyfile
    assert "local_certs" not in caddyfile
    default = render("Caddyfile.j2", fleet_variables(config_of(tmp_path, "")))
    assert "email" not in default and "acme_ca" not in default
    lab = render("Caddyfile.j2", {**variables, "ruche_server_tls": "internal"})
    assert "local_certs" in lab and "acme_ca" not in lab
