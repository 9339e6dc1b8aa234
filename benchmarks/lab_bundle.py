"""Benchmark on two labs: an association's bundle exported from one collective and imported into another, for an
instance holding GIB GiB of files (issue 27): wall time and peak memory of `ruche association export` and of `ruche
association import`, each run as its own process (its ru_maxrss from wait4: Python and the imports included).

The sender's lab (10.213.58.0/24) runs a Radicale instance (size large) whose volume gets GIB GiB of random data
(incompressible: gzip's worst case) in files of FILE_MIB MiB, written inside its container (owned by its users, in
its ID range); the receiver's lab (10.213.59.0/24) imports the bundle, sealed secrets and all. Prints figures;
asserts nothing but that both commands succeed. Needs root.

Run: python3 benchmarks/lab_bundle.py [--gib 2] [--file-mib 64] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.actions.init import init_workspace  # noqa: E402
from orchestrator.actions.lab_down import tear_down  # noqa: E402
from orchestrator.actions.lab_up import bring_up  # noqa: E402
from orchestrator.config import LabSettings  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402
from tests.lab.servers import on  # noqa: E402


def workspace_on(subnet: str, name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"ruche-bench-{name}-")) / "workspace"
    init_workspace(path, collective=f"Benchmark {name}", base_domain=f"{name}.ruche.test", state_url=None)
    opened = open_workspace(path)
    opened.save_config(opened.config.model_copy(update={"lab": LabSettings(subnet=subnet)}))
    return path


def ruche(workspace: Path, *arguments: str) -> tuple[str, float, float]:
    """Run `ruche -w WORKSPACE ARGUMENTS` as its own process; give (stdout, seconds, its peak resident MiB)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "orchestrator", "-w", str(workspace), *arguments],
                                   stdout=out, stderr=err, text=True)  # fmt: skip
        _pid, status, usage = os.wait4(process.pid, 0)  # its own rusage: ru_maxrss in KiB
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(
            f"ruche {' '.join(arguments)} failed ({process.returncode}):\n{stdout[-3000:]}{stderr[-3000:]}"
        )
    return stdout, elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=2.0, help="GiB of files in the exported instance")
    parser.add_argument("--file-mib", type=int, default=64, help="size of each file written")
    parser.add_argument("--keep", action="store_true", help="leave both labs up afterwards")
    arguments = parser.parse_args()
    sender, receiver = workspace_on("10.213.58.0/24", "sender"), workspace_on("10.213.59.0/24", "receiver")
    try:
        bring_up(sender, app_servers=1)
        bring_up(receiver, app_servers=1)
        ruche(
            sender, "association", "add", "bench", "--name", "Bench", "--email", "contact@bench.example", "--no-offer"
        )
        ruche(sender, "instance", "create", "bench", "radicale", "--name", "data", "--size", "large",
              "--param", "admin_user=admin")  # fmt: skip
        ruche(sender, "apply")
        files = max(1, round(arguments.gib * 1024 / arguments.file_mib))
        started = time.perf_counter()
        on(sender, "lab-1", "podman", "exec", "ruche-bench--data-app", "sh", "-c",
           f"mkdir -p /var/lib/radicale/bench && for i in $(seq 1 {files}); do "
           f"head -c {arguments.file_mib}M /dev/urandom > /var/lib/radicale/bench/blob-$i; done")  # fmt: skip
        total = files * arguments.file_mib / 1024
        print(f"bench/data (Radicale) holds {total:.2f} GiB of random data in {files} files "
              f"(written in {time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
        receiver_key = json.loads(ruche(receiver, "key", "show", "--json")[0])["public_key"]
        sender_key = json.loads(ruche(sender, "key", "show", "--json")[0])["public_key"]
        bundle = Path(tempfile.mkdtemp(prefix="ruche-bench-bundle-")) / "bench.ruche-bundle"
        _out, export_s, export_mib = ruche(sender, "association", "export", "bench", "-o", str(bundle),
                                           "--to", receiver_key, "--json", "--quiet")  # fmt: skip
        size = bundle.stat().st_size
        print(f"export: {export_s:.1f} s, peak {export_mib:.0f} MiB, bundle {size / 2**30:.2f} GiB "
              f"({total * 1024 / export_s:.1f} MiB/s of data)", flush=True)  # fmt: skip
        out, import_s, import_mib = ruche(receiver, "association", "import", str(bundle), "--trust", sender_key,
                                          "--json", "--quiet")  # fmt: skip
        result = json.loads(out)["instances"]["data"]["result"]
        print(f"import: {import_s:.1f} s, peak {import_mib:.0f} MiB ({total * 1024 / import_s:.1f} MiB/s of data); "
              f"{result['files']} files compared, {result['health']}", flush=True)  # fmt: skip
        bundle.unlink()
    finally:
        if not arguments.keep:
            for workspace in (sender, receiver):
                tear_down(workspace)


if __name__ == "__main__":
    main()
