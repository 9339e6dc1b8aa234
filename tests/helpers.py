"""Builders shared by tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from orchestrator.catalog import load_catalog
from orchestrator.config import ImageSettings
from orchestrator.deployment import InstanceRecord, instance_domain, instance_variables
from orchestrator.inventory import InstanceEntry
from orchestrator.workspace import BUNDLED_CATALOG_DIR, open_workspace

CATALOG = load_catalog(BUNDLED_CATALOG_DIR)
# Where the tests' workspaces say the lab's images are pushed ([images] registry): their servers are not the lab's
TEST_IMAGE_REGISTRY = "registry.test.example/chatons"


def serve_lab_images_from(path: Path, registry: str | None = TEST_IMAGE_REGISTRY, *, insecure: bool = False) -> None:
    """Set ``[images] registry`` in the workspace at ``path`` (None: unset it), so that services built like the
    lab's (Radicale, Miniflux...) may be placed on servers that are not the lab's."""
    workspace = open_workspace(path)
    images = ImageSettings(registry=registry, insecure=insecure)
    workspace.save_config(workspace.config.model_copy(update={"images": images}))


def instance_record(
    association: str = "amap", name: str = "app", secrets=None, limits=None, **parameters
) -> InstanceRecord:
    """Give the record of an instance with ``parameters`` (and service ``limits``), as the state would."""
    return InstanceRecord(
        association=association, name=name, domain=instance_domain(association, name, "example.org"), http_port=20000,
        desired_state="present", cpu=0.25, memory_mb=128, parameters=parameters, secrets=secrets or {},
        limits=limits or {}, id_start=1073741824,
    )  # fmt: skip


def instance_entry(association: str, name: str, server: str, service: str = "radicale", secrets=None, **parameters):
    """Give the inventory entry of an instance of a bundled ``service`` with ``parameters``."""
    record = instance_record(association, name, secrets, **parameters)
    return InstanceEntry(association, name, server, instance_variables(record, CATALOG.get(service)))


class Webhook:
    """An HTTP receiver on loopback: every JSON body posted to it, in order."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_arguments) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
