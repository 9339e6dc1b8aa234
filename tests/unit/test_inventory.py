import yaml

from orchestrator.inventory import ServerEntry, render_inventory
from tests.helpers import instance_entry

SERVERS = [
    ServerEntry("web-2", "192.0.2.2", "root", 22, "apps", False),
    ServerEntry("web-1", "192.0.2.1", "admin", 2222, "apps", True),
    ServerEntry("vault", "192.0.2.9", "root", 22, "backup", False),
]


def instance(association, name, server, **parameters):
    return instance_entry(association, name, server, **parameters)


def test_inventory_is_deterministic_whatever_the_input_order():
    instances = [instance("b", "x", "web-1"), instance("a", "y", "web-1", z="1", a="2")]
    first = render_inventory(SERVERS, instances)
    second = render_inventory(list(reversed(SERVERS)), list(reversed(instances)))
    assert first == second
    assert sorted(first) == ["group_vars/all.yml", "host_vars/vault.yml", "host_vars/web-1.yml", "host_vars/web-2.yml", "hosts.yml"]


def test_groups_and_instances_as_server_variables():
    files = render_inventory(SERVERS, [instance("b", "x", "web-1"), instance("a", "y", "web-1")])
    groups = yaml.safe_load(files["hosts.yml"])["all"]["children"]
    assert groups == {
        "apps": {"hosts": {"web-1": None, "web-2": None}},
        "backup": {"hosts": {"vault": None}},
        "draining": {"hosts": {"web-1": None}},
    }
    text = files["host_vars/web-1.yml"]
    assert "ansible_port: 2222" in text and "ansible_user: admin" in text
    assert text.index("id: !unsafe 'a--y'") < text.index("id: !unsafe 'b--x'")


def test_user_values_are_tagged_unsafe_and_quoted():
    files = render_inventory(SERVERS, [instance("a", "y", "web-2", title="{{ lookup('pipe','id') }}: it's")])
    assert "!unsafe 'title': !unsafe '{{ lookup(''pipe'',''id'') }}: it''s'" in files["host_vars/web-2.yml"]


def test_ssh_settings_and_fleet_variables():
    server = ServerEntry("lab-1", "10.0.0.11", "root", 22, "apps", False, "/ws/lab/ssh/id_ed25519", "/ws/lab/ssh/known_hosts")
    files = render_inventory([server], [], {"ruche_server_tls": "internal"})
    host_vars = yaml.safe_load(files["host_vars/lab-1.yml"].replace("!unsafe ", ""))
    assert host_vars["ansible_ssh_private_key_file"] == "/ws/lab/ssh/id_ed25519"
    assert host_vars["ansible_ssh_common_args"] == "-o UserKnownHostsFile=/ws/lab/ssh/known_hosts -o StrictHostKeyChecking=yes"
    assert yaml.safe_load(files["group_vars/all.yml"]) == {"ruche_server_tls": "internal"}
