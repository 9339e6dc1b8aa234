"""Benchmark on the lab: usage collection against the number of servers (parallel vs a serial loop),
and the first vs the second backup of an unchanged instance (time and data added).
Prints figures; asserts nothing. Needs root.

Run: python3 benchmarks/lab_backup_usage.py [--servers N] [--data-mb M] [--keep]   (lab on 10.213.54.0/24)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.actions.apply import apply  # noqa: E402
from orchestrator.actions.association_add import register_association  # noqa: E402
from orchestrator.actions.backup_run import run_backups  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.actions.instance_create import create_instance  # noqa: E402
from orchestrator.actions.lab_down import tear_down  # noqa: E402
from orchestrator.actions.lab_up import bring_up  # noqa: E402
from orchestrator.actions.usage_collect import INSTANCE_ROOT, measure_servers  # noqa: E402
from orchestrator.config import LabSettings  # noqa: E402
from orchestrator.remote import SshTarget, run_command  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.state.instances import list_instances  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402


def usage_requests(workspace: Path) -> dict[SshTarget, list[str]]:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            requests: dict[SshTarget, list[str]] = {}
            for instance in list_instances(session):
                requests.setdefault(SshTarget.of(instance.server), []).append(instance.identifier)
            return dict(sorted(requests.items(), key=lambda item: item[0].name))
    finally:
        store.close()


def best_of(runs: int, action) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=6, help="application servers (one instance each)")
    parser.add_argument("--data-mb", type=int, default=200, help="data written into the backed-up instance")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    arguments = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="ruche-bench-")) / "workspace"
    init_workspace(workspace, collective="Benchmark", base_domain="bench.ruche.test", state_url=None)
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"lab": LabSettings(subnet="10.213.54.0/24")}))
    try:
        bring_up(workspace, app_servers=arguments.servers)
        register_association(workspace, slug="bench", name="Bench", email="contact@bench.example", offer=None)
        for number in range(1, arguments.servers + 1):
            create_instance(workspace, association="bench", service="radicale", name=f"agenda-{number}", size="small",
                            parameters=("admin_user=admin",), server=f"lab-{number}")  # fmt: skip
        run = apply(workspace, check_health=False)
        print(f"{arguments.servers} servers converged with one Radicale instance each: {run['status']}", flush=True)

        requests = usage_requests(workspace)
        print("\nusage collection (best of 3; one SSH command per server)")
        print(f"{'servers':>8} {'parallel s':>11} {'serial s':>9}")
        for count in sorted({1, 2, arguments.servers // 2, arguments.servers} - {0}):
            subset = dict(list(requests.items())[:count])
            parallel = best_of(3, lambda subset=subset: measure_servers(subset, parallel=32))
            serial = best_of(3, lambda subset=subset: measure_servers(subset, parallel=1))
            print(f"{count:>8} {parallel:>11.2f} {serial:>9.2f}", flush=True)

        target = next(iter(requests))
        directory = f"{INSTANCE_ROOT}/bench/agenda-1/volumes/data/bench"
        run_command(target, ["sh", "-c", f"mkdir -p {directory} && for i in $(seq 1 {arguments.data_mb // 10}); do "
                             f"head -c 10M /dev/urandom > {directory}/blob-$i; done"], timeout=600)  # fmt: skip
        print(f"\nbackup of bench/agenda-1 holding {arguments.data_mb} MB of random data, to lab-backup over SFTP")
        figures = []
        for label in ("first backup", "second backup, nothing changed"):
            started = time.perf_counter()
            (result,) = run_backups(workspace, instance="bench/agenda-1")["results"]
            elapsed = time.perf_counter() - started
            figures.append((elapsed, result["data_added_bytes"] or 0))
            print(
                f"{label}: {elapsed:.1f} s, {result['data_added_bytes'] / 1e6:.2f} MB added, status {result['status']}",
                flush=True,
            )
        (first_time, first_added), (second_time, second_added) = figures
        print(f"second/first: time {second_time / first_time:.2f}, data added {second_added / max(first_added, 1):.5f}")
    finally:
        if not arguments.keep:
            tear_down(workspace)


if __name__ == "__main__":
    main()
