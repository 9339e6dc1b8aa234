"""``ruche instance move``: move one instance, its data with it, to another application server.

The steps (:func:`move_instance`): its application stopped on its server, the database kept up for the dump,
so that no write comes after the snapshot; a safety backup there; its database stopped; its row switched to
the new server (the same domain, secrets and ID range; a free loopback port there), which is applied: the
instance is deployed empty, only its database started, as for a restore into a new instance; the snapshot
restored there by ``ruche-backup restore``, files and database, as ``backup restore`` does (the snapshot is
found in the association's repository, which every server reaches, by the instance's id, its restic host;
its fixed ID range is the same on every server, so the files' owners stay right); its health through the
new server's Caddy; then its old copy removed from the old server by the role's own removal
(``playbooks/remove-copy.yml``: units, network, site; data to that server's trash); an ``instance.moved``
event. A failure before the new copy answers undoes the move: the row back on the old server, the old copy
started again, the new server's copy removed (``instance.move_failed``). A move whose old copy could not be
removed at the end is complete; the same command again removes that copy (``instance.move_cleaned``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.backups import backup_tool
from orchestrator.deployment import free_http_port, instance_variables
from orchestrator.errors import Conflict, MissingPrerequisite, NotFound, OperationFailed, RucheError
from orchestrator.images import LAB_ONLY_HINT, deployed_images, lab_only
from orchestrator.operations.backup_jobs import back_up
from orchestrator.operations.converge import converge
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.inventories import write_inventory
from orchestrator.placement import LAB_ONLY_REASON, Demand, evaluate
from orchestrator.remote import SshTarget, run_command, run_tool
from orchestrator.resolver import zone_line
from orchestrator.runner import run_playbook
from orchestrator.state.backups import record_tool_result
from orchestrator.state.database import StateStore
from orchestrator.state.events import list_events, record_event
from orchestrator.state.instances import capacities, deployment_record, get_instance, used_http_ports
from orchestrator.state.runs import record_run
from orchestrator.state.servers import get_server
from orchestrator.state.upgrades import running_upgrade
from orchestrator.unit_watch import wait_watching
from orchestrator.workspace import Workspace

REMOVE_COPY_PLAYBOOK = "remove-copy.yml"
HEALTH_TIMEOUT = 120  # seconds the restored copy (or the old one, started again) may take to answer
WAIT_TOOL = "/usr/local/sbin/ruche-wait"  # installed by the server role


@dataclass(frozen=True)
class _Move:
    """What the steps of one move need, read once from the state."""

    address: str
    identifier: str
    old: SshTarget
    new: SshTarget
    old_port: int
    new_port: int
    old_fingerprint: str | None
    app_units: tuple[str, ...]  # application and sidecars, as systemd services
    database_unit: str | None
    copy: dict  # the instance as playbooks/remove-copy.yml removes it (identifiers only)

    @property
    def timer(self) -> str:
        return f"ruche-backup@{self.identifier}.timer"


class _StepFailed(Exception):
    """A step of the move did not succeed (its message says how)."""


def preview(workspace_path: Path | None, address: str, *, to: str) -> dict:
    """Check that ``address`` may move to server ``to``; give what the move would do, changing nothing.

    Raises MissingPrerequisite (no backup repository), NotFound (instance, server), Conflict (already there,
    not running, being upgraded, the server cannot take it: why, as placement says it).
    """
    with opened(workspace_path) as (workspace, store), store.session() as session:
        return _plan(workspace, session, address, to)


def _plan(workspace: Workspace, session, address: str, to: str) -> dict:
    if workspace.config.backup.repository is None:
        raise MissingPrerequisite(
            f"cannot move {address}: no backup repository is configured (its data moves as a snapshot)",
            hint="set [backup] repository in ruche.toml (a path, sftp:USER@HOST:/PATH or s3:...), then `ruche apply`",
        )
    instance = get_instance(session, address)
    target = get_server(session, to)
    old = instance.server.name
    plan = {"instance": address, "service": instance.service_id, "from": old, "to": to, "domain": instance.domain,
            "dns": zone_line(instance.domain, target.address),
            # its association's own domains point at the old server: re-pointed, their certificates follow on the new
            "own_domains_dns": [zone_line(name, target.address) for name in instance.own_domains or []],
            "dry_run": True}  # fmt: skip
    if target.id == instance.server_id:
        left_on = _copy_left_by_a_move(session, address, to)
        if left_on is None:
            raise Conflict(
                f"{address} is already on {to}", hint="name another application server (`ruche server list`)"
            )
        return plan | {"from": left_on, "cleanup_only": True, "placement": None,
                       "steps": [f"remove the copy of {address} its move left on {left_on} (units, network, site; "
                                 f"data to {left_on}'s trash)"]}  # fmt: skip
    if instance.desired_state != "present" or instance.state != "running":
        raise Conflict(f"{address} is {instance.state} (desired {instance.desired_state}): only a running instance is moved",
                       hint=f"`ruche instance resume {address}` or `ruche apply --instance {address}` first")  # fmt: skip
    if running_upgrade(session, address) is not None:
        raise Conflict(f"{address} is being upgraded", hint=f"wait until it ends (`ruche upgrades {address}`)")
    service = workspace.catalog.get(instance.service_id)
    demand = Demand(
        association=instance.association.slug, cpu=instance.cpu, memory_mb=instance.memory_mb,
        disk_gb=instance.disk_gb, server=to,
        lab_only_images=tuple(lab_only(deployed_images(service, instance.service_version, workspace.config.images.registry))),
    )  # fmt: skip
    capacity = next(c for c in capacities(session, instance.association_id) if c.name == to)
    ratios = workspace.config.placement
    verdict = evaluate(demand, capacity, cpu_ratio=ratios.cpu_overcommit, memory_ratio=ratios.memory_overcommit)
    if not verdict.eligible:
        raise Conflict(
            f"{address} cannot move to {to}: {verdict.reason}",
            hint=LAB_ONLY_HINT
            if verdict.reason.startswith(LAB_ONLY_REASON)
            else "choose another application server with room for it (`ruche server list`), or free capacity there",
        )
    try:
        port = free_http_port(used_http_ports(session, target.id))
    except ValueError as error:
        raise Conflict(f"server {to}: {error}", hint="choose another server") from None
    database = " (its database kept up for the dump)" if service.database != "none" else ""
    steps = [
        f"stop {address}'s application on {old}{database}: no write after the snapshot",
        f"take a safety backup of it on {old}",
        f"stop it on {old}; record it on {to} (loopback port {port}) and apply {to}: deployed empty",
        f"restore that snapshot on {to} (files and database)",
        f"check it answers on {to} (on its loopback port there; through {to}'s Caddy too with internal certificates)",
        f"remove its copy from {old} (units, network, site; data to {old}'s trash)",
    ]
    return plan | {"cleanup_only": False, "http_port": port, "steps": steps,
                   "placement": {"server": to, "eligible": True, "reason": verdict.reason},
                   "on_failure": f"until it answers on {to}: recorded on {old} again, started again there, "
                                 f"{to}'s copy removed"}  # fmt: skip


def _copy_left_by_a_move(session, address: str, server: str) -> str | None:
    """The server whose copy of ``address`` the last move (to ``server``) could not remove, if any."""
    last = list_events(session, subject=address, kind="instance.move*", limit=1)
    if last and last[0].kind == "instance.moved" and last[0].detail.get("to") == server:
        if not last[0].detail.get("old_copy_removed"):
            return last[0].detail.get("from")
    return None


def move_instance(workspace_path: Path | None, address: str, *, to: str, progress: Progress = no_progress) -> dict:
    """Move ``address`` to server ``to`` with its data (see the module's docstring); give what was done.

    Gives ``{"instance", "from", "to", "snapshot", "health", "health_detail", "old_copy_removed",
    "old_copy_error", "runs", "dns", "dry_run": False}``. Raises what :func:`preview` raises, changing nothing;
    OperationFailed when a step fails, once the move is undone (the message says what was done and undone).
    """
    with opened(workspace_path) as (workspace, store):
        with store.session() as session:
            plan = _plan(workspace, session, address, to)
            if plan["cleanup_only"]:
                move = None
                copy = _copy_of(workspace, get_instance(session, address))
            else:
                move = _move_of(workspace, session, address, to, plan["http_port"])
                copy = move.copy
        if move is None:
            return _clean_up(workspace, store, plan, copy, progress)
        old, new = move.old.name, move.new.name
        runs: dict[str, str | None] = {}
        stopped = switched = deployed = False
        snapshot = None
        step = "stop"  # the step under way, named in the error
        try:
            progress(f"{address}: stopping its application on {old} (no write after the snapshot)")
            stopped = True
            run_tool(move.old, ["systemctl", "stop", move.timer], timeout=120)  # no timer-run backup meanwhile
            run_command(move.old, ["systemctl", "stop", "--", *move.app_units], timeout=300)
            step = "safety backup"
            progress(f"{address}: safety backup on {old}")
            with store.session() as session:
                (backed_up,) = back_up(workspace, session, [address], reason="safety", progress=progress)
            if backed_up["status"] != "success":
                raise _StepFailed(f"the safety backup failed: {backed_up['detail'].get('error')}")
            snapshot = backed_up["snapshot_id"]
            step = "stop"
            if move.database_unit:
                run_command(move.old, ["systemctl", "stop", "--", move.database_unit], timeout=300)
            step = "deploy"
            progress(f"{address}: recorded on {new}; deploying it there (database only, the snapshot brings the rest)")
            with store.session() as session:
                instance = get_instance(session, address)
                instance.server = get_server(session, new)
                instance.http_port = move.new_port
            switched = deployed = True
            run = converge(workspace, store, instance=address, progress=progress, check_health=False, restoring=True)
            runs["deploy"] = run["run_id"]
            if not run["succeeded"]:
                raise _StepFailed(f"deploying it on {new} failed (run {run['run_id']})")
            step = "restore"
            _restore(workspace, store, move, snapshot, progress)
            step = "health"
            # the gate is the restored copy answering on its new server, asked there on its loopback port: with public
            # certificates (proxy_tls acme) the new server's Caddy gets one only once DNS points at it, after the move
            progress(f"{address}: waiting for it to answer on {new} (port {move.new_port})")
            health, detail = _wait_until_answering_on(workspace, store, address, move)
            if health == "healthy" and _through_caddy_now(workspace):
                progress(f"{address}: answering on {new}; checking it through {new}'s Caddy")
                health, detail = _wait_until_healthy(workspace, store, address, move.new)
            if health != "healthy":
                raise _StepFailed(f"restored on {new}, but it does not answer: {detail}")
        except (Exception, KeyboardInterrupt) as error:
            reason = error.message if isinstance(error, RucheError) else str(error) or type(error).__name__
            undone, left = _undo(
                workspace, store, move, stopped=stopped, switched=switched, deployed=deployed, progress=progress
            )
            with store.session() as session:
                record_event(session, kind="instance.move_failed", subject=address, detail={
                    "from": old, "to": new, "step": step, "error": reason, "snapshot": snapshot, "runs": runs,
                    "undone": undone, "left": left,
                })  # fmt: skip
            if isinstance(error, KeyboardInterrupt):
                raise
            message = f"moving {address} to {new} failed ({step}): {reason}"
            message += f"; undone: {', '.join(undone)}" if undone else "; nothing had changed"
            message += f"; NOT undone: {'; '.join(left)}" if left else ""
            hint = f"fix the cause, then `ruche instance move {address} --to {new}` again"
            if snapshot:
                hint += f" (the safety snapshot {snapshot[:8]} stays in the association's repository)"
            raise OperationFailed(message, hint=hint) from None
        progress(f"{address}: answering on {new}; removing its old copy from {old}")
        removal = _remove_copy(workspace, store, address, old, move.copy, progress)
        runs["old_copy_removal"] = removal["run_id"]
        detail_of_event = {"from": old, "to": new, "snapshot": snapshot, "runs": runs,
                           "http_port": {"from": move.old_port, "to": move.new_port},
                           "old_copy_removed": removal["removed"]}  # fmt: skip
        with store.session() as session:
            record_event(session, kind="instance.moved", subject=address, detail=detail_of_event)
        return {"instance": address, "from": old, "to": new, "snapshot": snapshot, "health": health,
                "health_detail": detail, "old_copy_removed": removal["removed"], "old_copy_error": removal["error"],
                "runs": runs, "dns": plan["dns"], "own_domains_dns": plan["own_domains_dns"], "cleanup_only": False,
                "dry_run": False}  # fmt: skip


def _move_of(workspace: Workspace, session, address: str, to: str, port: int) -> _Move:
    instance = get_instance(session, address)
    copy = _copy_of(workspace, instance)
    app_units = (copy["app"]["container"], *(s["container"] for s in copy["sidecars"]))
    return _Move(
        address=address, identifier=instance.identifier, old=SshTarget.of(instance.server),
        new=SshTarget.of(get_server(session, to)), old_port=instance.http_port, new_port=port,
        old_fingerprint=instance.applied_fingerprint, app_units=tuple(f"{u}.service" for u in app_units),
        database_unit=f"{copy['database']['container']}.service" if copy["database"] else None, copy=copy,
    )  # fmt: skip


def _copy_of(workspace: Workspace, instance) -> dict:
    """The instance as the role's removal reads it: its id, names and containers (as deployment names them)."""
    service = workspace.catalog.get(instance.service_id)
    variables = instance_variables(
        deployment_record(instance), service, image_registry=workspace.config.images.registry
    )
    return {
        "identifier": str(variables["identifier"]), "association": str(variables["association"]), "name": str(variables["name"]),
        "state": "absent", "app": {"container": variables["app"]["container"]},
        "database": {"container": variables["database"]["container"]} if variables["database"] else None,
        "sidecars": [{"container": s["container"]} for s in variables["sidecars"]],
    }  # fmt: skip


def _restore(workspace: Workspace, store: StateStore, move: _Move, snapshot: str, progress: Progress) -> None:
    """Restore ``snapshot`` into the new copy (``ruche-backup restore``: files, database, then the service started
    and out of the snapshot's quiet state); record it; raise _StepFailed when it fails."""
    progress(f"{move.address}: restoring snapshot {snapshot[:8]} on {move.new.name}")
    try:
        answer = backup_tool(move.new, "restore", move.identifier, "--snapshot", snapshot)
    except RucheError as error:
        answer = {"status": "failed", "error": str(error)}
    answer["reason"] = "move"
    with store.session() as session:
        record_tool_result(session, get_instance(session, move.address), move.new.name,
                           {k: v for k, v in answer.items() if k not in ("manifest", "inspected")}, kind="restore")  # fmt: skip
    if answer.get("status") != "success":
        raise _StepFailed(f"restoring the snapshot on {move.new.name} failed: {answer.get('error')}")


def _through_caddy_now(workspace: Workspace) -> bool:
    """Whether the moved copy can be checked through its new server's Caddy before DNS changes (the lab's internal
    certificates; public ones come only once the name points at the new server)."""
    return workspace.config.proxy_tls == "internal"


def _wait_until_answering_on(workspace: Workspace, store: StateStore, address: str, move: _Move) -> tuple[str, str]:
    """Ask the restored copy on its new server, on its loopback port with its domain as Host, as its entry's health
    check says, until it answers or HEALTH_TIMEOUT passes, its units watched meanwhile (``ruche-wait``, installed by
    the server role: one SSH command; a unit that fails ends the wait at once); give (health, detail)."""
    with store.session() as session:
        instance = get_instance(session, address)
        health = workspace.catalog.get(instance.service_id).health
        domain = instance.domain
    units = ([move.database_unit] if move.database_unit else []) + list(move.app_units)
    argv = [WAIT_TOOL, str(move.new_port), health.path, domain, str(health.expected_status), str(HEALTH_TIMEOUT),
            *([f"--contains={health.body_contains}"] if health.body_contains is not None else []),
            *(f"--unit={unit}" for unit in units)]  # fmt: skip
    code, output = run_tool(move.new, ["sh", "-c", 'exec "$@" 2>&1', "sh", *argv], timeout=HEALTH_TIMEOUT + 60)
    detail = f"{output.strip() or f'{WAIT_TOOL} exited {code}'} (on {move.new.name}, port {move.new_port})"
    return ("healthy" if code == 0 else "unhealthy"), detail


def _wait_until_healthy(workspace: Workspace, store: StateStore, address: str, watch: SshTarget) -> tuple[str, str]:
    """Check ``address`` through its server's Caddy until it answers or HEALTH_TIMEOUT passes, its units on
    ``watch`` watched meanwhile (one that fails or restarts in a loop ends the wait at once); give its health."""
    with store.session() as session:
        catalog = workspace.catalog
        instance = get_instance(session, address)

        def answers() -> tuple[bool, str]:
            check_and_record_health(workspace, catalog, [instance])
            return instance.health == "healthy", instance.health_detail

        outcome, detail = wait_watching(answers, HEALTH_TIMEOUT, (watch, instance.identifier))
        if outcome == "failed":
            instance.health_detail = detail.splitlines()[0]
            return "unhealthy", detail
        return instance.health, instance.health_detail


def _undo(workspace: Workspace, store: StateStore, move: _Move, *, stopped: bool, switched: bool, deployed: bool,
          progress: Progress) -> tuple[list[str], list[str]]:  # fmt: skip
    """Put ``move``'s instance back as it was on its old server; give (what was undone, what could not be)."""
    old, new = move.old.name, move.new.name
    undone: list[str] = []
    left: list[str] = []
    if switched:
        try:
            with store.session() as session:
                instance = get_instance(session, move.address)
                instance.server = get_server(session, old)
                instance.http_port = move.old_port
                instance.state = "running"
                instance.applied_fingerprint = move.old_fingerprint
                session.flush()
                write_inventory(workspace, session)
            undone.append(f"recorded on {old} again")
        except Exception as error:  # said, and the rest is still undone
            left.append(f"it is still recorded on {new}: {error}")
    if stopped:
        progress(f"{move.address}: starting it again on {old}")
        units = ([move.database_unit] if move.database_unit else []) + list(move.app_units)
        try:
            run_command(move.old, ["systemctl", "start", "--", *units], timeout=300)
            run_tool(move.old, ["systemctl", "start", move.timer], timeout=120)
            health, detail = _wait_until_healthy(workspace, store, move.address, move.old)
            undone.append(f"started again on {old} ({health}: {detail})")
        except Exception as error:
            left.append(f"it could not be started again on {old}: {error} (`ruche apply --instance {move.address}`)")
    if deployed:
        removal = _remove_copy(workspace, store, move.address, new, move.copy, progress)
        if removal["removed"]:
            undone.append(f"{new}'s copy removed (its files in {new}'s trash)")
        else:
            left.append(f"{new}'s copy could not be removed ({removal['error']}); a move to {new} again replaces it")
    return undone, left


def _remove_copy(
    workspace: Workspace, store: StateStore, address: str, server: str, copy: dict, progress: Progress
) -> dict:
    """Remove ``copy`` (see :func:`_copy_of`) from ``server`` with playbooks/remove-copy.yml, recorded as a run;
    give ``{"run_id", "removed", "error"}`` (nothing raises)."""
    progress(f"{address}: removing its copy from {server} (its data to {server}'s trash)")

    def on_event(event: dict) -> None:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_failed" and not data.get("ignore_errors"):
            progress(f"  FAILED on {data.get('host')}: {data.get('task')}: {(data.get('res') or {}).get('msg', '')}")
        elif event.get("event") == "runner_on_unreachable":
            progress(f"  UNREACHABLE: {data.get('host')}")

    try:
        result = run_playbook(
            REMOVE_COPY_PLAYBOOK, inventory=workspace.inventories_dir / workspace.config.environment,
            runs_dir=workspace.root / "runs", limit=server, extravars={"ruche_copy": copy},
            vault_password=workspace.vault_password(), on_event=on_event,
        )  # fmt: skip
        with store.session() as session:
            record_run(session, asdict(result), target=f"{address} copy on {server}"[:100])
    except Exception as error:  # reported by the caller, which goes on
        return {"run_id": None, "removed": False, "error": str(error)}
    stats = result.custom_stats
    removed = (
        result.succeeded
        and copy["identifier"] in (stats.get("ruche_converged") or [])
        and copy["identifier"] not in (stats.get("ruche_failed") or [])
    )
    return {"run_id": result.run_id, "removed": removed,
            "error": None if removed else f"run {result.run_id}: {result.status} (`ruche runs show {result.run_id}`)"}  # fmt: skip


def _clean_up(workspace: Workspace, store: StateStore, plan: dict, copy: dict, progress: Progress) -> dict:
    """Remove the old copy a complete move left behind (its removal had failed); give what was done."""
    address, left_on = plan["instance"], plan["from"]
    with store.session() as session:
        try:
            get_server(session, left_on)
        except NotFound:
            raise Conflict(f"{address}'s old copy was left on {left_on}, which is no longer registered",
                           hint=f"remove what is left of {copy['identifier']} on that machine by hand") from None  # fmt: skip
    removal = _remove_copy(workspace, store, address, left_on, copy, progress)
    if removal["removed"]:
        with store.session() as session:
            record_event(session, kind="instance.move_cleaned", subject=address,
                         detail={"from": left_on, "to": plan["to"], "run": removal["run_id"]})  # fmt: skip
    return {"instance": address, "from": left_on, "to": plan["to"], "snapshot": None, "health": None,
            "health_detail": None, "old_copy_removed": removal["removed"], "old_copy_error": removal["error"],
            "runs": {"old_copy_removal": removal["run_id"]}, "dns": plan["dns"],
            "own_domains_dns": plan["own_domains_dns"], "cleanup_only": True,
            "dry_run": False}  # fmt: skip
