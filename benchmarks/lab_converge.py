"""Benchmark on the lab: time of the first converge and of a no-op converge of `ruche apply`,
with the Ansible settings used.  Prints figures; asserts nothing.  Needs root.

Run: python3 benchmarks/lab_converge.py [--keep]   (brings a lab up on 10.213.53.0/24, then down)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.actions.apply import apply  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.actions.lab_down import tear_down  # noqa: E402
from orchestrator.actions.lab_up import bring_up  # noqa: E402
from orchestrator.config import LabSettings  # noqa: E402
from orchestrator.runner import ANSIBLE_SETTINGS  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402


def timed_apply(workspace: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    run = apply(workspace)
    return time.perf_counter() - started, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    arguments = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="ruche-bench-")) / "workspace"
    init_workspace(workspace, collective="Benchmark", base_domain="bench.ruche.test", state_url=None)
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"lab": LabSettings(subnet="10.213.53.0/24")}))
    try:
        bring_up(workspace, app_servers=2)
        first, first_run = timed_apply(workspace)
        noop, noop_run = timed_apply(workspace)
        print("settings: " + ", ".join(f"{k}={v}" for k, v in sorted(ANSIBLE_SETTINGS.items()) if k != "ANSIBLE_ROLES_PATH"))
        print(f"first converge (2 servers): {first:.1f} s, {first_run['changed']} changed, status {first_run['status']}")
        print(f"no-op converge (2 servers): {noop:.1f} s, {noop_run['changed']} changed, status {noop_run['status']}")
        print("not measured yet: instances per server (no instance role yet), Mitogen")
    finally:
        if not arguments.keep:
            tear_down(workspace)


if __name__ == "__main__":
    main()
