import yaml

from orchestrator.inventory import InstanceEntry, ServerEntry, render_inventory

SERVERS = [
    ServerEntry("web-2", "192.0.2.2", "root", 22, "apps", False),
    ServerEntry("web-1", "192.0.2.1", "admin", 2222, "apps", True),
    ServerEntry("vault", "192.0.2.9", "root", 22, "backup", False),
]


def instance(association, name, server, **parameters):
    return InstanceEntry(association, name, server, "radicale", "1+3.5.3", "small", 0.25, 128, 1, "planned", parameters)


def test_inventory_is_deterministic_whatever_the_input_order():
    instances = [instance("b", "x", "web-1"), instance("a", "y", "web-1", z="1", a="2")]
    first = render_inventory(SERVERS, instances)
    second = render_inventory(list(reversed(SERVERS)), list(reversed(instances)))
    assert first == second
    assert sorted(first) == ["host_vars/vault.yml", "host_vars/web-1.yml", "host_vars/web-2.yml", "hosts.yml"]


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
    assert text.index("id: !unsafe 'a-y'") < text.index("id: !unsafe 'b-x'")


def test_user_values_are_tagged_unsafe_and_quoted():
    files = render_inventory(SERVERS, [instance("a", "y", "web-2", title="{{ lookup('pipe','id') }}: it's")])
    assert "!unsafe 'title': !unsafe '{{ lookup(''pipe'',''id'') }}: it''s'" in files["host_vars/web-2.yml"]
