"""Waits that watch: ruche-wait (the instance role's wait, on the server) and orchestrator.unit_watch (ruche's own
waits): what a unit's state says, and a wall-clock deadline against a real HTTP server on the loopback."""

from __future__ import annotations

import http.server
import threading
import time
from argparse import Namespace
from contextlib import contextmanager

import pytest

from orchestrator.unit_watch import RESTART_LOOP, failing_among, parse_units, wait_watching
from tests.unit.test_idranges import load_script

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tool():
    return load_script("ruche-wait")


@contextmanager
def server(answers: list[tuple[int, str]], delay: float = 0.0):
    """An HTTP server on 127.0.0.1 giving ``answers`` in turn (the last one again and again), each after ``delay``
    seconds; yields (port, the Host headers it was sent)."""
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hosts.append(self.headers.get("Host", ""))
            status, body = answers[min(len(hosts), len(answers)) - 1]
            time.sleep(delay)
            self.send_response(status)
            if status in (301, 302):
                self.send_header("Location", "https://elsewhere.invalid/")
            self.end_headers()
            try:
                self.wfile.write(body.encode())
            except BrokenPipeError:  # the client gave up (its request timeout)
                pass

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], hosts
    finally:
        httpd.shutdown()
        httpd.server_close()


def options(tool, port: int, seconds: float, status: int = 200, contains: str | None = None) -> Namespace:
    argv = [str(port), "/status", "wiki.chorale.example.org", str(status), str(seconds)]
    return tool.arguments(argv + ([f"--contains={contains}"] if contains else []))


def test_arguments_take_units_bare_or_whole_and_refuse_a_path_without_slash(tool, capsys):
    parsed = tool.arguments(["20003", "/.web/", "r.a.example.org", "200", "300", "--unit=ruche-a--r-app",
                             "--unit", "ruche-a--r-db.service", "--contains", '"installed":true'])  # fmt: skip
    assert (parsed.port, parsed.path, parsed.host, parsed.status, parsed.seconds) == (
        20003, "/.web/", "r.a.example.org", 200, 300.0,
    )  # fmt: skip
    assert parsed.unit == ["ruche-a--r-app.service", "ruche-a--r-db.service"] and parsed.contains == '"installed":true'
    with pytest.raises(SystemExit) as refused:
        tool.arguments(["20003", "web", "r.a.example.org", "200", "300"])
    assert refused.value.code == 2 and "PATH starts with /" in capsys.readouterr().err


def test_an_answer_is_judged_by_its_status_then_its_body(tool):
    assert tool.judge(200, "ok", 200, None) == (True, "HTTP 200")
    assert tool.judge(502, "", 200, None) == (False, "HTTP 502, expected 200")
    assert tool.judge(200, '{"installed":false}', 200, '"installed":true') == (
        False, "HTTP 200, but the answer lacks '\"installed\":true'",
    )  # fmt: skip
    assert tool.judge(None, "", 200, None, "Connection refused") == (False, "no answer (Connection refused)")


def test_systemctl_show_blocks_are_read_in_any_order_and_a_failed_or_looping_unit_is_found(tool):
    shown = "NRestarts=0\nActiveState=active\nId=ruche-a--r-db.service\n\nId=ruche-a--r-app.service\nNRestarts=7\n" \
            "ActiveState=activating\n"  # fmt: skip
    now = tool.parse_show(shown)
    assert now == {"ruche-a--r-db.service": ("active", 0), "ruche-a--r-app.service": ("activating", 7)}
    # restarts are counted from the wait's start: 7 then, 7 + 2 now is a unit still starting
    first = {"ruche-a--r-db.service": ("active", 0), "ruche-a--r-app.service": ("activating", 7)}
    assert tool.failing({**now, "ruche-a--r-app.service": ("activating", 9)}, first) is None
    assert tool.failing({**now, "ruche-a--r-app.service": ("activating", 10)}, first) == (
        "ruche-a--r-app.service", "restarted 3 times",
    )  # fmt: skip
    assert tool.failing({**now, "ruche-a--r-db.service": ("failed", 0)}, first) == ("ruche-a--r-db.service", "failed")
    assert tool.failing({}, first) is None  # systemctl gave nothing: the wait goes on to its deadline


def test_the_same_rule_in_ruche_and_the_units_of_a_longer_identifier_are_not_the_instances():
    listed = "\n".join([
        "ruche-maj--x-app.service activating 4", "ruche-maj--x-db.service active 0",
        "ruche-maj--x-network.service active 0",
        # maj/x-y: matched by the pattern ruche-maj--x-*, but not maj/x's
        "ruche-maj--x-y-app.service failed 0", "ruche-maj--x-y-network.service active 0",
    ])  # fmt: skip
    units = parse_units(listed, "maj--x")
    assert sorted(units) == ["ruche-maj--x-app.service", "ruche-maj--x-db.service", "ruche-maj--x-network.service"]
    assert failing_among(units, units) is None
    looping = {**units, "ruche-maj--x-app.service": ("activating", 4 + RESTART_LOOP)}
    assert failing_among(looping, units) == ("ruche-maj--x-app.service", f"restarted {RESTART_LOOP} times")


def test_ruche_wait_answers_once_the_port_does_sending_the_host_and_following_no_redirection(tool):
    with server([(502, ""), (302, ""), (200, "<html>Radicale</html>")]) as (port, hosts):
        started = time.monotonic()
        code, message = tool.wait(options(tool, port, 20, contains="Radicale"))
        elapsed = time.monotonic() - started
    assert code == 0 and message.startswith("HTTP 200 after "), message
    assert hosts == ["wiki.chorale.example.org"] * 3  # the redirection was an answer (302, expected 200), not followed
    assert 2.5 < elapsed < 6, elapsed  # every 1.5 s


def test_ruche_wait_ends_at_its_wall_clock_deadline_whatever_each_request_takes(tool):
    # each answer takes 3 s; the second request is given the 1 s left (min(5, the time left)), not 5 s more
    with server([(503, "")], delay=3) as (port, _hosts):
        started = time.monotonic()
        code, message = tool.wait(options(tool, port, 4))
        elapsed = time.monotonic() - started
    print(f"ruche-wait with a 4 s deadline and 3 s answers: {elapsed:.1f} s")
    assert code == 1 and "within 4 s" in message and "last: " in message, message
    assert elapsed < 5.5, elapsed
    code, message = tool.wait(options(tool, port, 0.5))  # nothing listens any more
    assert code == 1 and "no answer (" in message, message


def test_ruche_waits_end_at_their_deadline_or_at_once_when_ready():
    calls = []

    def probe() -> tuple[bool, str]:
        calls.append(time.monotonic())
        return len(calls) >= 3, f"try {len(calls)}"

    assert wait_watching(probe, 10, None, interval=0.1) == ("ready", "try 3")
    started = time.monotonic()
    assert wait_watching(lambda: (False, "HTTP 502"), 0.5, None, interval=0.2) == ("timeout", "HTTP 502")
    assert time.monotonic() - started < 1.5
