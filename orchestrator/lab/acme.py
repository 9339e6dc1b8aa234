"""The lab's ACME server, Debian's Pebble on the lab bridge's gateway address, for own-domain certificates in tests.

Its directory is ``https://GATEWAY:14000/dir`` and its management API ``https://GATEWAY:15000``; it validates HTTP-01
on port 80 (TLS-ALPN-01 on 443) of the address the lab DNS (lab/dns.py) gives for a name, at full speed
(``PEBBLE_VA_NOSLEEP=1``) and with no nonce rejected on purpose (``PEBBLE_WFE_NONCEREJECT=0``). Its own HTTPS
certificate is signed by a small CA made for each lab (``LabLayout.acme_ca_root``, whose key is never written); the
certificates it issues chain to roots it makes anew at each start, which :func:`issuing_roots` gives.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.errors import Conflict, OperationFailed, TimedOut
from orchestrator.lab.dns import PORT as DNS_PORT
from orchestrator.lab.host import start_detached
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.network import LabNetwork
from orchestrator.lab.record import LabRecord, ProcessRecord
from orchestrator.processes import is_same_process

PROGRAM = "pebble"
PACKAGE = "pebble"
DIRECTORY_PORT = 14000
MANAGEMENT_PORT = 15000
HTTP_CHALLENGE_PORT = 80
TLS_CHALLENGE_PORT = 443
HOST_NAME = "acme.lab.test"  # the DNS name in its HTTPS certificate, beside the gateway address
ENVIRONMENT = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}


def directory_url(gateway: str) -> str:
    """The lab ACME server's directory URL (what `[domains] acme_directory` names while the lab is up)."""
    return f"https://{gateway}:{DIRECTORY_PORT}/dir"


def management_url(gateway: str) -> str:
    return f"https://{gateway}:{MANAGEMENT_PORT}"


def _certificate_path(layout: LabLayout) -> Path:
    return layout.acme_dir / "pebble-cert.pem"


def _key_path(layout: LabLayout) -> Path:
    return layout.acme_dir / "pebble-key.pem"


def _config_path(layout: LabLayout) -> Path:
    return layout.acme_dir / "pebble-config.json"


def write_certificates(layout: LabLayout, gateway: str, *, days: int = 365) -> None:
    """Make the lab CA (written to ``layout.acme_ca_root``; its key stays in memory) and Pebble's HTTPS certificate
    and key, for ``gateway`` and ``acme.lab.test``, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ruche lab ACME CA ({gateway})")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST_NAME)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HOST_NAME), x509.IPAddress(ipaddress.ip_address(gateway))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    layout.acme_dir.mkdir(parents=True, exist_ok=True)
    layout.acme_ca_root.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _certificate_path(layout).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path = _key_path(layout)
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def render_config(layout: LabLayout, gateway: str) -> str:
    """Give Pebble's configuration (JSON): listen on ``gateway`` only, validate on ports 80 and 443."""
    return json.dumps(
        {
            "pebble": {
                "listenAddress": f"{gateway}:{DIRECTORY_PORT}",
                "managementListenAddress": f"{gateway}:{MANAGEMENT_PORT}",
                "certificate": str(_certificate_path(layout)),
                "privateKey": str(_key_path(layout)),
                "httpPort": HTTP_CHALLENGE_PORT,
                "tlsPort": TLS_CHALLENGE_PORT,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        },
        indent=2,
    )


def start(layout: LabLayout, gateway: str) -> ProcessRecord:
    """Write Pebble's certificates and configuration and start it in its own session, resolving names with the lab
    DNS on ``gateway``; give its process once its directory answers. Raises OperationFailed or TimedOut."""
    write_certificates(layout, gateway)
    _config_path(layout).write_text(render_config(layout, gateway) + "\n")
    argv = [PROGRAM, "-config", str(_config_path(layout)), "-dnsserver", f"{gateway}:{DNS_PORT}"]
    started = start_detached(argv, layout.acme_log, what="the lab ACME server (Pebble)",
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **ENVIRONMENT})  # no proxy, nothing inherited  # fmt: skip
    wait_until_answering(layout, gateway, started)
    return started


def _get(url: str, ca_root: Path, *, timeout: float) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False  # the lab's addresses are never reached through a proxy
        return session.get(url, verify=str(ca_root), timeout=timeout)


def is_answering(layout: LabLayout, gateway: str) -> bool:
    """Tell whether Pebble's directory answers over HTTPS verified with the lab CA."""
    try:
        return _get(directory_url(gateway), layout.acme_ca_root, timeout=2).status_code == 200
    except (requests.RequestException, OSError):
        return False


def wait_until_answering(layout: LabLayout, gateway: str, process: ProcessRecord, *, timeout: float = 30) -> None:
    """Return once Pebble's directory answers; raises OperationFailed (it stopped) or TimedOut, naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(process.pid, process.start_time):
            raise OperationFailed(
                f"the lab ACME server (Pebble) stopped; see {layout.acme_log}",
                hint=f"another program may hold port {DIRECTORY_PORT} or {MANAGEMENT_PORT} of {gateway}: "
                f"`ss -ltnp 'sport = :{DIRECTORY_PORT}'`",
            )
        if is_answering(layout, gateway):
            return
        time.sleep(0.2)
    raise TimedOut(
        f"the lab ACME server (Pebble) did not answer at {directory_url(gateway)} within {timeout:.0f} s; "
        f"see {layout.acme_log}"
    )


def issuing_roots(layout: LabLayout, *, intermediates: bool = False) -> str:
    """Give the PEM of the root that signs the certificates the running Pebble issues (made anew at each of its
    starts), followed by its intermediate's with ``intermediates``. Raises Conflict when Pebble is not running,
    OperationFailed when its management API does not give them."""
    record = LabRecord.load(layout.record_path)
    if record is None or record.acme is None or not is_same_process(record.acme.pid, record.acme.start_time):
        raise Conflict(
            "the lab ACME server (Pebble) is not running",
            hint="bring the lab up with `ruche lab up` (it needs Pebble: apt-get install pebble)",
        )
    base = management_url(LabNetwork.parse(record.subnet).gateway)
    paths = ["/roots/0"] + (["/intermediates/0"] if intermediates else [])
    parts = []
    for path in paths:
        try:
            response = _get(base + path, layout.acme_ca_root, timeout=10)
        except requests.RequestException as error:
            raise OperationFailed(f"the lab ACME server's management API did not answer {base}{path}: {error}",
                                  hint=f"see {layout.acme_log}") from None  # fmt: skip
        if response.status_code != 200 or "BEGIN CERTIFICATE" not in response.text:
            raise OperationFailed(
                f"the lab ACME server's management API gave no certificate at {base}{path} "
                f"(HTTP {response.status_code})",
                hint=f"see {layout.acme_log}",
            )
        parts.append(response.text.strip() + "\n")
    return "".join(parts)
