"""``ruche metrics token|show|clients add|remove``: who may read `ruche serve`'s /metrics."""

from __future__ import annotations

import click

from orchestrator.actions import metrics_token as actions
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json

RESTART = "restart `ruche serve` (systemctl restart ruche-serve) for the change to apply"


def _print_access(view: dict) -> None:
    clients = ", ".join(view["clients"]) or "none"
    token = "set" if view["token_set"] else "not set (`ruche metrics token` makes one)"
    click.echo(f"/metrics: token {token}; clients allowed without a token: {clients}")
    if not view["token_set"] and not view["clients"]:
        click.echo("nobody may read /metrics: it answers 404 until a token or a client network is set")


@click.group()
def metrics() -> None:
    """Who may read `ruche serve`'s Prometheus metrics (/metrics): a bearer token, or client networks.

    \b
    Kept in ruche.toml under [metrics]: the token's SHA-256 only, never the token.
    Neither set (the default): /metrics answers 404 to everyone. docs/metrics.md tells the rest.
    """


@metrics.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"token", "token_sha256", ...} as JSON.')
@pass_context
def token(context: Context, as_json: bool) -> None:
    """Make a new bearer token (the old one stops working) and print it once: it is not kept anywhere."""
    view = actions.new_token(context.workspace)
    if as_json:
        emit_json(view)
        return
    click.echo(view["token"])
    click.echo(f"token_sha256 written to {view['config']} [metrics]; this token is shown only this once. Put it "
               "in a file only Prometheus reads (mode 0600) and name it in its scrape config: "
               "`authorization: {credentials_file: /etc/prometheus/ruche-token}` (docs/metrics.md); then "
               f"{RESTART}.", err=True)  # fmt: skip


@metrics.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def show(context: Context, as_json: bool) -> None:
    """Show whether a token is set and which networks may read /metrics without one."""
    view = actions.show(context.workspace)
    if as_json:
        emit_json(view)
    else:
        _print_access(view)


@metrics.group()
def clients() -> None:
    """Networks allowed to read /metrics without a token ([metrics] clients)."""


@clients.command("add")
@click.argument("network")
@pass_context
def add_client(context: Context, network: str) -> None:
    """Let NETWORK (an address, or e.g. 10.0.0.0/24) read /metrics without a token."""
    _print_access(actions.add_client(context.workspace, network))
    click.echo(RESTART, err=True)


@clients.command("remove")
@click.argument("network")
@pass_context
def remove_client(context: Context, network: str) -> None:
    """Stop letting NETWORK read /metrics without a token."""
    _print_access(actions.remove_client(context.workspace, network))
    click.echo(RESTART, err=True)
