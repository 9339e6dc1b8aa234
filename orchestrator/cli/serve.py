"""``ruche serve``."""

from __future__ import annotations

import os

import click

from orchestrator.cli.main import Context, pass_context


@click.command()
@click.option("--host", help="Address to listen on (default: [web] host in ruche.toml).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: [web] port).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving requests (sessions and rate limits are in the state database, shared by all).",
)
@pass_context
def serve(context: Context, host: str | None, port: int | None, workers: int) -> None:
    """Serve the associations' web pages and the JSON API (French first; behind a TLS reverse proxy)."""
    import uvicorn

    from orchestrator.web.app import create_app
    from orchestrator.workspace import open_workspace

    workspace = open_workspace(context.workspace)
    settings = workspace.config.web
    # X-Forwarded-For is believed from [web] trusted_proxies only (none by default): from anyone else, one header
    # per try would give a new client address to the rate limits
    options = {"host": host or settings.host, "port": port or settings.port,
               "proxy_headers": bool(settings.trusted_proxies), "forwarded_allow_ips": list(settings.trusted_proxies),
               "server_header": False, "log_level": "info"}  # fmt: skip
    if workers == 1:
        uvicorn.run(create_app(workspace.root), **options)
        return
    os.environ["RUCHE_WORKSPACE"] = str(workspace.root)  # each worker process opens it (app_from_environment)
    uvicorn.run("orchestrator.web.app:app_from_environment", factory=True, workers=workers, **options)
