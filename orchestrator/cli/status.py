"""``ruche status``."""

from __future__ import annotations

import sys

import click

from orchestrator.actions.status import status as status_action
from orchestrator.actions.status import unhealthy
from orchestrator.cli.main import Context, pass_context
from orchestrator.cli.render import emit_json, instances_table


@click.command()
@click.option("--association", help="Only this association's instances.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def status(context: Context, association: str | None, as_json: bool) -> None:
    """Check every instance through Caddy now; show its server, state and health.

    Exits 1 when an instance that should run does not answer as its catalogue entry expects.
    """
    entries = status_action(context.workspace, association=association)
    if as_json:
        emit_json(entries)
    else:
        click.echo(instances_table(entries))
        for entry in unhealthy(entries):
            click.echo(f"{entry['address']}: {entry['health_detail']}", err=True)
    if unhealthy(entries):
        sys.exit(1)
