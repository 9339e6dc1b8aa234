"""``ruche lab up|status|down``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.lab_down import tear_down
from orchestrator.actions.lab_status import inspect
from orchestrator.actions.lab_up import bring_up
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import ProgressPrinter, emit_json, table


@click.group()
def lab() -> None:
    """A local lab of real Debian servers (systemd-nspawn) for tests and demos. Needs root."""


def _print_status(status: dict) -> None:
    if status["registry"]:
        answering = "answering" if status["registry"]["answering"] else "NOT answering"
        click.echo(f"subnet {status['subnet']}, registry {status['registry']['address']} ({answering})")
    rows = [
        (
            s["name"],
            s["role"],
            s["address"],
            "yes" if s.get("ssh_reachable") else "no",
            s.get("systemd") or s.get("error", ""),
        )
        for s in status["servers"]
    ]
    click.echo(table(rows, ["SERVER", "ROLE", "ADDRESS", "SSH", "SYSTEMD"]))
    click.echo("the lab is up" if status["up"] else "the lab is NOT up")


@lab.command()
@click.option(
    "--servers", "app_servers", default=2, show_default=True, help="Application servers (plus one backup server)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the resulting status as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def up(context: Context, app_servers: int, as_json: bool, quiet: bool) -> None:
    """Boot the lab: servers, local image registry, service images; register the servers.

    The lab's settings (its registry mirror, internal certificates, no resource limits, its backup target and
    mail sink) go in the lab's own file (lab/settings.toml), which applies over ruche.toml until `ruche lab down`;
    ruche.toml is left as it is. Refused in a workspace holding servers an admin registered. Running it again
    while the lab is up changes nothing.
    """
    status = bring_up(context.workspace, app_servers=app_servers, progress=ProgressPrinter(not quiet))
    emit_json(status) if as_json else _print_status(status)
    if not status["up"]:
        sys.exit(1)


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Each lab server: address, whether SSH answers, systemd's state. Exits 1 unless all is up."""
    result = inspect(context.workspace)
    emit_json(result) if as_json else _print_status(result)
    if not result["up"]:
        sys.exit(1)


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@pass_context
def down(context: Context, as_json: bool, quiet: bool) -> None:
    """Stop and remove everything the lab created (also after an interrupted `lab up`)."""
    removed = tear_down(context.workspace, progress=ProgressPrinter(not quiet))
    if as_json:
        emit_json(removed)
    else:
        click.echo(
            f"removed {removed['servers']} server(s), {removed['links']} link(s), "
            f"{removed['registry']} registry, {removed['registered']} registry entries"
        )
