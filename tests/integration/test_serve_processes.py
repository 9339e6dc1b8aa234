"""`ruche serve` as several processes (SQLite and PostgreSQL states): the sign-in and join-page rate limits
are kept in the state database, so two processes (or `--workers 2`) count the same hits."""

from __future__ import annotations

import requests

from tests.browser import free_port, served, use_loopback_web_settings


def test_two_serve_processes_share_the_sign_in_limit_and_workers_too(workspace, tmp_path):
    use_loopback_web_settings(workspace, free_port())
    with (
        served(workspace, tmp_path / "one.log", port=free_port()) as one,
        served(workspace, tmp_path / "two.log", port=free_port()) as two,
    ):
        codes = [requests.get(f"{(one, two)[n % 2]}/connexion/not-a-token-{n}", timeout=10, allow_redirects=False).status_code
                 for n in range(12)]  # fmt: skip
        assert codes == [403] * 10 + [429] * 2  # 10 a minute per address, whichever process answers
        assert requests.get(f"{one}/connexion/another", timeout=10).status_code == 429
        assert requests.get(f"{two}/connexion/another", timeout=10).status_code == 429
        joined = [requests.post(f"{(one, two)[n % 2]}/rejoindre", data={}, timeout=10).status_code for n in range(6)]
        assert joined == [400] * 5 + [429]  # the join page's own limit (5 per 10 minutes), shared too

    with served(workspace, tmp_path / "workers.log", "--workers", "2", port=free_port()) as base:
        assert "Started parent process" in (tmp_path / "workers.log").read_text()
        assert requests.get(f"{base}/connexion/again", timeout=10).status_code == 429  # the hits above still count
