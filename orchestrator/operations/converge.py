"""Converging servers and instances: one run of ``playbooks/site.yml`` through ansible-runner and its outcome recorded.

The server base, then every instance of the targeted servers (or one instance). Each instance's outcome comes from the
run's own data (``set_stats`` of the ``ruche_instance`` role): converged instances record the deployment they now
run; failed ones, and every instance of a server that went away, are marked failed with the run id and are converged
again by the next run. Running instances are then checked through Caddy. ``ruche apply`` is this, and so is every
verb that deploys (restore, move, upgrade, suspend/resume/delete, the worker's queued runs).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from orchestrator.operations.backup_jobs import ensure_repositories
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.fingerprints import current_fingerprints
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.inventories import record_history, write_inventory
from orchestrator.runner import RunResult, inventory_lock, run_playbook
from orchestrator.state.associations import ensure_backup_password
from orchestrator.state.database import StateStore
from orchestrator.state.domains import release
from orchestrator.state.instances import ACTIVE_STATES, get_instance, instance_as_dict, list_instances
from orchestrator.state.models import Instance
from orchestrator.state.runs import record_run
from orchestrator.state.servers import get_server
from orchestrator.workspace import Workspace

# What a converged instance becomes, by desired state.
CONVERGED_STATE = {"present": "running", "suspended": "suspended", "absent": "deleted", "purged": "deleted"}


def _progress_from_events(progress: Progress):
    def on_event(event: dict) -> None:
        data = event.get("event_data", {})
        kind = event.get("event")
        if kind == "playbook_on_task_start":
            progress(f"task: {data.get('task', '?')}")
        elif kind == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            progress(f"  changed on {data.get('host')}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            message = (data.get("res") or {}).get("msg", "")
            progress(f"  FAILED on {data.get('host')}: {data.get('task')}: {message}")
        elif kind == "runner_on_unreachable":
            progress(f"  UNREACHABLE: {data.get('host')}")

    return on_event


def run_strategy(server: str | None, instance: str | None) -> str:
    """A run over the fleet goes with the free strategy: each server through its own instances at its own pace (with
    the linear strategy, the per-instance includes, different on every server, run one after another across servers:
    an apply of N servers took the sum of their times, not the longest). A run on one server (an instance's upgrade,
    restore, catalog check step) stays linear: free's scheduling loop costs the control machine more CPU. (site.yml's
    first play, the servers' base, is linear whatever this gives: see there.)"""
    return "linear" if server is not None or instance is not None else "free"


def _record_outcomes(instances: list[Instance], fingerprints: dict[str, str], result: RunResult) -> None:
    converged = set(result.custom_stats.get("ruche_converged") or [])
    for instance in instances:
        instance.last_run_id = result.run_id
        if instance.identifier in converged:
            instance.state = CONVERGED_STATE[instance.desired_state]
            instance.applied_fingerprint = fingerprints[instance.address]
            if instance.state == "deleted":
                instance.id_slot = None  # its files are gone from the server: the range may serve again
        else:  # failed, or its server failed or went away before reaching it
            instance.state = "failed"


def converge(
    workspace: Workspace,
    store: StateStore,
    *,
    server: str | None = None,
    instance: str | None = None,
    progress: Progress = no_progress,
    check_health: bool = True,
    start_timeout: int | None = None,
    upgrading: bool = False,
    restoring: bool = False,
    full: bool = False,
    full_bases: bool = False,
) -> dict:
    """Write the inventory and converge the servers (``server`` only, or the server of ``instance``).

    Gives the run (id, status, per-host counts, artifacts) with ``instances``: the outcome and
    health of each instance it touched. Raises NotFound for an unknown server or instance,
    MissingPrerequisite without a vault password when instances have secrets. A failed run is
    reported in the result, not raised. ``start_timeout``: seconds an instance may take to answer
    (the role's default otherwise; upgrades use ruche.toml's [upgrades] start_timeout_seconds).
    ``upgrading``: the run deploying an upgrade's new version (the role does not wait for it to
    answer nor run its setup commands: the upgrade's post-start commands come first).
    ``restoring``: the run deploying a new instance that a snapshot will fill (only its database is
    started: the restore starts the application with its data; no wait, no setup commands).
    An instance whose server holds its fingerprint as applied and which did not drift is skipped
    (listed in ``unchanged``; ``drift``: what was found changed on the servers, by instance id, and
    converged again); ``full`` converges every targeted instance all the same. A server's base (the
    ruche_server role) is skipped the same way (``servers_unchanged``, ``server_drift``); ``full_bases`` converges
    it all the same (`ruche apply --full`).
    """
    catalog = workspace.catalog
    with store.session() as session:
        only = get_instance(session, instance) if instance is not None else None
        limit = only.server.name if only is not None else server
        if server is not None:
            get_server(session, server)
        targeted = [only] if only is not None else [
            i for i in list_instances(session) if i.state in ACTIVE_STATES and (server is None or i.server.name == server)
        ]  # fmt: skip
        if workspace.config.backup.repository is not None:
            # associations registered before backups were configured get their repository password now
            for association in {
                i.association.slug: i.association for i in list_instances(session) if i.state in ACTIVE_STATES
            }.values():
                ensure_backup_password(association, workspace.vault())
            session.flush()
        computed = current_fingerprints(workspace, session, catalog, [i.id for i in targeted])
        fingerprints = {i.address: computed[i.id] for i in targeted}
        addresses = [i.address for i in targeted]
        needs_vault = any(i.secrets for i in list_instances(session) if i.state in ACTIVE_STATES) or (
            workspace.config.backup.repository is not None and bool(targeted)
        )
        exported = write_inventory(workspace, session)
    progress(f"inventory {'written' if exported['changed'] else 'unchanged'}: {exported['directory']}")
    result = run_playbook(
        "site.yml", inventory=Path(exported["directory"]), runs_dir=workspace.root / "runs", limit=limit,
        extravars=({"ruche_instance_only": only.identifier} if only is not None else {})
        | ({"ruche_instance_start_timeout": start_timeout} if start_timeout else {})
        | ({"ruche_instance_upgrading": True} if upgrading else {})
        | ({"ruche_instance_restoring": True} if restoring else {})
        | ({"ruche_instance_full": True} if full else {})
        | ({"ruche_server_full": True} if full_bases else {}) or None,
        vault_password=workspace.vault_password() if needs_vault else None,
        on_event=_progress_from_events(progress),
        strategy=run_strategy(server, instance),
    )  # fmt: skip
    summary = asdict(result)
    summary["changed"] = result.changed
    summary["succeeded"] = result.succeeded
    summary["unchanged"] = sorted(result.custom_stats.get("ruche_unchanged") or [])
    summary["drift"] = dict(sorted((result.custom_stats.get("ruche_drift") or {}).items()))
    # servers whose base (the ruche_server role) held what this run would apply, undrifted: skipped as instances are
    summary["servers_unchanged"] = sorted(result.custom_stats.get("ruche_server_unchanged") or [])
    summary["server_drift"] = dict(sorted((result.custom_stats.get("ruche_server_drift") or {}).items()))
    with store.session() as session:
        record_run(session, summary, target=instance or server or "all")
        rows = [get_instance(session, address) for address in addresses]
        _record_outcomes(rows, fingerprints, result)
        for row in rows:
            if row.state == "deleted":  # its domains are free for others again
                release(session, row, reason="instance deleted")
        if any(i.state == "deleted" for i in rows):
            write_inventory(workspace, session)  # deleted instances leave the inventory
        if workspace.config.backup.repository is not None:
            # each association's repository exists before its instances' timers can back up in parallel
            running = [i.address for i in rows if i.state == "running"]
            summary["backup_repository_errors"] = ensure_repositories(session, running, progress) if running else {}
        if check_health and rows:
            progress("checking health through Caddy")
            check_and_record_health(workspace, catalog, [i for i in rows if i.state != "deleted"])
        summary["instances"] = [instance_as_dict(i) for i in rows]
    # one commit of the inventories' history per apply, tagged with its run id (even when unchanged)
    with inventory_lock(Path(exported["directory"])):
        recorded = record_history(workspace, what="apply", run_id=result.run_id, always=True)
    summary["inventory_commit"] = recorded["commit"] if recorded else None
    return summary
