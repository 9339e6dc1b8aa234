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
    assert sorted(first) == [
        "group_vars/all.yml",
        "host_vars/vault.yml",
        "host_vars/web-1.yml",
        "host_vars/web-2.yml",
        "hosts.yml",
    ]


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
    assert text.index("identifier: !unsafe 'a--y'") < text.index("identifier: !unsafe 'b--x'")


def test_user_values_are_tagged_unsafe_and_quoted():
    files = render_inventory(SERVERS, [instance("a", "y", "web-2", title="{{ lookup('pipe','id') }}: it's")])
    assert "!unsafe 'title': !unsafe '{{ lookup(''pipe'',''id'') }}: it''s'" in files["host_vars/web-2.yml"]


def test_ssh_settings_and_fleet_variables():
    server = ServerEntry(
        "lab-1", "10.0.0.11", "root", 22, "apps", False, "/ws/lab/ssh/id_ed25519", "/ws/lab/ssh/known_hosts"
    )
    files = render_inventory([server], [], {"ruche_server_tls": "internal"})
    host_vars = yaml.safe_load(files["host_vars/lab-1.yml"].replace("!unsafe ", ""))
    assert host_vars["ansible_ssh_private_key_file"] == "/ws/lab/ssh/id_ed25519"
    assert (
        host_vars["ansible_ssh_common_args"]
        == "-o UserKnownHostsFile=/ws/lab/ssh/known_hosts -o StrictHostKeyChecking=yes"
    )
    assert yaml.safe_load(files["group_vars/all.yml"]) == {"ruche_server_tls": "internal"}


def test_a_server_file_is_cut_into_its_instances_and_joined_back_as_written():
    """What the export reuses: each instance's text in its server's file, as the whole file's YAML has it."""
    from orchestrator.inventory import HEADER, dump_yaml, fingerprint, join_host_vars, split_host_vars
    from orchestrator.yaml_text import Vaulted

    vault = Vaulted("$ANSIBLE_VAULT;1.1;AES256\n" + "\n".join(["3061626364656667"] * 3))
    instances = [instance("b", "x", "web-1", title="it's\nseveral\n\n  lines"), instance("a", "y", "web-1"),
                 instance_entry("a-b", "z", "web-1", secrets={"admin_password": vault})]  # fmt: skip
    files = render_inventory(SERVERS, instances, {"ruche_base_domain": "example.org"})
    text = files["host_vars/web-1.yml"]
    hosted = sorted(instances, key=lambda i: (i.association, i.name))
    listed = [
        {
            **{k: v for k, v in i.variables.items() if k != "secrets"},
            "fingerprint": fingerprint({"instance": i.variables, "fleet": {"ruche_base_domain": "example.org"}}),
        }
        for i in hosted
    ]
    whole = {"ansible_host": "192.0.2.1", "ansible_user": "admin", "ansible_port": 2222, "ruche_server_role": "apps",
             "ruche_instances": listed, "ruche_secrets": {hosted[1].variables["identifier"]: {"admin_password": vault}}}  # fmt: skip
    assert text == HEADER + dump_yaml(whole)  # the same bytes as one dump of the whole file
    parts = split_host_vars(text)
    assert len(parts.items) == 3 and len(parts.secrets) == 1 and join_host_vars(parts) == text
    assert [yaml.safe_load(item.replace("!unsafe ", ""))[0]["name"] for item in parts.items] == ["y", "z", "x"]
    empty = split_host_vars(files["host_vars/web-2.yml"])
    assert empty.items == [] and empty.secrets == [] and join_host_vars(empty) == files["host_vars/web-2.yml"]
    assert split_host_vars("ansible_host: x\n") is None
