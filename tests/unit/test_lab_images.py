"""The lab's own images (lab.ruche.invalid/NAME:TAG) outside the lab: the one mapping to the collective's registry
([images] registry), the deployment that uses it, placement that keeps such instances on lab servers, the
servers' registries.conf, and `ruche images build`'s choice of images."""

import tomllib

import pytest
from pydantic import ValidationError

from orchestrator.actions.images_build import check_registry, select_images
from orchestrator.config import ImageSettings, RegistrySettings
from orchestrator.deployment import instance_variables
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.images import LAB_ONLY_HINT, deployed_image, deployed_images, lab_only
from orchestrator.lab.images import LAB_IMAGES
from orchestrator.placement import Capacity, Demand, place
from orchestrator.registries import render_mirror_drop_in
from tests.helpers import CATALOG, instance_record


def test_a_lab_image_is_pulled_from_the_collectives_registry_and_nothing_else_changes():
    assert deployed_image("lab.ruche.invalid/radicale:trixie", None) == "lab.ruche.invalid/radicale:trixie"
    assert deployed_image("lab.ruche.invalid/radicale:trixie", "registry.example.org/chatons") == (
        "registry.example.org/chatons/radicale:trixie"
    )
    assert deployed_image("docker.io/library/nextcloud:31-apache", "registry.example.org/chatons") == (
        "docker.io/library/nextcloud:31-apache"
    )
    assert deployed_image("lab.ruche.invalid.example/x:1", "r.example.org") == "lab.ruche.invalid.example/x:1"


def test_every_image_of_a_deployment_goes_through_the_mapping():
    service = CATALOG.get("mediawiki-debian")  # application, database and a sidecar, all the lab's
    record = instance_record(name="wiki", admin_email="a@amap.fr")
    plain = instance_variables(record, service)
    mapped = instance_variables(record, service, image_registry="10.0.0.7:5001/ruche")

    def images(variables: dict) -> list[str]:
        return ([variables["app"]["image"], variables["database"]["image"]]
                + [s["image"] for s in variables["sidecars"]] + [v["image"] for v in variables["id_volumes"]])  # fmt: skip

    assert all(image.startswith("lab.ruche.invalid/") for image in images(plain))
    assert [image.replace("10.0.0.7:5001/ruche/", "lab.ruche.invalid/") for image in images(mapped)] == images(plain)
    assert deployed_images(service, None, "10.0.0.7:5001/ruche") == [
        "10.0.0.7:5001/ruche/mediawiki:trixie", "10.0.0.7:5001/ruche/postgresql:trixie",
    ]  # fmt: skip
    assert lab_only(deployed_images(service, "1.39.17", None)) == [
        "lab.ruche.invalid/mediawiki:bookworm", "lab.ruche.invalid/postgresql:bookworm",
    ]  # fmt: skip
    assert lab_only(deployed_images(CATALOG.get("nextcloud"), None, None)) == []


def server(name: str, origin: str = "manual", **more) -> Capacity:
    return Capacity(name=name, role="apps", draining=False, labels={}, cpu=4, memory_mb=8192, disk_gb=100,
                    origin=origin, **more)  # fmt: skip


def test_placement_takes_a_lab_server_for_lab_only_images_and_says_what_to_do_when_there_is_none():
    lab_only_demand = Demand(association="amap", cpu=0.25, memory_mb=128, disk_gb=1,
                             lab_only_images=("lab.ruche.invalid/radicale:trixie",))  # fmt: skip
    # the real server is emptier, but cannot pull the image
    decision = place(lab_only_demand, [server("web-1"), server("lab-1", "lab", allocated_memory_mb=6000)])
    assert decision.server == "lab-1"
    with pytest.raises(Conflict) as refused:
        place(lab_only_demand, [server("web-1"), server("web-2")])
    assert "web-1: not a lab server; only served by the lab's registry: lab.ruche.invalid/radicale:trixie" in str(
        refused.value
    )
    assert refused.value.hint == LAB_ONLY_HINT and "ruche images build --push REGISTRY" in LAB_ONLY_HINT
    plain = Demand(association="amap", cpu=0.25, memory_mb=128, disk_gb=1)
    assert place(plain, [server("web-1"), server("lab-1", "lab", allocated_memory_mb=6000)]).server == "web-1"


def test_an_insecure_image_registry_is_allowed_plain_http_on_the_servers_and_only_it():
    images = ImageSettings(registry="10.0.0.7:5001/ruche", insecure=True)
    assert tomllib.loads(render_mirror_drop_in(RegistrySettings(), images)) == {
        "registry": [{"location": "10.0.0.7:5001/ruche", "insecure": True}]
    }
    mirrored = tomllib.loads(render_mirror_drop_in(RegistrySettings(mirror="10.0.0.1:5000", insecure=True), images))
    assert mirrored["registry"][0] == {"location": "10.0.0.7:5001/ruche", "insecure": True}
    assert len(mirrored["registry"]) == 1 + len(RegistrySettings().mirrored_registries)
    secure = ImageSettings(registry="registry.example.org/chatons")
    assert tomllib.loads(render_mirror_drop_in(RegistrySettings(), secure)) == {}


@pytest.mark.parametrize(
    "registry, accepted",
    [
        ("registry.example.org/chatons", True),
        ("registry.example.org:5000", True),
        ("10.0.0.7:5001/ruche/lab", True),
        ("localhost:5000/x", True),
        ("https://registry.example.org/chatons", False),
        ("chatons", False),  # docker.io/chatons
        ("registry.example.org/Chatons", False),
        ("registry.example.org/chatons/", False),
        ("lab.ruche.invalid/x", False),
        ("registry example.org", False),
    ],
)
def test_the_registry_setting_is_a_host_and_a_path_without_scheme(registry, accepted):
    if accepted:
        assert ImageSettings(registry=registry).registry == registry
        assert check_registry(registry) == registry
    else:
        with pytest.raises(ValidationError):
            ImageSettings(registry=registry)
        with pytest.raises(InvalidInput):
            check_registry(registry)


def test_images_build_chooses_by_name_or_by_name_and_tag():
    assert select_images(()) == list(LAB_IMAGES)
    assert [(i.name, i.suite) for i in select_images(("radicale",))] == [
        ("radicale", "trixie"),
        ("radicale", "bookworm"),
    ]
    assert [(i.name, i.suite) for i in select_images(("radicale:trixie", "radicale"))] == [
        ("radicale", "trixie"), ("radicale", "bookworm"),
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="known: radicale:trixie"):
        select_images(("nextcloud",))
