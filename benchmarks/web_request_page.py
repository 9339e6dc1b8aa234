"""Benchmark: latency of a member's request page under concurrent load, `ruche serve` on loopback.

Sets up a workspace (SQLite by default, or --state-url), ASSOCIATIONS associations with REQUESTS
requests each (half of them approved, with a queued run whose progress the page shows), one
invite link per association; starts `ruche serve` (one uvicorn process, as the systemd unit
runs it); signs in one browser-like client per association; then CONCURRENCY threads each loop
over GETs of their association's request pages (the whole page and the part the page's script
fetches every 2 s) for DURATION seconds. Prints p50/p90/p99/max latency, throughput and errors
(any status other than 200, or a network error). Asserts nothing; the client shares the machine.

Run: python3 benchmarks/web_request_page.py [--concurrency 16] [--duration 20] [--state-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.actions.request_submit import submit_request  # noqa: E402
from orchestrator.cli.main import main as ruche_main  # noqa: E402
from tests.browser import free_port, served, use_loopback_web_settings  # noqa: E402


def ruche(*arguments: str) -> str:
    """Run the ruche CLI in-process; give its standard output (raises if it fails)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            ruche_main(list(arguments))
        except SystemExit as exit_:
            if exit_.code:
                raise RuntimeError(f"ruche {' '.join(arguments)} failed ({exit_.code})") from None
    return out.getvalue()


def set_up(
    workspace: Path, associations: int, per_association: int, state_url: str | None
) -> dict[str, tuple[str, list[int]]]:
    """Create the workspace and its requests; give {association: (invite link, [request ids])}."""
    init = ["init", str(workspace), "--collective", "Bench", "--domain", "bench.example.org"]
    ruche(*init, *(["--state-url", state_url] if state_url else []))
    use_loopback_web_settings(workspace, free_port())
    w = ["--workspace", str(workspace)]
    for number in range(max(2, associations // 4)):
        ruche(
            *w,
            "server",
            "add",
            f"web-{number}",
            "--address",
            f"192.0.2.{number + 1}",
            "--memory",
            "64G",
            "--disk",
            "2000G",
        )
    sites: dict[str, tuple[str, list[int]]] = {}
    for number in range(associations):
        slug = f"asso-{number:03d}"
        ruche(
            *w,
            "association",
            "add",
            slug,
            "--name",
            f"Association {number}",
            "--email",
            f"c@{slug}.example",
            "--offer",
            "association",
        )
        ids = []
        for index in range(per_association):
            entry = submit_request(workspace, association=slug, service="radicale", name=f"agenda-{index}", size="small",
                                   parameters={"admin_user": "benchmark"}, requested_by="benchmark")  # fmt: skip
            ids.append(entry["id"])
            if index % 2 == 0:
                ruche(*w, "request", "approve", str(entry["id"]), "--json")
        link = json.loads(ruche(*w, "association", "invite", slug, "--json"))["link"]
        sites[slug] = (link, ids)
    return sites


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))]


def sign_in(sites: dict[str, tuple[str, list[int]]]) -> list[tuple[requests.Session, list[int]]]:
    """One signed-in HTTP session per association, with its request ids."""
    sessions = []
    for link, ids in sites.values():
        session = requests.Session()
        answer = session.get(link, allow_redirects=False, timeout=10)
        assert answer.status_code == 303, f"sign-in answered {answer.status_code}"
        sessions.append((session, ids))
    return sessions


def load(base: str, sessions: list, concurrency: int, duration: float) -> tuple[list[float], list[str]]:
    """``concurrency`` threads GET request pages for ``duration`` seconds; give latencies (s) and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def client(number: int) -> None:
        session, ids = sessions[number % len(sessions)]
        # threads sharing an association share its session cookie, like several tabs
        mine, seen, step = [], [], 0
        while time.monotonic() < deadline:
            request_id = ids[step % len(ids)]
            path = f"/espace/demandes/{request_id}" + ("/suivi" if step % 2 else "")
            step += 1
            started = time.perf_counter()
            try:
                answer = session.get(base + path, timeout=30)
                elapsed = time.perf_counter() - started
                if answer.status_code != 200:
                    seen.append(f"{path}: HTTP {answer.status_code}")
            except requests.RequestException as error:
                elapsed = time.perf_counter() - started
                seen.append(f"{path}: {error.__class__.__name__}")
            mine.append(elapsed)
        with lock:
            latencies.extend(mine)
            errors.extend(seen)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # (sign-in is limited to 10 per minute per address, and every client signs in from loopback)
    parser.add_argument(
        "--associations", type=int, default=8, help="Associations, each with its signed-in client (10 at most)."
    )
    parser.add_argument("--requests", type=int, default=5, help="Requests per association.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds of load per concurrency level.")
    parser.add_argument("--state-url", help="A PostgreSQL URL (default: SQLite in the workspace).")
    arguments = parser.parse_args()
    if not 1 <= arguments.associations <= 10:
        parser.error("--associations: between 1 and 10 (the sign-in rate limit is 10 per minute per address)")
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="ruche-bench-config-"))
    with tempfile.TemporaryDirectory(prefix="ruche-bench-") as directory:
        workspace = Path(directory) / "workspace"
        started = time.perf_counter()
        sites = set_up(workspace, arguments.associations, arguments.requests, arguments.state_url)
        print(f"set-up: {arguments.associations} associations x {arguments.requests} requests in {time.perf_counter() - started:.1f} s "
              f"(state: {'PostgreSQL' if arguments.state_url else 'SQLite'})")  # fmt: skip
        with served(workspace, Path(directory) / "serve.log") as base:
            sessions = sign_in(sites)
            print(
                f"{'clients':>8} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
            )
            for concurrency in arguments.concurrency:
                latencies, errors = load(base, sessions, concurrency, arguments.duration)
                ordered = sorted(latencies)
                print(f"{concurrency:>8} {len(ordered):>9} {len(ordered) / arguments.duration:>7.0f} "
                      f"{percentile(ordered, 0.50) * 1000:>8.1f} {percentile(ordered, 0.90) * 1000:>8.1f} "
                      f"{percentile(ordered, 0.99) * 1000:>8.1f} {ordered[-1] * 1000:>8.1f} {len(errors):>7}")  # fmt: skip
                for error in sorted(set(errors))[:5]:
                    print(f"         e.g. {error}")
            print(
                f"(mean {statistics.mean(latencies) * 1000:.1f} ms at the last level; {os.cpu_count()} cores shared by server and clients)"
            )


if __name__ == "__main__":
    main()
