"""Benchmark on the lab: `ruche apply` with 10 instances on one server (and a second server with
none) — first converge, no-op converge, a one-instance change applied to the whole fleet, the same
with --instance — as a fresh install runs them (instances whose server holds what ruche would apply,
undrifted, are skipped), each beside its baseline in the same run: `--full`, which converges every
instance as ruche did before. Ratios are to the first converge (targets: no-op <= 20%, whole-fleet
one change <= 25%). Then the same again with Mitogen's strategy if it is installed
(`pip install mitogen==0.3.54`, not a default). Prints figures; asserts nothing. Needs root.

Run: python3 benchmarks/lab_converge.py [--instances N] [--keep]   (lab on 10.213.53.0/24, then down)
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator import runner  # noqa: E402
from orchestrator.actions.apply import apply  # noqa: E402
from orchestrator.actions.association_add import register_association  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.actions.instance_create import create_instance  # noqa: E402
from orchestrator.actions.lab_down import tear_down  # noqa: E402
from orchestrator.actions.lab_up import bring_up  # noqa: E402
from orchestrator.config import LabSettings  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.state.instances import get_instance  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402


def timed_apply(workspace: Path, label: str, **options) -> float:
    started = time.perf_counter()
    run = apply(workspace, check_health=False, **options)
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed:.1f} s, {run['changed']} changed, {len(run['unchanged'])} skipped as unchanged, "
          f"status {run['status']}", flush=True)  # fmt: skip
    if not run["succeeded"]:
        raise SystemExit(f"{label}: the run failed ({run['artifacts']})")
    return elapsed


def ratio(label: str, value: float, first: float, baseline: float | None = None, against: str = "with --full") -> None:
    line = f"  {label}: {value / first:.0%} of the first converge"
    if baseline is not None:
        line += f", {value / baseline:.0%} of the same {against} ({baseline:.1f} s)"
    print(line, flush=True)


def change_one_instance(workspace: Path, address: str, value: str) -> None:
    """Change one parameter of one instance (its env file changes, its containers restart)."""
    store = StateStore(open_workspace(workspace).state_url)
    with store.session() as session:
        instance = get_instance(session, address)
        instance.parameters = {**instance.parameters, "admin_user": value}
    store.close()


def use_mitogen() -> bool:
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        return False
    runner.ANSIBLE_SETTINGS["ANSIBLE_STRATEGY_PLUGINS"] = str(Path(spec.origin).parent / "plugins" / "strategy")
    runner.ANSIBLE_SETTINGS["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=10, help="instances on lab-1")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    arguments = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="ruche-bench-")) / "workspace"
    init_workspace(workspace, collective="Benchmark", base_domain="bench.ruche.test", state_url=None)
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"lab": LabSettings(subnet="10.213.53.0/24")}))
    try:
        bring_up(workspace, app_servers=2)
        for number in range(arguments.instances):
            slug = f"asso-{number:02d}"
            register_association(
                workspace, slug=slug, name=f"Association {number}", email=f"contact@{slug}.example", offer=None
            )
            create_instance(
                workspace, association=slug, service="radicale", name=None, size="small", parameters=("admin_user=admin",),
                server="lab-1",
            )  # fmt: skip
        print(f"{arguments.instances} radicale instances on lab-1 (lab-2 holds none)")
        print(
            "settings: "
            + ", ".join(f"{k}={v}" for k, v in sorted(runner.ANSIBLE_SETTINGS.items()) if k != "ANSIBLE_ROLES_PATH")
        )
        first = timed_apply(workspace, "first converge")
        noop = timed_apply(workspace, "no-op converge")
        noop_full = timed_apply(workspace, "no-op converge, --full (baseline)", full=True)
        change_one_instance(workspace, "asso-00/radicale", "changed-1")
        change = timed_apply(workspace, "one-instance change, whole fleet")
        change_one_instance(workspace, "asso-00/radicale", "changed-2")
        change_full = timed_apply(workspace, "one-instance change, whole fleet, --full (baseline)", full=True)
        change_one_instance(workspace, "asso-00/radicale", "changed-3")
        single = timed_apply(workspace, "one-instance change, --instance", instance="asso-00/radicale")
        print("ratios:")
        ratio("no-op converge", noop, first, noop_full)
        ratio("one-instance change, whole fleet", change, first, change_full)
        ratio("one-instance change, --instance", single, first)
        if use_mitogen():
            print("with Mitogen: ANSIBLE_STRATEGY=mitogen_linear")
            mitogen_noop = timed_apply(workspace, "no-op converge (Mitogen)")
            change_one_instance(workspace, "asso-00/radicale", "changed-4")
            mitogen_change = timed_apply(workspace, "one-instance change, whole fleet (Mitogen)")
            ratio("no-op converge (Mitogen)", mitogen_noop, first, noop, "without Mitogen")
            ratio("one-instance change, whole fleet (Mitogen)", mitogen_change, first, change, "without Mitogen")
        else:
            print("Mitogen not installed: pip install mitogen==0.3.54 to measure it")
    finally:
        if not arguments.keep:
            tear_down(workspace)


if __name__ == "__main__":
    main()
