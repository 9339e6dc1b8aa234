"""Benchmark: the control plane at fleet scale. Fills a state database (PostgreSQL by default, as a
collective of this size runs) with ASSOCIATIONS associations, 3 instances each and SERVERS servers
through ruche's own functions (`add_server`, `add_association`, instances built with the helpers
`plan_instance` uses: see `fill`), then times the commands an
admin runs, each as its own `ruche` process (start-up included), with its peak memory:
`instance list --json`, `quota report`, `plan` (its fingerprint cache removed first, then again),
`status --no-check`, `inventory export` (everything rendered: the first, or with its cache removed as
after an upgrade of ruche; then after one association's offer changed; then unchanged: it must write
nothing, so files keep their modification times and the inventories' history gets no commit), and,
as the baseline in the same run, `ansible-inventory --list` reading the exported inventory. Target:
each ruche command under 2 s. Prints figures; asserts nothing.

Run: python3 benchmarks/control_plane_scale.py [--associations 10000] [--servers 300] [--state-url URL]
     (default: a fresh database on scripts/postgresql-for-tests' server; --state-url sqlite:///... works too)
Filling 10,000 associations takes several minutes; --keep WORKSPACE keeps (or reuses) the filled workspace.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks.postgresql import fresh_database_url  # noqa: E402
from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.catalog import load_catalog, resolve_parameters  # noqa: E402
from orchestrator.deployment import fingerprint, free_http_port, generate_secrets, instance_domain  # noqa: E402
from orchestrator.idranges import free_slot  # noqa: E402
from orchestrator.operations.inventories import deployment_variables  # noqa: E402
from orchestrator.secrets import generate_secret  # noqa: E402
from orchestrator.state.associations import add_association, validate_association_spec  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.state.models import Instance, Server  # noqa: E402
from orchestrator.state.servers import add_server, validate_server_spec  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402

# services and sizes of the generated instances (the catalogue's, with their required parameters)
MIX = (
    ("radicale", "small"),
    ("miniflux", "small"),
    ("mediawiki", "medium"),
    ("nextcloud", "medium"),
    ("radicale", "medium"),
)
PARAMETERS = {"radicale": {}, "miniflux": {}, "mediawiki": {"admin_email": "admin@example.org"},
              "nextcloud": {"admin_email": "admin@example.org"}}  # fmt: skip


def fill(workspace_path: Path, associations: int, servers: int) -> float:
    """Servers and associations through add_server/add_association (validated specs, the audit trail);
    instances built as plan_instance builds them (catalogue sizes, instance_domain, free_http_port,
    free_slot, least-allocated server, resolved parameters), recorded as running with the fingerprint of
    their deployment applied. plan_instance itself reads every instance to place one (ports, ID slots,
    capacities): creating 30,000 one by one takes hours, so it is timed on its own at the end
    (`instance create` at this scale). Secrets: one ciphertext per secret name, reused (the vault's KDF
    would time encryption, and no reading command decrypts)."""
    started = time.perf_counter()
    workspace = open_workspace(workspace_path)
    catalog = load_catalog(workspace.catalog_dir)
    vault = workspace.vault()
    rng = random.Random(42)
    store = StateStore(workspace.state_url)
    ciphertexts: dict[str, str] = {}
    try:
        with store.session() as session:
            rows = [add_server(session, validate_server_spec(
                name=f"web-{number:03d}", address=f"10.{number // 250}.{number % 250}.10", cpu=64, memory_mb=262144,
                disk_gb=8000, labels={"region": rng.choice(["lyon", "nantes", "lille"])},
            )) for number in range(servers)]  # fmt: skip
            server_ids = [r.id for r in rows]
        ports: dict[int, set[int]] = {i: set() for i in server_ids}
        allocated = dict.fromkeys(server_ids, 0)
        slots: set[int] = set()
        batch = 500
        for first in range(0, associations, batch):
            with store.session() as session:
                by_id = {s.id: s for s in session.scalars(select(Server))}
                for number in range(first, min(first + batch, associations)):
                    slug = f"asso-{number:05d}"
                    owner = add_association(session, validate_association_spec(
                        slug=slug, name=f"Association {number}", email=f"contact@{slug}.example",
                        offer=rng.choice(["decouverte", "association", "association"]),
                    ))  # fmt: skip
                    for index, (service, size) in enumerate(rng.sample(MIX, 3)):
                        definition = catalog.get(service)
                        resources = getattr(definition.sizes, size)
                        server_id = min(allocated, key=allocated.get)
                        allocated[server_id] += resources.memory_mb
                        port, slot = free_http_port(ports[server_id]), free_slot(slots)
                        ports[server_id].add(port)
                        slots.add(slot)
                        for name in generate_secrets(definition):
                            ciphertexts.setdefault(name, vault.encrypt(generate_secret()))
                        name = f"{service}-{index}"
                        instance = Instance(
                            association=owner, name=name, service_id=service, service_version=definition.version,
                            size=size, cpu=resources.cpu, memory_mb=resources.memory_mb, disk_gb=resources.disk_gb,
                            server=by_id[server_id], parameters=resolve_parameters(definition, PARAMETERS[service]),
                            state="running", desired_state="present", health="healthy", health_detail="",
                            domain=instance_domain(slug, name, workspace.config.base_domain), http_port=port,
                            secrets={n: ciphertexts[n] for n in generate_secrets(definition)}, id_slot=slot,
                        )  # fmt: skip
                        session.add(instance)
                        instance.applied_fingerprint = fingerprint(
                            deployment_variables(instance, catalog, workspace.config)
                        )
            done = min(first + batch, associations)
            if done % 1000 == 0 or done == associations:
                print(f"  {done} associations filled ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        store.close()
    return time.perf_counter() - started


def timed(label: str, argv: list[str], *, environment: dict) -> float:
    """Run ``argv`` as its own process; print its wall time and peak memory (maximum resident set)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode()[-400:] if process.stderr else ""
    print(f"{label:<34} {elapsed:6.2f} s  {usage.ru_maxrss / 1024:7.0f} MiB  exit {code}"
          + (f"  ({error.strip()})" if code not in (0, 1) else ""), flush=True)  # fmt: skip
    return elapsed


def snapshot(directory: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file() and ".git" not in p.parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--associations", type=int, default=10000)
    parser.add_argument("--servers", type=int, default=300)
    parser.add_argument("--state-url", help="the state database (default: a fresh PostgreSQL database)")
    parser.add_argument(
        "--keep", type=Path, metavar="WORKSPACE", help="fill this workspace once and keep it (reused if it exists)"
    )
    arguments = parser.parse_args()
    workspace_path = arguments.keep or Path(tempfile.mkdtemp(prefix="ruche-scale-")) / "workspace"
    if not (workspace_path / "ruche.toml").exists():
        state_url = arguments.state_url or fresh_database_url("ruche_scale")
        if state_url is None:
            parser.error("no PostgreSQL server at hand (scripts/postgresql-for-tests failed): give --state-url")
        init_workspace(workspace_path, collective="Scale", base_domain="scale.ruche.test", state_url=state_url)
        print(f"filling {arguments.associations} associations, {3 * arguments.associations} instances, "
              f"{arguments.servers} servers ({state_url.split('://')[0]})", flush=True)  # fmt: skip
        print(f"filled in {fill(workspace_path, arguments.associations, arguments.servers):.0f} s")
    environment = {**os.environ, "RUCHE_WORKSPACE": str(workspace_path), "PYTHONPATH": str(ROOT)}
    ruche = [sys.executable, "-m", "orchestrator"]
    timed("ruche --version (start-up only)", [*ruche, "--version"], environment=environment)
    timed("instance list --json", [*ruche, "instance", "list", "--json"], environment=environment)
    timed("quota report", [*ruche, "quota", "report"], environment=environment)
    workspace = open_workspace(workspace_path)
    caches = workspace.root / "cache"
    (caches / f"fingerprints-{workspace.config.environment}.json").unlink(missing_ok=True)
    timed("plan (fingerprints computed)", [*ruche, "plan"], environment=environment)
    timed("plan (again)", [*ruche, "plan"], environment=environment)
    timed("status --no-check", [*ruche, "status", "--no-check"], environment=environment)
    name = f"bench-{int(time.time())}"
    timed("instance create (one more)", [*ruche, "instance", "create", "asso-00000", "radicale", "--name", name,
                                         "--over-quota"], environment=environment)  # fmt: skip
    timed(
        "instance delete --dry-run",
        [*ruche, "instance", "delete", f"asso-00000/{name}", "--dry-run"],
        environment=environment,
    )
    inventory = workspace.inventories_dir / workspace.config.environment
    first = "inventory export (first)" if not inventory.exists() else "inventory export (all rendered)"
    (caches / f"inventory-{workspace.config.environment}.json").unlink(missing_ok=True)  # as after an upgrade of ruche
    timed(first, [*ruche, "inventory", "export"], environment=environment)
    offers = ("decouverte", "association")
    moved = subprocess.run(
        [*ruche, "association", "show", "asso-00002", "--json"], capture_output=True, text=True, env=environment
    )
    offer = offers[1] if '"offer": "decouverte"' in moved.stdout else offers[0]
    subprocess.run(
        [*ruche, "association", "set-offer", "asso-00002", offer, "--over-quota"], capture_output=True, env=environment
    )
    timed("inventory export (one offer changed)", [*ruche, "inventory", "export"], environment=environment)
    before = snapshot(workspace.inventories_dir)
    log = ["git", "-C", str(workspace.inventories_dir), "rev-list", "--count", "HEAD"]
    commits = subprocess.run(log, capture_output=True, text=True).stdout.strip()
    export = timed("inventory export (unchanged)", [*ruche, "inventory", "export"], environment=environment)
    untouched = snapshot(workspace.inventories_dir) == before
    same_history = subprocess.run(log, capture_output=True, text=True).stdout.strip() == commits
    print(f"  unchanged export: files untouched {untouched}, history without a new commit {same_history}")
    baseline = timed("ansible-inventory --list (baseline)", ["ansible-inventory", "-i", str(inventory), "--list"],
                     environment={**environment, "ANSIBLE_VAULT_PASSWORD_FILE": str(workspace.config.secrets.vault_password_file)})  # fmt: skip
    print(f"  export / ansible-inventory --list: {export / baseline:.0%}")
    print(f"workspace: {workspace_path}" + ("" if arguments.keep else " (temporary)"))


if __name__ == "__main__":
    main()
