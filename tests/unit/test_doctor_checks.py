"""The pieces of `ruche doctor` that need no server: resolvers given, zone lines, disk and system facts."""

from __future__ import annotations

import pytest

from orchestrator.actions.doctor import _disk_check, _system_checks
from orchestrator.resolver import parse_resolver, zone_line

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [("192.0.2.53", ("192.0.2.53", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("2001:db8::53", ("2001:db8::53", 53)), ("[2001:db8::53]:5353", ("2001:db8::53", 5353))],
)  # fmt: skip
def test_a_resolver_is_an_address_with_an_optional_port(text, expected):
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["ns.example.org", "192.0.2.53:99999", "192.0.2.300", "1.2.3.4:x", ""])
def test_anything_else_is_refused_as_a_resolver(text):
    with pytest.raises(ValueError):
        parse_resolver(text)


def test_zone_lines_point_a_name_at_its_server_by_address_or_by_name():
    assert zone_line("wiki.amap.example.org", "192.0.2.10") == "wiki.amap.example.org. 3600 IN A 192.0.2.10"
    assert zone_line("wiki.amap.example.org", "2001:db8::10") == "wiki.amap.example.org. 3600 IN AAAA 2001:db8::10"
    assert zone_line("wiki.amap.example.org", "web-1.example.net") == (
        "wiki.amap.example.org. 3600 IN CNAME web-1.example.net."
    )


def test_free_disk_below_ten_percent_warns_and_below_three_fails():
    assert _disk_check("web-1", "/srv/ruche 1000000 500000").status == "ok"
    assert _disk_check("web-1", "/srv/ruche 1000000 50000").status == "warning"
    assert _disk_check("web-1", "/srv/ruche 1000000 20000").status == "error"
    assert _disk_check("web-1", "").status == "warning"


def test_a_debian_12_server_fails_and_missing_controllers_only_warn():
    facts = {"os": "debian 12", "podman": "4.3.1", "systemd": "252", "controllers": "cpu memory", "disk": "/ 10 9"}
    checks = {c.check: c for c in _system_checks("web-1", facts, "manual")}
    assert checks["server.os"].status == "error" and "Debian 13" in checks["server.os"].fix
    assert checks["server.podman"].status == "error"
    assert checks["server.cgroups"].status == "warning" and "io, pids" in checks["server.cgroups"].detail
    facts = {"os": "debian 13", "podman": "5.4.2", "systemd": "257", "controllers": "cpuset cpu io memory pids"}
    checks = {c.check: c for c in _system_checks("web-1", facts | {"disk": "/ 10 9"}, "manual")}
    assert [checks[name].status for name in ("server.os", "server.podman", "server.systemd", "server.cgroups")] == [
        "ok"
    ] * 4
