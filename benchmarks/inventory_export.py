"""Benchmark: inventory rendering for 10,000 associations / 30,000 instances / 300 servers,
and the time `ansible-inventory --list` needs to read the result.  Prints figures; asserts nothing.

Run: python3 benchmarks/inventory_export.py [--associations N] [--servers N]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.catalog import load_catalog  # noqa: E402
from orchestrator.deployment import InstanceRecord, instance_domain, instance_variables, secret_names  # noqa: E402
from orchestrator.inventory import InstanceEntry, ServerEntry, render_inventory  # noqa: E402
from orchestrator.secrets import Vault  # noqa: E402
from orchestrator.workspace import BUNDLED_CATALOG_DIR  # noqa: E402

SERVICES = ("nextcloud", "mattermost", "limesurvey", "radicale", "miniflux")


def fleet(associations: int, servers: int, per_association: int = 3):
    rng = random.Random(42)
    server_entries = [
        ServerEntry(f"web-{n:03d}", f"10.0.{n // 250}.{n % 250 + 1}", "root", 22, "apps", False) for n in range(servers)
    ]
    catalog = load_catalog(BUNDLED_CATALOG_DIR)
    # One real ciphertext reused: encrypting 60,000 secrets would time the KDF, not the export.
    ciphertext = Vault(b"benchmark").encrypt("x" * 32)
    instances = []
    for number in range(associations):
        slug = f"asso-{number:05d}"
        for service in rng.sample(SERVICES, per_association):
            server = server_entries[rng.randrange(servers)].name
            definition = catalog.get(service)
            parameters = {p.name: p.default or f"admin@{slug}.org" for p in definition.parameters}
            record = InstanceRecord(
                association=slug, name=service, domain=instance_domain(slug, service, "example.org"), http_port=20000,
                desired_state="present", cpu=0.5, memory_mb=512, parameters=parameters,
                secrets={name: ciphertext for name in secret_names(definition)},
            )  # fmt: skip
            instances.append(InstanceEntry(slug, service, server, instance_variables(record, definition)))
    return server_entries, instances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--associations", type=int, default=10_000)
    parser.add_argument("--servers", type=int, default=300)
    arguments = parser.parse_args()
    servers, instances = fleet(arguments.associations, arguments.servers)
    started = time.perf_counter()
    files = render_inventory(servers, instances)
    rendered = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        started = time.perf_counter()
        for relative, text in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text)
        written = time.perf_counter() - started
        size = sum(len(text) for text in files.values())
        started = time.perf_counter()
        subprocess.run(
            [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(root), "--list"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        read = time.perf_counter() - started
    print(f"fleet: {arguments.servers} servers, {arguments.associations} associations, {len(instances)} instances")
    print(f"render_inventory: {rendered:.2f} s ({len(files)} files, {size / 1e6:.1f} MB)")
    print(f"write files:      {written:.2f} s")
    print(f"ansible-inventory --list: {read:.2f} s (instances are variables of their {arguments.servers} hosts)")


if __name__ == "__main__":
    main()
