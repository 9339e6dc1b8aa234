"""Image references and tags as `ruche catalog outdated` reads them."""

from orchestrator.config import RegistrySettings
from orchestrator.image_tags import ImageName, parse_image, tags_url, version_key, versions_in_tags


def test_references_are_split_as_podman_does():
    assert parse_image("docker.io/library/nextcloud:34.0.2-apache") == ImageName(
        "docker.io", "library/nextcloud", "34.0.2-apache"
    )
    assert parse_image("nextcloud:34") == ImageName("docker.io", "library/nextcloud", "34")
    assert parse_image("mattermost/mattermost-team-edition:11.7.15") == ImageName(
        "docker.io", "mattermost/mattermost-team-edition", "11.7.15")  # fmt: skip
    assert parse_image("lab.ruche.invalid/radicale:trixie") == ImageName("lab.ruche.invalid", "radicale", "trixie")
    assert parse_image("registry.example:5000/a/b@sha256:" + "0" * 64) == ImageName(
        "registry.example:5000", "a/b", None
    )


def test_registries_are_asked_through_the_mirror_that_serves_them_else_directly():
    mirror = RegistrySettings(mirror="10.213.49.1:5000", insecure=True)
    lab = parse_image("lab.ruche.invalid/radicale:trixie")
    hub = parse_image("docker.io/library/postgres:17")
    assert tags_url(lab, mirror) == "http://10.213.49.1:5000/v2/lab.ruche.invalid/radicale/tags/list"
    assert tags_url(hub, RegistrySettings()) == "https://registry-1.docker.io/v2/library/postgres/tags/list"
    assert (
        tags_url(parse_image("quay.io/a/b:1"), RegistrySettings(mirror="m.example", mirrored_registries=["docker.io"]))
        == "https://quay.io/v2/a/b/tags/list"
    )


def test_only_tags_of_the_entrys_shape_are_versions():
    tags = [
        "34.0.2-apache",
        "34.0.4-apache",
        "34.0.4-fpm",
        "35.0.0-apache",
        "35-apache",
        "latest",
        "34.0.10-apache",
        "apache",
    ]
    assert versions_in_tags(tags, "34.0.2-apache", "34.0.2") == {
        "34.0.2": "34.0.2-apache", "34.0.4": "34.0.4-apache", "35.0.0": "35.0.0-apache", "35": "35-apache",
        "34.0.10": "34.0.10-apache"}  # fmt: skip
    # a tag that does not hold the version (a lab image): plain version tags only
    assert versions_in_tags(["trixie", "bookworm", "3.5.4", "v4.0.0", "4.0.0-rc1"], "trixie", "3.5.3") == {
        "3.5.4": "3.5.4", "4.0.0": "v4.0.0"}  # fmt: skip
    assert version_key("34.0.10") > version_key("34.0.9") and version_key("trixie") is None
