"""The lab DNS, Debian's dnsmasq on the lab bridge's gateway address port 53, answering the lab's test names only.

It holds the records kept in the lab's ``dns/records.json`` (A, AAAA, CNAME, TXT), never forwards a query anywhere
(an unknown name is NXDOMAIN at once), serves no DHCP and reads no file but its own configuration. A record change
rewrites the configuration and restarts dnsmasq (it re-reads none of these records on SIGHUP), so the next query
sees it. Names and values are validated before they reach the configuration: nothing a user types can add a line.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from orchestrator.errors import Conflict, InvalidInput, OperationFailed, TimedOut
from orchestrator.lab.host import start_detached
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.machine import stop
from orchestrator.lab.network import LabNetwork
from orchestrator.lab.record import LabRecord, ProcessRecord
from orchestrator.processes import is_same_process

PROGRAM = "dnsmasq"
PACKAGE = "dnsmasq-base"  # the program without the dnsmasq package's own service (which would take port 53)
PORT = 53
RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")
TTL_SECONDS = 1  # a change is seen at once, even by a resolver that caches
MAX_TXT_LENGTH = 255  # one character-string
PROBE_NAME = "ruche-lab-probe.invalid"
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


def normalize_name(name: str) -> str:
    """Give ``name`` in lower case without a final dot; raises InvalidInput unless it is a DNS name (ASCII labels
    of letters, digits, hyphens and underscores, as in ``_acme-challenge.wiki.amap.test``)."""
    text = name.lower().removesuffix(".") if isinstance(name, str) and name.isascii() else ""
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput(
            f"{name!r} is not a DNS name",
            hint="give labels of letters, digits, '-' and '_' separated by dots, e.g. wiki.amap.test",
        )
    return text


def validate_record(name: str, rtype: str, value: str) -> dict[str, str]:
    """Give the record ``{"name", "type", "value"}`` normalized; raises InvalidInput for a bad name, type or value."""
    rtype = rtype.upper() if isinstance(rtype, str) else ""
    if rtype not in RECORD_TYPES:
        raise InvalidInput(f"record type {rtype or '?'!r} is not served by the lab DNS",
                           hint=f"use one of {', '.join(RECORD_TYPES)}")  # fmt: skip
    name = normalize_name(name)
    if not isinstance(value, str):
        raise InvalidInput(f"the value of a {rtype} record must be text")
    if rtype in ("A", "AAAA"):
        kind = ipaddress.IPv4Address if rtype == "A" else ipaddress.IPv6Address
        try:
            value = str(kind(value))
        except ValueError:
            family = "IPv4" if rtype == "A" else "IPv6"
            raise InvalidInput(f"{value!r} is not an {family} address (the value of an {rtype} record)") from None
    elif rtype == "CNAME":
        value = normalize_name(value)
        if value == name:
            raise InvalidInput(f"a CNAME of {name} cannot point to itself")
    elif not value.isascii() or not value.isprintable():
        raise InvalidInput(
            f"a TXT record's value must be printable ASCII: {value!r} is not",
            hint="no newline, tab or other control character, no accented letter",
        )
    elif len(value) > MAX_TXT_LENGTH:
        raise InvalidInput(f"a TXT record's value has {MAX_TXT_LENGTH} characters at most (got {len(value)})")
    return {"name": name, "type": rtype, "value": value}


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(records: list[dict], *, address: str, pid_file: Path, log_file: Path) -> str:
    """Give dnsmasq's configuration: listen on ``address`` port 53 only, no upstream, no hosts file, no DHCP, every
    name it does not hold NXDOMAIN, and ``records`` (each validated again: the records file is data too)."""
    ipaddress.IPv4Address(address)
    for path in (pid_file, log_file):
        if "\n" in str(path) or "\r" in str(path):
            raise InvalidInput(f"a lab path holds a line break: {path!r}")
    lines = [
        "# written by ruche (orchestrator/lab/dns.py) from records.json; change it with `ruche lab dns`",
        f"port={PORT}",
        f"listen-address={address}",
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "local=/#/",  # every name not held here: NXDOMAIN, never forwarded
        f"local-ttl={TTL_SECONDS}",
        f"pid-file={pid_file}",
        f"log-facility={log_file}",
        "log-queries",
    ]
    for record in sorted((validate_record(r["name"], r["type"], r["value"]) for r in records), key=_sort_key):
        name, rtype, value = record["name"], record["type"], record["value"]
        if rtype in ("A", "AAAA"):
            lines.append(f"host-record={name},{value}")
        elif rtype == "CNAME":
            lines.append(f"cname={name},{value}")
        else:
            lines.append(f"txt-record={name},{_quoted(value)}")
    return "\n".join(lines) + "\n"


def _sort_key(record: dict) -> tuple[str, str, str]:
    return record["name"], record["type"], record["value"]


def _records_path(layout: LabLayout) -> Path:
    return layout.dns_dir / "records.json"


def _config_path(layout: LabLayout) -> Path:
    return layout.dns_dir / "dnsmasq.conf"


def records(layout: LabLayout) -> list[dict]:
    """Give the lab DNS's records, ``[{"name", "type", "value"}]`` sorted by name, type and value."""
    try:
        data = json.loads(_records_path(layout).read_text())
    except FileNotFoundError:
        return []
    return sorted((validate_record(r["name"], r["type"], r["value"]) for r in data), key=_sort_key)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _write(layout: LabLayout, entries: list[dict], address: str) -> None:
    config = render_config(
        entries, address=address, pid_file=layout.dns_dir / "dnsmasq.pid", log_file=layout.dns_log
    )  # rendered first: a bad record fails before any file changes
    _write_atomically(_records_path(layout), json.dumps(sorted(entries, key=_sort_key), indent=2) + "\n")
    _write_atomically(_config_path(layout), config)


def start(layout: LabLayout, address: str) -> ProcessRecord:
    """Write the configuration from the records file (none at first) and start dnsmasq in the foreground of its own
    session; give its process once it answers. Raises OperationFailed (it ended: its log says why) or TimedOut."""
    _write(layout, records(layout), address)
    argv = [PROGRAM, "--keep-in-foreground", f"--conf-file={_config_path(layout)}"]
    started = start_detached(argv, layout.dns_log, what="the lab DNS (dnsmasq)")
    wait_until_answering(address, started, layout.dns_log)
    return started


def is_answering(address: str, *, timeout: float = 1) -> bool:
    """Tell whether a DNS server answers on ``address`` port 53 (any answer: a name it does not hold is NXDOMAIN)."""
    try:
        dns.query.udp(dns.message.make_query(PROBE_NAME, "A"), address, port=PORT, timeout=timeout)
        return True
    except (dns.exception.DNSException, OSError):
        return False


def wait_until_answering(address: str, process: ProcessRecord, log: Path, *, timeout: float = 15) -> None:
    """Return once dnsmasq answers on ``address``; raises OperationFailed (it stopped) or TimedOut, naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(process.pid, process.start_time):
            raise OperationFailed(
                f"the lab DNS (dnsmasq) stopped; see {log}",
                hint=f"another program may hold port {PORT} of {address} or of every address (the dnsmasq "
                "package's own service: `systemctl disable --now dnsmasq`; ruche needs only dnsmasq-base): "
                f"`ss -lunp 'sport = :{PORT}'`",
            )
        if is_answering(address, timeout=0.5):
            return
        time.sleep(0.1)
    raise TimedOut(f"the lab DNS (dnsmasq) did not answer on {address}:{PORT} within {timeout:.0f} s; see {log}")


@contextmanager
def _changing(layout: LabLayout) -> Iterator[tuple[LabRecord, str]]:
    """Hold the lab DNS's lock; give the lab record and the DNS's address. Raises Conflict when it is not running."""
    _running_record(layout)  # before the lock file is made: a workspace without a lab gets no lab directory
    with open(layout.dns_dir / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            record = _running_record(layout)  # again: another change may have restarted it meanwhile
            yield record, LabNetwork.parse(record.subnet).gateway
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running_record(layout: LabLayout) -> LabRecord:
    record = LabRecord.load(layout.record_path)
    if record is None or record.dns is None or not is_same_process(record.dns.pid, record.dns.start_time):
        raise Conflict(
            "the lab DNS is not running",
            hint="bring the lab up with `ruche lab up` (it needs dnsmasq: apt-get install dnsmasq-base)",
        )
    return record


def _apply(layout: LabLayout, record: LabRecord, address: str, entries: list[dict]) -> None:
    """Make ``entries`` the lab DNS's records: rewrite its files, restart it, record its new process."""
    before = records(layout)
    _write(layout, entries, address)
    stop(record.dns, timeout=10)
    try:
        record.dns = start(layout, address)
    except (OperationFailed, TimedOut):
        _write(layout, before, address)  # the records it last served, so the lab keeps a DNS
        record.dns = start(layout, address)
        record.save(layout.record_path)
        raise
    record.save(layout.record_path)


def set_record(layout: LabLayout, name: str, rtype: str, value: str, *, append: bool = False) -> dict[str, str]:
    """Make ``value`` the record of type ``rtype`` of ``name`` (replacing that name's others of that type; with
    ``append``, beside them); give the record as stored. Raises InvalidInput (bad name, type or value), Conflict (a
    CNAME beside other records of a name, or no lab DNS running)."""
    wanted = validate_record(name, rtype, value)
    if wanted["type"] == "CNAME" and append:
        raise InvalidInput(f"a name has one CNAME at most: {wanted['name']} cannot get a second one")
    with _changing(layout) as (record, address):
        current = records(layout)
        same_name = [r for r in current if r["name"] == wanted["name"]]
        others = [r for r in same_name if r["type"] != wanted["type"]]
        if others and "CNAME" in {wanted["type"]} | {r["type"] for r in others}:
            held = ", ".join(sorted({r["type"] for r in others}))
            raise Conflict(
                f"{wanted['name']} already has {held} record(s): a CNAME cannot stand beside other records of a name",
                hint=f"remove them first: `ruche lab dns remove {wanted['name']}`",
            )
        kept = [r for r in current if (r["name"], r["type"]) != (wanted["name"], wanted["type"])]
        if append:
            kept += [r for r in same_name if r["type"] == wanted["type"] and r != wanted]
        _apply(layout, record, address, [*kept, wanted])
    return wanted


def remove_records(layout: LabLayout, name: str, rtype: str | None = None) -> int:
    """Remove ``name``'s records (of type ``rtype`` only, when given); give how many were removed (0: no restart)."""
    name = normalize_name(name)
    if rtype is not None and rtype.upper() not in RECORD_TYPES:
        raise InvalidInput(f"record type {rtype!r} is not served by the lab DNS",
                           hint=f"use one of {', '.join(RECORD_TYPES)}")  # fmt: skip
    with _changing(layout) as (record, address):
        current = records(layout)
        kept = [r for r in current if r["name"] != name or (rtype is not None and r["type"] != rtype.upper())]
        if len(kept) != len(current):
            _apply(layout, record, address, kept)
    return len(current) - len(kept)
