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
from orchestrator.workspace import Workspace

CHALLENGE_DIR = "/var/lib/ruche/domain-challenges"  # ruche_server_domain_challenges (the server role's defaults)
_PLACE = 'umask 022 && printf %s "$1" > "$2/.$3" && mv -f "$2/.$3" "$2/$3"'


def resolver_of(workspace: Workspace) -> dns.resolver.Resolver:
    """The resolver ruche.toml's [domains] resolvers names (this machine's own when empty)."""
    return make_resolver(workspace.config.domains.resolvers)


@dataclass(frozen=True)
class ProofTarget:
    """What a domain's proof needs, read from the state before any network call (no session is held meanwhile):
    its name and token, the tokens of other associations' claims of the same name, and its instance's server."""

    id: int
    name: str
    token: str
    instance: str  # the instance's address, ASSOCIATION/NAME
    association: str
    server: str  # the server's name
    server_address: str
    ssh: SshTarget
    other_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    """Why a proof does not hold: its kind (token, foreign-token, pointer, round-trip, conflict: what the trail
    compares, so that a retry finding the same fault records nothing new) and a sentence saying what to fix."""

    kind: str
    text: str


def txt_values(resolver: dns.resolver.Resolver, name: str) -> tuple[list[str], str | None]:
    """The TXT strings at ``name`` (each record's parts joined), or why there are none."""
    try:
        answer = resolver.resolve(name, "TXT", search=False)
    except dns.resolver.NXDOMAIN:
        return [], "no such name"
    except dns.resolver.NoAnswer:
        return [], "no TXT record"
    except dns.exception.Timeout:
        return [], "no answer in time"
    except dns.exception.DNSException as error:  # no name servers answering, a name too long...
        return [], f"no answer ({type(error).__name__})"
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer], None


def token_problem(resolver: dns.resolver.Resolver, name: str, token: str) -> str | None:
    """Why ``_ruche.NAME`` does not hold ``token`` (None when it does)."""
    values, why = txt_values(resolver, txt_name(name))
    if token in values:
        return None
    found = why or "it holds " + ", ".join(repr(v[:80]) for v in values[:3])
    return (f'the TXT record {txt_name(name)} must hold "{token}" ({found}); publish it in the domain\'s DNS zone '
            "and wait for it to propagate")  # fmt: skip


def pointer_problem(
    resolver: dns.resolver.Resolver, name: str, server: str, server_address: str
) -> tuple[str | None, tuple[str, ...]]:
    """Why ``name`` does not resolve to the server only (None when it does), and the addresses it resolves to. A
    family (A or AAAA) that gives no answer in time counts as a problem: it might point elsewhere."""
    found = lookup(resolver, name, strict=True)
    expected = expected_addresses(resolver, server_address)
    if found.problem is None and found.addresses and expected and set(found.addresses) <= set(expected):
        return None, found.addresses
    seen = found.problem or "it resolves to " + ", ".join(found.addresses)
    return (f"{name} must point at the instance's server {server} ({', '.join(expected) or server_address}): "
            f"{seen}; publish `{zone_line(name, server_address)}`"), found.addresses  # fmt: skip


def round_trip_problem(workspace: Workspace, target: ProofTarget, address: str) -> str | None:
    """Why a one-time value placed on the target's server does not come back from ``http://NAME/`` at ``address``
    (None when it does): the name really routes to this server's Caddy."""
    key, value = secrets.token_urlsafe(16), secrets.token_urlsafe(32)
    try:
        run_command(target.ssh, ["sh", "-c", _PLACE, "sh", value, CHALLENGE_DIR, key], timeout=30)
    except RucheError:  # its message holds the command (and the value): not for the trail nor the member's page
        return f"ruche could not place its one-time value on {target.server} over SSH: the check is tried again"
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    port = workspace.config.domains.verify_port
    url = f"http://{target.name}{'' if port == 80 else f':{port}'}{CHALLENGE_PATH}"
    session = requests.Session()
    session.trust_env = False  # straight to the address: no proxy of this machine's environment in between
    try:
        answer = session.get(f"http://{host}:{port}{CHALLENGE_PATH}{key}", headers={"Host": target.name}, timeout=10,
                             allow_redirects=False)  # fmt: skip
    except requests.RequestException as error:
        return f"{url}... did not answer from {address} ({type(error).__name__}): is port {port} open to the server?"
    finally:
        session.close()
        try:
            run_command(target.ssh, ["rm", "-f", f"{CHALLENGE_DIR}/{key}"], timeout=30)
        except RucheError:
            pass  # a value left behind is useless to anyone: it answers one random path, once
    if answer.status_code != 200 or answer.text.strip() != value:
        return (f"{url}... (at {address}) did not give back the value ruche placed on {target.server} (HTTP "
                f"{answer.status_code}): the name reaches another web server, or a proxy in front changes it")  # fmt: skip
    return None


def proof_problems(workspace: Workspace, target: ProofTarget, resolver: dns.resolver.Resolver) -> list[Problem]:
    """Every reason ``target`` is not proven yet (empty: proven): its token (and no other association's beside
    it), where it points, then the round trip through its server's Caddy (only once the rest holds). Never raises
    for what the network does."""
    problems = []
    token = token_problem(resolver, target.name, target.token)
    if token:
        problems.append(Problem("token", token))
    else:
        values, _why = txt_values(resolver, txt_name(target.name))
        if set(values) & set(target.other_tokens):
            problems.append(Problem("foreign-token", f"{txt_name(target.name)} also holds the token of another claim of "
                                    f"{target.name}: only the association that holds the domain publishes its token; "
                                    "remove the other one, or ask the collective's admins"))  # fmt: skip
    pointer, addresses = pointer_problem(resolver, target.name, target.server, target.server_address)
    if pointer:
        problems.append(Problem("pointer", pointer))
    if problems:
        return problems
    for address in addresses:
        trip = round_trip_problem(workspace, target, address)
        if trip:
            return [Problem("round-trip", trip)]
    return []


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
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return TlsSeen(False, f"no readable certificate served for {shown(name)}")
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
