"""The lab DNS's configuration and records validated before dnsmasq sees them; the lab ACME server's certificates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from orchestrator.actions.lab_up import _start_domain_services
from orchestrator.config import DomainSettings
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.lab import acme
from orchestrator.lab import dns as lab_dns
from orchestrator.lab.layout import LabLayout
from orchestrator.lab.network import LabNetwork
from orchestrator.lab.record import LabRecord, ProcessRecord

pytestmark = pytest.mark.unit


def render(records: list[dict]) -> str:
    return lab_dns.render_config(
        records, address="10.213.55.1", pid_file=Path("/lab/dns/dnsmasq.pid"), log_file=Path("/lab/logs/dns.log")
    )


def test_the_configuration_listens_on_the_gateway_only_and_never_forwards():
    lines = render([]).splitlines()
    for expected in ("listen-address=10.213.55.1", "bind-interfaces", "no-resolv", "no-hosts", "local=/#/", "port=53"):
        assert expected in lines
    assert not [line for line in lines if line.startswith(("server=", "dhcp-", "interface=", "resolv-file"))]


def test_each_record_type_is_rendered_and_names_are_normalized():
    lines = render(
        [
            {"name": "Wiki.AMAP.test.", "type": "a", "value": "10.213.55.11"},
            {"name": "wiki.amap.test", "type": "AAAA", "value": "FD00:0::1"},
            {"name": "www.amap.test", "type": "CNAME", "value": "wiki.amap.test."},
            {"name": "_ruche.wiki.amap.test", "type": "TXT", "value": 'a,b "c" \\d #e'},
        ]
    ).splitlines()
    assert "host-record=wiki.amap.test,10.213.55.11" in lines
    assert "host-record=wiki.amap.test,fd00::1" in lines
    assert "cname=www.amap.test,wiki.amap.test" in lines
    assert 'txt-record=_ruche.wiki.amap.test,"a,b \\"c\\" \\\\d #e"' in lines


@pytest.mark.parametrize(
    ("name", "rtype", "value", "message"),
    [
        ("wiki.test\nserver=8.8.8.8", "A", "10.0.0.1", "not a DNS name"),
        ("wiki test", "A", "10.0.0.1", "not a DNS name"),
        ("wiki..test", "A", "10.0.0.1", "not a DNS name"),
        ("-wiki.test", "A", "10.0.0.1", "not a DNS name"),
        ("wïki.test", "A", "10.0.0.1", "not a DNS name"),
        ("\u212aiki.test", "A", "10.0.0.1", "not a DNS name"),  # Kelvin sign: lower() would make it a "k"
        ("x" * 64 + ".test", "A", "10.0.0.1", "not a DNS name"),
        ("", "A", "10.0.0.1", "not a DNS name"),
        ("wiki.test", "MX", "10 mail.test", "not served"),
        ("wiki.test", "A", "10.0.0.1\nserver=8.8.8.8", "not an IPv4 address"),
        ("wiki.test", "A", "fd00::1", "not an IPv4 address"),
        ("wiki.test", "AAAA", "10.0.0.1", "not an IPv6 address"),
        ("wiki.test", "CNAME", "other.test\nserver=8.8.8.8", "not a DNS name"),
        ("wiki.test", "CNAME", "WIKI.test.", "itself"),
        ("wiki.test", "TXT", "token\nserver=8.8.8.8", "printable ASCII"),
        ("wiki.test", "TXT", "été", "printable ASCII"),
        ("wiki.test", "TXT", "x" * 256, "255 characters at most"),
    ],
)
def test_a_bad_name_type_or_value_is_refused_before_any_file_changes(name, rtype, value, message):
    with pytest.raises(InvalidInput, match=message):
        lab_dns.validate_record(name, rtype, value)
    with pytest.raises(InvalidInput):
        render([{"name": name, "type": rtype, "value": value}])  # a tampered records file too


def test_records_read_back_sorted_and_a_change_needs_a_running_lab_dns(tmp_path):
    layout = LabLayout(tmp_path / "lab")
    assert lab_dns.records(layout) == []
    with pytest.raises(Conflict, match="the lab DNS is not running"):
        lab_dns.set_record(layout, "wiki.amap.test", "A", "10.213.55.11")
    assert not layout.root.exists()  # a workspace without a lab gets no lab directory
    layout.dns_dir.mkdir(parents=True)
    (layout.dns_dir / "records.json").write_text(
        json.dumps(
            [{"name": "b.test", "type": "TXT", "value": "x"}, {"name": "A.test", "type": "a", "value": "1.2.3.4"}]
        )
    )
    assert lab_dns.records(layout) == [
        {"name": "a.test", "type": "A", "value": "1.2.3.4"},
        {"name": "b.test", "type": "TXT", "value": "x"},
    ]
    LabRecord(subnet="10.213.55.0/24", dns=ProcessRecord(pid=2**22 + 7, start_time=1)).save(layout.record_path)
    with pytest.raises(Conflict, match="not running"):  # a recorded dnsmasq that is gone
        lab_dns.remove_records(layout, "a.test")


def test_a_record_written_before_the_lab_dns_and_acme_server_still_loads(tmp_path):
    path = tmp_path / "lab.json"
    path.write_text(
        json.dumps({"subnet": "10.213.55.0/24", "bridge": "rlab1", "registry": {"pid": 5, "start_time": 9}})
    )
    record = LabRecord.load(path)
    assert (record.dns, record.acme, record.registry) == (None, None, ProcessRecord(5, 9))
    record.dns, record.acme = ProcessRecord(6, 10), ProcessRecord(7, 11)
    record.save(path)
    assert LabRecord.load(path) == record


def test_the_acme_servers_certificate_is_signed_by_the_lab_ca_for_the_gateway_and_its_name(tmp_path):
    layout = LabLayout(tmp_path / "lab")
    acme.write_certificates(layout, "10.213.55.1")
    ca = x509.load_pem_x509_certificate(layout.acme_ca_root.read_bytes())
    leaf = x509.load_pem_x509_certificate((layout.acme_dir / "pebble-cert.pem").read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.213.55.1"]
    assert names.get_values_for_type(x509.DNSName) == ["acme.lab.test"]
    assert (layout.acme_dir / "pebble-key.pem").stat().st_mode & 0o077 == 0
    assert not [p.name for p in layout.acme_dir.iterdir() if "ca" in p.name and "key" in p.name]  # CA key unwritten
    config = json.loads(acme.render_config(layout, "10.213.55.1"))["pebble"]
    assert (config["listenAddress"], config["managementListenAddress"]) == ("10.213.55.1:14000", "10.213.55.1:15000")
    assert (config["httpPort"], config["tlsPort"]) == (80, 443)
    assert acme.directory_url("10.213.55.1") == "https://10.213.55.1:14000/dir"


def test_without_pebble_lab_up_says_so_and_leaves_the_domains_settings_to_ruche_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither dnsmasq nor pebble on it
    layout, said = LabLayout(tmp_path / "lab"), []
    record = LabRecord(subnet="10.213.55.0/24")
    domains = _start_domain_services(layout, record, LabNetwork.parse(record.subnet), DomainSettings(), said.append)
    assert domains is None and (record.dns, record.acme) == (None, None)
    assert said == [
        "no lab DNS and ACME server: dnsmasq, pebble not installed (apt-get install dnsmasq-base pebble); own "
        "domains' certificates cannot be tested in this lab, [domains] stays as ruche.toml has it"
    ]
