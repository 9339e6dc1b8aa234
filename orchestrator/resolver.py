"""DNS lookups with a real resolver library (dnspython): does a name lead to the server that serves it?

The system's resolvers are used unless others are named (``ADDRESS`` or ``ADDRESS:PORT``, e.g. the
collective's own resolver, or an authoritative server to see records before they propagate).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

RECORD_TTL = 3600
_RESOLVER = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)|(?P<bare>[0-9A-Fa-f:]+))(?::(?P<port>\d{1,5}))?$"
)


def parse_resolver(text: str) -> tuple[str, int]:
    """Give (address, port) of ``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT``; raises ValueError."""
    match = _RESOLVER.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not ADDRESS or ADDRESS:PORT (e.g. 192.0.2.53 or [2001:db8::53]:5353)")
    if match.group("bare"):  # an IPv6 address without brackets takes no port
        address, port = match.group("bare"), 53
    else:
        address, port = match.group("v6") or match.group("v4"), int(match.group("port") or 53)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{text!r}: {address!r} is not an IP address") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is not between 1 and 65535")
    return address, port


def make_resolver(resolvers: list[str] | None = None, *, timeout: float = 5) -> dns.resolver.Resolver:
    """Give a resolver asking ``resolvers`` (``ADDRESS[:PORT]``), else the system's (/etc/resolv.conf)."""
    if not resolvers:
        resolver = dns.resolver.Resolver(configure=True)
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_resolver(text)) for text in resolvers]
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


@dataclass(frozen=True)
class Lookup:
    """The addresses a name resolves to (A and AAAA, CNAMEs followed), or why it resolves to none."""

    name: str
    addresses: tuple[str, ...]
    problem: str | None = None  # "no such name", "no address record", "no answer: ..."


def lookup(resolver: dns.resolver.Resolver, name: str, *, strict: bool = False) -> Lookup:
    """Resolve ``name``'s A and AAAA records with ``resolver``; never raises for a DNS failure. ``strict``: a family
    that gives no answer makes a problem even when the other gives addresses (they may not be all)."""
    addresses: list[str] = []
    problems: list[str] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        try:
            answer = resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(name, (), "no such name (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.Timeout:
            problems.append(f"no {dns.rdatatype.to_text(rdtype)} answer in time")
            continue
        except dns.exception.DNSException as error:  # no name server answering, a name too long...
            problems.append(f"no {dns.rdatatype.to_text(rdtype)} answer ({type(error).__name__})")
            continue
        addresses += [str(ipaddress.ip_address(record.address)) for record in answer]
    if addresses and not (strict and problems):
        return Lookup(name, tuple(sorted(set(addresses))))
    if addresses:
        return Lookup(name, tuple(sorted(set(addresses))), problems[0])
    return Lookup(name, (), problems[0] if problems else "no A or AAAA record")


def expected_addresses(resolver: dns.resolver.Resolver, server_address: str) -> tuple[str, ...]:
    """Give the addresses a name served by ``server_address`` must resolve to: the address itself when it
    is an IP address, else what that server name resolves to."""
    try:
        return (str(ipaddress.ip_address(server_address)),)
    except ValueError:
        return lookup(resolver, server_address).addresses


def zone_line(name: str, server_address: str) -> str:
    """Give the zone-file line that points ``name`` at ``server_address`` (A, AAAA, or CNAME to a server name)."""
    try:
        address = ipaddress.ip_address(server_address)
    except ValueError:
        return f"{name}. {RECORD_TTL} IN CNAME {server_address.rstrip('.')}."
    kind = "A" if address.version == 4 else "AAAA"
    return f"{name}. {RECORD_TTL} IN {kind} {address}"
