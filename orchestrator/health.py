"""HTTP health checks of instances, made the way users reach them: through their server's Caddy.

The check connects to the server's address on port 443 and speaks TLS with the instance's domain
as SNI and Host, so it needs no DNS record (useful before DNS is set, and in the lab).
Certificates are verified unless the collective uses Caddy's internal CA (the lab).
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning


@dataclass(frozen=True)
class HealthTarget:
    key: str  # what the caller knows the instance by, e.g. its address
    server_address: str
    domain: str
    path: str
    expected_status: int
    timeout_seconds: int
    body_contains: str | None = None  # text the answer must hold (e.g. "installed":true of a status page)


@dataclass(frozen=True)
class HealthResult:
    key: str
    healthy: bool
    detail: str

    @property
    def health(self) -> str:
        return "healthy" if self.healthy else "unhealthy"


class _ServerNameAdapter(HTTPAdapter):
    """Connects wherever the URL says, but presents and verifies ``server_name`` in TLS."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.server_name
        kwargs["assert_hostname"] = self.server_name
        super().init_poolmanager(*args, **kwargs)


def check(target: HealthTarget, *, verify_tls: bool = True) -> HealthResult:
    """Give the health of ``target``: healthy when it answers its expected status in time."""
    started = time.monotonic()
    try:
        status, text = request(target.server_address, target.domain, "GET", target.path, verify_tls=verify_tls,
                               timeout=target.timeout_seconds)  # fmt: skip
    except requests.RequestException as error:
        return HealthResult(
            target.key, False, f"no answer from https://{target.domain}{target.path}: {type(error).__name__}"
        )
    elapsed = time.monotonic() - started
    healthy = status == target.expected_status
    expectation = "" if healthy else f", expected {target.expected_status}"
    if healthy and target.body_contains is not None and target.body_contains not in text:
        healthy, expectation = False, f", but the answer lacks {target.body_contains!r}"
    return HealthResult(target.key, healthy, f"HTTP {status} in {elapsed:.2f} s{expectation}")


def request(server_address: str, domain: str, method: str, path: str, *, body: str = "",
            headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None, verify_tls: bool = True,
            timeout: float = 30) -> tuple[int, str]:  # fmt: skip
    """Send one request to ``domain`` through the server's Caddy, as a client of the service would; give
    (status, body). Raises requests.RequestException when nothing answers."""
    host = f"[{server_address}]" if ":" in server_address else server_address
    if not verify_tls:  # a lab's internal CA, on purpose: no warning for each request (catch_warnings is not
        # thread-safe, and check_all runs checks in threads, so the filter is set for the process)
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    with requests.Session() as session:
        session.mount("https://", _ServerNameAdapter(domain))
        response = session.request(
            method, f"https://{host}{path}", data=body.encode("utf-8") if body else None, auth=auth,
            headers={"Host": domain, **(headers or {})}, timeout=timeout, verify=verify_tls, allow_redirects=False,
        )  # fmt: skip
        return response.status_code, response.text


def check_all(targets: list[HealthTarget], *, verify_tls: bool = True, workers: int = 16) -> list[HealthResult]:
    """Check every target in parallel; give the results in the targets' order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool:
        return list(pool.map(lambda target: check(target, verify_tls=verify_tls), targets))
