"""Associations, instance requests and placement through the real CLI, on SQLite and PostgreSQL."""

import json

import pytest


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(
            *w, "server", "add", "big", "--no-connect", "--address", "192.0.2.1", "--memory", "4G", "--disk", "200G"
        ).exit_code
        == 0
    )
    assert (
        ruche(
            *w, "server", "add", "small", "--no-connect", "--address", "192.0.2.2", "--memory", "2G", "--disk", "200G"
        ).exit_code
        == 0
    )
    assert (
        ruche(*w, "server", "add", "vault", "--no-connect", "--address", "192.0.2.3", "--role", "backup").exit_code == 0
    )
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP du coin", "--email", "c@amap.fr").exit_code == 0
    assert ruche(*w, "association", "add", "chorale", "--name", "La chorale", "--email", "c@chorale.fr").exit_code == 0
    return w


def instances(ruche, w):
    return json.loads(ruche(*w, "instance", "list", "--json").stdout)


def test_instances_are_placed_spread_and_listed(pool, ruche):
    w = pool
    first = json.loads(
        ruche(*w, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr", "--json").stdout
    )
    assert first["instance"]["server"] == "big" and first["instance"]["address"] == "amap/nextcloud"
    second = json.loads(ruche(*w, "instance", "create", "amap", "radicale", "--json").stdout)
    assert second["instance"]["server"] == "small"  # spread: amap already has an instance on big
    reasons = {c["server"]: c["reason"] for c in second["placement"]}
    assert reasons["vault"] == "role is backup, not apps"
    assert [i["address"] for i in instances(ruche, w)] == ["amap/nextcloud", "amap/radicale"]
    shown = json.loads(ruche(*w, "instance", "show", "amap/nextcloud", "--json").stdout)
    assert shown["parameters"] == {"admin_email": "a@amap.fr", "locale": "fr"} and shown["state"] == "planned"
    detail = json.loads(ruche(*w, "association", "show", "amap", "--json").stdout)
    assert [i["name"] for i in detail["instances"]] == ["nextcloud", "radicale"]


def test_dry_run_explains_and_records_nothing(pool, ruche):
    result = ruche(*pool, "instance", "create", "chorale", "radicale", "--dry-run")
    assert result.exit_code == 0
    assert "would be placed on big" in result.stdout and "role is backup" in result.stdout
    assert instances(ruche, pool) == []


def test_draining_servers_are_skipped(pool, ruche):
    assert ruche(*pool, "server", "drain", "big").exit_code == 0
    created = json.loads(ruche(*pool, "instance", "create", "chorale", "radicale", "--json").stdout)
    assert created["instance"]["server"] == "small"


@pytest.mark.parametrize(
    "arguments, code, message",
    [
        (["association", "add", "../x", "--name", "X", "--email", "x@x.fr"], 2, "At 'slug'"),
        (["association", "add", "Amap", "--name", "X", "--email", "x@x.fr"], 2, "At 'slug'"),
        (["association", "add", "a b", "--name", "X", "--email", "x@x.fr"], 2, "At 'slug'"),
        (["association", "add", "x;id", "--name", "X", "--email", "x@x.fr"], 2, "At 'slug'"),
        (["association", "add", "amap", "--name", "X", "--email", "x@x.fr"], 5, "already exists"),
        (["association", "add", "new", "--name", "X", "--email", "not-mail"], 2, "At 'email'"),
        (["instance", "create", "amap", "wordpress"], 4, "no service 'wordpress'"),
        (["instance", "create", "nobody", "radicale"], 4, "no association 'nobody'"),
        (["instance", "create", "amap", "nextcloud"], 2, "missing required parameter 'admin_email'"),
        (
            ["instance", "create", "amap", "radicale", "--param", "ansible_host=evil"],
            2,
            "unknown parameter 'ansible_host'",
        ),
        (["instance", "create", "amap", "radicale", "--param", "nothing"], 2, "expected NAME=VALUE"),
        (["instance", "create", "amap", "radicale", "--name", "../../etc"], 2, "instance name"),
        (["instance", "create", "amap", "radicale", "--server", "ghost"], 4, "no server named 'ghost'"),
        (
            ["instance", "create", "amap", "nextcloud", "--size", "large", "--param", "admin_email=a@b.fr"],
            5,
            "no server can take",
        ),
        (["instance", "show", "amap"], 2, "ASSOCIATION/NAME"),
        (["instance", "show", "amap/none"], 4, "no instance amap/none"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_changes_nothing(pool, ruche, arguments, code, message):
    before = (ruche(*pool, "association", "list", "--json").stdout, instances(ruche, pool))
    result = ruche(*pool, *arguments)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert (ruche(*pool, "association", "list", "--json").stdout, instances(ruche, pool)) == before


def test_an_instance_name_is_unique_per_association(pool, ruche):
    assert ruche(*pool, "instance", "create", "amap", "radicale").exit_code == 0
    again = ruche(*pool, "instance", "create", "amap", "radicale")
    assert again.exit_code == 5 and "amap/radicale already exists" in again.stderr
    assert ruche(*pool, "instance", "create", "chorale", "radicale").exit_code == 0


def test_inventory_export_is_byte_identical_until_the_state_changes(pool, ruche, workspace):
    first = json.loads(ruche(*pool, "inventory", "export", "--json").stdout)
    directory = workspace / "inventories" / "production"
    assert first["changed"] is True and first["directory"] == str(directory)
    snapshot = {p.name: p.read_bytes() for p in directory.rglob("*.yml")}
    assert json.loads(ruche(*pool, "inventory", "export", "--json").stdout)["changed"] is False
    assert {p.name: p.read_bytes() for p in directory.rglob("*.yml")} == snapshot

    assert ruche(*pool, "instance", "create", "chorale", "radicale").exit_code == 0
    assert json.loads(ruche(*pool, "inventory", "export", "--json").stdout)["changed"] is True
    host_vars = (directory / "host_vars" / "big.yml").read_text()
    assert "identifier: !unsafe 'chorale--radicale'" in host_vars
    assert "domain: !unsafe 'radicale.chorale.test.example.org'" in host_vars
    assert "vault:" in (directory / "hosts.yml").read_text()


def test_secrets_are_generated_encrypted_and_never_written_in_clear(pool, ruche, workspace):
    from orchestrator.state.database import StateStore
    from orchestrator.state.instances import get_instance
    from orchestrator.workspace import open_workspace

    assert ruche(*pool, "instance", "create", "amap", "miniflux").exit_code == 0
    assert ruche(*pool, "inventory", "export").exit_code == 0
    opened = open_workspace(workspace)
    store = StateStore(opened.state_url)
    with store.session() as session:
        recorded = dict(get_instance(session, "amap/miniflux").secrets)
    store.close()
    assert sorted(recorded) == ["admin_password", "db_password"]
    plaintexts = [opened.vault().decrypt(ciphertext) for ciphertext in recorded.values()]
    assert all(len(p) == 32 for p in plaintexts) and plaintexts[0] != plaintexts[1]
    host_vars = (workspace / "inventories" / "production" / "host_vars" / "big.yml").read_text()
    assert host_vars.count("!vault |") == 2
    written = b"".join(p.read_bytes() for p in workspace.rglob("*") if p.is_file())
    assert not any(p.encode() in written for p in plaintexts)  # neither inventory nor SQLite file
    shown = ruche(*pool, "instance", "show", "amap/miniflux", "--json")
    assert json.loads(shown.stdout)["secrets"] == ["admin_password", "db_password"]
    assert not any(p in shown.stdout for p in plaintexts)


def test_instance_creation_without_a_vault_password_is_refused_and_records_nothing(pool, ruche, workspace, monkeypatch):
    monkeypatch.setenv("RUCHE_VAULT_PASSWORD_FILE", str(workspace / "inside.password"))
    result = ruche(*pool, "instance", "create", "amap", "radicale")
    assert result.exit_code == 3 and "lies inside the workspace" in result.stderr
    monkeypatch.delenv("RUCHE_VAULT_PASSWORD_FILE")
    assert instances(ruche, pool) == []


def test_a_server_holding_instances_cannot_be_removed(pool, ruche):
    assert ruche(*pool, "instance", "create", "amap", "radicale", "--server", "small").exit_code == 0
    refused = ruche(*pool, "server", "remove", "small", "--yes")
    assert refused.exit_code == 5 and "amap/radicale" in refused.stderr
    assert "small" in ruche(*pool, "server", "list").stdout


def test_plan_lists_new_instances_and_never_converged_servers(pool, ruche):
    assert ruche(*pool, "instance", "create", "amap", "miniflux", "--server", "big").exit_code == 0
    plan = json.loads(ruche(*pool, "plan", "--json").stdout)
    by_server = {s["server"]: s for s in plan["servers"]}
    assert by_server["big"]["changes"] == [{"instance": "amap/miniflux", "service": "miniflux", "change": "create"}]
    assert by_server["big"]["base"] == "first converge" and "vault" not in by_server  # backup servers run no instance
    assert plan["changes"] == 3


def test_listings_read_plain_rows_and_give_what_show_gives(pool, workspace, ruche):
    """`instance list` and `status --no-check` read rows without ORM objects (fleet scale): same views."""
    w = pool
    assert ruche(*w, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr").exit_code == 0
    assert ruche(*w, "instance", "create", "chorale", "radicale").exit_code == 0
    listed = instances(ruche, w)
    shown = [json.loads(ruche(*w, "instance", "show", i["address"], "--json").stdout) for i in listed]
    assert listed == shown and [i["address"] for i in listed] == ["amap/nextcloud", "chorale/radicale"]
    assert json.loads(ruche(*w, "instance", "list", "--association", "chorale", "--json").stdout) == shown[1:]
    recorded = ruche(*w, "status", "--no-check", "--json")
    assert recorded.exit_code == 1  # planned instances were never checked: not answering, as far as ruche knows
    assert [(e["address"], e["health"], e["health_checked_at"]) for e in json.loads(recorded.stdout)] == [
        ("amap/nextcloud", "unknown", None), ("chorale/radicale", "unknown", None)]  # fmt: skip


def test_an_export_renders_again_only_what_changed_and_never_trusts_an_edited_file(pool, ruche, workspace, monkeypatch):
    """Servers whose inputs and file are unchanged are reused from disk, and in a server that changed the
    instances whose inputs did not keep their text (state/render_keys.py, inventory.split_host_vars);
    an instance, its association's offer, the configuration or a hand edit makes its text rendered again."""
    import orchestrator.inventory as inventory
    from orchestrator.workspace import open_workspace

    assert ruche(*pool, "instance", "create", "amap", "radicale", "--server", "big").exit_code == 0
    assert ruche(*pool, "instance", "create", "chorale", "radicale", "--server", "small").exit_code == 0
    assert ruche(*pool, "inventory", "export").exit_code == 0
    rendered: list[str] = []
    real_render = inventory.render_instance

    def recording(variables, fleet):
        rendered.append(str(variables["identifier"]))
        return real_render(variables, fleet)

    monkeypatch.setattr(inventory, "render_instance", recording)
    directory = workspace / "inventories" / "production" / "host_vars"

    def export_again() -> list[str]:
        rendered.clear()
        assert ruche(*pool, "inventory", "export").exit_code == 0
        return sorted(rendered)

    assert export_again() == []  # nothing changed: every server's file reused
    before = (directory / "big.yml").read_text()
    assert ruche(*pool, "instance", "create", "amap", "radicale", "--name", "agenda", "--server", "big").exit_code == 0
    assert export_again() == ["amap--agenda"]  # big changed: its other instance kept its text
    after = (directory / "big.yml").read_text()
    assert inventory.split_host_vars(after).items[1] in before  # amap--radicale's text, unchanged
    assert ruche(*pool, "association", "set-offer", "chorale", "decouverte").exit_code == 0
    assert (
        export_again() == ["chorale--radicale"] and "daily: 7" in (directory / "small.yml").read_text()
    )  # the offer's retention
    (directory / "big.yml").write_text((directory / "big.yml").read_text().replace("radicale", "evil"))
    assert export_again() == ["amap--agenda", "amap--radicale"] and "evil" not in (directory / "big.yml").read_text()
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"base_domain": "other.example.org"}))
    assert export_again() == ["amap--agenda", "amap--radicale", "chorale--radicale"]
    assert (
        "radicale.amap.other.example.org" not in (directory / "big.yml").read_text()
    )  # domains are recorded at creation
    assert export_again() == []


def test_listings_read_as_plain_rows_give_what_each_instance_shows(pool, ruche, workspace):
    """instance_views (instance list, status --no-check: plain rows, JSON parsed at once) gives exactly
    instance_as_dict of each instance."""
    from orchestrator.state.database import StateStore
    from orchestrator.state.instances import instance_as_dict, instance_views, list_instances
    from orchestrator.workspace import open_workspace

    assert ruche(*pool, "instance", "create", "amap", "radicale", "--param", "admin_user=zoé").exit_code == 0
    assert ruche(*pool, "instance", "create", "chorale", "radicale", "--name", "agenda").exit_code == 0
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            expected = [instance_as_dict(i) for i in list_instances(session)]
            assert instance_views(session) == expected and len(expected) == 2
            assert instance_views(session, association="chorale") == expected[1:]
            assert expected[0]["parameters"] == {"admin_user": "zoé"} and expected[0]["id_range"]["size"] == 65536
    finally:
        store.close()


def test_a_verifys_scratch_instance_goes_beside_its_instance_unless_that_server_cannot_take_it(pool, ruche, workspace):
    """`backup verify`'s scratch copy goes on its instance's own server, whose images are there already (nothing to
    pull), when placement would take it there; on a draining (or full) server, wherever placement puts it."""
    from orchestrator.actions.backup_restore import record_scratch
    from orchestrator.operations.context import opened

    with opened(workspace) as (ws, store):
        for name in ("a", "b"):  # spread: amap's third instance would go to small if placement chose
            assert (
                ruche(*pool, "instance", "create", "amap", "radicale", "--name", name, "--server", "big").exit_code == 0
            )
        view = json.loads(ruche(*pool, "instance", "show", "amap/a", "--json").stdout)
        assert record_scratch(ws, store, view, "a-v1", view["version"]) == "big"
        assert ruche(*pool, "server", "drain", "big").exit_code == 0
        assert record_scratch(ws, store, view, "a-v2", view["version"]) == "small"
    assert {i["address"]: i["server"] for i in instances(ruche, pool)} == {
        "amap/a": "big", "amap/a-v1": "big", "amap/a-v2": "small", "amap/b": "big"
    }  # fmt: skip
