"""`ruche catalog outdated` reads the lab registry as the servers pull from it (through the workspace's mirror
setting): newer tags pushed there are listed, same major first, then newer majors beside the newest version.

The tags are pushed to a repository of their own (a copy of Radicale's trixie image under other tags), named
by a catalogue of the test's own workspace, so the lab's real entries and images stay as they are.
"""

from __future__ import annotations

import json

import requests
import yaml

from orchestrator.actions.init import init_workspace
from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace

PROBE = "lab.ruche.invalid/ruche-test-outdated"
MANIFESTS = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


def copy_image(registry: str, source: str, tag: str, target: str, new_tag: str) -> None:
    """Put image ``source:tag`` in the registry again as ``target:new_tag`` (blobs mounted, manifest as is)."""
    answer = requests.get(
        f"http://{registry}/v2/{source}/manifests/{tag}", headers={"Accept": ", ".join(MANIFESTS)}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    manifest = answer.json()
    for digest in [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]:
        mounted = requests.post(f"http://{registry}/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source},
                                timeout=30)  # fmt: skip
        assert mounted.status_code == 201, mounted.text
    put = requests.put(f"http://{registry}/v2/{target}/manifests/{new_tag}", data=answer.content,
                       headers={"Content-Type": answer.headers["Content-Type"]}, timeout=30)  # fmt: skip
    assert put.status_code == 201, put.text


def test_newer_tags_pushed_to_the_lab_registry_are_listed(lab, ruche, tmp_path):
    settings = open_workspace(lab).config.registry
    registry = settings.mirror
    for tag in ("bookworm", "trixie", "3.1.9", "3.5.3", "3.5.4", "3.6.0", "4.0.0", "4.1.2", "latest"):
        copy_image(registry, "lab.ruche.invalid/radicale", "trixie", PROBE, tag)
    # a workspace of its own: the lab's registry settings, a catalogue whose Radicale uses the probe's repository
    workspace = tmp_path / "workspace"
    init_workspace(workspace, collective="Outdated", base_domain="outdated.ruche.test", state_url=None)
    catalog = workspace / "catalog"
    catalog.mkdir()
    entry = yaml.safe_load((BUNDLED_CATALOG_DIR / "radicale.yaml").read_text())
    for release in entry["versions"]:
        release["image"] = PROBE + ":" + release["image"].rsplit(":", 1)[1]
    (catalog / "radicale.yaml").write_text(yaml.safe_dump(entry, sort_keys=False))
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"registry": settings, "catalog_dir": "catalog"}))

    answer = ruche("--workspace", str(workspace), "catalog", "outdated", "--json")
    assert answer.exit_code == 0, answer.stdout + answer.stderr
    rows = {row["version"]: row for row in json.loads(answer.stdout)["versions"]}
    assert rows["3.1.8"]["asked"] == f"http://{registry}/v2/{PROBE}/tags/list"
    assert rows["3.1.8"]["newer_same_major"] == ["3.6.0", "3.5.4", "3.1.9"]  # 3.5.3 is listed by the entry
    assert rows["3.1.8"]["newer_majors"] == [] and rows["3.1.8"]["support"] == "ended"
    assert rows["3.5.3"]["newer_same_major"] == ["3.6.0", "3.5.4"] and rows["3.5.3"]["newer_majors"] == [
        "4.1.2",
        "4.0.0",
    ]
    assert rows["3.5.3"]["default"] and rows["3.5.3"]["error"] is None
    text = ruche("--workspace", str(workspace), "catalog", "outdated")
    assert text.exit_code == 0 and "4.1.2, 4.0.0" in text.stdout and "ENDED 2026-06-10" in text.stdout, text.stdout
