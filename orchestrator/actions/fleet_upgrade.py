"""``ruche upgrade SERVICE``: upgrade every instance of a service, canaries first, a few at a time.

Each instance is upgraded by its own ``ruche instance upgrade`` process (safety backup, steps,
rollback: see :mod:`orchestrator.actions.instance_upgrade`), so upgrades in parallel share nothing
but the state database and the inventory (written under its lock). The scheduler:

* the ``canary`` first instances are upgraded alone, one after another;
* then at most ``parallel`` at a time, never two on one server (they share its disk, CPU and
  Caddy, and a rollback must not compete with another upgrade);
* at the first failure nothing new starts; upgrades already running finish (a failed one is
  rolled back by itself), the others are reported as not started;
* an instance whose offer has a maintenance window is only started inside it (``--ignore-window``
  overrides); a suspended or failed instance is skipped and said so.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.actions.common import Progress, no_progress, opened
from orchestrator.catalog import load_catalog
from orchestrator.errors import InvalidInput
from orchestrator.quotas import find_offer
from orchestrator.state.actors import current_actor
from orchestrator.state.events import record_event
from orchestrator.state.instances import list_instances
from orchestrator.state.models import utc_now
from orchestrator.state.queue import enqueue as enqueue_run
from orchestrator.state.queue import queued_as_dict


def select_instances(workspace_path: Path | None, service_id: str, *, to: str | None, ignore_window: bool = False,
                     now: datetime | None = None) -> dict:  # fmt: skip
    """Give ``{"service", "to", "candidates": [...], "skipped": [...]}`` for a fleet upgrade; change nothing.

    Raises NotFound for an unknown service, InvalidInput for a target the catalogue does not list.
    """
    moment = now or datetime.now(UTC)
    with opened(workspace_path) as (workspace, store), store.session() as session:
        service = load_catalog(workspace.catalog_dir).get(service_id)
        target = to or service.version
        service.release(target)  # NotFound for an unknown version, before anything else
        candidates, skipped = [], []
        for instance in sorted(list_instances(session), key=lambda i: i.address):
            if (
                instance.service_id != service.id
                or instance.state == "deleted"
                or instance.desired_state in ("absent", "purged")
            ):
                continue
            entry = {"instance": instance.address, "server": instance.server.name, "version": instance.service_version}
            try:
                path = [step.version for step in service.upgrade_path(instance.service_version, target)]
            except InvalidInput as error:
                skipped.append({**entry, "reason": error.message})
                continue
            if not path:
                continue
            offer = find_offer(workspace.config.offers, instance.association.offer)
            if instance.state != "running" or instance.desired_state != "present":
                skipped.append(
                    {
                        **entry,
                        "reason": f"{instance.state} (desired {instance.desired_state}): only running instances are upgraded",
                    }
                )
            elif offer is not None and not ignore_window and not offer.in_maintenance_window(moment):
                skipped.append(
                    {**entry, "reason": f"outside its offer's maintenance window {offer.maintenance_window} UTC"}
                )
            else:
                candidates.append({**entry, "path": path})
        return {"service": service.id, "to": target, "candidates": candidates, "skipped": skipped}


def fleet_upgrade(
    workspace_path: Path | None, service_id: str, *, to: str | None = None, canary: int = 1, parallel: int = 1,
    dry_run: bool = False, ignore_window: bool = False, progress: Progress = no_progress, actor: str | None = None,
    enqueue: bool = False,
) -> dict:  # fmt: skip
    """Upgrade the instances of ``service_id`` (see the module's docstring); give what happened to each.

    ``enqueue``: queue one upgrade run per instance for ``ruche worker`` instead (the queue keeps the
    same rules: canaries alone first, at most ``parallel`` at once, one per server, the rest cancelled
    after a failure); gives the queued runs under ``queued``.

    Gives ``{"fleet", "service", "to", "results": [...], "skipped": [...], "not_started": [...],
    "stopped": bool, "succeeded": bool}``; each result is the instance's recorded upgrade with
    ``canary`` and its process's start and end.
    """
    if canary < 0 or parallel < 1:
        raise InvalidInput("--canary must be 0 or more and --parallel 1 or more")
    chosen = select_instances(workspace_path, service_id, to=to, ignore_window=ignore_window)
    fleet = "fleet-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    summary = {"fleet": fleet, "service": chosen["service"], "to": chosen["to"], "canary": canary, "parallel": parallel,
               "candidates": chosen["candidates"], "skipped": chosen["skipped"], "results": [], "not_started": [],
               "stopped": False, "dry_run": dry_run}  # fmt: skip
    if dry_run or not chosen["candidates"]:
        summary["succeeded"] = True
        return summary
    with opened(workspace_path) as (workspace, store), store.session() as session:
        root = workspace.root
        record_event(session, kind="fleet.upgrade", subject=chosen["service"], actor=actor,
                     detail={"fleet": fleet, "to": chosen["to"], "instances": [c["instance"] for c in chosen["candidates"]],
                             "canary": canary, "parallel": parallel, "queued": enqueue})  # fmt: skip
        if enqueue:
            queued = [enqueue_run(session, server=c["server"], instance_address=c["instance"], requested_by=actor or current_actor(),
                                  kind="upgrade", payload={"to": chosen["to"], "fleet": fleet, "canary": index < canary,
                                                           "parallel": parallel})
                      for index, c in enumerate(chosen["candidates"])]  # fmt: skip
            session.flush()
            summary["queued"] = [queued_as_dict(run) for run in queued]
            summary["succeeded"] = True
            return summary
    waiting = list(chosen["candidates"])
    canaries, rest = waiting[:canary], waiting[canary:]
    launcher = _Launcher(root, chosen["to"], fleet, actor or current_actor(), progress)
    for entry in canaries:  # alone, one after another
        progress(f"canary {entry['instance']} ({entry['server']}): {entry['version']} -> {chosen['to']}")
        result = launcher.wait(launcher.start(entry, canary=True))
        summary["results"].append(result)
        if result["status"] != "succeeded":
            summary["stopped"] = True
            break
    running: dict[str, tuple[dict, subprocess.Popen, float]] = {}  # server -> (entry, process, started)
    while not summary["stopped"] and (rest or running):
        for entry in list(rest):
            if len(running) >= parallel:
                break
            if entry["server"] in running:
                continue  # never two upgrades on one server at once
            rest.remove(entry)
            progress(f"{entry['instance']} ({entry['server']}): {entry['version']} -> {chosen['to']}")
            running[entry["server"]] = launcher.start(entry, canary=False)
        time.sleep(0.5)
        for server, started in list(running.items()):
            if started[1].poll() is None:
                continue
            del running[server]
            result = launcher.wait(started)
            summary["results"].append(result)
            if result["status"] != "succeeded":
                summary["stopped"] = True
                progress(f"{result['instance']}: {result['status']}: no other upgrade starts")
    for started in running.values():  # after a failure: let those already running finish
        summary["results"].append(launcher.wait(started))
    started_ones = {result["instance"] for result in summary["results"]}
    summary["not_started"] = [c["instance"] for c in chosen["candidates"] if c["instance"] not in started_ones]
    summary["succeeded"] = not summary["stopped"] and all(r["status"] == "succeeded" for r in summary["results"])
    return summary


class _Launcher:
    """Starts one ``ruche instance upgrade`` process per instance and reads its JSON answer."""

    def __init__(self, root: Path, to: str, fleet: str, actor: str, progress: Progress) -> None:
        self.root, self.to, self.fleet, self.actor, self.progress = root, to, fleet, actor, progress

    def start(self, entry: dict, *, canary: bool) -> tuple[dict, subprocess.Popen, float]:
        argv = [sys.executable, "-m", "orchestrator", "--workspace", str(self.root), "instance", "upgrade", entry["instance"],
                "--to", self.to, "--yes", "--json", "--quiet", "--fleet", self.fleet]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "RUCHE_ACTOR": self.actor})  # fmt: skip
        return (
            {**entry, "canary": canary, "process_started": utc_now().isoformat(timespec="milliseconds")},
            process,
            time.monotonic(),
        )

    def wait(self, started: tuple[dict, subprocess.Popen, float]) -> dict:
        entry, process, began = started
        stdout, stderr = process.communicate()
        try:
            answer = json.loads(stdout) if stdout.strip() else {}
        except ValueError:
            answer = {}
        status = answer.get("status") or ("refused" if process.returncode else "succeeded")
        result = {**{k: v for k, v in answer.items() if k not in ("instance", "server")}, **entry, "status": status,
                  "exit_code": process.returncode, "seconds": round(time.monotonic() - began, 1),
                  "process_finished": utc_now().isoformat(timespec="milliseconds")}  # fmt: skip
        if process.returncode and not answer:
            result["error"] = stderr.strip()[-2000:]
        self.progress(f"{entry['instance']}: {status} in {result['seconds']} s")
        return result
