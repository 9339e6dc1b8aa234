"""Benchmark on the lab: how long each instance does not answer while `ruche instance upgrade` moves it, with the
new version's images pulled before anything stops (as upgrades do now) and after the service was stopped (as they
did before: ``pull_first=False``).

Radicale 3.1.8 -> 3.5.3 (files only) and MediaWiki 1.39.17 -> 1.43.9 (schema update, PostgreSQL 15 ->
17 moved by dump and restore), each polled through its server's Caddy every 0.25 s during its
upgrade. The "pulled after stopping" instances are on lab-1, the "pulled first" ones on lab-2, the new images
absent from both servers beforehand (as on a real server before an upgrade), and the lab's link shaped to
--link-mbit during the upgrades (the lab registry sits on the same machine: unshaped, a pull takes a second, where a
server pulling from a public registry waits for hundreds of megabytes). Prints, per instance: the whole upgrade's
time, the seconds spent pulling before anything stopped, the time not answering (sum of failed polls' intervals)
and the longest outage. Asserts nothing. Needs root.

Run: python3 benchmarks/lab_upgrade_downtime.py [--wiki-pages N] [--link-mbit N] [--subnet CIDR] [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.actions.apply import apply  # noqa: E402
from orchestrator.actions.association_add import register_association  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.actions.instance_create import create_instance  # noqa: E402
from orchestrator.actions.instance_upgrade import upgrade_instance  # noqa: E402
from orchestrator.actions.lab_down import tear_down  # noqa: E402
from orchestrator.actions.lab_up import bring_up  # noqa: E402
from orchestrator.catalog import load_catalog  # noqa: E402
from orchestrator.config import LabSettings  # noqa: E402
from orchestrator.images import deployed_images  # noqa: E402
from orchestrator.lab.network import LabNetwork  # noqa: E402
from orchestrator.remote import SshTarget, run_command  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.state.instances import get_instance  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402


class Poller(threading.Thread):
    """Asks the instance's health path through Caddy every ``period`` seconds; keeps (time, answered)."""

    def __init__(self, server_address: str, domain: str, path: str, expected: int, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.argv = ["curl", "--silent", "--insecure", "--max-time", "2", "--output", "/dev/null", "--write-out", "%{http_code}",
                     "--resolve", f"{domain}:443:{server_address}", f"https://{domain}{path}"]  # fmt: skip
        self.expected, self.period = expected, period
        self.samples: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            code = subprocess.run(self.argv, capture_output=True, text=True).stdout.strip()
            self.samples.append((started, code == str(self.expected)))
            self.stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def outages(self) -> tuple[float, float]:
        """Give (seconds not answering in total, the longest outage)."""
        total = longest = current = 0.0
        for (moment, answered), (following, _) in zip(self.samples, self.samples[1:], strict=False):
            if answered:
                current = 0.0
                continue
            total += following - moment
            current += following - moment
            longest = max(longest, current)
        return total, longest


def target_of(workspace: Path, address: str) -> tuple[str, str, SshTarget]:
    store = StateStore(open_workspace(workspace).state_url)
    try:
        with store.session() as session:
            instance = get_instance(session, address)
            return instance.server.address, instance.domain, SshTarget.of(instance.server)
    finally:
        store.close()


MODES = (("lab-1", "after stopping", False), ("lab-2", "first", True))  # server, when pulled, pull_first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wiki-pages", type=int, default=200, help="pages written into each wiki before its upgrade")
    parser.add_argument("--subnet", default="10.213.61.0/24", help="the benchmark lab's subnet")
    parser.add_argument("--link-mbit", type=int, default=100, help="the lab link's rate during the upgrades (0: as is)")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    arguments = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="ruche-bench-")) / "workspace"
    init_workspace(workspace, collective="Benchmark", base_domain="bench.ruche.test", state_url=None)
    opened = open_workspace(workspace)
    opened.save_config(opened.config.model_copy(update={"lab": LabSettings(subnet=arguments.subnet)}))
    catalog = load_catalog(opened.catalog_dir)
    try:
        bring_up(workspace, app_servers=2)
        register_association(workspace, slug="bench", name="Bench", email="contact@bench.example", offer=None)
        for server, _when, pull_first in MODES:
            suffix = "first" if pull_first else "after"
            create_instance(workspace, association="bench", service="radicale", name=f"agenda-{suffix}", size="small",
                            parameters=("admin_user=admin",), server=server, version="3.1.8")  # fmt: skip
            create_instance(workspace, association="bench", service="mediawiki-debian", name=f"wiki-{suffix}",
                            size="small", parameters=("admin_email=admin@bench.example",), server=server,
                            version="1.39.17")  # fmt: skip
        run = apply(workspace)
        print(f"deployed on bookworm's versions: {run['status']}", flush=True)
        for _server, _when, pull_first in MODES:
            address = f"bench/wiki-{'first' if pull_first else 'after'}"
            _, _, wiki_server = target_of(workspace, address)
            run_command(wiki_server, ["podman", "exec", "--user", "www-data", f"ruche-{address.replace('/', '--')}-app",
                                      "sh", "-c", f"for i in $(seq 1 {arguments.wiki_pages}); do echo \"Page $i du banc "
                                      "d'essai\" | /usr/local/bin/mediawiki-maintenance edit --quiet \"Banc_$i\"; done"],
                        timeout=3600)  # fmt: skip
            new_images = [image for name in ("radicale", "mediawiki-debian")
                          for image in deployed_images(catalog.get(name), catalog.get(name).version, None)]  # fmt: skip
            run_command(wiki_server, ["sh", "-c", 'for image do podman image rm --ignore "$image" >/dev/null; done',
                                      "sh", *new_images])  # fmt: skip
        print(
            f"{arguments.wiki_pages} pages written into each wiki; the new images absent from both servers", flush=True
        )
        bridge = LabNetwork.parse(arguments.subnet).bridge
        if arguments.link_mbit:
            subprocess.run(["tc", "qdisc", "replace", "dev", bridge, "root", "tbf", "rate", f"{arguments.link_mbit}mbit",
                            "burst", "256kb", "latency", "500ms"], check=True)  # fmt: skip
            print(f"the lab's link ({bridge}) shaped to {arguments.link_mbit} Mbit/s", flush=True)
        print(f"\n{'instance':<19} {'images pulled':<15} {'upgrade':<22} {'status':<11} {'total s':>8} {'pull s':>7} "
              f"{'not answering s':>16} {'longest outage s':>17}")  # fmt: skip
        for service, name in (("radicale", "agenda"), ("mediawiki-debian", "wiki")):
            for _server, when, pull_first in MODES:
                address = f"bench/{name}-{'first' if pull_first else 'after'}"
                server_address, domain, _ = target_of(workspace, address)
                health = catalog.get(service).health
                poller = Poller(server_address, domain, health.path, health.expected_status)
                poller.start()
                time.sleep(1)
                started = time.monotonic()
                result = upgrade_instance(workspace, address, pull_first=pull_first)
                elapsed = time.monotonic() - started
                time.sleep(1)
                poller.stop.set()
                poller.join()
                down, longest = poller.outages()
                pulling = next(
                    (s.get("seconds", 0.0) for s in result["detail"]["steps"] if s["step"] == "images"), None
                )
                print(f"{address:<19} {when:<15} {result['from'] + ' -> ' + result['to']:<22} {result['status']:<11} "
                      f"{elapsed:>8.1f} {'-' if pulling is None else f'{pulling:.1f}':>7} {down:>16.1f} "
                      f"{longest:>17.1f}", flush=True)  # fmt: skip
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", LabNetwork.parse(arguments.subnet).bridge, "root"],
                       capture_output=True)  # fmt: skip
        if not arguments.keep:
            tear_down(workspace)


if __name__ == "__main__":
    main()
