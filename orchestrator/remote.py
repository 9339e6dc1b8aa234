"""Commands on servers over SSH with Fabric: the only module that opens SSH connections itself.

Host keys are always verified: against the server's recorded known_hosts file, else the user's. Every
connection sends keepalives, and a peer that stops acknowledging them is given up (see ``_watch_peer``).
Long operations run detached from the connection, as transient systemd units that are polled
(``run_detached``): a connection cut meanwhile is opened again and the operation's own answer read.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut, ThreadException, UnexpectedExit

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


KEEPALIVE_SECONDS = 10  # an SSH keepalive is sent after this many idle seconds...
DEAD_PEER_SECONDS = 60  # ...and a connection whose data goes unacknowledged this long is given up


def _watch_peer(connection: Connection) -> None:
    """Make a dead peer noticed: paramiko's keepalives expect no reply, so the kernel's TCP_USER_TIMEOUT turns
    one left unacknowledged for DEAD_PEER_SECONDS into a connection error (rather than TCP's ~15 minutes)."""
    transport = connection.client.get_transport()
    transport.set_keepalive(KEEPALIVE_SECONDS)
    if isinstance(transport.sock, socket.socket) and hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_PEER_SECONDS * 1000)


def _new_connection(target: SshTarget, timeout: float) -> Connection:
    """Give a Fabric connection to ``target``, not opened yet, that verifies the host key."""
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
    return connection


def connect(target: SshTarget, *, timeout: float = 10) -> Connection:
    """Give an open Fabric connection to ``target`` (keepalives on); raises OperationFailed naming the server."""
    connection = _new_connection(target, timeout)
    try:
        connection.open()
        _watch_peer(connection)
    except (TimeoutError, OSError, EOFError, paramiko.SSHException) as error:
        connection.close()
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


OPS_DIR = "/run/ruche-ops"  # on servers: the answer (UNIT.json) and error output (UNIT.err) of detached operations
POLL_TIMEOUT = 30  # seconds one short command of a poll may take before it is abandoned and the connection reopened
RECONNECT_PAUSE = 2  # seconds between attempts to open a lost connection again
UNIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,200}$")
RUNNING = frozenset({"active", "activating", "deactivating", "reloading", "refreshing"})

# Starts "$@" as transient service $1, its standard output and error in files of $2 (created 0700). Run again
# after a connection lost before its answer came, it starts nothing when the unit is there or has been: loaded, or
# its answer file exists (systemd-run also refuses a second unit of one name). User=: the SSH user's login
# environment (HOME...), as over SSH. Fixed text: every value an argument.
START_SCRIPT = """
unit=$1 dir=$2
shift 2
mkdir -p -m 700 "$dir" || exit
[ -e "$dir/$unit.json" ] && exit 0
[ "$(systemctl show --property=LoadState --value -- "$unit.service")" = loaded ] && exit 0
exec systemd-run --unit="$unit" --collect --quiet --expand-environment=no --property=User="$(id -un)" \\
    --property=StandardOutput=truncate:"$dir/$unit.json" --property=StandardError=truncate:"$dir/$unit.err" -- "$@"
"""


@dataclass(frozen=True)
class UnitState:
    """A systemd unit as ``systemctl show`` gives it: LoadState, ActiveState, SubState, Result."""

    load: str
    active: str
    sub: str = ""
    result: str = ""

    @property
    def running(self) -> bool:
        """Whether its process may still run (a finished ``--collect`` unit is unloaded: ``not-found``)."""
        return self.load == "loaded" and self.active in RUNNING


def parse_unit_state(text: str) -> UnitState:
    """Read ``systemctl show --property=LoadState,ActiveState,SubState,Result`` output; ValueError if incomplete."""
    values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    if not values.get("LoadState") or not values.get("ActiveState"):
        raise ValueError(f"not a unit state: {text.strip()[:200]!r}")
    return UnitState(values["LoadState"], values["ActiveState"], values.get("SubState", ""), values.get("Result", ""))


class DeadlinePassed(Exception):
    """The deadline of a detached operation passed; ``last_error`` is the last connection problem met, if any."""

    def __init__(self, last_error: str | None) -> None:
        super().__init__(last_error or "deadline passed")
        self.last_error = last_error


class _ConnectionLost(Exception):
    """A command's channel closed without an exit status: the connection went away under it."""


_LOST = (OSError, EOFError, paramiko.SSHException, CommandTimedOut, ThreadException, _ConnectionLost)
_REFUSED = (paramiko.AuthenticationException, paramiko.BadHostKeyException)  # not cured by trying again


def _within(seconds: float, client: paramiko.SSHClient, step: Callable[[], Result]) -> Result:
    """Run ``step``; past ``seconds``, close ``client`` under it, which ends every wait of paramiko with an error
    (a command's own timeout does not cover opening its channel, which waits on the peer)."""
    watchdog = threading.Timer(seconds, client.close)
    watchdog.daemon = True
    watchdog.start()
    try:
        return step()
    finally:
        watchdog.cancel()


class Reconnecting:
    """Short commands on one server until ``deadline`` (a ``clock()`` value): each given ``POLL_TIMEOUT``; a lost
    or stalled connection is opened again (``open_connection(seconds)``) and the command run again, until the
    deadline, which raises DeadlinePassed. Only for commands that may run twice. A refused key or host key raises
    OperationFailed at once."""

    def __init__(
        self,
        where: str,
        open_connection: Callable[[float], Connection],
        deadline: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.where, self.open_connection, self.deadline = where, open_connection, deadline
        self.clock, self.sleep = clock, sleep
        self.connection: Connection | None = None
        self.last_error: str | None = None

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or until the deadline; DeadlinePassed when it has passed."""
        if self.remaining() <= 0:
            raise DeadlinePassed(self.last_error)
        self.sleep(max(0.0, min(seconds, self.remaining())))

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """Run ``argv`` (each argument quoted); give its exit code, standard output and error output."""
        command = shlex.join(argv)
        while True:
            limit = min(POLL_TIMEOUT, self.remaining())
            if limit <= 0:
                raise DeadlinePassed(self.last_error)
            try:
                if self.connection is None:
                    self.connection = self.open_connection(min(10.0, limit))
                run = partial(self.connection.run, command, hide=True, warn=True, timeout=limit, in_stream=False)
                result = _within(limit + 5, self.connection.client, run)
                if result.exited == -1:
                    raise _ConnectionLost("the connection closed before the command's exit status came")
                return result.exited, result.stdout, result.stderr
            except _REFUSED as error:
                self.close()
                raise OperationFailed(f"{self.where}: SSH refused while reconnecting: {error}") from None
            except _LOST as error:
                self.last_error = f"{type(error).__name__}: {error}".strip()[:300]
                self.close()
                self.wait(RECONNECT_PAUSE)

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except Exception:  # closing a broken connection may fail too; it is dropped either way
                pass
            self.connection = None


def follow_unit(
    session: Reconnecting, unit: str, argv: list[str], *, poll_interval: float = 1.5
) -> tuple[str | None, str]:
    """Start ``argv`` as transient unit ``unit`` through ``session``, poll it until it has ended, read its answer,
    then remove its files; give its standard output (None when it left none) and the end of its error output.

    Raises OperationFailed when the server refuses to start it, DeadlinePassed at the session's deadline."""
    out, err = f"{OPS_DIR}/{unit}.json", f"{OPS_DIR}/{unit}.err"
    code, _stdout, stderr = session.run(["sh", "-c", START_SCRIPT, "sh", unit, OPS_DIR, *argv])
    if code != 0:
        raise OperationFailed(f"{session.where}: cannot start `{shlex.join(argv)}` as unit {unit}: "
                              f"{stderr.strip()[-2000:] or f'exit {code}'}")  # fmt: skip
    pause = min(0.5, poll_interval)
    while True:
        _code, shown, _stderr = session.run(
            ["systemctl", "show", "--property=LoadState,ActiveState,SubState,Result", "--", f"{unit}.service"]
        )
        try:
            if not parse_unit_state(shown).running:
                break
        except ValueError:  # systemd busy or restarting: asked again at the next poll
            pass
        session.wait(pause)
        pause = min(poll_interval, pause * 2)
    code, answer, _stderr = session.run(["cat", "--", out])
    _code, errors, _stderr = session.run(["tail", "-c", "3000", "--", err])
    try:
        session.run(["rm", "-f", "--", out, err])
    except DeadlinePassed:  # the answer is read; two small files stay in /run until the next boot
        pass
    return (answer if code == 0 else None), errors


def run_detached(target: SshTarget, argv: list[str], *, unit: str, timeout: float = 3600) -> tuple[str | None, str]:
    """Run ``argv`` on ``target`` as transient systemd unit ``unit``, detached from the SSH connection; give its
    standard output (None if it left none) and the end of its error output.

    The unit is polled with one short command every second or two; a connection lost meanwhile (a cut, a server
    that stops answering) is opened again and the poll retried until ``timeout`` seconds after the start, so the
    operation's own answer is read even after a cut of several minutes. Raises OperationFailed when the server
    cannot be reached at the start (nothing was started) or refuses the unit, TimedOut past ``timeout`` seconds
    (the unit may still run there: the message says how to look).
    """
    if not UNIT_NAME.match(unit):
        raise ValueError(f"not a unit name: {unit!r}")
    first = connect(target)  # unreachable now: OperationFailed at once, nothing started

    def reopen(seconds: float) -> Connection:
        connection = _new_connection(target, seconds)
        try:
            _within(seconds + 5, connection.client, connection.open)
            _watch_peer(connection)
        except BaseException:
            connection.client.close()  # no transport thread left behind by a failed attempt
            raise
        connection.client.get_transport().channel_timeout = POLL_TIMEOUT  # opening a session waits this at most
        return connection

    first.client.get_transport().channel_timeout = POLL_TIMEOUT
    session = Reconnecting(target.name, reopen, time.monotonic() + timeout)
    session.connection = first
    try:
        return follow_unit(session, unit, argv)
    except DeadlinePassed as passed:
        raise detached_timed_out(target.name, argv, unit, timeout, passed.last_error) from None
    finally:
        session.close()


def detached_timed_out(where: str, argv: list[str], unit: str, timeout: float, last_error: str | None) -> TimedOut:
    """Give the error of a detached operation whose deadline passed: it may still run on the server."""
    lost = f" (last SSH error: {last_error})" if last_error else ""
    return TimedOut(
        f"{where}: `{shlex.join(argv)}` (transient unit {unit}) gave no result within {timeout:.0f} s{lost}; "
        "it may still run on the server",
        hint=f"on {where}: `systemctl status {unit}` says whether it runs, `journalctl -u {unit}` what it did; "
        f"its answer, once it ends: {OPS_DIR}/{unit}.json",
    )


def get_file(target: SshTarget, remote_path: str, local_path: str, *, remove: bool = False) -> None:
    """Copy ``remote_path`` from ``target`` to ``local_path`` (over SFTP); with ``remove``, delete it there after."""
    with connect(target) as connection:
        try:
            connection.get(remote_path, local=local_path)
            if remove:
                connection.sftp().remove(remote_path)
        except (OSError, paramiko.SSHException) as error:
            raise OperationFailed(f"{target.name}: cannot fetch {remote_path}: {error}") from None


def put_file(target: SshTarget, local_path: str, remote_path: str, *, mode: int = 0o600) -> None:
    """Copy ``local_path`` to ``remote_path`` on ``target`` (over SFTP), the remote file given ``mode``.

    The file is made empty and given ``mode`` before its bytes are sent, so it is never readable by others meanwhile
    (SFTP creates a file with the server's umask). The remote directory must exist: the caller makes it first, e.g.
    ``run_command(target, ["install", "-d", "-m", "0700", directory])``. Raises OperationFailed naming the server
    and the path."""
    with connect(target) as connection:
        try:
            sftp = connection.sftp()
            with sftp.open(remote_path, "wb"):
                pass
            sftp.chmod(remote_path, mode)
            connection.put(local_path, remote=remote_path, preserve_mode=False)
        except (OSError, paramiko.SSHException) as error:
            raise OperationFailed(f"{target.name}: cannot copy {local_path} to {remote_path}: {error}") from None


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
