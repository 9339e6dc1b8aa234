"""`ruche catalog check` on the lab: the whole lifecycle of every entry whose images the lab serves, run by
the command itself (no step re-implemented here), recorded and shown by `catalog list`; entries whose images
come from registries the lab cannot reach are skipped, saying so. MediaWiki (Debian) has its own file
(test_catalog_check_mediawiki.py) so that the two run on different pytest workers."""

from __future__ import annotations

import json

import pytest

from orchestrator.catalog import load_catalog
from orchestrator.config import LAB_IMAGE_NAMESPACE
from orchestrator.image_tags import parse_image
from orchestrator.workspace import BUNDLED_CATALOG_DIR

W = "--workspace"
CATALOG = load_catalog(BUNDLED_CATALOG_DIR)
OWN_FILE = {"mediawiki-debian": "tests/lab/test_catalog_check_mediawiki.py"}


def unreachable(service_id: str) -> str | None:
    """Why the lab cannot run ``service_id``'s images, or None when it serves them all."""
    service = CATALOG.get(service_id)
    images = {release.image for release in service.versions}
    images |= {release.database_image for release in service.versions if release.database_image}
    images |= {sidecar.image for sidecar in service.sidecars if sidecar.image}
    registries = sorted({parse_image(image).registry for image in images} - {LAB_IMAGE_NAMESPACE})
    if registries:
        return (f"{service_id}'s images come from {', '.join(registries)}, which this machine cannot reach "
                "(no network): its check hook is written from upstream's documents and has not run")  # fmt: skip
    return None


def run_check(lab, ruche, service_id: str) -> dict:
    """`ruche catalog check SERVICE --json` on the lab; asserts it passed, is recorded and left nothing."""
    w = [W, str(lab)]
    checked = ruche(*w, "catalog", "check", service_id, "--json")
    record = json.loads(checked.stdout)
    failed = [step for step in record["steps"] if step["status"] != "passed"]
    assert checked.exit_code == 0 and record["status"] == "passed", (failed, record.get("reproduce"))
    print(f"catalog check {service_id}: " + ", ".join(f"{s['name']} {s['seconds']} s" for s in record["steps"]))
    expected = CATALOG.get(service_id).upgrade_sources(CATALOG.get(service_id).version)
    assert [s["name"] for s in record["steps"] if s["name"].startswith("upgrade-from-")] == [
        f"upgrade-from-{source}" for source in expected
    ]
    assert record["steps_passed"] == record["steps_total"] == len(record["steps"])
    listed = {entry["id"]: entry for entry in json.loads(ruche(*w, "catalog", "list", "--json").stdout)}
    last = listed[service_id]["last_check"]
    assert (last["id"], last["status"], last["server"]) == (record["id"], "passed", record["server"])
    assert f"ran on {record['server']} on " in ruche(*w, "catalog", "list").stdout
    # the throwaway association is gone from the registry, its instances from the inventory
    slugs = [a["slug"] for a in json.loads(ruche(*w, "association", "list", "--json").stdout)]
    assert record["association"] not in slugs
    instances = json.loads(ruche(*w, "instance", "list", "--json").stdout)
    assert not [i for i in instances if i["address"].startswith(record["association"] + "/")]
    return record


# every entry of the catalogue but those with a file of their own (a test below fails when one is missing)
ENTRIES = ["limesurvey", "mattermost", "mediawiki", "miniflux", "nextcloud", "radicale"]


def test_every_entry_is_checked_here_or_in_its_own_file():
    assert sorted(ENTRIES + list(OWN_FILE)) == sorted(CATALOG.services)


@pytest.mark.parametrize("service_id", ENTRIES)
def test_catalog_check_passes_for_every_entry_the_lab_can_run(lab, ruche, service_id):
    why = unreachable(service_id)
    if why:
        pytest.skip(why)
    run_check(lab, ruche, service_id)
