"""``ruche metrics token|clients``: who may read `ruche serve`'s /metrics (ruche.toml's [metrics]).

The token itself is never kept: ruche.toml holds its SHA-256 only, and ``token`` prints the token once, for
Prometheus' ``authorization: {credentials_file: ...}``. A running `ruche serve` reads ruche.toml when it starts:
restart it after a change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from pathlib import Path

from orchestrator.config import MetricsSettings
from orchestrator.errors import InvalidInput
from orchestrator.workspace import open_workspace


def _view(workspace, settings: MetricsSettings) -> dict:
    return {"token_set": settings.token_sha256 is not None, "clients": list(settings.clients),
            "config": str(workspace.config_path)}  # fmt: skip


def new_token(workspace_path: Path | None) -> dict:
    """Make a fresh random token, keep its SHA-256 in ruche.toml's [metrics] token_sha256 (replacing any earlier
    one: a scraper with the old token is refused from then on) and give ``{"token", "token_sha256", ...}``."""
    workspace = open_workspace(workspace_path)
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    settings = workspace.file_config.metrics.model_copy(update={"token_sha256": digest})
    workspace.edit_config({"metrics": settings})
    return {"token": token, "token_sha256": digest, **_view(workspace, settings)}


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an IP address or network",
                           hint="give one like 10.0.0.5, 10.0.0.0/24 or 2001:db8::/64") from None  # fmt: skip


def add_client(workspace_path: Path | None, network: str) -> dict:
    """Let the addresses of ``network`` read /metrics without a token (kept in [metrics] clients)."""
    workspace = open_workspace(workspace_path)
    entry = _network(network)
    current = workspace.file_config.metrics
    clients = current.clients if entry in current.clients else [*current.clients, entry]
    settings = current.model_copy(update={"clients": clients})
    workspace.edit_config({"metrics": settings})
    return _view(workspace, settings)


def remove_client(workspace_path: Path | None, network: str) -> dict:
    """Stop letting ``network`` read /metrics without a token; raises InvalidInput if it is not listed."""
    workspace = open_workspace(workspace_path)
    entry = _network(network)
    current = workspace.file_config.metrics
    if entry not in current.clients and network.strip() not in current.clients:
        listed = ", ".join(current.clients) or "none"
        raise InvalidInput(f"{entry} is not in [metrics] clients (listed: {listed})",
                           hint="`ruche metrics show` lists them")  # fmt: skip
    settings = current.model_copy(update={"clients": [c for c in current.clients if c not in (entry, network.strip())]})
    workspace.edit_config({"metrics": settings})
    return _view(workspace, settings)


def show(workspace_path: Path | None) -> dict:
    """Whether a token is set (never the token: it is not kept) and the networks allowed without one."""
    workspace = open_workspace(workspace_path)
    return _view(workspace, workspace.config.metrics)
