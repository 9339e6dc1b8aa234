"""`list_tags` against a real HTTP registry on loopback that asks for an anonymous Bearer token (as Docker Hub,
ghcr.io and quay.io do) and pages its listing with Link headers (as the distribution spec says)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.errors import OperationFailed
from orchestrator.image_tags import list_tags

TAGS = [f"1.{n}.0" for n in range(5)] + ["latest"]


class Registry(BaseHTTPRequestHandler):
    asked_tokens: list[str] = []

    def log_message(self, *_args) -> None:
        pass

    def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        port = self.server.server_address[1]
        if self.path.startswith("/token?"):
            Registry.asked_tokens.append(self.path)
            return self._send(200, {"token": "anonymous-token"})
        if self.path.startswith("/v2/private/"):
            return self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": 'Basic realm="x"'})
        if self.headers.get("Authorization") != "Bearer anonymous-token":
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="test",scope="repository:app:pull"'
            return self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge})
        last = self.path.split("last=")[1].split("&")[0] if "last=" in self.path else None
        start = TAGS.index(last) + 1 if last else 0
        page = TAGS[start : start + 2]
        headers = {}
        if start + 2 < len(TAGS):
            headers["Link"] = f'</v2/app/tags/list?n=2&last={page[-1]}>; rel="next"'
        self._send(200, {"name": "app", "tags": page}, headers)


@pytest.fixture
def registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_anonymous_token_is_asked_for_and_every_page_is_read(registry):
    Registry.asked_tokens = []
    assert list_tags(f"{registry}/v2/app/tags/list") == TAGS
    assert len(Registry.asked_tokens) == 1 and "service=test" in Registry.asked_tokens[0]
    assert "scope=repository%3Aapp%3Apull" in Registry.asked_tokens[0]


def test_a_registry_that_wants_credentials_is_an_error_that_says_so(registry):
    with pytest.raises(OperationFailed, match="asks for credentials"):
        list_tags(f"{registry}/v2/private/tags/list")
    with pytest.raises(OperationFailed, match="127.0.0.1:9"):
        list_tags("http://127.0.0.1:9/v2/app/tags/list", timeout=2)
