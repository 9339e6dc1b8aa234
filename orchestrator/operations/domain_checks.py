"""What ruche checks of an association's own domain, on the network: its proof (the ``_ruche`` TXT token, the name
pointing at the instance's server, an HTTP round trip through that server's Caddy), and what its HTTPS serves
(a TLS handshake: the certificate's names, issuer and expiry). `ruche domain verify`, the worker's retries,
`ruche audit`'s ``domains.*`` rules and `ruche status` read these.

The round trip: ruche writes a one-time value in a file of the server's challenge directory (over SSH), asks
``http://NAME/.well-known/ruche-domain/KEY`` at the address NAME resolves to, and expects that value back: the
server's Caddy serves the directory on plain HTTP for any name it has no site for (ruche_server's Caddyfile).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.exception
import dns.resolver
import requests
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from orchestrator.domains import CHALLENGE_PATH, shown, txt_name
from orchestrator.errors import RucheError
from orchestrator.remote import SshTarget, run_command
from orchestrator.resolver import expected_addresses, lookup, make_resolver, zone_line
from orchestrator.state.models import Domain, Server
from orchestrator.workspace import Workspace

CHALLENGE_DIR = "/var/lib/ruche/domain-challenges"  # ruche_server_domain_challenges (the server role's defaults)
_PLACE = 'umask 022 && printf %s "$1" > "$2/.$3" && mv -f "$2/.$3" "$2/$3"'


def resolver_of(workspace: Workspace) -> dns.resolver.Resolver:
    """The resolver ruche.toml's [domains] resolvers names (this machine's own when empty)."""
    return make_resolver(workspace.config.domains.resolvers)


def txt_values(resolver: dns.resolver.Resolver, name: str) -> tuple[list[str], str | None]:
    """The TXT strings at ``name`` (each record's parts joined), or why there are none."""
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return [], "no such name"
    except dns.resolver.NoAnswer:
        return [], "no TXT record"
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        return [], f"no answer: {error}"
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer], None


def token_problem(resolver: dns.resolver.Resolver, domain: Domain) -> str | None:
    """Why ``_ruche.NAME`` does not hold the domain's token (None when it does)."""
    values, why = txt_values(resolver, txt_name(domain.name))
    if domain.token in values:
        return None
    found = why or "it holds " + ", ".join(repr(v[:80]) for v in values[:3])
    return (f'the TXT record {txt_name(domain.name)} must hold "{domain.token}" ({found}); publish it in the '
            "domain's DNS zone and wait for it to propagate")  # fmt: skip


def pointer_problem(resolver: dns.resolver.Resolver, name: str, server: Server) -> tuple[str | None, tuple[str, ...]]:
    """Why ``name`` does not resolve to ``server`` only (None when it does), and the addresses it resolves to."""
    found = lookup(resolver, name)
    expected = expected_addresses(resolver, server.address)
    if found.addresses and expected and set(found.addresses) <= set(expected):
        return None, found.addresses
    seen = found.problem or "it resolves to " + ", ".join(found.addresses)
    return (f"{name} must point at the instance's server {server.name} ({', '.join(expected) or server.address}): "
            f"{seen}; publish `{zone_line(name, server.address)}`"), found.addresses  # fmt: skip


def round_trip_problem(workspace: Workspace, name: str, server: Server, address: str) -> str | None:
    """Why a one-time value placed on ``server`` does not come back from ``http://NAME/`` at ``address`` (None when
    it does): the name really routes to this server's Caddy."""
    key, value = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    target = SshTarget.of(server)
    run_command(target, ["sh", "-c", _PLACE, "sh", value, CHALLENGE_DIR, key], timeout=30)
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    port = workspace.config.domains.verify_port
    url = f"http://{name}{'' if port == 80 else f':{port}'}{CHALLENGE_PATH}{key}"
    session = requests.Session()
    session.trust_env = False  # straight to the address: no proxy of this machine's environment in between
    try:
        answer = session.get(f"http://{host}:{port}{CHALLENGE_PATH}{key}", headers={"Host": name}, timeout=10,
                             allow_redirects=False)  # fmt: skip
    except requests.RequestException as error:
        return f"{url} did not answer from {address}: {type(error).__name__}; is port {port} open to the server?"
    finally:
        session.close()
        run_command(target, ["rm", "-f", f"{CHALLENGE_DIR}/{key}"], timeout=30)
    if answer.status_code != 200 or answer.text.strip() != value:
        return (f"{url} (at {address}) did not give back the value ruche placed on {server.name} (HTTP "
                f"{answer.status_code}): the name reaches another web server, or a proxy in front changes it")  # fmt: skip
    return None


def proof_problems(workspace: Workspace, domain: Domain, resolver: dns.resolver.Resolver) -> list[str]:
    """Every reason ``domain`` is not proven yet (empty: proven): its token, where it points, the round trip."""
    server = domain.instance.server
    problems = [p for p in [token_problem(resolver, domain)] if p]
    pointer, addresses = pointer_problem(resolver, domain.name, server)
    if pointer:
        return problems + [pointer]
    for address in addresses:
        try:
            trip = round_trip_problem(workspace, domain.name, server, address)
        except RucheError as error:  # the server cannot be reached over SSH: nothing proven, said why
            trip = f"could not place the one-time value on {server.name}: {error.message}"
        if trip:
            return problems + [trip]
    return problems


@dataclass(frozen=True)
class TlsSeen:
    """What a TLS handshake on a name showed: whether the certificate is fit (names it, in date, chain verified
    when asked), its issuer, its expiry, and a sentence."""

    ok: bool
    detail: str
    issuer: str = ""
    not_after: datetime | None = None


def _issuer(certificate: x509.Certificate) -> str:
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = certificate.issuer.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)[:200]
    return certificate.issuer.rfc4514_string()[:200]


def _names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def served_certificate(server_address: str, name: str, *, port: int = 443, timeout: float = 10) -> bytes:
    """The DER certificate ``server_address`` serves for SNI ``name`` (no verification); raises OSError."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((server_address, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True) or b""


def check_tls(
    server_address: str, name: str, *, verify_chain: bool, now: datetime | None = None, port: int = 443
) -> TlsSeen:
    """The certificate ``server_address`` serves for ``name`` (through its Caddy, as the health checks reach it).

    ``verify_chain``: also verify it against this machine's trusted roots (a public ACME CA); without, a private
    ACME CA's chain is not checked here (the lab's test checks it against Pebble's root)."""
    now = now or datetime.now(UTC)
    try:
        der = served_certificate(server_address, name, port=port)
    except (OSError, ssl.SSLError) as error:
        return TlsSeen(False, f"no certificate served for {shown(name)}: {type(error).__name__}: {error}"[:900])
    certificate = x509.load_der_x509_certificate(der)
    issuer, not_after = _issuer(certificate), certificate.not_valid_after_utc
    if name not in _names(certificate):
        return TlsSeen(
            False, f"the certificate served does not name {shown(name)} (issuer {issuer})", issuer, not_after
        )
    if not_after <= now:
        return TlsSeen(False, f"the certificate expired on {not_after:%Y-%m-%d %H:%M} UTC (issuer {issuer})", issuer,
                       not_after)  # fmt: skip
    if verify_chain:
        try:
            with socket.create_connection((server_address, port), timeout=10) as raw:
                with ssl.create_default_context().wrap_socket(raw, server_hostname=name):
                    pass
        except (OSError, ssl.SSLError) as error:
            return TlsSeen(False, f"the certificate's chain does not verify: {error}"[:900], issuer, not_after)
    return TlsSeen(True, f"valid until {not_after:%Y-%m-%d} (issuer {issuer})", issuer, not_after)
