"""Benchmark: MEMBERS signed-in members (default 200) each polling their request's status every 2 s,
as the request page's script does (`GET /espace/demandes/ID/suivi`), against one `ruche serve` (one
uvicorn process, as the systemd unit runs it) and then `ruche serve --workers N`; on SQLite and, when
a PostgreSQL server is at hand (scripts/postgresql-for-tests, or --postgresql-url), on PostgreSQL.

Members' sessions are opened in the state directly (`open_session`, what the invite link does),
since the sign-in limit allows 10 per minute per address and every client here is on loopback.
Prints, per state and process count: polls, p50/p99/max latency, errors (any status other than 200
or a network error) and late polls (a poll that could not start within 2 s of the previous one).
Asserts nothing; the clients share the machine with the server.

Run: python3 benchmarks/web_polling.py [--members 200] [--associations 50] [--duration 30] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.postgresql import fresh_database_url  # noqa: E402
from benchmarks.web_request_page import percentile, ruche, set_up  # noqa: E402
from orchestrator.state.access import invite_for_token, open_session  # noqa: E402
from orchestrator.state.database import StateStore  # noqa: E402
from orchestrator.web.pages import COOKIE  # noqa: E402
from orchestrator.workspace import open_workspace  # noqa: E402
from tests.browser import free_port, served  # noqa: E402

INTERVAL = 2.0


def members_of(workspace: Path, sites: dict[str, tuple[str, list[int]]], members: int) -> list[tuple[str, int]]:
    """Open ``members`` sessions, spread over the associations (one invite each); give (cookie, request id)."""
    w = ["--workspace", str(workspace)]
    slugs = sorted(sites)
    store = StateStore(open_workspace(workspace).state_url)
    opened = []
    try:
        for number in range(members):
            slug = slugs[number % len(slugs)]
            made = json.loads(
                ruche(*w, "association", "invite", slug, "--email", f"member-{number}@{slug}.example", "--json")
            )
            token = made["link"].rstrip("/").rsplit("/", 1)[1]
            with store.session() as session:
                _web_session, cookie = open_session(session, invite_for_token(session, token))
            ids = sites[slug][1]
            opened.append((cookie, ids[number % len(ids)]))
    finally:
        store.close()
    return opened


def poll(base: str, members: list[tuple[str, int]], duration: float) -> tuple[list[float], list[str], int]:
    latencies: list[float] = []
    errors: list[str] = []
    late = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def member(cookie: str, request_id: int) -> None:
        client = requests.Session()
        client.cookies.set(COOKIE, cookie)
        mine, seen, behind = [], [], 0
        time.sleep(random.uniform(0, INTERVAL))  # members do not open their page at the same instant
        next_poll = time.monotonic()
        while next_poll < deadline:
            started = time.perf_counter()
            try:
                answer = client.get(f"{base}/espace/demandes/{request_id}/suivi", timeout=30)
                if answer.status_code != 200:
                    seen.append(f"HTTP {answer.status_code}")
            except requests.RequestException as error:
                seen.append(error.__class__.__name__)
            mine.append(time.perf_counter() - started)
            next_poll += INTERVAL
            pause = next_poll - time.monotonic()
            if pause < 0:
                behind += 1
                next_poll = time.monotonic()
            else:
                time.sleep(pause)
        with lock:
            latencies.extend(mine)
            errors.extend(seen)
            late[0] += behind

    threads = [threading.Thread(target=member, args=m) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, late[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--associations", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="Seconds of polling per configuration.")
    parser.add_argument("--workers", type=int, default=4, help="The second configuration's `serve --workers`.")
    parser.add_argument(
        "--postgresql-url", help="A PostgreSQL database (default: a fresh one from scripts/postgresql-for-tests)."
    )
    arguments = parser.parse_args()
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="ruche-bench-config-"))
    states = [("SQLite", None)]
    postgresql = arguments.postgresql_url or fresh_database_url("ruche_polling")
    states += [("PostgreSQL", postgresql)] if postgresql else []
    print(f"{arguments.members} members of {arguments.associations} associations, each polling every {INTERVAL:g} s "
          f"for {arguments.duration:g} s; {os.cpu_count()} cores shared by server and clients")  # fmt: skip
    print(
        f"{'state':<11} {'processes':>9} {'polls':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} {'late':>6}"
    )
    for label, state_url in states:
        with tempfile.TemporaryDirectory(prefix="ruche-bench-") as directory:
            workspace = Path(directory) / "workspace"
            sites = set_up(workspace, arguments.associations, 2, state_url)
            members = members_of(workspace, sites, arguments.members)
            for processes in (1, arguments.workers):
                options = ("--workers", str(processes)) if processes > 1 else ()
                with served(workspace, Path(directory) / f"serve-{processes}.log", *options, port=free_port()) as base:
                    latencies, errors, late = poll(base, members, arguments.duration)
                ordered = sorted(latencies)
                print(f"{label:<11} {processes:>9} {len(ordered):>7} {percentile(ordered, 0.50) * 1000:>8.1f} "
                      f"{percentile(ordered, 0.99) * 1000:>8.1f} {ordered[-1] * 1000:>8.1f} {len(errors):>7} {late:>6}",
                      flush=True)  # fmt: skip
                for error in sorted(set(errors))[:3]:
                    print(f"{'':<11} e.g. {error}")
    if postgresql is None:
        print("PostgreSQL: no server at hand (scripts/postgresql-for-tests failed); give --postgresql-url")


if __name__ == "__main__":
    main()
