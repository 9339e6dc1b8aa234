"""Services built like the lab's (lab.ruche.invalid/... images) and servers that are not the lab's, through the real
CLI on SQLite and PostgreSQL: refused while ruche.toml names no [images] registry (placement keeps them on lab
servers; an explicit --server, an export, a plan and an upgrade say what to do), deployed from the collective's
registry once it does. `ruche images build` refuses what it cannot build before needing root."""

import json

import pytest

from orchestrator.errors import Conflict
from orchestrator.state.database import StateStore
from orchestrator.state.servers import add_server, validate_server_spec
from orchestrator.workspace import open_workspace
from tests.helpers import TEST_IMAGE_REGISTRY, serve_lab_images_from

WHAT_TO_DO = "ruche images build --push REGISTRY"


def add_lab_server(workspace, name: str = "lab-1", address: str = "10.213.99.11") -> None:
    """Register a server as `ruche lab up` does (origin "lab")."""
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            add_server(session, validate_server_spec(name=name, address=address, memory_mb=8192, origin="lab"))
    finally:
        store.close()


@pytest.fixture
def fleet(workspace, ruche):
    """A workspace with no [images] registry, one real server (web-1) and association amap."""
    serve_lab_images_from(workspace, None)
    w = ["--workspace", str(workspace)]
    added = ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G")
    assert added.exit_code == 0, added.stderr
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    return w


def test_a_lab_only_service_is_refused_on_a_real_server_saying_what_to_do(fleet, ruche):
    w = fleet
    for extra in ([], ["--server", "web-1"]):
        refused = ruche(*w, "instance", "create", "amap", "radicale", *extra)
        assert refused.exit_code == Conflict.exit_code, refused.stderr
        assert "only served by the lab's registry" in refused.stderr and WHAT_TO_DO in refused.stderr
        assert "[images] registry" in refused.stderr and "lab.ruche.invalid/radicale:trixie" in refused.stderr
    # the database image too: miniflux's PostgreSQL is the lab's as well
    refused = ruche(*w, "instance", "create", "amap", "miniflux", "--server", "web-1")
    assert "lab.ruche.invalid/miniflux:trixie, lab.ruche.invalid/postgresql:trixie" in refused.stderr
    # upstream images are not concerned
    nextcloud = ruche(*w, "instance", "create", "amap", "nextcloud", "--param", "admin_email=a@amap.fr")
    assert nextcloud.exit_code == 0, nextcloud.stderr
    assert [i["address"] for i in json.loads(ruche(*w, "instance", "list", "--json").stdout)] == ["amap/nextcloud"]


def test_placement_keeps_a_lab_only_service_on_a_lab_server(fleet, workspace, ruche):
    w = fleet
    add_lab_server(workspace)
    created = json.loads(ruche(*w, "instance", "create", "amap", "radicale", "--json").stdout)
    assert created["instance"]["server"] == "lab-1"
    reasons = {c["server"]: c["reason"] for c in created["placement"]}
    assert reasons["web-1"].startswith("not a lab server; only served by the lab's registry: lab.ruche.invalid/")
    assert ruche(*w, "instance", "create", "amap", "radicale", "--name", "two", "--server", "web-1").exit_code == 5
    exported = ruche(*w, "inventory", "export")
    assert exported.exit_code == 0, exported.stderr
    lab_vars = (workspace / "inventories" / "production" / "host_vars" / "lab-1.yml").read_text()
    assert "image: lab.ruche.invalid/radicale:trixie" in lab_vars


def test_with_a_registry_set_the_lab_images_come_from_it_and_unsetting_it_stops_exports(fleet, workspace, ruche):
    w = fleet
    serve_lab_images_from(workspace, "10.0.0.7:5001/ruche", insecure=True)
    for service in ("radicale", "miniflux"):
        created = ruche(*w, "instance", "create", "amap", service, "--server", "web-1")
        assert created.exit_code == 0, created.stderr
    assert ruche(*w, "inventory", "export").exit_code == 0
    inventory = workspace / "inventories" / "production"
    host_vars = (inventory / "host_vars" / "web-1.yml").read_text()
    assert "lab.ruche.invalid" not in host_vars
    for image in ("radicale:trixie", "miniflux:trixie", "postgresql:trixie"):
        assert f"image: 10.0.0.7:5001/ruche/{image}" in host_vars
    # the servers are told that this registry speaks plain HTTP
    drop_in = (inventory / "group_vars" / "all.yml").read_text()
    assert 'location = \\"10.0.0.7:5001/ruche\\"' in drop_in or 'location = "10.0.0.7:5001/ruche"' in drop_in
    assert json.loads(ruche(*w, "plan", "--json").stdout)["changes"] > 0

    serve_lab_images_from(workspace, None)
    for command in (["inventory", "export"], ["plan"]):
        refused = ruche(*w, *command)
        assert refused.exit_code == 5, (command, refused.stderr)
        assert "amap/miniflux (miniflux 2.2.6) would run lab.ruche.invalid/miniflux:trixie" in refused.stderr
        assert "so would amap/radicale" in refused.stderr and WHAT_TO_DO in refused.stderr
    assert "10.0.0.7:5001/ruche/radicale:trixie" in (inventory / "host_vars" / "web-1.yml").read_text()  # untouched


def test_an_instance_on_its_way_out_is_not_refused(fleet, workspace, ruche):
    w = fleet
    serve_lab_images_from(workspace, TEST_IMAGE_REGISTRY)
    assert ruche(*w, "instance", "create", "amap", "radicale").exit_code == 0
    serve_lab_images_from(workspace, None)
    assert ruche(*w, "inventory", "export").exit_code == 5
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            from orchestrator.state.instances import get_instance

            get_instance(session, "amap/radicale").desired_state = "absent"
    finally:
        store.close()
    assert ruche(*w, "inventory", "export").exit_code == 0


def test_an_upgrade_to_a_lab_only_version_on_a_real_server_is_refused(fleet, workspace, ruche):
    from orchestrator.actions.instance_upgrade import preview
    from orchestrator.config import BackupSettings

    w = fleet
    serve_lab_images_from(workspace, TEST_IMAGE_REGISTRY)
    assert ruche(*w, "instance", "create", "amap", "radicale", "--version", "3.1.8").exit_code == 0
    serve_lab_images_from(workspace, None)
    config = open_workspace(workspace).config
    open_workspace(workspace).save_config(
        config.model_copy(update={"backup": BackupSettings(repository="/srv/backup")})
    )
    with pytest.raises(Conflict) as refused:
        preview(workspace, "amap/radicale", check_health=False)
    assert "upgraded to 3.5.3 would run lab.ruche.invalid/radicale:trixie on server web-1" in refused.value.message


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--image", "nextcloud"], "the lab builds no such image (known: radicale:trixie"),
        (["--image", "radicale:sid"], "the lab builds no such image"),
        (["--push", "https://registry.example.org/chatons"], "without scheme"),
        (["--push", "chatons"], "its host must hold a dot or a port"),
        (["--insecure"], "--insecure applies to --push REGISTRY"),
    ],
)
def test_images_build_refuses_what_it_cannot_build_or_push(ruche, arguments, message):
    result = ruche("images", "build", *arguments)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
