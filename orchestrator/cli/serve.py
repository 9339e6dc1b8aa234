"""``ruche serve``."""

from __future__ import annotations

import click

from orchestrator.cli.main import Context, pass_context


@click.command()
@click.option("--host", help="Address to listen on (default: [web] host in ruche.toml).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: [web] port).")
@pass_context
def serve(context: Context, host: str | None, port: int | None) -> None:
    """Serve the associations' web pages and the JSON API (French first; behind a TLS reverse proxy)."""
    import uvicorn

    from orchestrator.web.app import create_app
    from orchestrator.workspace import open_workspace

    settings = open_workspace(context.workspace).config.web
    uvicorn.run(create_app(context.workspace), host=host or settings.host, port=port or settings.port,
                proxy_headers=True, server_header=False, log_level="info")  # fmt: skip
