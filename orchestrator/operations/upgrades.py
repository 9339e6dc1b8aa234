"""An instance's upgrade (``ruche instance upgrade``, ``ruche upgrade``, the worker): one instance moved to a newer
version of its service, or back where it was.

Order (each recorded in the ``upgrades`` row, the runs and the audit trail):

1. refusals, with nothing changed: an unknown version, a downgrade, a step the entry's rule does not
   allow, an instance not running or not healthy (checked now), no backup repository, an upgrade
   of the same instance already running;
2. the entry's ``upgrade.data_check`` command is run in the app container (its output is kept);
3. a safety backup (reason ``safety``); the upgrade is refused if it fails;
4. per step of the path: when the database engine's major changes, ``ruche-db-move move`` (the
   engine's own dump, loaded into a new data directory by the new engine; the old one kept aside);
   the instance's recorded version moves and one ``apply`` of the instance deploys the new images;
   the entry's ``upgrade.after_start`` commands; the health gate (the entry's check, through Caddy);
   the data check again, whose output must be the same;
5. on any failure, the rollback: the kept data directory back, the previous version applied, the
   safety snapshot restored (files and database), the instance answering again.

Each act that changes something is written in the upgrade's journal (``detail.journal``) before it is done, so
the rollback undoes exactly what was started, whatever step failed. The upgrade also records the process
running it (``detail.process``, ``HOST:PID:START:TOKEN``): an upgrade still ``running`` whose process is gone
(ruche killed, the machine rebooted) is interrupted, and the next ``ruche instance upgrade`` of that instance,
``ruche apply`` or the worker finishes it (its journal says every step passed) or rolls it back, recorded in
the upgrade (``detail.interrupted``, ``detail.recovered_by``) and shown by ``ruche upgrades``.
"""

from __future__ import annotations

import os
import socket
import time

from orchestrator.backups import db_move_tool, operation_units_of
from orchestrator.catalog import Service
from orchestrator.errors import Conflict, OperationFailed
from orchestrator.images import deployed_image, deployed_images, ensure_present, lab_only, lab_only_refusal
from orchestrator.operations.backup_jobs import back_up, require_backups
from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.converge import converge
from orchestrator.operations.health_checks import check_and_record_health
from orchestrator.operations.restores import restore_into
from orchestrator.processes import WORKER_VARIABLE, is_local, stop_processes_of_worker, worker_name
from orchestrator.remote import SshTarget, run_tool
from orchestrator.state.actors import current_actor
from orchestrator.state.database import StateStore
from orchestrator.state.events import record_event
from orchestrator.state.instances import get_instance
from orchestrator.state.models import Upgrade, utc_now
from orchestrator.state.upgrades import is_interrupted, running_upgrade, running_upgrades, upgrade_as_dict
from orchestrator.unit_watch import failing_unit, instance_units
from orchestrator.workspace import Workspace

COMMAND_TIMEOUT = 3600  # one post-start command (a large Nextcloud's `occ upgrade` takes a while)


class StepFailed(Exception):
    """A step of the upgrade failed; ``output`` is what it printed."""

    def __init__(self, step: str, message: str, output: str = "") -> None:
        super().__init__(message)
        self.step, self.output = step, output


def _app_command(target: SshTarget, container: str, user: str | None, command: list[str]) -> tuple[int, str]:
    argv = ["podman", "exec"] + (["--user", user] if user else []) + [container, *command]
    return run_tool(target, argv, timeout=COMMAND_TIMEOUT)


def _app_command_when_up(target: SshTarget, identifier: str, user: str | None, command: list[str],
                         timeout: float) -> tuple[int, str]:  # fmt: skip
    """Run ``command`` once the new version's container runs and its service can take it: a command
    that fails is tried again every 5 s within ``timeout`` (its database may still be starting), unless a unit of
    the instance failed or restarts in a loop (then its last log lines end the output at once)."""
    deadline = time.monotonic() + timeout
    first = instance_units(target, identifier)
    while True:
        code, output = _app_command(target, f"ruche-{identifier}-app", user, command)
        if code == 0 or time.monotonic() > deadline:
            return code, output
        failing = failing_unit(target, identifier, first)
        if failing:
            return code, f"{output}\n{failing}".strip()
        time.sleep(max(0.0, min(5.0, deadline - time.monotonic())))


def _pull_images(service: Service, target: SshTarget, steps: list[dict], registry: str | None) -> str:
    """Have every image the upgrade's steps deploy on the server before anything stops (application and its
    sidecars, database; ``registry``: [images] registry); raises StepFailed with the registry's answer when one
    cannot be pulled."""
    images = [image for step in steps for image in deployed_images(service, step["to"], registry)]
    present, output = ensure_present(target, images)
    if not present:
        raise StepFailed("images", f"an image of the new version cannot be had on {target.name}", output)
    return output


def _data_check(service: Service, target: SshTarget, container: str) -> str | None:
    if service.upgrade.data_check is None:
        return None
    code, output = _app_command(target, container, service.exec_user, list(service.upgrade.data_check))
    if code != 0:
        raise StepFailed("data check", f"the data check exited {code}", output)
    return output


def preview(
    workspace: Workspace, store: StateStore, address: str, *, to: str | None = None, check_health: bool = True
) -> dict:
    """Check that ``address`` may be upgraded (to ``to``, default: its service's current version); give the plan.

    Raises InvalidInput (version, downgrade, disallowed step), Conflict (not running, unhealthy, an
    upgrade already running), MissingPrerequisite (no backups). Nothing is changed, except the
    instance's recorded health when ``check_health``.
    """
    with store.session() as session:
        require_backups(workspace)
        catalog = workspace.catalog
        instance = get_instance(session, address)
        service = catalog.get(instance.service_id)
        steps = service.upgrade_path(instance.service_version, to)
        if instance.server.origin != "lab":
            for step in steps:
                images = lab_only(deployed_images(service, step.version, workspace.config.images.registry))
                if images:
                    raise lab_only_refusal(f"{address} upgraded to {step.version}", instance.server.name, images)
        if instance.desired_state != "present" or instance.state != "running":
            raise Conflict(f"{address} is {instance.state} (desired {instance.desired_state}): only a running instance is upgraded",
                           hint=f"`ruche instance resume {address}` or `ruche apply --instance {address}` first")  # fmt: skip
        running = running_upgrade(session, address)
        if running is not None:
            if is_interrupted(running):
                raise Conflict(f"the upgrade {running.id} of {address} was interrupted at {running.step!r}",
                               hint=f"`ruche instance upgrade {address}` or `ruche apply --instance {address}` "
                               "rolls it back first")  # fmt: skip
            raise Conflict(f"{address} is being upgraded already", hint=f"`ruche upgrades {address}`")
        if steps and check_health:
            check_and_record_health(workspace, catalog, [instance])
            if instance.health != "healthy":
                raise Conflict(f"{address} is {instance.health} ({instance.health_detail}): an upgrade starts only from a "
                               "healthy instance, so that a rollback has something good to return to",
                               hint="`ruche status` and the service's logs; fix it, then upgrade")  # fmt: skip
        previous = service.release(instance.service_version)
        planned, before = [], previous
        for step in steps:
            planned.append({"from": before.version, "to": step.version,
                            "image": deployed_image(step.image, workspace.config.images.registry),
                            "database_move": before.database_major != step.database_major,
                            "database": f"{before.database_major} -> {step.database_major}" if before.database_major != step.database_major else None,
                            "notes": step.notes})  # fmt: skip
            before = step
        return {"instance": address, "service": service.id, "server": instance.server.name,
                "from": instance.service_version, "to": steps[-1].version if steps else instance.service_version,
                "steps": planned, "rule": service.upgrade.rule, "after_start": service.upgrade.after_start,
                "data_check": service.upgrade.data_check}  # fmt: skip


def upgrade_instance(
    workspace: Workspace, store: StateStore, address: str, *, to: str | None = None, dry_run: bool = False,
    progress: Progress = no_progress, actor: str | None = None, fleet: str | None = None, pull_first: bool = True,
) -> dict:  # fmt: skip
    """Upgrade ``address`` step by step (see the module's docstring); give the plan, or the recorded upgrade.

    ``status`` of the result: ``up to date``, ``would upgrade`` (dry run), ``succeeded``, ``rolled_back``
    (the instance runs its previous version again, data restored) or ``rollback_failed``. Refusals
    raise before anything changes; a failure after the safety backup is reported, not raised.
    """
    recovered = (
        None if dry_run else recover_interrupted(workspace, store, address, by="instance upgrade", progress=progress)
    )
    plan = preview(workspace, store, address, to=to)
    if recovered is not None:
        plan["recovered"] = recovered
    if not plan["steps"]:
        return {**plan, "status": "up to date"}
    if dry_run:
        return {**plan, "status": "would upgrade"}
    process = this_process()
    with store.session() as session:
        catalog = workspace.catalog
        instance = get_instance(session, address)
        service = catalog.get(instance.service_id)
        target, identifier = SshTarget.of(instance.server), instance.identifier
        container = f"ruche-{identifier}-app"
        timeout = workspace.config.upgrades.start_timeout_seconds
        record = Upgrade(instance_id=instance.id, instance_address=address, service_id=service.id, server=target.name,
                         from_version=plan["from"], to_version=plan["to"], status="running", step="data check",
                         requested_by=_actor(actor), fleet=fleet, started_at=utc_now(),
                         detail={"steps": [], "journal": [], "process": process})  # fmt: skip
        record_event(session, kind="instance.upgrade", subject=address, actor=actor,
                     detail={"from": plan["from"], "to": plan["to"], "fleet": fleet})  # fmt: skip
        session.add(record)
        session.flush()
        upgrade_id = record.id
    log: list[dict] = []
    journal: list[dict] = []

    def note(step: str, status: str, output: str = "", started: float | None = None, **more) -> None:
        entry = {"step": step, "status": status, "output": output[-4000:], **more}
        if started is not None:
            entry["seconds"] = round(time.monotonic() - started, 2)
        log.append(entry)
        _save(workspace, store, upgrade_id, step=step, detail={"steps": list(log), "journal": list(journal),
                                                             "process": process})  # fmt: skip

    def act(name: str, **about) -> None:
        """Write in the journal what is about to change, before changing it."""
        journal.append({"act": name, **about, "at": utc_now().isoformat(timespec="seconds")})
        _save(workspace, store, upgrade_id, step=f"{about['step']}: {name}" if "step" in about else name,
              detail={"steps": list(log), "journal": list(journal), "process": process})  # fmt: skip

    try:
        started = time.monotonic()
        progress(f"{address}: data check before the upgrade")
        before_data = _data_check(service, target, container)
        note("data check", "ok", before_data or "(the entry has no data check)", started)
    except (StepFailed, OperationFailed) as error:
        return _finish(workspace, store, upgrade_id, "refused", f"data check before the upgrade failed: {error}",
                       getattr(error, "output", ""), actor)  # fmt: skip
    # ``pull_first=False`` leaves the pulls to the deployment, after the database move has stopped the service, as
    # upgrades did before: only for benchmarks/lab_upgrade_downtime.py's comparison
    if pull_first:  # prepared while the running version still serves: a registry that refuses changes nothing
        started = time.monotonic()
        try:
            progress(f"{address}: pulling the images of {plan['to']} on {target.name} before anything stops")
            pulled = _pull_images(service, target, plan["steps"], workspace.config.images.registry)
        except (StepFailed, OperationFailed) as error:
            output = getattr(error, "output", "")
            note("images", "failed", output or str(error), started)
            return _finish(workspace, store, upgrade_id, "refused", f"{error}; nothing was stopped or changed"
                           + (f": {output.splitlines()[-1]}" if output else ""), output, actor)  # fmt: skip
        note("images", "ok", pulled, started)

    progress(f"{address}: safety backup before upgrading {plan['from']} -> {plan['to']}")
    started = time.monotonic()
    act("safety backup")
    with store.session() as session:
        (safety,) = back_up(workspace, session, [address], reason="safety", progress=progress)
    snapshot = safety.get("snapshot_id")
    if safety["status"] != "success" or not snapshot:
        return _finish(workspace, store, upgrade_id, "refused",
                       f"the safety backup failed, nothing was changed: {safety['detail'].get('error')}", "", actor)  # fmt: skip
    _save(workspace, store, upgrade_id, safety_snapshot=snapshot)
    note("safety backup", "ok", f"snapshot {snapshot}", started)

    current = service.release(plan["from"])
    try:
        for step in plan["steps"]:
            name = f"{step['from']} -> {step['to']}"
            new = service.release(step["to"])
            if step["database_move"]:
                started = time.monotonic()
                progress(f"{address}: moving the database {step['database']} (dump, new engine, load)")
                act("database move", step=name)
                answer = db_move_tool(target, "move", identifier, "--image",
                                      deployed_image(new.database_image, workspace.config.images.registry), timeout=7200)  # fmt: skip
                if answer.get("status") != "success":
                    raise StepFailed(f"{name}: database move", f"moving the database failed: {answer.get('error')}")
                note(f"{name}: database move", "ok", f"{answer.get('dump_bytes')} bytes dumped and loaded, "
                     f"{len(answer.get('tables') or {})} tables with the same row counts", started)  # fmt: skip
            started = time.monotonic()
            progress(
                f"{address}: deploying {new.version} ({deployed_image(new.image, workspace.config.images.registry)})"
            )
            act("deploy", step=name, version=new.version)
            _set_version(workspace, store, address, new.version)
            run = converge(workspace, store, instance=address, progress=progress, check_health=False, upgrading=True)
            if not run["succeeded"]:
                raise StepFailed(
                    f"{name}: deploy", f"deploying {new.version} failed (run {run['run_id']})", _failures(run)
                )
            note(f"{name}: deploy", "ok", f"run {run['run_id']}", started, run_id=run["run_id"])
            for command in service.upgrade.after_start:
                started = time.monotonic()
                progress(f"{address}: {' '.join(command)}")
                code, output = _app_command_when_up(target, identifier, service.exec_user, list(command), timeout)
                if code != 0:
                    raise StepFailed(f"{name}: {' '.join(command)}", f"`{' '.join(command)}` exited {code}", output)
                note(f"{name}: {' '.join(command)}", "ok", output, started)
            started = time.monotonic()
            progress(f"{address}: waiting for {new.version} to answer healthy")
            health, detail = _wait_healthy(workspace, store, address, timeout, watch=(target, identifier))
            if health != "healthy":
                raise StepFailed(f"{name}: health", f"{new.version} is {health}: {detail.splitlines()[0]}", detail)
            note(f"{name}: health", "ok", detail, started)
            if service.setup:  # the offer's settings, through the new version's own commands
                started = time.monotonic()
                run = converge(
                    workspace, store, instance=address, progress=progress, check_health=False, start_timeout=timeout
                )
                if not run["succeeded"]:
                    raise StepFailed(f"{name}: settings", f"applying the settings to {new.version} failed (run "
                                     f"{run['run_id']})", _failures(run))  # fmt: skip
                note(f"{name}: settings", "ok", f"run {run['run_id']}", started, run_id=run["run_id"])
            if before_data is not None:
                started = time.monotonic()
                after_data = _data_check(service, target, container)
                if after_data != before_data:
                    raise StepFailed(
                        f"{name}: data check",
                        "the data check differs from before the upgrade",
                        f"before:\n{before_data}\nafter:\n{after_data}",
                    )
                note(f"{name}: data check", "ok", after_data, started)
            current = new
    except (StepFailed, OperationFailed) as error:
        step_name = getattr(error, "step", "upgrade")
        note(step_name, "failed", getattr(error, "output", "") or str(error))
        progress(f"{address}: FAILED at {step_name}: {error}; rolling back to {plan['from']}")
        rollback = _roll_back(
            workspace, store, address, target, identifier, plan["from"], snapshot, journal, progress, timeout
        )
        note("rollback", "ok" if rollback["health"] == "healthy" else "failed", rollback.get("detail", ""),
             health=rollback["health"])  # fmt: skip
        status = "rolled_back" if rollback["health"] == "healthy" and rollback["restored"] else "rollback_failed"
        return _finish(workspace, store, upgrade_id, status, f"{step_name}: {error}", "", actor, failed_step=step_name,
                       reached=current.version)  # fmt: skip
    act("done")
    if any(entry["act"] == "database move" for entry in journal):
        answer = db_move_tool(target, "done", identifier, timeout=600)
        note("drop the old database directory", "ok" if answer.get("status") == "success" else "failed", str(answer))
    progress(f"{address}: now runs {plan['to']}")
    return _finish(workspace, store, upgrade_id, "succeeded", "", "", actor)


def this_process() -> str:
    """The name of the process running this upgrade (``HOST:PID:START:TOKEN``, see processes.worker_name), which tells
    later whether it still runs. Unless the process is marked already (a worker's ``RUCHE_WORKER``), the name is
    also put in its environment, so that what it starts (ansible-playbook, SSH) carries it and an interrupted
    upgrade's leftovers can be found and stopped (processes.stop_processes_of_worker)."""
    name = worker_name(token="upgrade")
    os.environ.setdefault(WORKER_VARIABLE, name)
    if os.environ[WORKER_VARIABLE].split(":")[:3] != name.split(":")[:3]:  # inherited from the process that started us
        os.environ[WORKER_VARIABLE] = name
    return name


# the instance's server operations still running (transient units ruche-op-ID_*, $1: backups.operation_units_of):
# waited for, never stopped (each ends by leaving its quiet state and putting back what it moved)
OPERATIONS_SCRIPT = 'systemctl list-units --plain --no-legend --state=activating,active,deactivating "$1" | wc -l'


def _wait_for_server_operations(target: SshTarget, identifier: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        code, output = run_tool(
            target, ["sh", "-c", OPERATIONS_SCRIPT, "sh", operation_units_of(identifier)], timeout=60
        )
        running = int(output.strip()) if code == 0 and output.strip().isdigit() else 0
        if running == 0:
            return "no server operation of the instance running"
        if time.monotonic() > deadline:
            return f"{running} server operation(s) of the instance still running after {timeout:.0f} s"
        time.sleep(2)


def recover_interrupted(
    workspace: Workspace, store: StateStore, address: str, *, by: str, progress: Progress = no_progress
) -> dict | None:
    """Finish or roll back the interrupted upgrade of ``address``, if it has one (see the module's docstring); give the
    recorded upgrade, or None. Finished when its journal says every step passed, else rolled back from its journal:
    the processes it left on this machine are stopped and its server operations waited for first."""
    with store.session() as session:
        record = running_upgrade(session, address)
        if record is None or not is_interrupted(record):
            return None
        instance = get_instance(session, address)
        target, identifier = SshTarget.of(instance.server), instance.identifier
        upgrade_id, detail, step = record.id, dict(record.detail or {}), record.step
        from_version, snapshot = record.from_version, record.safety_snapshot
        timeout = workspace.config.upgrades.start_timeout_seconds
    process = detail.get("process") or "unknown"
    journal = list(detail.get("journal") or [])
    progress(f"{address}: the upgrade {upgrade_id} was interrupted at {step!r} (its process {process} is gone)")
    # what it started carries its name only when it marked itself (a worker's leftovers are its next worker's job)
    left = stop_processes_of_worker(process) if detail.get("process") and is_local(process) else []
    waited = _wait_for_server_operations(target, identifier, timeout=3600)
    about = {"interrupted": True, "recovered_by": by, "recovered_on": socket.gethostname(),
             "interrupted_at": step, "left_processes_stopped": left, "server_operations": waited}  # fmt: skip
    acts = [entry["act"] for entry in journal]
    if "done" in acts:
        if "database move" in acts:
            db_move_tool(target, "done", identifier, timeout=600)
        progress(f"{address}: every step had passed: the upgrade is finished")
        return _finish(workspace, store, upgrade_id, "succeeded", "", "", None, recovery="finished", **about)
    progress(f"{address}: rolling back to {from_version} from its journal ({', '.join(acts) or 'nothing changed'})")
    rollback = _roll_back(
        workspace, store, address, target, identifier, from_version, snapshot, journal, progress, timeout
    )
    status = "rolled_back" if rollback["health"] == "healthy" and rollback["restored"] else "rollback_failed"
    steps = list(detail.get("steps") or []) + [{"step": "rollback", "status": "ok" if status == "rolled_back" else "failed",
                                               "output": rollback.get("detail", ""), "health": rollback["health"]}]  # fmt: skip
    _save(workspace, store, upgrade_id, step="rollback", detail={**detail, "steps": steps})
    return _finish(workspace, store, upgrade_id, status, f"interrupted at {step!r}: its process {process} is gone; "
                   f"rolled back by {by}", "", None, recovery="rolled back", **about)  # fmt: skip


def recover_interrupted_upgrades(
    workspace: Workspace, store: StateStore, *, instance: str | None = None, server: str | None = None, by: str,
    progress: Progress = no_progress,
) -> list[dict]:  # fmt: skip
    """Finish or roll back every interrupted upgrade (of ``instance``, or of the instances on ``server``, when given);
    give the recorded upgrades."""
    with store.session() as session:
        found = [r.instance_address for r in running_upgrades(session, [instance] if instance else None)
                 if is_interrupted(r) and (server is None or r.server == server)]  # fmt: skip
    return [recovered for address in found
            if (recovered := recover_interrupted(workspace, store, address, by=by, progress=progress)) is not None]  # fmt: skip


def _actor(actor: str | None) -> str:
    return actor or current_actor()


def _failures(run: dict) -> str:
    lines = [f"{i['address']}: {i['state']} ({i['health']}: {i['health_detail']})" for i in run.get("instances", [])]
    return "\n".join(lines + [f"artifacts: {run.get('artifacts')}"])


def _set_version(workspace: Workspace, store: StateStore, address: str, version: str) -> None:
    with store.session() as session:
        get_instance(session, address).service_version = version


def _save(workspace: Workspace, store: StateStore, upgrade_id: int, **values) -> None:
    with store.session() as session:
        record = session.get(Upgrade, upgrade_id)
        for key, value in values.items():
            setattr(record, key, value)


def _wait_healthy(
    workspace: Workspace, store: StateStore, address: str, timeout: float, watch: tuple[SshTarget, str] | None = None
) -> tuple[str, str]:
    """Wait until ``address`` answers healthy, at most ``timeout`` seconds (a wall-clock deadline). With ``watch``
    (its server, its identifier), the instance's units are watched too: one that failed or restarts in a loop
    ends the wait at once, ``("failed", the unit and its last log lines)``."""
    deadline = time.monotonic() + timeout
    first = instance_units(*watch) if watch else {}
    while True:
        with store.session() as session:
            instance = get_instance(session, address)
            check_and_record_health(workspace, workspace.catalog, [instance])
            health, detail = instance.health, instance.health_detail
        if health == "healthy" or time.monotonic() > deadline:
            return health, detail
        failing = failing_unit(*watch, first) if watch else None
        if failing:
            return "failed", failing
        time.sleep(max(0.0, min(3.0, deadline - time.monotonic())))


def _roll_back(
    workspace: Workspace, store: StateStore, address: str, target: SshTarget, identifier: str, version: str, snapshot: str | None,
    journal: list[dict], progress: Progress, timeout: int,
) -> dict:  # fmt: skip
    """Undo what ``journal`` says was started: the database directory put back when a move was started (whether
    or not it ended), and when a version was deployed: ``version`` applied again and the safety snapshot's data
    restored. Give ``{"health", "restored", "detail"}`` (``restored``: the data is as before the upgrade)."""
    acts = {entry["act"] for entry in journal}
    notes = []
    if "database move" in acts:  # idempotent on the server: acts only when the kept directory is there
        answer = db_move_tool(target, "back", identifier, timeout=600)
        notes.append(f"database directory put back: {answer.get('status')} {answer.get('error') or ''}".strip())
    if "deploy" not in acts:  # the previous version's files were never touched: start it again if it was stopped
        if "database move" in acts:
            progress(f"{address}: starting {version} again on its own database directory")
            run = converge(workspace, store, instance=address, progress=progress, check_health=False, start_timeout=timeout,
                        full=True)  # fmt: skip
            notes.append(f"apply of {version}: run {run['run_id']} {run['status']}")
        health, detail = _wait_healthy(workspace, store, address, timeout)
        notes.append(f"health: {health} ({detail})")
        return {"health": health, "restored": True, "detail": "\n".join(notes)}
    if snapshot is None:
        return {"health": "unknown", "restored": False,
                "detail": "\n".join(notes + ["a version was deployed but no safety snapshot is recorded"])}  # fmt: skip
    _set_version(workspace, store, address, version)
    progress(f"{address}: deploying {version} again")
    first = converge(workspace, store, instance=address, progress=progress, check_health=False, start_timeout=timeout)
    notes.append(f"apply of {version}: run {first['run_id']} {first['status']}")
    progress(f"{address}: restoring the safety snapshot {snapshot[:8]}")
    restored = restore_into(workspace, store, address, address, snapshot, progress)
    notes.append(f"restore of {snapshot[:8]}: {restored.get('status')} {restored.get('error') or ''}".strip())
    if not first["succeeded"]:  # the previous version may only start once its data is back
        again = converge(
            workspace, store, instance=address, progress=progress, check_health=False, start_timeout=timeout
        )
        notes.append(f"apply of {version} after the restore: run {again['run_id']} {again['status']}")
    health, detail = _wait_healthy(workspace, store, address, timeout)  # the previous version: given its whole time
    notes.append(f"health: {health} ({detail})")
    return {"health": health, "restored": bool(restored.get("data_restored")), "detail": "\n".join(notes)}


def _finish(workspace: Workspace, store: StateStore, upgrade_id: int, status: str, error: str, output: str, actor: str | None,
            **more) -> dict:  # fmt: skip
    with store.session() as session:
        record = session.get(Upgrade, upgrade_id)
        record.status = status
        record.finished_at = utc_now()
        record.detail = {**record.detail, "error": error, **({"output": output[-4000:]} if output else {}), **more}
        if status == "succeeded":
            record.step = ""
        kind = {"succeeded": "instance.upgraded", "refused": "instance.upgrade_refused"}.get(
            status, "instance.upgrade_failed"
        )
        record_event(session, kind=kind, subject=record.instance_address, actor=actor,
                     detail={"from": record.from_version, "to": record.to_version, "status": status, "error": error,
                             "upgrade": record.id})  # fmt: skip
        return upgrade_as_dict(record)
