"""`ruche serve` as several processes (SQLite and PostgreSQL states): the sign-in and join-page rate limits
are kept in the state database, so two processes (or `--workers 2`) count the same hits."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import requests

from tests.browser import free_port, use_loopback_web_settings


@contextlib.contextmanager
def serving(workspace, log, *options: str):
    """A `ruche serve` process with ``options``; give its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "--workspace", str(workspace), "serve", "--host",
                                "127.0.0.1", "--port", str(port), *options],
                               stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{base}/", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_serve_processes_share_the_sign_in_limit_and_workers_too(workspace, tmp_path):
    use_loopback_web_settings(workspace, free_port())
    with serving(workspace, tmp_path / "one.log") as one, serving(workspace, tmp_path / "two.log") as two:
        codes = [requests.get(f"{(one, two)[n % 2]}/connexion/not-a-token-{n}", timeout=10, allow_redirects=False).status_code
                 for n in range(12)]  # fmt: skip
        assert codes == [403] * 10 + [429] * 2  # 10 a minute per address, whichever process answers
        assert requests.get(f"{one}/connexion/another", timeout=10).status_code == 429
        assert requests.get(f"{two}/connexion/another", timeout=10).status_code == 429
        joined = [requests.post(f"{(one, two)[n % 2]}/rejoindre", data={}, timeout=10).status_code for n in range(6)]
        assert joined == [400] * 5 + [429]  # the join page's own limit (5 per 10 minutes), shared too

    with serving(workspace, tmp_path / "workers.log", "--workers", "2") as base:
        assert "Started parent process" in (tmp_path / "workers.log").read_text()
        assert requests.get(f"{base}/connexion/again", timeout=10).status_code == 429  # the hits above still count
