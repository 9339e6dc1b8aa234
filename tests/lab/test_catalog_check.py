"""`ruche catalog check` on the lab: the whole lifecycle of every entry whose images the lab serves, run by
the command itself (no step re-implemented here), recorded and shown by `catalog list`; entries whose images
come from registries the lab cannot reach are skipped, saying so. MediaWiki (Debian) has its own file
(test_catalog_check_mediawiki.py) so that the two run on different pytest workers. Last, an entry built like the
lab's runs from a registry other than the lab's, pushed there by `ruche images build --push`."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests

from orchestrator.catalog import load_catalog
from orchestrator.config import LAB_IMAGE_NAMESPACE, ImageSettings
from orchestrator.image_tags import parse_image
from orchestrator.lab import images, registry
from orchestrator.lab.host import run
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.record import LabRecord
from orchestrator.processes import is_same_process
from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace
from tests.lab.servers import on

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


def run_check(lab, ruche, service_id: str, skip: tuple[str, ...] = ()) -> dict:
    """`ruche catalog check SERVICE --json` on the lab; asserts it passed, is recorded and left nothing."""
    w = [W, str(lab)]
    checked = ruche(*w, "catalog", "check", service_id, "--json", *(f"--skip={step}" for step in skip))
    record = json.loads(checked.stdout)
    failed = [step for step in record["steps"] if step["status"] not in ("passed", "skipped")]
    assert checked.exit_code == 0 and record["status"] == "passed", (failed, record.get("reproduce"))
    skipped = [s["name"] for s in record["steps"]
               if s["name"] in skip or ("upgrades" in skip and s["name"].startswith("upgrade-from-"))]  # fmt: skip
    assert [s["name"] for s in record["steps"] if s["status"] == "skipped"] == record["skipped"] == skipped
    print(f"catalog check {service_id}: " + ", ".join(f"{s['name']} {s['seconds']} s" for s in record["steps"]))
    expected = CATALOG.get(service_id).upgrade_sources(CATALOG.get(service_id).version)
    assert [s["name"] for s in record["steps"] if s["name"].startswith("upgrade-from-")] == [
        f"upgrade-from-{source}" for source in expected
    ]
    assert record["steps_passed"] == record["steps_total"] == len(record["steps"]) - len(skipped)
    listed = {entry["id"]: entry for entry in json.loads(ruche(*w, "catalog", "list", "--json").stdout)}
    last = listed[service_id]["last_check"]
    assert (last["id"], last["status"], last["server"]) == (record["id"], "passed", record["server"])
    listed_text = ruche(*w, "catalog", "list").stdout
    assert f"ran on {record['server']} on " in listed_text
    assert not skip or f"passed ({', '.join(skipped)} skipped)" in listed_text
    # the throwaway association is gone from the registry, its instances from the inventory
    slugs = [a["slug"] for a in json.loads(ruche(*w, "association", "list", "--json").stdout)]
    assert record["association"] not in slugs
    instances = json.loads(ruche(*w, "instance", "list", "--json").stdout)
    assert not [i for i in instances if i["address"].startswith(record["association"] + "/")]
    return record


# every entry of the catalogue but those with a file of their own (a test below fails when one is missing)
ENTRIES = ["limesurvey", "mattermost", "mediawiki", "miniflux", "nextcloud", "radicale"]
# steps left out here (suite time: each is one or more Ansible runs), shown elsewhere. Restore-into: by
# test_ownership.py (a Radicale restored into another instance on the other server, files of two owners, the copy's
# carried-over admin secret opening the users file it restored), and on PostgreSQL data by the MediaWiki check's
# verify (its snapshot restored into a new instance, database included). Verify: by the MediaWiki check
# (test_catalog_check_mediawiki.py), whose snapshot holds files of two owners and PostgreSQL tables, all compared,
# its job queue's and caches' tables aside. Suspend and resume, the same role tasks for every entry: by the MediaWiki
# check too (three units, its database's and a sidecar's among them). Radicale's upgrade from 3.1.8: by
# test_upgrades.py (the fleet upgrade's 3.1.8 -> 3.5.3, each calendar's event read back after, and the rollback of
# a version that never answers).
SKIPPED_HERE = {
    "miniflux": ("restore-into", "verify", "suspend", "resume"),
    "radicale": ("restore-into", "verify", "suspend", "resume", "upgrades"),
}


def test_every_entry_is_checked_here_or_in_its_own_file():
    assert sorted(ENTRIES + list(OWN_FILE)) == sorted(CATALOG.services)


@pytest.mark.parametrize("service_id", ENTRIES)
def test_catalog_check_passes_for_every_entry_the_lab_can_run(lab, ruche, service_id):
    why = unreachable(service_id)
    if why:
        pytest.skip(why)
    run_check(lab, ruche, service_id, SKIPPED_HERE.get(service_id, ()))


OTHER_REGISTRY_PORT = 5001  # the lab's registry listens on 5000 of the same bridge address


def test_an_image_pushed_by_images_build_to_another_registry_runs_an_instance(lab, ruche, tmp_path):
    """A second registry (Debian's docker-registry, as the lab's) on the lab's bridge address stands for a
    collective's: `ruche images build --push` puts Radicale there, [images] registry names it in ruche.toml, and an
    instance runs from it, answering through Caddy. The image's Debian build is the one `lab up` runs (about 50 s for
    Radicale); to keep this test short its cache (this machine's Podman storage) is filled from the lab's registry."""
    started = last = time.monotonic()
    phases: list[str] = []

    def lap(what: str) -> None:
        nonlocal last
        phases.append(f"{what} {time.monotonic() - last:.1f} s")
        last = time.monotonic()

    w = [W, str(lab)]
    workspace = open_workspace(lab)
    lab_registry = LabRecord.load(LabLayout(workspace.lab_dir).record_path).registry_address
    address = f"{lab_registry.rsplit(':', 1)[0]}:{OTHER_REGISTRY_PORT}"
    pushed_to = f"{address}/chatons"
    config, log = tmp_path / "registry.yml", tmp_path / "registry.log"
    registry.write_config(config, address=address, storage_dir=tmp_path / "storage")
    process = registry.start(config, log)
    radicale = images.image_named("radicale")
    in_lab_registry = f"{lab_registry}/{LAB_IMAGE_NAMESPACE}/radicale:{radicale.fingerprint()}"
    seeded = [] if images.is_built(radicale) else [in_lab_registry]
    before = workspace.file_config.images
    try:
        registry.wait_until_answering(address, process, log)
        for pulled in seeded:
            run(["podman", "pull", "--quiet", "--tls-verify=false", pulled], timeout=300)
            run(["podman", "tag", pulled, images.local_reference(radicale)])
        lap("registry and cache")
        built = ruche("images", "build", "--image", "radicale:trixie", "--push", pushed_to, "--insecure", "--json")
        assert built.exit_code == 0, built.stderr
        (entry,) = json.loads(built.stdout)["images"]
        assert entry["pushed"] == f"{pushed_to}/radicale:trixie" and entry["digest"].startswith("sha256:")
        assert 'registry = "' + pushed_to + '"' in built.stderr and "insecure = true" in built.stderr
        manifest = requests.get(f"http://{address}/v2/chatons/radicale/manifests/trixie", timeout=10, headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"})  # fmt: skip
        assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == entry["digest"]
        lap("images build --push")

        workspace.save_config(
            workspace.config.model_copy(update={"images": ImageSettings(registry=pushed_to, insecure=True)})
        )
        assert ruche(*w, "association", "add", "regis", "--name", "Régie", "--email", "c@regis.example").exit_code == 0
        created = ruche(*w, "instance", "create", "regis", "radicale", "--json")
        assert created.exit_code == 0, created.stderr
        server = json.loads(created.stdout)["instance"]["server"]
        lap("create")
        applied = ruche(*w, "apply", "--instance", "regis/radicale", "--json")
        assert applied.exit_code == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
        outcome = {i["address"]: (i["state"], i["health"]) for i in json.loads(applied.stdout)["instances"]}
        assert outcome == {"regis/radicale": ("running", "healthy")}  # checked through Caddy
        running = on(lab, server, "podman", "inspect", "--format", "{{.ImageName}}", "ruche-regis--radicale-app")
        assert running.strip() == f"{pushed_to}/radicale:trixie"
        lap("apply")
    finally:
        workspace.save_config(workspace.config.model_copy(update={"images": before}))
        # gone from its server (whose registries.conf drop-in this apply puts back as it was) and from the state
        deleted = ruche(*w, "instance", "delete", "regis/radicale", "--purge", "--no-final-backup", "--yes")
        lap("delete")
        removed = ruche(*w, "association", "remove", "regis", "--yes")
        lap("association remove")
        if is_same_process(process.pid, process.start_time):
            os.kill(process.pid, signal.SIGTERM)
        if seeded:
            run(["podman", "rmi", "--ignore", images.local_reference(radicale), *seeded])
    assert deleted.exit_code == 0 and removed.exit_code == 0, deleted.stderr + removed.stderr
    on(lab, server, "podman", "rmi", "--ignore", f"{pushed_to}/radicale:trixie")
    lap("cleanup")
    print(
        f"images build --push, deployed from another registry: {time.monotonic() - started:.1f} s ({', '.join(phases)})"
    )
