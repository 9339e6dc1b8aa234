"""Commands run on this machine (the lab host), always as argument lists, never through a shell."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from orchestrator.errors import MissingPrerequisite, OperationFailed
from orchestrator.lab.record import ProcessRecord
from orchestrator.processes import process_start_time

# program -> Debian package that provides it
LAB_PROGRAMS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "ssh-keygen": "openssh-client",
    "docker-registry": "docker-registry",
    "podman": "podman",
    "tar": "tar",
}


def require_root() -> None:
    """Raise MissingPrerequisite unless this process runs as root."""
    if os.geteuid() != 0:
        raise MissingPrerequisite(
            "the lab needs root (it boots containers and creates network links)",
            hint="run the command with sudo, or as root",
        )


def require_programs(programs: dict[str, str] = LAB_PROGRAMS) -> None:
    """Raise MissingPrerequisite naming every missing program and the packages that provide them."""
    missing = {program: package for program, package in programs.items() if shutil.which(program) is None}
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise MissingPrerequisite(
            f"missing program(s): {', '.join(sorted(missing))}",
            hint=f"install them with: apt-get install {packages}",
        )


def require_free_disk(path: Path, needed_mib: int, purpose: str) -> None:
    """Raise MissingPrerequisite when the file system of ``path`` has less than ``needed_mib`` free."""
    path.mkdir(parents=True, exist_ok=True)
    free_mib = shutil.disk_usage(path).free // (1024 * 1024)
    if free_mib < needed_mib:
        raise MissingPrerequisite(
            f"not enough free disk for {purpose}: {free_mib} MiB free in {path}, {needed_mib} MiB needed",
            hint="free some space (or remove old lab caches under the cache directory) and try again",
        )


def run(
    args: Sequence[str | os.PathLike],
    *,
    timeout: float | None = 600,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess:
    """Run ``args`` and give the completed process (stdout/stderr captured as text).

    Raises OperationFailed with the command's last error lines when it exits non-zero or times out.
    """
    command = [os.fspath(arg) for arg in args]
    label = what or " ".join(command[:3])
    try:
        completed = subprocess.run(
            command,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=None if env is None else {**os.environ, **env},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"{label}: no result after {timeout:.0f} s") from None
    except FileNotFoundError:
        raise MissingPrerequisite(f"{label}: program {command[0]!r} not found") from None
    if completed.returncode != 0:
        error_text = (completed.stderr or completed.stdout or b"").decode(errors="replace").strip()
        tail = "\n".join(error_text.splitlines()[-15:])
        if "No space left on device" in error_text:
            raise MissingPrerequisite(f"{label}: the disk is full", hint="free some space and run again")
        raise OperationFailed(f"{label} failed (exit {completed.returncode}):\n{tail}")
    completed.stdout = completed.stdout.decode(errors="replace")
    completed.stderr = completed.stderr.decode(errors="replace")
    return completed


@contextmanager
def cache_lock(cache_dir: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``name`` in the lab cache: two labs brought up at once (the test tiers run in
    parallel, each with its own lab) build a missing image or base once, the second then finds it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_detached(argv: Sequence[str], log: Path, *, what: str, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start ``argv`` in a session of its own (it outlives ruche), its output appended to ``log``; give its process
    (pid and start time). Raises OperationFailed naming ``what`` and the log when it ended at once."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=env)  # fmt: skip
    start_time = process_start_time(process.pid)
    if start_time is None:
        raise OperationFailed(f"{what} ended at once; see {log}")
    return ProcessRecord(pid=process.pid, start_time=start_time)
