"""The lab's OCI registry: Debian's ``docker-registry`` on the host end of the lab network."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from orchestrator.errors import OperationFailed, TimedOut
from orchestrator.lab.host import start_detached
from orchestrator.lab.record import ProcessRecord
from orchestrator.processes import is_same_process


def write_config(path: Path, *, address: str, storage_dir: Path) -> None:
    """Write the registry's configuration: listen on ``address``, keep blobs in ``storage_dir``."""
    storage_dir.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage_dir}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )


def start(config: Path, log: Path) -> ProcessRecord:
    """Start ``docker-registry serve CONFIG`` detached; give its process."""
    return start_detached(["docker-registry", "serve", str(config)], log, what="the lab registry")


def is_answering(address: str) -> bool:
    """Tell whether a registry answers the distribution API's base endpoint at ``address``."""
    try:
        return requests.get(f"http://{address}/v2/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until_answering(address: str, process: ProcessRecord, log: Path, *, timeout: float = 30) -> None:
    """Return once the registry answers; raises OperationFailed/TimedOut with its log's path."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # its own process must be the one answering: a registry left behind by an earlier lab on the
        # same address would answer while this one exits at once (address in use)
        if not is_same_process(process.pid, process.start_time):
            raise OperationFailed(f"the lab registry stopped; see {log}",
                                  hint="another process may hold its address (a registry an earlier lab left behind: "
                                       f"`ss -ltnp 'sport = :{address.rsplit(':', 1)[-1]}'`)")  # fmt: skip
        if is_answering(address):
            time.sleep(0.5)
            if is_same_process(process.pid, process.start_time):
                return
            continue
        time.sleep(0.2)
    raise TimedOut(f"the lab registry did not answer at {address} within {timeout:.0f} s; see {log}")
