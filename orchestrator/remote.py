"""Commands on servers over SSH with Fabric: the only module that opens SSH connections itself.

Host keys are always verified: against the server's recorded known_hosts file, else the user's.
"""

from __future__ import annotations

import io
import os
import shlex
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Connection
from invoke.exceptions import UnexpectedExit

from orchestrator.errors import OperationFailed, TimedOut

Result = TypeVar("Result")


@dataclass(frozen=True)
class SshTarget:
    """How to reach one server over SSH."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key_path: str | None = None
    known_hosts_path: str | None = None

    @classmethod
    def of(cls, server) -> SshTarget:
        """Give the target of a registered server (an ``orchestrator.state.models.Server``)."""
        return cls(
            name=server.name,
            address=server.address,
            user=server.ssh_user,
            port=server.ssh_port,
            key_path=server.ssh_key_path,
            known_hosts_path=server.ssh_known_hosts_path,
        )


def connect(target: SshTarget, *, timeout: float = 10) -> Connection:
    """Give an open Fabric connection to ``target``; raises OperationFailed naming the server."""
    connect_kwargs: dict = {"banner_timeout": timeout, "auth_timeout": timeout}
    if target.key_path:
        connect_kwargs.update(key_filename=[target.key_path], look_for_keys=False, allow_agent=False)
    connection = Connection(
        target.address, user=target.user, port=target.port, connect_timeout=timeout, connect_kwargs=connect_kwargs
    )
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if target.known_hosts_path:
        connection.client.load_host_keys(target.known_hosts_path)
    else:
        connection.client.load_system_host_keys()
    try:
        connection.open()
    except (TimeoutError, OSError, paramiko.SSHException) as error:
        raise OperationFailed(
            f"cannot reach {target.name} ({target.address}:{target.port}) over SSH: {error}"
        ) from None
    return connection


class _RecordingRejectPolicy(paramiko.MissingHostKeyPolicy):
    """Refuses an unknown host key, as RejectPolicy does, but keeps it so that it can be shown."""

    def __init__(self) -> None:
        self.offered: paramiko.PKey | None = None

    def missing_host_key(self, client, hostname, key) -> None:
        self.offered = key
        raise paramiko.SSHException(f"host key of {hostname} is not in the known_hosts file")


def fingerprint(key: paramiko.PKey) -> str:
    """Give ``key``'s fingerprint as OpenSSH prints it (``SHA256:...``)."""
    return key.fingerprint


def fetch_host_key(address: str, port: int = 22, *, timeout: float = 10) -> paramiko.PKey:
    """Give the host key ``address`` offers over SSH (no sign-in); raises OperationFailed when it does not answer."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as error:
        raise OperationFailed(f"cannot reach {address}:{port} to read its SSH host key: {error}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as error:
        raise OperationFailed(f"{address}:{port} does not speak SSH: {error}") from None
    finally:
        transport.close()


def write_known_host(path: Path, address: str, port: int, key: paramiko.PKey) -> None:
    """Write ``path`` as a known_hosts file holding ``key`` for ``address`` (and port) alone, mode 0600."""
    hosts = paramiko.HostKeys()
    hosts.add(address if port == 22 else f"[{address}]:{port}", key.get_name(), key)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(descriptor)
    hosts.save(str(temporary))
    temporary.replace(path)


def trust_host_key(path: Path, address: str, port: int, confirm: Callable[[str, str], bool]) -> str:
    """Read the host key ``address`` offers, let ``confirm(key_type, fingerprint)`` accept it, then record it in
    ``path``; give the fingerprint. Raises OperationFailed when the server does not answer or the key is refused."""
    key = fetch_host_key(address, port)
    if not confirm(key.get_name(), fingerprint(key)):
        raise OperationFailed(f"the host key {fingerprint(key)} of {address} was not trusted; nothing was recorded")
    write_known_host(path, address, port, key)
    return fingerprint(key)


@dataclass(frozen=True)
class SshProbe:
    """What one SSH connection attempt found: ``outcome`` is ``ok``, ``unknown-host-key``,
    ``changed-host-key``, ``refused-key`` or ``unreachable``; ``host_key`` the fingerprint offered."""

    outcome: str
    detail: str
    host_key: str | None = None


def probe_ssh(target: SshTarget, *, timeout: float = 10) -> SshProbe:
    """Try to open an SSH session to ``target`` the way every other function here does (its key only, its
    host key verified) and say what stopped it, if anything. Never raises for a connection failure."""
    client = paramiko.SSHClient()
    policy = _RecordingRejectPolicy()
    client.set_missing_host_key_policy(policy)
    kwargs: dict = {"banner_timeout": timeout, "auth_timeout": timeout, "timeout": timeout}
    if target.key_path:
        kwargs.update(key_filename=[target.key_path], look_for_keys=False, allow_agent=False)
    try:
        if target.known_hosts_path:
            client.load_host_keys(target.known_hosts_path)
        else:
            client.load_system_host_keys()
        client.connect(target.address, port=target.port, username=target.user, **kwargs)
        key = client.get_transport().get_remote_server_key()
        return SshProbe("ok", f"signed in as {target.user}", fingerprint(key))
    except paramiko.BadHostKeyException as error:
        return SshProbe("changed-host-key", f"the server offers host key {fingerprint(error.key)}, not the "
                        f"recorded {fingerprint(error.expected_key)}", fingerprint(error.key))  # fmt: skip
    except paramiko.AuthenticationException as error:
        return SshProbe("refused-key", f"the server refused the key: {error}")
    except paramiko.SSHException as error:
        if policy.offered is not None:
            return SshProbe("unknown-host-key", str(error), fingerprint(policy.offered))
        return SshProbe("unreachable", f"SSH failed: {error}")
    except (OSError, EOFError) as error:  # refused, no route, timed out, an unreadable key or known_hosts file
        return SshProbe("unreachable", f"{type(error).__name__}: {error}")
    finally:
        client.close()


def run_command(target: SshTarget, argv: list[str], *, timeout: float = 120) -> str:
    """Run ``argv`` (each argument quoted) on ``target`` and give its standard output.

    Raises OperationFailed with the command's error output when it exits non-zero.
    """
    command = shlex.join(argv)
    with connect(target) as connection:
        try:
            result = connection.run(command, hide=True, warn=False, timeout=timeout, in_stream=False)
        except UnexpectedExit as error:
            stderr = error.result.stderr.strip()[-2000:]
            raise OperationFailed(f"{target.name}: `{command}` exited {error.result.exited}: {stderr}") from None
        except Exception as error:  # invoke's CommandTimedOut and transport errors
            if "timed out" in str(error).lower():
                raise TimedOut(f"{target.name}: `{command}` gave no result within {timeout:.0f} s") from None
            raise OperationFailed(f"{target.name}: `{command}` failed: {error}") from None
    return result.stdout


def run_tool(target: SshTarget, argv: list[str], *, timeout: float = 3600) -> tuple[int, str]:
    """Run ``argv`` on ``target``; give its exit code and standard output (a non-zero exit is not an error here).

    Raises OperationFailed when the server cannot be reached, TimedOut past ``timeout`` seconds.
    """
    command = shlex.join(argv)
    with connect(target) as connection:
        try:
            result = connection.run(command, hide=True, warn=True, timeout=timeout, in_stream=False)
        except Exception as error:  # invoke's CommandTimedOut and transport errors
            if "timed out" in str(error).lower():
                raise TimedOut(f"{target.name}: `{command}` gave no result within {timeout:.0f} s") from None
            raise OperationFailed(f"{target.name}: `{command}` failed: {error}") from None
    return result.exited, result.stdout


def get_file(target: SshTarget, remote_path: str, local_path: str, *, remove: bool = False) -> None:
    """Copy ``remote_path`` from ``target`` to ``local_path`` (over SFTP); with ``remove``, delete it there after."""
    with connect(target) as connection:
        try:
            connection.get(remote_path, local=local_path)
            if remove:
                connection.sftp().remove(remote_path)
        except (OSError, paramiko.SSHException) as error:
            raise OperationFailed(f"{target.name}: cannot fetch {remote_path}: {error}") from None


def put_file(target: SshTarget, content: bytes, remote_path: str, *, mode: int = 0o644) -> None:
    """Write ``content`` to ``remote_path`` on ``target`` with ``mode``."""
    with connect(target) as connection:
        connection.put(io.BytesIO(content), remote=remote_path)
        connection.sftp().chmod(remote_path, mode)


def for_each_server(
    targets: Iterable[SshTarget], action: Callable[[SshTarget], Result], *, parallel: int = 16
) -> dict[str, Result | Exception]:
    """Run ``action`` on every target in parallel; give each server's result, or the error it raised."""
    targets = list(targets)
    results: dict[str, Result | Exception] = {}
    if not targets:
        return results

    def guarded(target: SshTarget) -> tuple[str, Result | Exception]:
        try:
            return target.name, action(target)
        except Exception as error:  # reported per server, never lost
            return target.name, error

    with ThreadPoolExecutor(max_workers=min(parallel, len(targets))) as pool:
        for name, outcome in pool.map(guarded, targets):
            results[name] = outcome
    return results
