"""`ruche apply` through ansible-runner over real SSH to the lab servers."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import yaml

from orchestrator.idranges import POOL_SIZE, POOL_START
from orchestrator.registries import render_mirror_drop_in
from orchestrator.remote import SshTarget, run_command
from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace
from tests.lab.servers import on


def test_apply_prepares_every_app_server_and_a_second_apply_changes_nothing(lab, ruche):
    first = ruche("--workspace", str(lab), "apply", "--json")
    assert first.exit_code == 0, first.stdout + first.stderr
    run = json.loads(first.stdout)
    assert run["succeeded"] and set(run["hosts"]) == {"lab-1", "lab-2"}
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in run["hosts"].values())

    private_dir = Path(run["artifacts"]).parent.parent
    assert stat.S_IMODE(private_dir.stat().st_mode) == 0o700
    assert not (private_dir / "env").exists()  # env files suppressed: nothing of the run's variables on disk
    assert (Path(run["artifacts"]) / "job_events").is_dir()

    second = json.loads(ruche("--workspace", str(lab), "apply", "--json").stdout)
    assert second["succeeded"] and second["changed"] == 0, second["hosts"]
    assert second["run_id"] != run["run_id"]
    # each server's base (the ruche_server role) holds what the first apply recorded: skipped, as instances are
    assert run["servers_unchanged"] == [] and second["servers_unchanged"] == ["lab-1", "lab-2"]

    recorded = json.loads(ruche("--workspace", str(lab), "runs", "list", "--json").stdout)
    assert [r["id"] for r in recorded[:2]] == [second["run_id"], run["run_id"]]
    assert recorded[0]["changed"] == 0 and recorded[1]["changed"] == run["changed"] > 0
    assert recorded[1]["artifacts"] == run["artifacts"]

    # the inventories' history: one commit per apply, tagged with its run id, the second one empty
    inventories = open_workspace(lab).inventories_dir
    log = subprocess.run(["git", "-C", str(inventories), "log", "--format=%H %s"], capture_output=True, text=True,
                         check=True).stdout.splitlines()  # fmt: skip
    assert log[0].split(" ", 1)[1].startswith(f"apply {second['run_id']} by ") and log[0].endswith(": no change")
    assert log[1].split(" ", 1)[1].startswith(f"apply {run['run_id']} by ")
    assert (second["inventory_commit"], run["inventory_commit"]) == (log[0].split()[0], log[1].split()[0])
    tagged = subprocess.run(["git", "-C", str(inventories), "rev-parse", f"run/{run['run_id']}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert tagged == run["inventory_commit"]
    between = json.loads(
        ruche("--workspace", str(lab), "inventory", "diff", run["run_id"], second["run_id"], "--json").stdout
    )
    assert between["summary"] == "no change"


def test_applied_servers_run_caddy_and_pull_through_the_configured_mirror(lab, ruche):
    assert ruche("--workspace", str(lab), "apply", "--server", "lab-2", "-q").exit_code == 0
    workspace = open_workspace(lab)
    servers = json.loads(ruche("--workspace", str(lab), "server", "show", "lab-2", "--json").stdout)
    target = SshTarget(
        name="lab-2", address=servers["address"], key_path=servers["ssh_key_path"],
        known_hosts_path=str(workspace.lab_dir / "ssh" / "known_hosts"),
    )  # fmt: skip
    # a server base changed by hand is drift: a Caddyfile edited, the firewall's boot unit disabled, this server's
    # key gone from the backup account; the next apply names each and converges the base again
    caddyfile = run_command(target, ["cat", "/etc/caddy/Caddyfile"])
    run_command(target, ["sh", "-c", "echo '# by hand' >> /etc/caddy/Caddyfile"])
    run_command(target, ["systemctl", "disable", "--quiet", "ruche-firewall.service"])
    on(lab, "lab-backup", "sed", "-i", "/ruche-backup@lab-2/d", "/srv/restic/.ssh/authorized_keys")
    drifted = json.loads(ruche("--workspace", str(lab), "apply", "--server", "lab-2", "--json").stdout)
    assert drifted["succeeded"] and drifted["servers_unchanged"] == []
    assert [(d["kind"], d["object"]) for d in drifted["server_drift"]["lab-2"]] == [
        ("file-changed", "/etc/caddy/Caddyfile"), ("unit-enabled", "ruche-firewall.service"),
        ("backup-account", "restic@lab-backup"),
    ]  # fmt: skip
    assert run_command(target, ["cat", "/etc/caddy/Caddyfile"]) == caddyfile
    assert run_command(target, ["systemctl", "is-enabled", "ruche-firewall.service"]).strip() == "enabled"
    assert "ruche-backup@lab-2" in on(lab, "lab-backup", "cat", "/srv/restic/.ssh/authorized_keys")
    # --full converges the base all the same, and a base converged again changes nothing (install.yml idempotent)
    full = json.loads(ruche("--workspace", str(lab), "apply", "--server", "lab-2", "--full", "--json").stdout)
    assert full["succeeded"] and full["servers_unchanged"] == [] and full["server_drift"] == {}
    assert full["changed"] == 0, full["hosts"]
    assert run_command(target, ["systemctl", "is-active", "caddy"]).strip() == "active"
    subuid = run_command(target, ["cat", "/etc/subuid"])
    assert f"ruche:{POOL_START}:{POOL_SIZE}" in subuid and "containers:2147483647" not in subuid
    drop_in = run_command(target, ["cat", "/etc/containers/registries.conf.d/50-ruche-mirror.conf"])
    assert drop_in == render_mirror_drop_in(workspace.config.registry)
    assert workspace.config.registry.mirror in drop_in


def test_apply_to_an_unknown_server_is_refused(lab, ruche):
    result = ruche("--workspace", str(lab), "apply", "--server", "nowhere")
    assert result.exit_code == 4 and "no server named 'nowhere'" in result.stderr


BROKEN = "3.5.98-never-starts"  # a Radicale version of the catalogue that never starts


@contextmanager
def radicale_version_on(lab: Path, image: str):
    """The lab workspace's catalogue with a Radicale version BROKEN on ``image``; yields a function that puts it on
    another image. Undone afterwards."""
    workspace = open_workspace(lab)
    saved = workspace.config
    catalog = workspace.root / f"catalog-{uuid.uuid4().hex[:6]}"
    shutil.copytree(BUNDLED_CATALOG_DIR, catalog)

    def on_image(image: str) -> None:
        entry = yaml.safe_load((catalog / "radicale.yaml").read_text())
        entry["versions"] = [v for v in entry["versions"] if v["version"] != BROKEN] + [
            {"version": BROKEN, "image": image}
        ]
        (catalog / "radicale.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True))

    on_image(image)
    workspace.save_config(saved.model_copy(update={"catalog_dir": catalog.name}))
    try:
        yield on_image
    finally:
        workspace.save_config(saved)
        shutil.rmtree(catalog)


def test_an_instance_that_cannot_start_ends_its_apply_at_once_with_the_registrys_or_its_units_answer(lab, ruche):
    """A first deployment whose image cannot be pulled, then one whose application exits at once (Miniflux's image
    without its database, as Radicale): each apply ends in seconds, not the role's start timeout (300 s), and says
    why: the registry's answer, the failing unit with its last journal lines (ruche-wait)."""
    w = ["--workspace", str(lab)]
    added = ruche(*w, "association", "add", "panne", "--name", "Panne", "--email", "contact@panne.example")
    assert added.exit_code == 0, added.stderr
    absent = f"lab.ruche.invalid/radicale:absent-{uuid.uuid4().hex[:8]}"
    with radicale_version_on(lab, absent) as on_image:
        created = ruche(*w, "instance", "create", "panne", "radicale", "--server", "lab-1", "--version", BROKEN)
        assert created.exit_code == 0, created.stderr
        try:
            started = time.monotonic()
            pulled = ruche(*w, "apply", "--instance", "panne/radicale")
            elapsed = time.monotonic() - started
            print(f"apply of an instance whose image cannot be pulled: failed in {elapsed:.1f} s", file=sys.__stderr__)
            assert pulled.exit_code == 1, pulled.stdout[-3000:] + pulled.stderr[-3000:]
            assert f"cannot pull {absent}: " in pulled.stderr, pulled.stderr[-3000:]
            assert "manifest unknown" in pulled.stderr.lower(), pulled.stderr[-3000:]  # the registry's own answer
            assert "`ruche lab up --service radicale` builds and pushes" in pulled.stderr  # a lab image: the hint
            assert "Wait until" not in pulled.stderr and elapsed < 150

            on_image("lab.ruche.invalid/miniflux:trixie")
            started = time.monotonic()
            failed = ruche(*w, "apply", "--instance", "panne/radicale")
            elapsed = time.monotonic() - started
            # the wait itself, between its task's start and the next task's (the progress lines' times)
            waited = re.search(r"\[ *([\d.]+)s\] task: Wait until panne--radicale answers on its loopback port\n"
                               r"\[ *([\d.]+)s\] task: Report why", failed.stderr)  # fmt: skip
            assert waited, failed.stderr[-3000:]
            wait_seconds = float(waited[2]) - float(waited[1])
            print(f"apply of an instance whose application exits at once: failed in {elapsed:.1f} s, its wait ended "
                  f"after {wait_seconds:.1f} s (start timeout 300 s)", file=sys.__stderr__)  # fmt: skip
            assert wait_seconds < 30, wait_seconds
            report = failed.stderr[failed.stderr.index("FAILED on lab-1") :]
            assert "does not answer on its loopback port" in report, report
            assert re.search(r"ruche-panne--radicale-app\.service (failed|restarted \d+ times) [\d.]+ s into the wait "
                             r"for http://127\.0\.0\.1:\d+/\.web/", report), report  # fmt: skip
            assert "its last lines:\n" in report and "ruche apply --instance panne/radicale" in report, report
            assert elapsed < 150, elapsed
            shown = json.loads(ruche(*w, "instance", "show", "panne/radicale", "--json").stdout)
            assert shown["state"] == "failed", shown
        finally:
            deleted = ruche(*w, "instance", "delete", "panne/radicale", "--purge", "--no-final-backup", "--yes", "-q")
            assert deleted.exit_code == 0, deleted.stdout[-2000:] + deleted.stderr[-2000:]
