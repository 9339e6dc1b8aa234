"""Every active instance measured on its server (ruche-usage over SSH, servers in parallel) and one usage sample
recorded each: `ruche usage collect`, and the watcher when the newest sample is older than [alerts] usage_minutes.
Each sample holds its CPU delta since the instance's previous one and the time it stands for (state/usage); old
samples are then rolled up into hours and days (operations/usage_rollup)."""

from __future__ import annotations

import json
import time

from orchestrator.operations.context import Progress, no_progress
from orchestrator.operations.usage_rollup import roll_up
from orchestrator.remote import SshTarget, for_each_server, run_command
from orchestrator.state.database import StateStore
from orchestrator.state.instances import ACTIVE_STATES, list_instances
from orchestrator.state.leases import lease_holder, release_lease, take_lease
from orchestrator.state.models import utc_now
from orchestrator.state.usage import previous_samples, sample_of
from orchestrator.workspace import Workspace

USAGE_TOOL = "/usr/local/sbin/ruche-usage"
INSTANCE_ROOT = "/srv/ruche"
LEASE_SECONDS = 3600  # the longest recording a measure may take before another may record (its holder died)


def measure_servers(requests: dict[SshTarget, list[str]], *, parallel: int) -> dict[str, list[dict] | Exception]:
    """Run ruche-usage on each server (``parallel`` at a time) for its ``ID[:ENGINE]`` arguments; give its answer."""
    by_name = {target.name: arguments for target, arguments in requests.items()}

    def measure(target: SshTarget) -> list[dict]:
        return json.loads(run_command(target, [USAGE_TOOL, INSTANCE_ROOT, *by_name[target.name]], timeout=600))

    return for_each_server(requests.keys(), measure, parallel=parallel)


def measure_usage(
    workspace: Workspace, store: StateStore, *, parallel: int = 32, progress: Progress = no_progress
) -> dict:
    """Measure disk, database, memory and CPU time of every active instance, record one sample each, then roll up
    the samples and hourly rows that are old enough ([usage]; ``rolled_up`` says what it did).

    One SSH command per server, ``parallel`` servers at a time, with no state session open. A server that does
    not answer is reported in ``errors`` and its instances get a sample holding the error; nothing raises for
    it. The samples are recorded under the "usage" lease: two measures at once (the watcher and `usage collect`)
    would count the same time and CPU twice, so the second one records nothing (``skipped`` says why). Gives
    ``{"samples": [...], "errors": {server: message}, "servers": N, "seconds": elapsed, "rolled_up", "skipped"}``.
    """
    catalog = workspace.catalog
    with store.session() as session:
        instances = []
        for instance in list_instances(session):
            if instance.state not in ACTIVE_STATES:
                continue
            database = catalog.get(instance.service_id).database
            argument = instance.identifier + (f":{database}" if database != "none" else "")
            instances.append((instance.id, instance.identifier, instance.address, instance.server.name,
                              SshTarget.of(instance.server), argument))  # fmt: skip
    requests: dict[SshTarget, list[str]] = {}
    for *_rest, target, argument in instances:
        requests.setdefault(target, []).append(argument)
    progress(f"measuring {len(instances)} instance(s) on {len(requests)} server(s)")
    started = time.monotonic()
    answers = measure_servers(requests, parallel=parallel)
    elapsed = time.monotonic() - started
    errors = {server: str(answer) for server, answer in answers.items() if isinstance(answer, Exception)}
    measured = {
        entry["id"]: entry for answer in answers.values() if not isinstance(answer, Exception) for entry in answer
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    }  # fmt: skip
    outcome = {"samples": [], "errors": errors, "servers": len(requests), "seconds": round(elapsed, 3),
               "taken_at": None, "rolled_up": None, "skipped": None}  # fmt: skip
    holder = lease_holder()
    if not take_lease(store, "usage", holder, seconds=LEASE_SECONDS):
        outcome["skipped"] = "another measure is being recorded right now: nothing recorded"
        return outcome
    try:
        with store.session() as session:
            taken_at = utc_now()
            previous = previous_samples(session, [row[0] for row in instances], taken_at)
            for instance_id, identifier, address, server, _target, _argument in instances:
                entry = measured.get(identifier, {})
                error = errors.get(server) or entry.get("error") or ("" if entry else "not measured")
                sample = sample_of(instance_id, taken_at, entry, str(error), previous.get(instance_id))
                session.add(sample)
                outcome["samples"].append({
                    "instance": address, "server": server, "disk_bytes": sample.disk_bytes,
                    "database_bytes": sample.database_bytes, "memory_bytes": sample.memory_bytes,
                    "cpu_usec": sample.cpu_usec, "cpu_delta_usec": sample.cpu_delta_usec, "error": sample.error,
                })  # fmt: skip
            session.flush()
            outcome["rolled_up"] = roll_up(session, workspace.config.usage, now=taken_at)
            outcome["taken_at"] = taken_at.isoformat(timespec="seconds")
    finally:
        release_lease(store, "usage", holder)
    return outcome
