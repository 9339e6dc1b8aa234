"""Own domains through the real CLI on SQLite and PostgreSQL, with real DNS on the wire (a zone served on
127.0.0.1 to ruche's resolver): claims normalised and refused with what to fix, proofs that do not hold said
one by one, a name another association holds refused, removal, the trail. The proof that holds, Caddy serving the
name with Pebble's certificate, and the failing certificate are shown on the lab (tests/lab/test_mediawiki.py).
A certificate past its date, served over real TLS on loopback, is seen expired."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading

import pytest
import tomlkit
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from orchestrator.operations.domain_checks import check_tls
from orchestrator.state.database import StateStore
from orchestrator.state.models import Domain
from orchestrator.workspace import open_workspace
from tests.dns_zone import ZoneServer
from tests.helpers import Webhook

SERVER = "192.0.2.1"


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(
            *w, "server", "add", "web-1", "--no-connect", "--address", SERVER, "--memory", "4G", "--disk", "100G"
        ).exit_code
        == 0
    )
    for slug in ("amap", "velo"):
        assert ruche(*w, "association", "add", slug, "--name", slug.upper(), "--email", f"c@{slug}.fr").exit_code == 0
        assert ruche(*w, "instance", "create", slug, "radicale", "--name", "agenda").exit_code == 0
    return w


def add(ruche, w, address: str, name: str):
    return ruche(*w, "domain", "add", address, name, "--json")


def test_a_claim_is_normalised_gives_its_records_and_is_refused_under_the_collectives_domain(pool, ruche, workspace):
    first = add(ruche, pool, "amap/agenda", "Agenda.AMAP-du-Côté.test.")
    assert first.exit_code == 0, first.stderr
    claim = json.loads(first.stdout)
    assert claim["added"] and claim["domain"]["domain"] == "agenda.xn--amap-du-ct-k7a4k.test"
    assert claim["domain"]["shown"] == "agenda.amap-du-côté.test" and claim["domain"]["state"] == "pending"
    txt, pointer = claim["publish"]
    assert txt["name"] == "_ruche.agenda.xn--amap-du-ct-k7a4k.test" and txt["value"] == claim["domain"]["token"]
    assert (pointer["type"], pointer["value"]) == ("A", SERVER)
    again = json.loads(add(ruche, pool, "amap/agenda", "agenda.amap-du-côté.test").stdout)
    assert not again["added"] and again["domain"]["token"] == claim["domain"]["token"]  # the same instructions
    text = ruche(*pool, "domain", "add", "amap/agenda", "agenda.amap-du-côté.test")
    assert f'IN TXT "{txt["value"]}"' in text.stdout and f"IN A {SERVER}" in text.stdout

    base = open_workspace(workspace).config.base_domain
    for name in (f"wiki.amap.{base}", base):
        refused = add(ruche, pool, "amap/agenda", name)
        assert refused.exit_code == 5 and "collective's own domain" in refused.stderr, refused.stderr
    bad = add(ruche, pool, "amap/agenda", "agenda amap.test")
    assert bad.exit_code == 2 and "not a valid name" in bad.stderr
    elsewhere = add(ruche, pool, "amap/nowhere", "x.amap.test")
    assert elsewhere.exit_code == 4, elsewhere.stderr  # no such instance
    listed = json.loads(ruche(*pool, "domain", "list", "--json").stdout)
    assert [d["domain"] for d in listed] == ["agenda.xn--amap-du-ct-k7a4k.test"]


def test_proofs_that_do_not_hold_are_said_one_by_one_and_change_nothing(pool, ruche, workspace):
    claim = json.loads(add(ruche, pool, "amap/agenda", "agenda.amap.test").stdout)
    with ZoneServer() as zone:
        document = tomlkit.parse((workspace / "ruche.toml").read_text())
        document["domains"]["resolvers"] = [zone.address]
        (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
        nothing = ruche(*pool, "domain", "verify", "amap/agenda", "--json")
        assert nothing.exit_code == 1
        (proof,) = json.loads(nothing.stdout)["proofs"]
        assert not proof["proven"] and len(proof["problems"]) == 2, proof
        assert "_ruche.agenda.amap.test must hold" in proof["problems"][0] and "no such name" in proof["problems"][0]
        assert f"publish `agenda.amap.test. 3600 IN A {SERVER}`" in proof["problems"][1]

        zone.load(['_ruche.agenda.amap.test. 300 IN TXT "ruche-domain-verification=someone-elses"',
                   "agenda.amap.test. 300 IN CNAME elsewhere.example.net.",
                   "elsewhere.example.net. 300 IN A 198.51.100.9"])  # fmt: skip
        wrong = ruche(*pool, "domain", "verify", "amap/agenda", "agenda.amap.test")
        assert wrong.exit_code == 1
        assert f'must hold "{claim["domain"]["token"]}"' in wrong.stdout and "someone-elses" in wrong.stdout
        assert "must point at the instance's server web-1 (192.0.2.1): it resolves to 198.51.100.9" in wrong.stdout
        assert "ruche domain verify" in wrong.stderr  # the hint: fix, then verify again
    (listed,) = json.loads(ruche(*pool, "domain", "list", "--json").stdout)
    assert listed["state"] == "pending" and "198.51.100.9" in listed["problem"]
    events = json.loads(ruche(*pool, "events", "--json").stdout)
    assert "domain.unproven" in {e["kind"] for e in events}


def test_a_name_another_association_holds_and_the_names_around_it_are_refused(pool, ruche, workspace):
    assert add(ruche, pool, "amap/agenda", "amap-du-coin.test").exit_code == 0
    assert add(ruche, pool, "velo/agenda", "amap-du-coin.test").exit_code == 0  # a pending claim blocks no one
    store = StateStore(open_workspace(workspace).state_url)
    try:  # amap proves it (shown on the lab): stand for that proof here
        with store.session() as session:
            for domain in session.scalars(select(Domain)):
                if domain.association.slug == "amap":
                    domain.status = "attached"
    finally:
        store.close()
    for name in ("amap-du-coin.test", "www.amap-du-coin.test"):
        refused = add(ruche, pool, "velo/agenda", name)
        assert refused.exit_code == 5, refused.stderr
        assert "held by another association" in refused.stderr and "amap/" not in refused.stderr
    assert add(ruche, pool, "amap/agenda", "www.amap-du-coin.test").exit_code == 0  # its own names are its own
    early = ruche(*pool, "domain", "primary", "amap/agenda", "www.amap-du-coin.test")
    assert early.exit_code == 5 and "not proven yet" in early.stderr
    late = ruche(*pool, "domain", "add", "amap/agenda", "amap-du-coin.test", "--primary")
    assert late.exit_code == 5 and "ruche domain primary amap/agenda amap-du-coin.test" in late.stderr
    wanted = json.loads(
        ruche(*pool, "domain", "add", "amap/agenda", "www.amap-du-coin.test", "--primary", "--json").stdout
    )
    assert wanted["domain"]["wants_primary"] and not wanted["domain"]["primary"]
    removed = ruche(*pool, "domain", "remove", "amap/agenda", "www.amap-du-coin.test", "--yes", "--json")
    assert removed.exit_code == 0 and json.loads(removed.stdout)["was"] == "pending"
    missing = ruche(*pool, "domain", "remove", "amap/agenda", "www.amap-du-coin.test", "--yes")
    assert missing.exit_code == 4 and "amap/agenda has no domain www.amap-du-coin.test" in missing.stderr
    kinds = [e["kind"] for e in json.loads(ruche(*pool, "events", "--json").stdout)]
    assert kinds.count("domain.claimed") == 3 and "domain.removed" in kinds
    # an instance never deployed is forgotten at once (no server to change), and its claims go with it
    deleted = ruche(*pool, "instance", "delete", "velo/agenda", "--yes", "--json")
    assert deleted.exit_code == 0, deleted.stderr
    assert json.loads(deleted.stdout)["run"] is None and json.loads(deleted.stdout)["instance"]["state"] == "deleted"
    assert [d["instance"] for d in json.loads(ruche(*pool, "domain", "list", "--json").stdout)] == ["amap/agenda"]
    released = [e for e in json.loads(ruche(*pool, "events", "--json").stdout) if e["kind"] == "domain.released"]
    assert [(e["subject"], e["detail"]["domain"]) for e in released] == [("velo/agenda", "amap-du-coin.test")]


def _certificate(name: str, not_before: dt.datetime, not_after: dt.datetime, path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old CA")])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, key_file = path / "cert.pem", path / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return str(cert), str(key_file)


def test_a_certificate_past_its_date_or_for_another_name_is_seen_failing(tmp_path):
    now = dt.datetime.now(dt.UTC)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_certificate("wiki.amap.test", now - dt.timedelta(days=100), now - dt.timedelta(days=10),
                                          tmp_path))  # fmt: skip
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _address = listener.accept()
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    expired = check_tls("127.0.0.1", "wiki.amap.test", verify_chain=False, port=port)
    assert not expired.ok and "expired on" in expired.detail and expired.issuer == "Old CA", expired
    other = check_tls("127.0.0.1", "agenda.amap.test", verify_chain=False, port=port)
    assert not other.ok and "does not name agenda.amap.test" in other.detail
    thread.join(5)
    listener.close()


class LoopbackTls:
    """A TLS server on ADDRESS:443 (a loopback address of its own, as a server's Caddy would listen) that hands out
    one certificate to whoever connects, until closed."""

    def __init__(self, address: str, cert: str, key: str) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server((address, 443))
        self.listener.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _address = self.listener.accept()
            except TimeoutError:
                continue
            try:
                connection.settimeout(5)
                with self.context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def test_an_expired_or_expiring_certificate_shows_in_status_and_audit(workspace, ruche, tmp_path):
    """The watching end of issue 25 with real TLS: the attached domain's server (127.0.0.3 here) serves a certificate
    past its date, then one expiring in 5 days; `ruche status` and `ruche audit` read them from the handshake, and
    `ruche watch` opens a certificate.expiring alert for it, which clears once a renewed certificate is served."""
    w = ["--workspace", str(workspace)]
    address, name = "127.0.0.3", "wiki.amap.test"
    assert ruche(*w, "server", "add", "web-1", "--no-connect", "--address", address, "--memory", "4G").exit_code == 0
    assert ruche(*w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr").exit_code == 0
    assert ruche(*w, "instance", "create", "amap", "radicale", "--name", "wiki").exit_code == 0
    token = json.loads(add(ruche, w, "amap/wiki", name).stdout)["domain"]["token"]
    store = StateStore(open_workspace(workspace).state_url)
    try:  # proven and deployed (shown on the lab): stand for it here
        with store.session() as session:
            domain = session.scalars(select(Domain)).one()
            domain.status, domain.instance.state = "attached", "running"
    finally:
        store.close()
    now = dt.datetime.now(dt.UTC)
    with ZoneServer() as zone:
        zone.load([f'_ruche.{name}. 300 IN TXT "{token}"', f"{name}. 300 IN A {address}"])
        document = tomlkit.parse((workspace / "ruche.toml").read_text())
        document["domains"]["resolvers"] = [zone.address]
        document["alerts"] = {"usage_minutes": 0}
        (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
        hook = Webhook()
        assert ruche(*w, "alerts", "notify", "add", hook.url).exit_code == 0
        document = tomlkit.parse((workspace / "ruche.toml").read_text())
        for (days_before, days_after), state, says in [
            ((100, -10), "failing", "expired on"),
            ((80, 5), "serving", "within 14 days"),
            ((1, 89), "serving", None),  # renewed
        ]:
            cert, key = _certificate(name, now - dt.timedelta(days=days_before), now + dt.timedelta(days=days_after),
                                     tmp_path)  # fmt: skip
            document["domains"]["acme_ca_root"] = (
                cert  # a private ACME CA: its chain is not checked against public roots
            )
            (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
            served = LoopbackTls(address, cert, key)
            try:
                status = ruche(*w, "status", "--json")
                audit = ruche(*w, "audit", "--json")
                watched = json.loads(ruche(*w, "watch", "--once", "--json", "--quiet").stdout)
            finally:
                served.close()
            assert status.exit_code == 1  # the instance does not answer here anyway: no Caddy behind
            (entry,) = json.loads(status.stdout)
            (seen,) = entry["own_domains"]
            assert seen["state"] == state and seen["certificate"]["issuer"] == "Old CA", seen
            alerts = [a for a in watched["alerts"] if a["kind"] == "certificate.expiring"]
            findings = [f for f in json.loads(audit.stdout)["findings"] if f["rule"].startswith("domains.")]
            told = [n["title"] for n in hook.received if name in n["title"]]
            if says is None:
                assert findings == [] and alerts == [] and len(watched["cleared"]) >= 1, watched
                assert told == [
                    f"[Test] Alert: {name}: certificate to renew",
                    f"[Test] Recovered: {name}: certificate to renew",
                ]
                hook.close()
                continue
            assert [(a["subject"], a["association"]) for a in alerts] == [(name, "amap")]
            assert says in alerts[0]["summary"], alerts
            assert [(f["rule"], f["object"]) for f in findings] == [
                ("domains.certificate-valid", f"{name} (amap/wiki)")
            ]
            assert says in findings[0]["evidence"] and "journalctl -u caddy" in findings[0]["fix"], findings
        zone.load([f"{name}. 300 IN A 198.51.100.9"])  # the TXT token gone, the name elsewhere
        audit = json.loads(ruche(*w, "audit", "--json").stdout)
        rules = sorted(f["rule"] for f in audit["findings"] if f["rule"].startswith("domains."))
        assert rules == ["domains.certificate-valid", "domains.points-here", "domains.token-kept"], audit["findings"]


def test_the_workers_pass_records_a_proofs_fault_once_and_forgets_claims_nobody_proves(pool, ruche, workspace):
    """operations/own_domains.retry_pending, what `ruche worker` runs every --domain-retry minutes: the same fault
    found again adds nothing to the trail; a claim older than [domains] pending_days is forgotten."""
    from datetime import timedelta

    from orchestrator.operations.own_domains import retry_pending

    assert add(ruche, pool, "amap/agenda", "agenda.amap.test").exit_code == 0
    assert add(ruche, pool, "velo/agenda", "agenda.velo.test").exit_code == 0
    with ZoneServer() as zone:
        document = tomlkit.parse((workspace / "ruche.toml").read_text())
        document["domains"]["resolvers"] = [zone.address]
        (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
        opened = open_workspace(workspace)
        store = StateStore(opened.state_url)
        try:
            with store.session() as session:  # velo's claim was made 31 days ago
                for domain in session.scalars(select(Domain)):
                    if domain.association.slug == "velo":
                        domain.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
            for _ in range(2):
                done = retry_pending(opened, store, every=timedelta(seconds=0), actor="worker test")
                assert [p["domain"] for p in done["proofs"]] == ["agenda.amap.test"]
                assert not done["proofs"][0]["proven"] and "no such name" in done["proofs"][0]["problems"][0]
            assert done["expired"] == 0  # forgotten on the first pass
        finally:
            store.close()
    events = json.loads(ruche(*pool, "events", "--json").stdout)
    assert [e["detail"]["domain"] for e in events if e["kind"] == "domain.unproven"] == ["agenda.amap.test"]
    assert [e["detail"]["domain"] for e in events if e["kind"] == "domain.expired"] == ["agenda.velo.test"]
    assert [d["domain"] for d in json.loads(ruche(*pool, "domain", "list", "--json").stdout)] == ["agenda.amap.test"]


def test_an_attached_domain_whose_token_stays_gone_is_detached_and_its_run_queued(pool, ruche, workspace):
    """The name may have changed hands: the worker's pass notes the token missing, then after [domains] lost_days
    detaches the domain (pending again, its instance's run queued), and the name blocks no one any more."""
    from datetime import timedelta

    from orchestrator.operations.own_domains import retry_pending
    from orchestrator.state.models import QueuedRun

    assert add(ruche, pool, "amap/agenda", "agenda.amap.test").exit_code == 0
    opened = open_workspace(workspace)
    store = StateStore(opened.state_url)
    with ZoneServer() as zone:
        document = tomlkit.parse((workspace / "ruche.toml").read_text())
        document["domains"]["resolvers"] = [zone.address]
        (workspace / "ruche.toml").write_text(tomlkit.dumps(document))
        opened = open_workspace(workspace)
        try:
            with store.session() as session:  # proven and served once (shown on the lab)
                domain = session.scalars(select(Domain)).one()
                token = domain.token
                domain.status, domain.instance.state = "attached", "planned"
            zone.load([f'_ruche.agenda.amap.test. 300 IN TXT "{token}"'])
            first = retry_pending(opened, store, every=timedelta(seconds=0), actor="worker test")
            assert first["detached"] == []
            zone.load([])  # the token is gone
            noted = retry_pending(opened, store, every=timedelta(seconds=0), actor="worker test")
            assert noted["detached"] == []
            with store.session() as session:  # ...15 days ago
                session.scalars(select(Domain)).one().proof_lost_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=15)
            detached = retry_pending(opened, store, every=timedelta(seconds=0), actor="worker test")
            assert detached["detached"] == [{"domain": "agenda.amap.test", "instance": "amap/agenda"}]
            with store.session() as session:
                queued = [r.instance_address for r in session.scalars(select(QueuedRun))]
            assert queued == ["amap/agenda"]
        finally:
            store.close()
    (listed,) = json.loads(ruche(*pool, "domain", "list", "--json").stdout)
    assert listed["state"] == "pending" and "must hold" in listed["problem"]
    kinds = [e["kind"] for e in json.loads(ruche(*pool, "events", "--json").stdout)]
    assert kinds.count("domain.proof_lost") == 1 and kinds.count("domain.detached") == 1
    assert add(ruche, pool, "velo/agenda", "agenda.amap.test").exit_code == 0  # no longer held: free to claim
