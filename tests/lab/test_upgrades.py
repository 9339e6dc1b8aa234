"""Upgrades on the lab, where `ruche catalog check` does not go: an upgrade refused at once, nothing
stopped, when the new image cannot be pulled (Radicale 3.1.8 -> 3.5.3); a version whose health check
never passes ends rolled back (old version, data intact, answering, the failure recorded); refusals; a fleet
upgrade on two servers: the canary alone first, never two upgrades on one server at once, and the stop at
the first failure (those upgraded stay upgraded): its upgrades from Radicale 3.1.8 to 3.5.3, each calendar's event
read back after, stand for the upgrade step of Radicale's `ruche catalog check` (skipped in test_catalog_check.py).
MediaWiki 1.39 -> 1.43 with PostgreSQL 15 -> 17 is upgraded in test_mediawiki.py.

Associations: maj (broken on lab-2) and flotte (four calendars).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import datetime

import pytest
import yaml

from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace
from tests.lab.servers import on
from tests.lab.test_backups import EVENT, EVENT_UID, http

W = "--workspace"
OLD_RADICALE, NEW_RADICALE = "3.1.8", "3.5.3"
BROKEN = "3.5.99-never-answers"


@pytest.fixture(scope="module")
def w(lab, ruche_module):
    """The lab workspace's options, with the associations of this module registered."""
    options = [W, str(lab)]
    for slug in ("maj", "flotte"):
        added = ruche_module(*options, "association", "add", slug, "--name", f"Association {slug}", "--email",
                             f"contact@{slug}.example", "--offer", "association")  # fmt: skip
        assert added.exit_code == 0, added.stderr
    return options


def deploy(ruche, w, association: str, service: str, name: str, server: str, version: str, *params: str) -> dict:
    created = ruche(*w, "instance", "create", association, service, "--name", name, "--server", server, "--version", version,
                    *[argument for param in params for argument in ("--param", param)])  # fmt: skip
    assert created.exit_code == 0, created.stdout + created.stderr
    applied = ruche(*w, "apply", "--instance", f"{association}/{name}", "--json")
    assert applied.exit_code == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    (outcome,) = json.loads(applied.stdout)["instances"]
    assert outcome["health"] == "healthy" and outcome["version"] == version, outcome
    return outcome


def deploy_together(
    ruche, w, association: str, service: str, placed: list[tuple[str, str]], version: str
) -> dict[str, dict]:
    """Create the instances ``placed`` (name, server) and converge them in one apply (one run for the
    servers, the lab's other instances skipped as unchanged); give their outcomes by name."""
    for name, server in placed:
        created = ruche(
            *w, "instance", "create", association, service, "--name", name, "--server", server, "--version", version
        )
        assert created.exit_code == 0, created.stdout + created.stderr
    applied = ruche(*w, "apply", "--json")
    assert applied.exit_code == 0, applied.stdout[-3000:] + applied.stderr[-3000:]
    outcomes = {o["address"]: o for o in json.loads(applied.stdout)["instances"]}
    found = {name: outcomes[f"{association}/{name}"] for name, _server in placed}
    for outcome in found.values():
        assert outcome["health"] == "healthy" and outcome["version"] == version, outcome
    return found


def calendar(ruche, w, lab, outcome: dict) -> dict:
    password = json.loads(ruche(*w, "instance", "secrets", outcome["address"], "admin_password", "--json").stdout)[
        "admin_password"
    ]
    return {"lab": lab, "server": outcome["server"], "domain": outcome["domain"], "user": "admin", "password": password}


def caldav(cal: dict, method: str, path: str, **kwargs) -> tuple[int, str]:
    return http(
        cal["lab"], cal["server"], cal["domain"], method, path, user=cal["user"], password=cal["password"], **kwargs
    )


MKCALENDAR = (
    '<?xml version="1.0"?><mkcol xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><set><prop>'
    "<resourcetype><collection/><C:calendar/></resourcetype></prop></set></mkcol>"
)


def put_event(cal: dict) -> None:
    code, text = caldav(cal, "MKCOL", "/admin/agenda/", body=MKCALENDAR, content_type="application/xml")
    assert code == 201, text
    code, text = caldav(cal, "PUT", f"/admin/agenda/{EVENT_UID}.ics", body=EVENT, content_type="text/calendar")
    assert code == 201, text


def event_is_there(cal: dict) -> bool:
    code, text = caldav(cal, "GET", f"/admin/agenda/{EVENT_UID}.ics")
    return code == 200 and "Distribution des paniers" in text


def image_of(lab, server: str, container: str) -> str:
    return on(lab, server, "podman", "inspect", "--format", "{{.ImageName}}", container).strip()


def upgrade(ruche, w, address: str, *options: str):
    return ruche(*w, "instance", "upgrade", address, "--yes", "--json", "--quiet", *options)


@contextmanager
def catalog_with_image(lab, service: str, version: str, image: str):
    """The lab workspace's catalogue with ``version`` of ``service`` on ``image``, undone afterwards."""
    workspace = open_workspace(lab)
    saved = workspace.config
    catalog = workspace.root / f"catalog-{uuid.uuid4().hex[:6]}"
    shutil.copytree(BUNDLED_CATALOG_DIR, catalog)
    entry = yaml.safe_load((catalog / f"{service}.yaml").read_text())
    (release,) = [v for v in entry["versions"] if v["version"] == version]
    release["image"] = image
    (catalog / f"{service}.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True))
    workspace.save_config(saved.model_copy(update={"catalog_dir": catalog.name}))
    try:
        yield
    finally:
        workspace.save_config(saved)
        shutil.rmtree(catalog)


@pytest.fixture
def broken_version(lab):
    """The workspace's catalogue with a Radicale version whose image never answers on Radicale's port (Miniflux's,
    which exits without its database), and a short start timeout; both undone afterwards."""
    workspace = open_workspace(lab)
    saved = workspace.config
    catalog = workspace.root / "catalog-with-broken-version"
    shutil.copytree(BUNDLED_CATALOG_DIR, catalog, dirs_exist_ok=True)
    entry = yaml.safe_load((catalog / "radicale.yaml").read_text())
    entry["versions"].append({"version": BROKEN, "image": "lab.ruche.invalid/miniflux:trixie", "upgrade_from": ["3.*"]})
    entry["default_version"] = NEW_RADICALE
    (catalog / "radicale.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True))
    workspace.save_config(
        saved.model_copy(
            update={
                "catalog_dir": catalog.name,
                "upgrades": saved.upgrades.model_copy(update={"start_timeout_seconds": 30}),
            }
        )
    )
    yield
    workspace.save_config(saved)


def test_a_version_that_never_answers_is_rolled_back_with_the_data_intact(lab, w, ruche, broken_version):
    cal = calendar(ruche, w, lab, deploy(ruche, w, "maj", "radicale", "broken", "lab-2", OLD_RADICALE))
    put_event(cal)
    planned = json.loads(ruche(*w, "plan", "--json").stdout)["upgrades"]
    assert {
        "instance": "maj/broken",
        "version": OLD_RADICALE,
        "current": NEW_RADICALE,
        "path": [NEW_RADICALE],
    }.items() <= next(u for u in planned if u["instance"] == "maj/broken").items()
    dry = upgrade(ruche, w, "maj/broken", "--to", BROKEN, "--dry-run")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["status"] == "would upgrade"
    assert "bookworm" in image_of(lab, "lab-2", "ruche-maj--broken-app")  # a dry run changes nothing
    unknown = upgrade(ruche, w, "maj/broken", "--to", "9.9.9")
    assert unknown.exit_code == 2 and "not in the catalogue" in unknown.stderr

    # 3.5.3's image cannot be pulled (a tag the registry does not have: a mistyped tag or a registry outage does
    # the same): the upgrade is refused before anything stops, at once, and the calendar still serves 3.1
    with catalog_with_image(lab, "radicale", NEW_RADICALE, f"lab.ruche.invalid/radicale:absent-{uuid.uuid4().hex[:8]}"):
        started = time.monotonic()
        refused = upgrade(ruche, w, "maj/broken", "--to", NEW_RADICALE)
        elapsed = time.monotonic() - started
    print(f"upgrade with an image that cannot be pulled: refused in {elapsed:.1f} s")
    assert refused.exit_code == 1, refused.stdout[-4000:] + refused.stderr[-3000:]
    result = json.loads(refused.stdout)
    assert result["status"] == "refused" and "nothing was stopped or changed" in result["detail"]["error"], result
    assert "cannot pull lab.ruche.invalid/radicale:absent-" in result["detail"]["output"], result
    assert elapsed < 120
    steps = [s["step"] for s in result["detail"]["steps"]]
    assert steps == ["data check", "images"], steps  # no safety backup, no deploy
    assert on(lab, "lab-2", "systemctl", "is-active", "ruche-maj--broken-app.service").strip() == "active"
    assert "bookworm" in image_of(lab, "lab-2", "ruche-maj--broken-app") and event_is_there(cal)

    failed = upgrade(ruche, w, "maj/broken", "--to", BROKEN)
    assert failed.exit_code == 1, failed.stdout[-4000:] + failed.stderr[-3000:]
    result = json.loads(failed.stdout)
    assert result["status"] == "rolled_back", result
    assert result["detail"]["failed_step"] == f"{OLD_RADICALE} -> {BROKEN}: health"
    # noticed by watching the unit (it exits and systemd gives up restarting it), named with its last log lines
    (failed,) = [step for step in result["detail"]["steps"] if step["status"] == "failed"]
    assert "ruche-maj--broken-app.service failed; its last lines:" in failed["output"], failed
    assert "bookworm" in image_of(lab, "lab-2", "ruche-maj--broken-app")
    assert event_is_there(cal)
    shown = json.loads(ruche(*w, "instance", "show", "maj/broken", "--json").stdout)
    assert (shown["version"], shown["state"], shown["health"]) == (OLD_RADICALE, "running", "healthy")
    recorded_upgrades = json.loads(ruche(*w, "upgrades", "maj/broken", "--json").stdout)
    assert sorted(u["status"] for u in recorded_upgrades) == ["refused", "rolled_back"]
    (recorded,) = [u for u in recorded_upgrades if u["status"] == "rolled_back"]
    assert recorded["status"] == "rolled_back" and recorded["step"] == "rollback"
    assert any(s["status"] == "failed" and s["step"].endswith(": health") for s in recorded["detail"]["steps"])


def test_refusals_change_nothing(lab, w, ruche):
    on(lab, "lab-2", "systemctl", "stop", "ruche-maj--broken-app.service")
    try:
        unhealthy = upgrade(ruche, w, "maj/broken")
        assert unhealthy.exit_code == 5 and "healthy" in unhealthy.stderr, unhealthy.stderr
    finally:
        on(lab, "lab-2", "systemctl", "start", "ruche-maj--broken-app.service")
    assert ruche(*w, "instance", "suspend", "maj/broken", "--quiet").exit_code == 0
    suspended = upgrade(ruche, w, "maj/broken")
    assert suspended.exit_code == 5 and "suspended" in suspended.stderr
    assert json.loads(ruche(*w, "instance", "show", "maj/broken", "--json").stdout)["version"] == OLD_RADICALE
    assert not [
        u
        for u in json.loads(ruche(*w, "upgrades", "maj/broken", "--json").stdout)
        if u["status"] not in ("rolled_back", "refused")
    ]
    assert (
        ruche(*w, "instance", "delete", "maj/broken", "--yes", "--no-final-backup", "--purge", "--quiet").exit_code == 0
    )


def _interval(result: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(result["process_started"]), datetime.fromisoformat(result["process_finished"])


def test_a_fleet_upgrade_runs_the_canary_alone_one_per_server_and_stops_at_the_first_failure(lab, w, ruche):
    # flotte/f1 (lab-1, the canary), f2 (lab-2), f3 (lab-2), f4 (lab-1), upgraded in that order; the maj instances are
    # current already. One run shows every rule (suite time: no second run upgrading the rest, which would only repeat
    # them): f2 fails (it does not answer); f3 waits for lab-2 although --parallel 2 leaves a slot, so f4 starts beside
    # f2 instead; f4, already running when f2 failed, finishes; f3 is never started.
    placed = [("f1", "lab-1"), ("f2", "lab-2"), ("f3", "lab-2"), ("f4", "lab-1")]
    calendars = {name: calendar(ruche, w, lab, outcome)
                 for name, outcome in deploy_together(ruche, w, "flotte", "radicale", placed, OLD_RADICALE).items()}  # fmt: skip
    for cal in calendars.values():
        put_event(cal)
    on(lab, "lab-2", "systemctl", "stop", "ruche-flotte--f2-app.service")  # f2 fails: it does not answer
    try:
        first = ruche(*w, "upgrade", "radicale", "--canary", "1", "--parallel", "2", "--yes", "--json", "--quiet")
    finally:
        on(lab, "lab-2", "systemctl", "start", "ruche-flotte--f2-app.service")
    assert first.exit_code == 1, first.stdout[-4000:] + first.stderr[-2000:]
    result = json.loads(first.stdout)
    by_name = {r["instance"]: r for r in result["results"]}
    assert result["results"][0]["instance"] == "flotte/f1" and result["results"][0]["canary"]
    canary_end = _interval(by_name["flotte/f1"])[1]
    assert all(_interval(r)[0] >= canary_end for r in result["results"][1:])  # the canary ran alone, first
    assert by_name["flotte/f1"]["status"] == "succeeded"
    assert by_name["flotte/f2"]["status"] == "refused" and result["stopped"]
    assert by_name["flotte/f4"]["status"] == "succeeded"  # already running beside f2 when f2 failed: finished
    assert _interval(by_name["flotte/f4"])[0] < _interval(by_name["flotte/f2"])[1]  # beside f2: --parallel 2
    assert result["not_started"] == ["flotte/f3"]  # never two on lab-2 at once: passed over for f4, then stopped
    versions = {i["address"]: i["version"] for i in json.loads(ruche(*w, "instance", "list", "--json").stdout)}
    assert [versions[f"flotte/{name}"] for name in ("f1", "f2", "f3", "f4")] == [
        NEW_RADICALE, OLD_RADICALE, OLD_RADICALE, NEW_RADICALE
    ]  # fmt: skip
    # those upgraded stay so: a next fleet upgrade would take the two left, one after the other on lab-2
    planned = json.loads(ruche(*w, "upgrade", "radicale", "--dry-run", "--json").stdout)["candidates"]
    left = [(c["instance"], c["server"]) for c in planned if c["instance"].startswith("flotte/")]
    assert left == [("flotte/f2", "lab-2"), ("flotte/f3", "lab-2")], planned
    deadline = time.monotonic() + 120  # f2's unit, started again after the fleet upgrade, may still be starting
    while not event_is_there(calendars["f2"]) and time.monotonic() < deadline:
        time.sleep(1)
    for name, cal in calendars.items():
        assert event_is_there(cal), name
