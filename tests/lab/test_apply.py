"""`ruche apply` through ansible-runner over real SSH to the lab servers."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from orchestrator.idranges import POOL_SIZE, POOL_START
from orchestrator.registries import render_mirror_drop_in
from orchestrator.remote import SshTarget, run_command
from orchestrator.workspace import open_workspace


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
    assert run_command(target, ["systemctl", "is-active", "caddy"]).strip() == "active"
    subuid = run_command(target, ["cat", "/etc/subuid"])
    assert f"ruche:{POOL_START}:{POOL_SIZE}" in subuid and "containers:2147483647" not in subuid
    drop_in = run_command(target, ["cat", "/etc/containers/registries.conf.d/50-ruche-mirror.conf"])
    assert drop_in == render_mirror_drop_in(workspace.config.registry)
    assert workspace.config.registry.mirror in drop_in


def test_apply_to_an_unknown_server_is_refused(lab, ruche):
    result = ruche("--workspace", str(lab), "apply", "--server", "nowhere")
    assert result.exit_code == 4 and "no server named 'nowhere'" in result.stderr
