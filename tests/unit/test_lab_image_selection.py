"""`ruche lab up --service`: the lab images a service's current version runs, and only those."""

from __future__ import annotations

import pytest

from orchestrator.catalog import load_catalog
from orchestrator.errors import NotFound
from orchestrator.lab import images
from orchestrator.workspace import BUNDLED_CATALOG_DIR

CATALOG = load_catalog(BUNDLED_CATALOG_DIR)


def test_the_demos_services_need_three_of_the_lab_images_and_no_older_release():
    chosen, elsewhere = images.images_for(CATALOG, ["radicale", "miniflux"])
    assert elsewhere == {}
    assert [i.reference for i in chosen] == [
        "lab.ruche.invalid/radicale:trixie", "lab.ruche.invalid/postgresql:trixie", "lab.ruche.invalid/miniflux:trixie",
    ]  # fmt: skip
    assert len(images.LAB_IMAGES) == 7 and {i.suite for i in chosen} == {"trixie"}


def test_every_lab_image_is_run_by_some_entry_and_other_registries_need_none():
    every = {i.reference for i in images.LAB_IMAGES}
    current = {i.reference for i in images.images_for(CATALOG, CATALOG.services)[0]}
    older = {i.reference for i in images.LAB_IMAGES if i.suite == images.OLD_SUITE}
    # the older releases are the versions upgrades are tested from
    assert current | older == every and not current & older
    chosen, elsewhere = images.images_for(CATALOG, ["nextcloud", "radicale"])
    assert [i.name for i in chosen] == ["radicale"] and list(elsewhere) == ["nextcloud"]
    assert all(not reference.startswith("lab.ruche.invalid/") for reference in elsewhere["nextcloud"])


def test_a_service_the_catalogue_does_not_hold_is_refused():
    with pytest.raises(NotFound):
        images.images_for(CATALOG, ["radicale", "framaforms"])
